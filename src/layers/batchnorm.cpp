// Batch normalisation over channels (per feature after dense): in training, normalise with the
// batch's mean and variance and update running statistics (momentum 0.1, as PyTorch); at inference,
// use the running statistics. Trainable: scale (gamma) and shift (beta).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/activation.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

constexpr double kEpsilon = 1e-5;
constexpr double kMomentum = 0.1;

class BatchNorm final : public Layer {
  public:
    std::string kind() const override { return "batchnorm"; }
    LayerConfig config() const override { return BatchNormConfig{}; }
    std::string spec() const override { return "batchnorm"; }

    int64_t channels() const { return input_shape().c; }
    int64_t param_count() const override { return 2 * channels(); }
    int64_t state_count() const override { return 2 * channels(); }
    int64_t mult_count() const override { return input_shape().elements(); }  // the scale by gamma
    int64_t input_grad_mults() const override { return 3 * input_shape().elements(); }
    int64_t weight_grad_mults() const override { return input_shape().elements(); }
    int64_t other_ops() const override { return 2 * input_shape().elements(); }
    std::string param_formula() const override {
        return "2 · " + std::to_string(channels()) + " (scale, shift)";
    }
    std::string mult_formula() const override { return input_shape().str() + " (scale each value)"; }
    // Batch mean and 1/std per channel, kept for backward.
    int64_t saved_floats(int64_t) const override { return 2 * channels(); }
    void prepare_training(int64_t) override {
        if (batch_mean_.size() != channels()) {
            batch_mean_ = Buffer(channels());
            batch_inv_std_ = Buffer(channels());
        }
    }

    std::vector<ParamRef> params() override {
        return {{"weight", {channels()}, &gamma_, &dgamma_, true},
                {"bias", {channels()}, &beta_, &dbeta_, true},
                {"running_mean", {channels()}, &running_mean_, nullptr, false},
                {"running_var", {channels()}, &running_var_, nullptr, false}};
    }
    void init_params(Rng&) override {
        gamma_ = Buffer(channels());
        beta_ = Buffer(channels());
        running_mean_ = Buffer(channels());
        running_var_ = Buffer(channels());
        for (int64_t c = 0; c < channels(); ++c) gamma_[c] = running_var_[c] = 1.0f;
    }
    void allocate_gradients() override {
        dgamma_ = Buffer(channels());
        dbeta_ = Buffer(channels());
    }

