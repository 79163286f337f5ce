#include "kernels/cpu/dense.h"

#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"

namespace lenz::cpu {

void dense_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* w, const float* b,
                   const ActivationSpec& act, float* y) {
    // y = x w^T, with the bias broadcast in first so the GEMM adds onto it (beta = 1).
    for (int64_t n = 0; n < N; ++n)
        for (int64_t u = 0; u < U; ++u) y[n * U + u] = b ? b[u] : 0.0f;
    gemm(false, true, N, U, I, 1.0f, x, I, w, I, 1.0f, y, U);
    apply_activation(act, y, N, U, 1);
}

void dense_backward(int64_t N, int64_t I, int64_t U, const float* x, const float* dy, const float* w,
                    float* dx, float* dw, float* db) {
    gemm(true, false, U, I, N, 1.0f, dy, U, x, I, 1.0f, dw, I);  // dw += dy^T x
    if (db)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t u = 0; u < U; ++u) db[u] += dy[n * U + u];
    if (dx) gemm(false, false, N, I, U, 1.0f, dy, U, w, I, 0.0f, dx, I);  // dx = dy w, after dw has read x
}

}  // namespace lenz::cpu
