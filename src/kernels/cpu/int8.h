// The int8 arithmetic that convolutions and dense layers share: symmetric quantisation, one scale
// per input tensor (from the range calibration saw) and one per output channel of the weights.
// x ≈ scale · q, q = round(x / scale), clamped to the type's range.
#pragma once
#include <cstdint>

#include "lenz/precision.h"

namespace lenz::cpu {

// Per row (output channel) of a (rows, cols) matrix: scale = max |w| / levels (1 for a row of zeros).
void int8_row_scales(const float* w, int64_t rows, int64_t cols, float* scales, int levels = 127);
// The weight levels the kernels use on this CPU: 127, or 63 where it lacks VNNI. Without VNNI,
// oneDNN multiplies u8 by s8 with an instruction that adds pairs of products in int16, which
// saturates past 255·127·2 > 32767; 7-bit weights keep every pair within it (oneDNN's advice).
int int8_weight_levels();
// q = round(w / scale) per row, to the nearest even on ties, within [-127, 127].
void quantize_rows(const float* w, int64_t rows, int64_t cols, const float* scales, int8_t* q);

// Bytes as whole floats on a 64-byte boundary, as the prepared and workspace regions are carved.
inline int64_t int8_floats(int64_t bytes) {
    return ((bytes + 3) / 4 + 15) / 16 * 16;
}

}  // namespace lenz::cpu
