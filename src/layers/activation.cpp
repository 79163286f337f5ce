// A standalone activation layer (relu, leakyrelu, sigmoid, tanh, softmax over channels).
// In place at inference: it allocates nothing.
#include "kernels/cpu/activation.h"

#include <cstring>

#include "layers/input_gradient.h"
#include "layers/window.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class ActivationLayer final : public Layer {
  public:
    explicit ActivationLayer(const ActivationSpec& act) : act_(act) {}

    std::string kind() const override { return ActivationSpec{act_.kind}.str(); }
    std::string spec() const override { return act_.str(); }
    bool in_place() const override { return true; }
    int64_t other_ops() const override { return input_shape().elements(); }

    void forward(const float* x, float* y, const Pass& pass) override {
        const Shape s = input_shape();
        if (x != y) std::memcpy(y, x, sizeof(float) * static_cast<size_t>(pass.batch * s.elements()));
        cpu::apply_activation(act_, y, pass.batch, s.c, s.h * s.w);
    }
    void backward(const float*, const float* y, float* dy, float* dx, const Pass& pass) override {
        if (!dx) return;
        const Shape s = input_shape();
        if (!pass.dy_is_preactivation)
            cpu::apply_activation_backward(act_, y, dy, dy, pass.batch, s.c, s.h * s.w);
        for (int64_t n = 0; n < pass.batch; ++n) store_input_gradient(pass, s, n, dy + n * s.elements(), dx);
    }
    ActivationSpec activation() const override { return act_; }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        return in;
    }

  private:
    ActivationSpec act_;
};

}  // namespace

std::string ActivationSpec::str() const {
    switch (kind) {
        case Activation::none:
            return "";
        case Activation::relu:
            return "relu";
        case Activation::leaky_relu: {
            if (alpha == 0.01f) return "leakyrelu";
            std::string a = std::to_string(alpha);
            while (a.size() > 1 && a.back() == '0') a.pop_back();
            return "leakyrelu=" + a;
        }
        case Activation::sigmoid:
            return "sigmoid";
        case Activation::tanh:
            return "tanh";
        case Activation::softmax:
            return "softmax";
        case Activation::relu6:
            return "relu6";
        case Activation::hard_sigmoid:
            return "hardsigmoid";
    }
    return "";
}

std::unique_ptr<Layer> make_activation(const ActivationSpec& act) {
    return std::make_unique<ActivationLayer>(act);
}

}  // namespace lenz
