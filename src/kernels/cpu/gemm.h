// The one matrix multiply the engine uses, row-major: C = alpha * op(A) * op(B) + beta * C.
// Backed by OpenBLAS, single-threaded per call: the engine parallelises over images and tiles
// itself, which keeps small layers from paying for thread hand-offs inside BLAS.
#pragma once
#include <cstdint>

namespace lenz::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace lenz::cpu
