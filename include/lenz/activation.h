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
    gelu
};

// Whether f'(x) follows from f(x), which is what fusing an activation into a layer requires.
inline bool derivative_follows_from_output(Activation kind) {
    return kind != Activation::hard_swish && kind != Activation::silu && kind != Activation::gelu;
}

struct ActivationSpec {
    Activation kind = Activation::none;
    float alpha = 0.01f;      // leaky_relu slope for x < 0
    std::string str() const;  // "relu", "leakyrelu=0.1", "" for none
};

}  // namespace lenz
