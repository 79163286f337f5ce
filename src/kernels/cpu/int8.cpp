#include "kernels/cpu/int8.h"

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>

namespace lenz::cpu {

int int8_weight_levels() {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const bool vnni = (isa & static_cast<unsigned>(dnnl::cpu_isa::avx512_core_vnni)) ==
                          static_cast<unsigned>(dnnl::cpu_isa::avx512_core_vnni) ||
                      (isa & static_cast<unsigned>(dnnl::cpu_isa::avx2_vnni)) ==
                          static_cast<unsigned>(dnnl::cpu_isa::avx2_vnni);
    return vnni ? 127 : 63;
}

void int8_row_scales(const float* w, int64_t rows, int64_t cols, float* scales, int levels) {
    for (int64_t r = 0; r < rows; ++r) {
        float largest = 0.0f;
        for (int64_t c = 0; c < cols; ++c) largest = std::max(largest, std::fabs(w[r * cols + c]));
        scales[r] = largest > 0.0f ? largest / static_cast<float>(levels) : 1.0f;
    }
}

void quantize_rows(const float* w, int64_t rows, int64_t cols, const float* scales, int8_t* q) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const float v = std::nearbyint(w[r * cols + c] / scales[r]);
            q[r * cols + c] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
        }
}

}  // namespace lenz::cpu