    // Channels-last too: the statistics are per channel either way, only the walk differs.
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }
    bool per_channel_affine() const override { return true; }
    bool reads_channel_runs() const override { return true; }
    // At inference an activation after it (DenseNet's batch norm, relu, convolution) is applied to
    // each row as it is written, instead of in a pass of its own.
    bool can_absorb(const Absorption& a) const override {
        return !a.affine && !a.residual && !a.channel_means && !over_channels(a.activation.kind);
    }
    void affine_map(float* scale, float* shift) const override {
        for (int64_t c = 0; c < channels(); ++c) {  // as forward computes them at inference
            const double inv_std = 1.0 / std::sqrt(running_var_[c] + kEpsilon);
            scale[c] = static_cast<float>(gamma_[c] * inv_std);
            shift[c] = static_cast<float>(beta_[c] - running_mean_[c] * gamma_[c] * inv_std);
        }
    }
    // Channels-last: each thread's per-channel sums and the statistics (doubles), then the scale and
    // shift (floats), all per channel.
    int64_t workspace_floats(const Pass& pass) const override {
        if (pass.layouts.input != Layout::nhwc) return 0;
        return 2 * (2 * threads() + 4) * channels() + 2 * channels();
    }

    void forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass) override {
        if (!pass.input_runs) return forward(xs.at(0), y, pass);
        // The inputs of a concatenation it reads through (inference only): one run of channels each.
        if (pass.training || pass.layouts.input != Layout::nhwc || xs.size() != pass.input_runs->size())
            throw Error("internal: batch norm reads runs of channels only at inference, channels-last");
        forward_channels_last(xs.data(), pass.input_runs->data(), xs.size(), y, pass);
    }
    void forward(const float* x, float* y, const Pass& pass) override {
        if (pass.layouts.input == Layout::nhwc) {
            const int64_t C = channels();
            return forward_channels_last(&x, &C, 1, y, pass);
        }
        const int64_t C = channels(), P = input_shape().h * input_shape().w, N = pass.batch;
        const ActivationSpec activation_applied = pass.final_activation({});  // one absorbed, if any
        // Training: each channel's sum and sum of squares, then (synchronised) everyone's.
        sums_.assign(static_cast<size_t>(2 * C + 1), 0.0);  // allocates on the first call only
        double* sum = sums_.data();
        double* sum_sq = sum + C;
        if (pass.training) {
#pragma omp parallel for schedule(static) if (N * C * P > 65536)
            for (int64_t c = 0; c < C; ++c)
                for (int64_t n = 0; n < N; ++n) {
                    const float* v = x + (n * C + c) * P;
                    for (int64_t p = 0; p < P; ++p) {
                        sum[c] += v[p];
                        sum_sq[c] += static_cast<double>(v[p]) * v[p];
                    }
                }
            sums_.back() = static_cast<double>(N * P);
            if (pass.sum_across) (*pass.sum_across)(sums_.data(), 2 * C + 1);
        }
        const double count = sums_.back();
        batch_count_ = count;
#pragma omp parallel for schedule(static) if (N * C * P > 65536)
        for (int64_t c = 0; c < C; ++c) {
            double mean, inv_std;
            statistics_of(c, sum[c], sum_sq[c], count, pass.training, mean, inv_std);
            const float scale = static_cast<float>(gamma_[c] * inv_std);
            const float shift = static_cast<float>(beta_[c] - mean * gamma_[c] * inv_std);
            for (int64_t n = 0; n < N; ++n) {
                const float* v = x + (n * C + c) * P;
                float* out = y + (n * C + c) * P;
                for (int64_t p = 0; p < P; ++p) out[p] = v[p] * scale + shift;
                cpu::activation_forward(activation_applied, out, P);
            }
        }
    }

    // dx = gamma * inv_std / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)), M = N * H * W.
    // First the sums per channel, then dx image by image, formed in place in dy (scratch) and stored.
    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        if (pass.layouts.input == Layout::nhwc) return backward_channels_last(x, dy, dx, pass);
        const int64_t C = channels(), P = input_shape().h * input_shape().w, N = pass.batch;
        stats_.resize(static_cast<size_t>(4 * C));  // allocates on the first call only
        double* mean = stats_.data();
        double* inv_std = mean + C;
        double* sum_dy = inv_std + C;
        double* sum_dy_xhat = sum_dy + C;
#pragma omp parallel for schedule(static) if (N * C * P > 65536)
        for (int64_t c = 0; c < C; ++c) {
            // After an inference forward the statistics are constants, and so drop out of dx.
            mean[c] = pass.training ? batch_mean_[c] : running_mean_[c];
            inv_std[c] = pass.training ? batch_inv_std_[c] : 1.0 / std::sqrt(running_var_[c] + kEpsilon);
            double s = 0.0, sx = 0.0;
            for (int64_t n = 0; n < N; ++n) {
                const float* v = x + (n * C + c) * P;
                const float* g = dy + (n * C + c) * P;
                for (int64_t p = 0; p < P; ++p) {
                    s += g[p];
                    sx += g[p] * (v[p] - mean[c]) * inv_std[c];
                }
            }
            sum_dy[c] = s;
            sum_dy_xhat[c] = sx;
            dgamma_[c] += static_cast<float>(sx);
            dbeta_[c] += static_cast<float>(s);
        }
        if (!dx) return;
        const double count = sum_across_ranks(sum_dy, sum_dy_xhat, pass);
