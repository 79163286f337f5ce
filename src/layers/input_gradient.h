// How a layer hands over the gradient of its input, one image at a time: plain copy, or, when the
// engine stores it over the activation it belongs to, scaled by that activation's derivative
// (computed from the activation itself, read just before it is overwritten).
#pragma once
#include <cstring>

#include "kernels/cpu/activation.h"
#include "lenz/layer.h"

namespace lenz {

// image_dx: (C, H, W) of the input, for image n; dx: the whole (N, C, H, W) destination.
inline void store_input_gradient(const Pass& pass, Shape in, int64_t n, const float* image_dx, float* dx) {
    const int64_t elements = in.elements();
    float* dst = dx + n * elements;
    if (pass.accumulate_dx) {  // one reader's share of the gradient of a value several layers read
#pragma omp simd
        for (int64_t i = 0; i < elements; ++i) dst[i] += image_dx[i];
        return;
    }
    if (pass.dx_activation && pass.dx_activation->kind != Activation::none)
        cpu::apply_activation_backward(*pass.dx_activation, dst, image_dx, dst, 1, in.c, in.h * in.w);
    else if (dst != image_dx)
        std::memcpy(dst, image_dx, sizeof(float) * static_cast<size_t>(elements));
}

}  // namespace lenz
