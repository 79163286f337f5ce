// Fully connected layer as one GEMM per product over the whole batch; the GEMM threads itself.
#pragma once
#include <cstdint>

#include "lenz/activation.h"

namespace lenz::cpu {

// x: (N, I)  w: (U, I)  b: (U) or nullptr  y: (N, U)
void dense_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* w, const float* b,
                   const ActivationSpec& act, float* y);
// dy: (N, U) before the activation. Accumulates dw (U, I) and db (U) first, then writes dx (N, I)
// unless nullptr; dx may therefore be x itself.
void dense_backward(int64_t N, int64_t I, int64_t U, const float* x, const float* dy, const float* w,
                    float* dx, float* dw, float* db);

}  // namespace lenz::cpu
