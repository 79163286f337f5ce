#include "kernels/cpu/gemm.h"

#include <cblas.h>

namespace lenz::cpu {
namespace {
// OpenBLAS would otherwise start its own thread pool inside every call made from our threads.
const bool single_threaded_blas = [] {
    openblas_set_num_threads(1);
    return true;
}();
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    (void)single_threaded_blas;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
                static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

}  // namespace lenz::cpu
