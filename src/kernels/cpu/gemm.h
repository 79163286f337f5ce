// The matrix multiply dense layers use, row-major: C = alpha * op(A) * op(B) + beta * C.
// Backed by oneDNN's sgemm, which dispatches to AVX-512/AVX2 code at run time and threads itself.
#pragma once
#include <cstdint>

namespace lenz::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace lenz::cpu
