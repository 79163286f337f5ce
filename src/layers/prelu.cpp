// PReLU (nn.PReLU): y = x where x > 0, a · x otherwise, with one learned slope for every value or
// one per channel. Unlike leakyrelu it has a parameter, and a slope that training may take to zero
// or below, so its derivative needs the input: it is a layer of its own, never fused.
#include <algorithm>
#include <vector>

#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class PRelu final : public Layer {
  public:
    explicit PRelu(const PReluConfig& config) : config_(config) {}

    std::string kind() const override { return "prelu"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override { return config_.per_channel ? "prelu channels" : "prelu"; }

    int64_t slopes() const { return config_.per_channel ? input_shape().c : 1; }
    int64_t param_count() const override { return slopes(); }
    // Every value is multiplied by its slope where it is negative; which values are depends on the
    // image, so the count is one per value, as a kernel that multiplies them all would do.
    int64_t mult_count() const override { return input_shape().elements(); }
    int64_t input_grad_mults() const override { return input_shape().elements(); }
    int64_t weight_grad_mults() const override { return input_shape().elements(); }
    int64_t other_ops() const override { return input_shape().elements(); }  // the sign tests
    std::string param_formula() const override {
        return config_.per_channel ? std::to_string(slopes()) + " (a slope per channel)" : "1 (one slope)";
    }
    std::string mult_formula() const override {
        return input_shape().str() + " (each value by its slope, where negative)";
    }

    std::vector<ParamRef> params() override { return {{"weight", {slopes()}, &slope_, &dslope_, true}}; }
    void init_params(Rng&) override {
        slope_ = Buffer(slopes());
        std::fill(slope_.data(), slope_.data() + slopes(), 0.25f);
    }
    void allocate_gradients() override { dslope_ = Buffer(slopes()); }

    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }

    // x, y: (N, C, P) or (N, P, C).
    void forward(const float* x, float* y, const Pass& pass) override {
        const int64_t C = input_shape().c, P = input_shape().h * input_shape().w, N = pass.batch;
        const float* a = slope_.data();
        const bool parallel = N * C * P >= (1 << 16);
        if (!config_.per_channel) {
            const float s = a[0];
#pragma omp parallel for simd schedule(static) num_threads(threads()) if (parallel)
            for (int64_t i = 0; i < N * C * P; ++i) y[i] = x[i] > 0.0f ? x[i] : s * x[i];
            return;
        }
        if (pass.layouts.input == Layout::nhwc) {
#pragma omp parallel for schedule(static) num_threads(threads()) if (parallel)
            for (int64_t r = 0; r < N * P; ++r) {
                const float* v = x + r * C;
                float* out = y + r * C;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) out[c] = v[c] > 0.0f ? v[c] : a[c] * v[c];
            }
            return;
        }
#pragma omp parallel for schedule(static) num_threads(threads()) if (parallel)
        for (int64_t nc = 0; nc < N * C; ++nc) {
            const float* v = x + nc * P;
            float* out = y + nc * P;
            const float s = a[nc % C];
#pragma omp simd
            for (int64_t p = 0; p < P; ++p) out[p] = v[p] > 0.0f ? v[p] : s * v[p];
        }
    }

    // dslope += sum over x < 0 of dy · x; dx = dy where x > 0, a · dy otherwise (PyTorch's x = 0
    // takes the slope), formed in dy (scratch) and stored image by image.
    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        const int64_t C = input_shape().c, P = input_shape().h * input_shape().w, N = pass.batch;
        const int64_t S = slopes();
        const bool channels_last = pass.layouts.input == Layout::nhwc;
        // Which slope value i of an image uses.
        const auto slope_of = [&](int64_t i) -> int64_t {
            if (!config_.per_channel) return 0;
            return channels_last ? i % C : i / P;
        };
        std::vector<double> sums(static_cast<size_t>(S), 0.0);
        const int64_t image = C * P;
        for (int64_t n = 0; n < N; ++n)
            for (int64_t i = 0; i < image; ++i) {
                const float v = x[n * image + i];
                if (v <= 0.0f)
                    sums[static_cast<size_t>(slope_of(i))] += static_cast<double>(dy[n * image + i]) * v;
            }
        for (int64_t s = 0; s < S; ++s) dslope_[s] += static_cast<float>(sums[static_cast<size_t>(s)]);
        if (!dx) return;
        const float* a = slope_.data();
        for (int64_t n = 0; n < N; ++n) {
            const float* v = x + n * image;
            float* g = dy + n * image;
            for (int64_t i = 0; i < image; ++i)
                if (v[i] <= 0.0f) g[i] *= a[slope_of(i)];
            dx.store(n, g);
        }
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        return in;
    }

  private:
    PReluConfig config_;
    Buffer slope_;   // (1) or (C)
    Buffer dslope_;  // as slope_
};

}  // namespace

std::unique_ptr<Layer> make_prelu(const PReluConfig& config) {
    return std::make_unique<PRelu>(config);
}

}  // namespace lenz
