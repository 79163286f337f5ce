#include "kernels/cpu/gemm.h"

#include <dnnl.hpp>

#include "lenz/error.h"

namespace lenz::cpu {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    const dnnl::status status =
        dnnl::sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (status != dnnl::status::success) throw Error("internal: sgemm rejected its arguments");
}

}  // namespace lenz::cpu
