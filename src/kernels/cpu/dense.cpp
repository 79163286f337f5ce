#include "kernels/cpu/dense.h"

#include <algorithm>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"

namespace lenz::cpu {
namespace {

// [begin, end) of `rows` for chunk i of `parts`.
struct Range {
    int64_t begin, end;
};
Range chunk(int64_t rows, int parts, int i) {
    return {rows * i / parts, rows * (i + 1) / parts};
}

// Threads only pay off once a chunk holds real work.
int useful_threads(int64_t work, int threads) {
    return static_cast<int>(std::clamp<int64_t>(work / (1 << 16), 1, threads));
}

}  // namespace

void dense_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* w, const float* b,
                   const ActivationSpec& act, float* y, int threads) {
    const int parts = static_cast<int>(std::min<int64_t>(N, useful_threads(N * I * U, threads)));
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int part = 0; part < parts; ++part) {
        const Range r = chunk(N, parts, part);
        if (r.end == r.begin) continue;
        gemm(false, true, r.end - r.begin, U, I, 1.0f, x + r.begin * I, I, w, I, 0.0f, y + r.begin * U, U);
        if (b)
            for (int64_t n = r.begin; n < r.end; ++n)
                for (int64_t u = 0; u < U; ++u) y[n * U + u] += b[u];
    }
    apply_activation(act, y, N, U, 1);
}

void dense_backward(int64_t N, int64_t I, int64_t U, const float* x, const float* dy, const float* w, float* dx,
                    float* dw, float* db, int threads) {
    const int parts = useful_threads(N * I * U, threads);
    // dw rows [u0, u1) += dy[:, u0:u1]^T (u, N) * x (N, I). Finishes before dx is written over x.
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int part = 0; part < parts; ++part) {
        const Range ru = chunk(U, parts, part);
        if (ru.end == ru.begin) continue;
        gemm(true, false, ru.end - ru.begin, I, N, 1.0f, dy + ru.begin, U, x, I, 1.0f, dw + ru.begin * I, I);
        if (db)
            for (int64_t u = ru.begin; u < ru.end; ++u) {
                float s = 0.0f;
                for (int64_t n = 0; n < N; ++n) s += dy[n * U + u];
                db[u] += s;
            }
    }
    if (!dx) return;
    // dx rows [n0, n1) = dy (n, U) * w (U, I)
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int part = 0; part < parts; ++part) {
        const Range rn = chunk(N, parts, part);
        if (rn.end > rn.begin)
            gemm(false, false, rn.end - rn.begin, I, U, 1.0f, dy + rn.begin * U, U, w, I, 0.0f, dx + rn.begin * I, I);
    }
}

}  // namespace lenz::cpu
