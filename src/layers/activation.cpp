// A standalone activation layer (relu, leakyrelu, sigmoid, tanh, softmax and logsoftmax over
// channels, relu6, hardsigmoid, hardswish, silu, gelu, elu). In place at inference: it allocates nothing. In
// training it keeps its input apart, which the derivative of hardswish, silu and gelu needs.
#include "kernels/cpu/activation.h"

#include <cstring>

#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class ActivationLayer final : public Layer {
  public:
    explicit ActivationLayer(const ActivationSpec& act) : act_(act) {}

    std::string kind() const override { return act_.name(); }
    LayerConfig config() const override { return ActivationConfig{act_}; }
    std::string spec() const override { return act_.str(); }
    bool in_place() const override { return true; }
    // Element by element, except softmax and logsoftmax, which run over each position's channels.
    ChannelsLast channels_last() const override {
        return over_channels(act_.kind) ? ChannelsLast::no : ChannelsLast::keeps;
    }
    int64_t other_ops() const override { return input_shape().elements(); }

    void forward(const float* x, float* y, const Pass& pass) override {
        const Shape s = input_shape();
        if (x != y) std::memcpy(y, x, sizeof(float) * static_cast<size_t>(pass.batch * s.elements()));
        cpu::apply_activation(act_, y, pass.batch, s.c, s.h * s.w);
    }
    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        if (!dx) return;
        const Shape s = input_shape();
        if (!derivative_follows_from_output(act_.kind))  // the engine folds in only what the output gives
            cpu::activation_backward_from_input(act_, x, dy, dy, pass.batch * s.elements());
        for (int64_t n = 0; n < pass.batch; ++n) dx.store(n, dy + n * s.elements());
    }
    // The activation the engine may fold into the gradient from this layer's output.
    ActivationSpec activation() const override {
        return derivative_follows_from_output(act_.kind) ? act_ : ActivationSpec{};
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        return in;
    }

  private:
    ActivationSpec act_;
};

}  // namespace

std::unique_ptr<Layer> make_activation(const ActivationSpec& act) {
    return std::make_unique<ActivationLayer>(act);
}

}  // namespace lenz
