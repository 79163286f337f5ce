// Elementwise sum of two or more values of the same shape (a residual connection), with an
// activation fused after it as conv and dense have ("add stem b2 relu").
#include <algorithm>
#include <cstring>

#include "kernels/cpu/activation.h"
#include "layers/merge_layer.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class Add final : public MergeLayer {
  public:
    explicit Add(const AddConfig& config) : config_(config) {}

    std::string kind() const override { return "add"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        return config_.activation.kind == Activation::none ? "add" : "add " + config_.activation.str();
    }
    // k inputs: k - 1 additions per output value.
    int64_t other_ops() const override {
        return checked_mul(output_shape().elements(), static_cast<int64_t>(input_shapes().size()) - 1,
                           "operations");
    }
    ActivationSpec activation() const override { return config_.activation; }

    bool in_place() const override { return true; }
    ChannelsLast channels_last() const override {
        return over_channels(config_.activation.kind) ? ChannelsLast::no : ChannelsLast::keeps;
    }

    // xs: k of (N, C, H, W) -> y: (N, C, H, W), which may be one of the xs (in place).
    void forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass) override {
        const Shape s = output_shape();
        const int64_t count = pass.batch * s.elements();
        const size_t first = static_cast<size_t>(std::find(xs.begin(), xs.end(), y) - xs.begin()) % xs.size();
        if (y != xs[first]) std::memcpy(y, xs[first], sizeof(float) * static_cast<size_t>(count));
        for (size_t k = 0; k < xs.size(); ++k) {
            if (k == first) continue;
            const float* x = xs[k];
#pragma omp parallel for simd schedule(static) if (count >= (1 << 16))
            for (int64_t i = 0; i < count; ++i) y[i] += x[i];
        }
        if (const ActivationSpec act = pass.final_activation(config_.activation);
            act.kind != Activation::none)
            cpu::apply_activation(act, y, pass.batch, s.c, s.h * s.w);
    }
    // Every input's gradient is dy itself; it adds to what each destination holds already.
    void backward_inputs(const std::vector<const float*>&, const float*, float* dy,
                         const std::vector<InputGradient>& dxs, const Pass& pass) override {
        const Shape s = output_shape();
        const int64_t count = pass.batch * s.elements();
        for (const InputGradient& gradient : dxs) {
            if (!gradient) continue;
            float* dx = gradient.sum();
#pragma omp parallel for simd schedule(static) if (count >= (1 << 16))
            for (int64_t i = 0; i < count; ++i) dx[i] += dy[i];
        }
    }

  protected:
    Shape infer_inputs(const std::vector<Shape>& inputs) const override {
        if (inputs.size() < 2) throw ShapeError("add: needs two or more inputs");
        for (const Shape& s : inputs) {
            check_input(s, "add");
            if (s != inputs[0])
                throw ShapeError("add: inputs of different shapes, " + inputs[0].str() + " and " + s.str());
        }
        return inputs[0];
    }

  private:
    AddConfig config_;
};

}  // namespace

std::unique_ptr<Layer> make_add(const AddConfig& config) {
    return std::make_unique<Add>(config);
}

}  // namespace lenz
