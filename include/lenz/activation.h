// The element-wise activations a layer may apply last, and what fusing one requires.
#pragma once
#include <string>

namespace lenz {

// relu6 = min(max(x, 0), 6) (MobileNet v2); hard_sigmoid = min(max(x / 6 + 1/2, 0), 1) (MobileNet v3,
// PyTorch's Hardsigmoid). Each of these has a derivative computable from its output, so a layer may
// fuse it and keep only its output for training.
// hard_swish = x · relu6(x + 3) / 6 (MobileNet v3), silu = x · sigmoid(x) (EfficientNet; also called
// swish), gelu = x · Φ(x) with the exact normal CDF (ConvNeXt). These are not monotonic, or not
// invertible from their output, so their derivative needs the input: they are layers of their own.
// elu = x for x > 0, alpha · (exp(x) - 1) otherwise (nn.ELU); its slope alpha · exp(x) = y + alpha
// on the negative side, so for alpha > 0 it follows from the output too. softmax and log_softmax run
// over the channels at each position (PyTorch's dim=1), not element by element.
enum class Activation {
    none,
    relu,
    leaky_relu,
    sigmoid,
    tanh,
    softmax,
    relu6,
    hard_sigmoid,
    hard_swish,
    silu,
    gelu,
    elu,
    log_softmax
};

// Whether f'(x) follows from f(x), which is what fusing an activation into a layer requires.
inline bool derivative_follows_from_output(Activation kind) {
    return kind != Activation::hard_swish && kind != Activation::silu && kind != Activation::gelu;
}

// Whether the activation normalises over each position's channels rather than value by value.
inline bool over_channels(Activation kind) {
    return kind == Activation::softmax || kind == Activation::log_softmax;
}

struct ActivationSpec {
    Activation kind = Activation::none;
    // leaky_relu's slope for x < 0; elu's alpha, whose default 1 the parser and importers set (elu()).
    float alpha = 0.01f;
    std::string str() const;   // "relu", "leakyrelu=0.1", "elu=0.5", "" for none
    std::string name() const;  // the keyword alone: "leakyrelu", "elu"
};

inline ActivationSpec elu(float alpha = 1.0f) {
    return {Activation::elu, alpha};
}

}  // namespace lenz