#pragma omp parallel for schedule(static) if (N * C * P > 65536)
        for (int64_t n = 0; n < N; ++n) {
            for (int64_t c = 0; c < C; ++c) {
                const float* v = x + (n * C + c) * P;
                float* g = dy + (n * C + c) * P;
                const double k = gamma_[c] * inv_std[c] / count;
                for (int64_t p = 0; p < P; ++p) {
                    if (!pass.training) {
                        g[p] = static_cast<float>(gamma_[c] * inv_std[c] * g[p]);
                        continue;
                    }
                    const double xhat = (v[p] - mean[c]) * inv_std[c];
                    g[p] = static_cast<float>(k * (count * g[p] - sum_dy[c] - xhat * sum_dy_xhat[c]));
                }
            }
            dx.store(n, dy + n * C * P);
        }
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, "batchnorm");
        return in;
    }

  private:
    // Channel c's mean and 1/std: the batch's in training (updating the running statistics), the
    // running ones otherwise.
    void statistics_of(int64_t c, double sum, double sum_sq, double count, bool training, double& mean,
                       double& inv_std) {
        if (!training) {
            mean = running_mean_[c];
            inv_std = 1.0 / std::sqrt(running_var_[c] + kEpsilon);
            return;
        }
        mean = sum / count;
        const double var = std::max(sum_sq / count - mean * mean, 0.0);
        inv_std = 1.0 / std::sqrt(var + kEpsilon);
        batch_mean_[c] = static_cast<float>(mean);
        batch_inv_std_[c] = static_cast<float>(inv_std);
        // PyTorch keeps the unbiased variance in its running estimate.
        const double unbiased = count > 1 ? var * count / (count - 1) : var;
        running_mean_[c] = static_cast<float>((1 - kMomentum) * running_mean_[c] + kMomentum * mean);
        running_var_[c] = static_cast<float>((1 - kMomentum) * running_var_[c] + kMomentum * unbiased);
    }

    // Backward's per-channel sums of dy and dy·xhat, and the images they are over: this process's,
    // or (synchronised) every process's. There each process's dy is of its own mean loss, which
    // its share of the batch weights in the whole batch's: the sums are weighted by the shares, and
    // given back as this process's dy would make them.
    double sum_across_ranks(double* sum_dy, double* sum_dy_xhat, const Pass& pass) {
        const int64_t C = channels();
        if (!pass.training || !pass.sum_across)
            return static_cast<double>(pass.batch * input_shape().h * input_shape().w);
        sums_.resize(static_cast<size_t>(2 * C));
        for (int64_t c = 0; c < C; ++c) {
            sums_[static_cast<size_t>(c)] = sum_dy[c] * pass.share;
            sums_[static_cast<size_t>(C + c)] = sum_dy_xhat[c] * pass.share;
        }
        (*pass.sum_across)(sums_.data(), 2 * C);
        for (int64_t c = 0; c < C; ++c) {
            sum_dy[c] = sums_[static_cast<size_t>(c)] / pass.share;
            sum_dy_xhat[c] = sums_[static_cast<size_t>(C + c)] / pass.share;
        }
        return batch_count_;
    }

    // Per-channel sums over the rows (N·H·W of them, C values each) of a and, if given, a·b: each
    // thread sums its own rows, then the threads' sums are added in thread order, so the result
    // depends on the thread count but not on timing.
    void channel_sums(double* partial, const float* a, const float* b, int64_t rows, double* sum_a,
                      double* sum_ab, const double* centre = nullptr, const double* scale = nullptr) {
        const int64_t C = channels();
        const int teams = threads();
        std::fill(partial, partial + teams * 2 * C, 0.0);
#pragma omp parallel num_threads(teams) if (rows * C > 65536)
        {
            double* mine = partial + omp_get_thread_num() * 2 * C;
#pragma omp for schedule(static)
            for (int64_t r = 0; r < rows; ++r) {
                const float* u = a + r * C;
                const float* v = b ? b + r * C : nullptr;
                for (int64_t c = 0; c < C; ++c) {
                    mine[c] += u[c];
                    if (v)
                        mine[C + c] +=
                            centre ? u[c] * (v[c] - centre[c]) * scale[c] : static_cast<double>(u[c]) * v[c];
                }
            }
        }
        std::fill(sum_a, sum_a + C, 0.0);
        std::fill(sum_ab, sum_ab + C, 0.0);
        for (int t = 0; t < teams; ++t)
            for (int64_t c = 0; c < C; ++c) {
                sum_a[c] += partial[t * 2 * C + c];
                sum_ab[c] += partial[t * 2 * C + C + c];
            }
    }

    // Each row's channels are runs of `inputs` values, xs[k] rows of runs[k] channels each: one run
    // of all of them, or at inference the inputs of a concatenation it reads through.
    void forward_channels_last(const float* const* xs, const int64_t* runs, size_t inputs, float* y,
                               const Pass& pass) {
        const int64_t C = channels(), rows = pass.batch * input_shape().h * input_shape().w;
        const ActivationSpec activation_applied = pass.final_activation({});  // one absorbed, if any
        double* partial = reinterpret_cast<double*>(pass.workspace);
        double *sum = partial + 2 * threads() * C, *sum_sq = sum + C, *mean = sum_sq + C, *inv_std = mean + C;
        float* scale = reinterpret_cast<float*>(inv_std + C);
        float* shift = scale + C;
        double count = static_cast<double>(rows);
        if (pass.training) {
            channel_sums(partial, xs[0], xs[0], rows, sum, sum_sq);  // training: one input
            if (pass.sum_across) {                                   // everyone's sums, and images
                sums_.assign(sum, sum + 2 * C);
                sums_.push_back(count);
                (*pass.sum_across)(sums_.data(), 2 * C + 1);
                std::copy(sums_.begin(), sums_.end() - 1, sum);
                count = sums_.back();
            }
        }
        batch_count_ = count;
        for (int64_t c = 0; c < C; ++c) {
            statistics_of(c, pass.training ? sum[c] : 0.0, pass.training ? sum_sq[c] : 0.0, count,
                          pass.training, mean[c], inv_std[c]);
            scale[c] = static_cast<float>(gamma_[c] * inv_std[c]);
            shift[c] = static_cast<float>(beta_[c] - mean[c] * gamma_[c] * inv_std[c]);
        }
#pragma omp parallel for schedule(static) num_threads(threads()) if (rows * C > 65536)
        for (int64_t r = 0; r < rows; ++r) {
            float* out = y + r * C;
            int64_t first = 0;
            for (size_t k = 0; k < inputs; ++k) {
                const int64_t width = runs[k];
                const float* v = xs[k] + r * width;
#pragma omp simd
                for (int64_t c = 0; c < width; ++c)
                    out[first + c] = v[c] * scale[first + c] + shift[first + c];
                first += width;
            }
            cpu::activation_forward(activation_applied, out, C);
        }
    }

    // As backward(), on rows of C channels.
    void backward_channels_last(const float* x, float* dy, const InputGradient& dx, const Pass& pass) {
        const int64_t C = channels(), P = input_shape().h * input_shape().w, N = pass.batch, rows = N * P;
        double* partial = reinterpret_cast<double*>(pass.workspace);
        double *sum_dy = partial + 2 * threads() * C, *sum_dy_xhat = sum_dy + C, *mean = sum_dy_xhat + C,
               *inv_std = mean + C;
        for (int64_t c = 0; c < C; ++c) {
            mean[c] = pass.training ? batch_mean_[c] : running_mean_[c];
            inv_std[c] = pass.training ? batch_inv_std_[c] : 1.0 / std::sqrt(running_var_[c] + kEpsilon);
        }
        channel_sums(partial, dy, x, rows, sum_dy, sum_dy_xhat, mean, inv_std);
        for (int64_t c = 0; c < C; ++c) {
            dgamma_[c] += static_cast<float>(sum_dy_xhat[c]);
            dbeta_[c] += static_cast<float>(sum_dy[c]);
        }
        if (!dx) return;
        const double count = sum_across_ranks(sum_dy, sum_dy_xhat, pass);
#pragma omp parallel for schedule(static) num_threads(threads()) if (rows * C > 65536)
        for (int64_t n = 0; n < N; ++n) {
            for (int64_t r = n * P; r < (n + 1) * P; ++r) {
                const float* v = x + r * C;
                float* g = dy + r * C;
                for (int64_t c = 0; c < C; ++c) {
                    if (!pass.training) {
                        g[c] = static_cast<float>(gamma_[c] * inv_std[c] * g[c]);
                        continue;
                    }
                    const double xhat = (v[c] - mean[c]) * inv_std[c];
                    g[c] = static_cast<float>(gamma_[c] * inv_std[c] / count *
                                              (count * g[c] - sum_dy[c] - xhat * sum_dy_xhat[c]));
                }
            }
            dx.store(n, dy + n * P * C);
        }
    }

    Buffer gamma_, beta_, running_mean_, running_var_;  // (C)
    Buffer dgamma_, dbeta_;
    Buffer batch_mean_, batch_inv_std_;  // (C), from the last training forward
    std::vector<double> stats_;          // backward's per-channel statistics and sums: (4, C)
    std::vector<double> sums_;           // per-channel sums to add up across processes
    double batch_count_ = 0;             // the values per channel the last training forward normalised over
};

}  // namespace

std::unique_ptr<Layer> make_batchnorm() {
    return std::make_unique<BatchNorm>();
}

}  // namespace lenz
