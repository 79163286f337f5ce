#include "lenz/activation.h"

namespace lenz {

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
        case Activation::hard_swish:
            return "hardswish";
        case Activation::silu:
            return "silu";
        case Activation::gelu:
            return "gelu";
    }
    return "";
}

}  // namespace lenz
