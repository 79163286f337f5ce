// What the engine does before it calls a layer's backward: fold the derivative of the layer's own
// activation into dy, from the layer's output. Tests that call backward directly do the same.
#pragma once
#include "kernels/cpu/activation.h"
#include "layers/pass.h"
#include "lenz/layer.h"

namespace lenz::testing {

inline void fold_own_activation(const Layer& layer, const float* y, float* dy, int64_t batch) {
    const Shape out = layer.output_shape();
    cpu::apply_activation_backward(layer.activation(), y, dy, dy, batch, out.c, out.h * out.w);
}

}  // namespace lenz::testing
