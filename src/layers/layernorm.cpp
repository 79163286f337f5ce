// Layer normalisation over channels (ConvNeXt's LayerNorm2d; after dense, over the features): each
// position of each image is normalised with the mean and variance of its own C values, then scaled
// and shifted per channel. Unlike batch norm it never looks across images, so training and inference
// compute the same thing and there are no running statistics.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class LayerNorm final : public Layer {
  public:
    explicit LayerNorm(const LayerNormConfig& config) : config_(config) {}

    std::string kind() const override { return "layernorm"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        if (config_.epsilon == LayerNormConfig{}.epsilon) return kind();
        char text[32];
        std::snprintf(text, sizeof text, "%g", config_.epsilon);
        return kind() + " eps=" + text;
    }

    int64_t channels() const { return input_shape().c; }
    int64_t positions() const { return input_shape().h * input_shape().w; }
    int64_t param_count() const override { return 2 * channels(); }
    // Each value: (x - mean) times 1/std, then times its channel's scale.
    int64_t mult_count() const override { return 2 * input_shape().elements(); }
    int64_t input_grad_mults() const override { return 4 * input_shape().elements(); }
    int64_t weight_grad_mults() const override { return input_shape().elements(); }
    // The mean's and the variance's sums, the subtraction, the squares and the shift.
    int64_t other_ops() const override { return 4 * input_shape().elements(); }
    std::string param_formula() const override {
        return "2 · " + std::to_string(channels()) + " (scale, shift)";
    }
    std::string mult_formula() const override {
        return "2 · " + input_shape().str() + " (normalise and scale each value)";
    }

    std::vector<ParamRef> params() override {
        return {{"weight", {channels()}, &gamma_, &dgamma_, true},
                {"bias", {channels()}, &beta_, &dbeta_, true}};
    }
    void init_params(Rng&) override {
        gamma_ = Buffer(channels());
        beta_ = Buffer(channels());
        std::fill(gamma_.data(), gamma_.data() + channels(), 1.0f);
    }
    void allocate_gradients() override {
        dgamma_ = Buffer(channels());
        dbeta_ = Buffer(channels());
    }

    // Channels-last is its natural layout: each position's channels lie side by side (ConvNeXt's
    // blocks then stay channels-last from one convolution to the next).
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }

    // Forward: each thread's (mean, 1/std) per position. Training adds the whole batch's, which
    // backward recomputes from x rather than keeping them between the passes.
    int64_t workspace_floats(const Pass& pass) const override {
        return 2 * positions() * (threads() + (pass.training ? pass.batch : 0));
    }

    void forward(const float* x, float* y, const Pass& pass) override {
        const int64_t C = channels(), P = positions(), N = pass.batch;
        if (pass.layouts.input == Layout::nhwc) {
#pragma omp parallel for schedule(static) num_threads(threads()) if (N * C * P >= (1 << 16))
            for (int64_t r = 0; r < N * P; ++r) {
                const float* v = x + r * C;
                float* out = y + r * C;
                const std::pair<float, float> stats = row_statistics(v);
                const float mean = stats.first, inv_std = stats.second;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) out[c] = (v[c] - mean) * inv_std * gamma_[c] + beta_[c];
            }
            return;
        }
#pragma omp parallel for schedule(static) num_threads(threads()) if (N * C * P >= (1 << 16))
        for (int64_t n = 0; n < N; ++n) {
            float* mean = pass.workspace + 2 * P * omp_get_thread_num();
            float* inv_std = mean + P;
            statistics(x + n * C * P, mean, inv_std);
            for (int64_t c = 0; c < C; ++c) {
                const float* v = x + (n * C + c) * P;
                float* out = y + (n * C + c) * P;
                const float scale = gamma_[c], shift = beta_[c];
#pragma omp simd
                for (int64_t p = 0; p < P; ++p) out[p] = (v[p] - mean[p]) * inv_std[p] * scale + shift;
            }
        }
    }

    // With xhat = (x - mean) / std and g = dy · gamma, per position over the C channels:
    // dx = (1/std) / C · (C · g - sum(g) - xhat · sum(g · xhat)). First the batch's statistics, then
    // the parameter gradients channel by channel, then dx image by image, formed in dy (scratch).
    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        if (pass.layouts.input == Layout::nhwc) return backward_channels_last(x, dy, dx, pass);
        const int64_t C = channels(), P = positions(), N = pass.batch;
        const bool parallel = N * C * P >= (1 << 16);
        float* batch_mean = pass.workspace + 2 * P * threads();
        float* batch_inv_std = batch_mean + N * P;
#pragma omp parallel for schedule(static) num_threads(threads()) if (parallel)
        for (int64_t n = 0; n < N; ++n) statistics(x + n * C * P, batch_mean + n * P, batch_inv_std + n * P);
#pragma omp parallel for schedule(static) num_threads(threads()) if (parallel)
        for (int64_t c = 0; c < C; ++c) {
            double sum_dy = 0.0, sum_dy_xhat = 0.0;
            for (int64_t n = 0; n < N; ++n) {
                const float* v = x + (n * C + c) * P;
                const float* g = dy + (n * C + c) * P;
                const float* mean = batch_mean + n * P;
                const float* inv_std = batch_inv_std + n * P;
                for (int64_t p = 0; p < P; ++p) {
                    sum_dy += g[p];
                    sum_dy_xhat += g[p] * (v[p] - mean[p]) * inv_std[p];
                }
            }
            dgamma_[c] += static_cast<float>(sum_dy_xhat);
            dbeta_[c] += static_cast<float>(sum_dy);
        }
        if (!dx) return;
