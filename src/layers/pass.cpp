#include "layers/pass.h"

#include <cstring>

#include "kernels/cpu/activation.h"

namespace lenz {

void InputGradient::store(int64_t n, const float* image_dx) const {
    const int64_t elements = shape_.elements();
    float* dst = data_ + n * elements;
    if (accumulate_) {
#pragma omp simd
        for (int64_t i = 0; i < elements; ++i) dst[i] += image_dx[i];
    } else if (derivative_ && derivative_->kind != Activation::none) {
        cpu::apply_activation_backward(*derivative_, dst, image_dx, dst, 1, shape_.c,
                                       shape_.h * shape_.w);
    } else if (dst != image_dx) {
        std::memcpy(dst, image_dx, sizeof(float) * static_cast<size_t>(elements));
    }
}

}  // namespace lenz
