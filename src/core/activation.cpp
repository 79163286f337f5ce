#include "lenz/activation.h"

namespace lenz {

namespace {

// The shortest decimal text of a float parameter: 0.1, not 0.100000.
std::string number(float v) {
    std::string a = std::to_string(v);
    while (a.size() > 1 && a.back() == '0') a.pop_back();
    if (!a.empty() && a.back() == '.') a.pop_back();
    return a;
}

}  // namespace

std::string ActivationSpec::name() const {
    switch (kind) {
        case Activation::leaky_relu:
            return "leakyrelu";
        case Activation::elu:
            return "elu";
        default:
            return str();
    }
}

std::string ActivationSpec::str() const {
    switch (kind) {
        case Activation::none:
            return "";
        case Activation::relu:
            return "relu";
        case Activation::leaky_relu: {
            if (alpha == 0.01f) return "leakyrelu";
            return "leakyrelu=" + number(alpha);
        }
        case Activation::elu:
            return alpha == 1.0f ? "elu" : "elu=" + number(alpha);
        case Activation::log_softmax:
            return "logsoftmax";
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