#pragma omp parallel for schedule(static) num_threads(threads()) if (parallel)
        for (int64_t n = 0; n < N; ++n) {
            float* sum_g = pass.workspace + 2 * P * omp_get_thread_num();
            float* sum_g_xhat = sum_g + P;
            const float* mean = batch_mean + n * P;
            const float* inv_std = batch_inv_std + n * P;
            std::fill(sum_g, sum_g + 2 * P, 0.0f);
            for (int64_t c = 0; c < C; ++c) {
                const float* v = x + (n * C + c) * P;
                float* g = dy + (n * C + c) * P;
                const float scale = gamma_[c];
#pragma omp simd
                for (int64_t p = 0; p < P; ++p) {
                    g[p] *= scale;
                    sum_g[p] += g[p];
                    sum_g_xhat[p] += g[p] * (v[p] - mean[p]) * inv_std[p];
                }
            }
            const float count = static_cast<float>(C);
            for (int64_t c = 0; c < C; ++c) {
                const float* v = x + (n * C + c) * P;
                float* g = dy + (n * C + c) * P;
#pragma omp simd
                for (int64_t p = 0; p < P; ++p) {
                    const float xhat = (v[p] - mean[p]) * inv_std[p];
                    g[p] = inv_std[p] / count * (count * g[p] - sum_g[p] - xhat * sum_g_xhat[p]);
                }
            }
            dx.store(n, dy + n * C * P);
        }
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        return in;
    }

  private:
    // As backward(), on rows of C channels: the parameter gradients over every row, then dx row by
    // row in dy (scratch), stored image by image.
    void backward_channels_last(const float* x, float* dy, const InputGradient& dx, const Pass& pass) {
        const int64_t C = channels(), P = positions(), N = pass.batch;
        for (int64_t r = 0; r < N * P; ++r) {
            const float* v = x + r * C;
            const float* g = dy + r * C;
            const std::pair<float, float> stats = row_statistics(v);
            const float mean = stats.first, inv_std = stats.second;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
                dgamma_[c] += g[c] * (v[c] - mean) * inv_std;
                dbeta_[c] += g[c];
            }
        }
        if (!dx) return;
        const float count = static_cast<float>(C);
#pragma omp parallel for schedule(static) num_threads(threads()) if (N * C * P >= (1 << 16))
        for (int64_t n = 0; n < N; ++n) {
            for (int64_t p = 0; p < P; ++p) {
                const float* v = x + (n * P + p) * C;
                float* g = dy + (n * P + p) * C;
                const std::pair<float, float> stats = row_statistics(v);
                const float mean = stats.first, inv_std = stats.second;
                float sum_g = 0.0f, sum_g_xhat = 0.0f;
                for (int64_t c = 0; c < C; ++c) {
                    g[c] *= gamma_[c];
                    sum_g += g[c];
                    sum_g_xhat += g[c] * (v[c] - mean) * inv_std;
                }
#pragma omp simd
                for (int64_t c = 0; c < C; ++c)
                    g[c] = inv_std / count * (count * g[c] - sum_g - (v[c] - mean) * inv_std * sum_g_xhat);
            }
            dx.store(n, dy + n * C * P);
        }
    }

    // Mean and 1/std of one position's C channels, side by side; two passes for accuracy. (Callers
    // name the two as plain variables: clang's OpenMP regions cannot capture structured bindings.)
    std::pair<float, float> row_statistics(const float* v) const {
        const int64_t C = channels();
        float sum = 0.0f;
        for (int64_t c = 0; c < C; ++c) sum += v[c];
        const float mean = sum / static_cast<float>(C);
        float squares = 0.0f;
        for (int64_t c = 0; c < C; ++c) squares += (v[c] - mean) * (v[c] - mean);
        return {mean,
                1.0f / std::sqrt(squares / static_cast<float>(C) + static_cast<float>(config_.epsilon))};
    }

    // Mean and 1/std over the channels at each position of one image (C, P), two passes for accuracy.
    void statistics(const float* image, float* mean, float* inv_std) const {
        const int64_t C = channels(), P = positions();
        std::fill(mean, mean + P, 0.0f);
        std::fill(inv_std, inv_std + P, 0.0f);
        for (int64_t c = 0; c < C; ++c)
#pragma omp simd
            for (int64_t p = 0; p < P; ++p) mean[p] += image[c * P + p];
        for (int64_t p = 0; p < P; ++p) mean[p] /= static_cast<float>(C);
        for (int64_t c = 0; c < C; ++c)
#pragma omp simd
            for (int64_t p = 0; p < P; ++p) {
                const float d = image[c * P + p] - mean[p];
                inv_std[p] += d * d;
            }
        const float epsilon = static_cast<float>(config_.epsilon);
        for (int64_t p = 0; p < P; ++p)
            inv_std[p] = 1.0f / std::sqrt(inv_std[p] / static_cast<float>(C) + epsilon);
    }

    LayerNormConfig config_;
    Buffer gamma_, beta_;  // (C)
    Buffer dgamma_, dbeta_;
};

}  // namespace

std::unique_ptr<Layer> make_layernorm(const LayerNormConfig& config) {
    return std::make_unique<LayerNorm>(config);
}

}  // namespace lenz
