#include "kernels/cpu/activation.h"

#include <algorithm>
#include <cmath>

namespace lenz::cpu {

void activation_forward(const ActivationSpec& act, float* y, int64_t count) {
    switch (act.kind) {
        case Activation::none:
        case Activation::softmax:
            return;
        case Activation::relu:
#pragma omp parallel for simd if (count > 65536) schedule(static)
            for (int64_t i = 0; i < count; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
            return;
        case Activation::leaky_relu: {
            const float a = act.alpha;
#pragma omp parallel for simd if (count > 65536) schedule(static)
            for (int64_t i = 0; i < count; ++i) y[i] = y[i] > 0.0f ? y[i] : a * y[i];
            return;
        }
        case Activation::sigmoid:
#pragma omp parallel for if (count > 16384) schedule(static)
            for (int64_t i = 0; i < count; ++i) y[i] = 1.0f / (1.0f + std::exp(-y[i]));
            return;
        case Activation::tanh:
#pragma omp parallel for if (count > 16384) schedule(static)
            for (int64_t i = 0; i < count; ++i) y[i] = std::tanh(y[i]);
            return;
    }
}

void activation_backward(const ActivationSpec& act, const float* y, const float* dy, float* dpre, int64_t count) {
    switch (act.kind) {
        case Activation::none:
        case Activation::softmax:
            if (dpre != dy) std::copy(dy, dy + count, dpre);
            return;
        case Activation::relu:
#pragma omp parallel for simd if (count > 65536) schedule(static)
            for (int64_t i = 0; i < count; ++i) dpre[i] = y[i] > 0.0f ? dy[i] : 0.0f;
            return;
        case Activation::leaky_relu: {
            // alpha > 0 keeps the sign, so y > 0 exactly where the input was.
            const float a = act.alpha;
#pragma omp parallel for simd if (count > 65536) schedule(static)
            for (int64_t i = 0; i < count; ++i) dpre[i] = y[i] > 0.0f ? dy[i] : a * dy[i];
            return;
        }
        case Activation::sigmoid:
#pragma omp parallel for simd if (count > 65536) schedule(static)
            for (int64_t i = 0; i < count; ++i) dpre[i] = dy[i] * y[i] * (1.0f - y[i]);
            return;
        case Activation::tanh:
#pragma omp parallel for simd if (count > 65536) schedule(static)
            for (int64_t i = 0; i < count; ++i) dpre[i] = dy[i] * (1.0f - y[i] * y[i]);
            return;
    }
}

void softmax_forward(float* y, int64_t N, int64_t C, int64_t P) {
    for (int64_t n = 0; n < N; ++n)
        for (int64_t p = 0; p < P; ++p) {
            float* v = y + n * C * P + p;
            float top = v[0];
            for (int64_t c = 1; c < C; ++c) top = std::max(top, v[c * P]);
            double sum = 0.0;
            for (int64_t c = 0; c < C; ++c) {
                v[c * P] = std::exp(v[c * P] - top);
                sum += v[c * P];
            }
            const float inv = static_cast<float>(1.0 / sum);
            for (int64_t c = 0; c < C; ++c) v[c * P] *= inv;
        }
}

void softmax_backward(const float* y, const float* dy, float* dpre, int64_t N, int64_t C, int64_t P) {
    for (int64_t n = 0; n < N; ++n)
        for (int64_t p = 0; p < P; ++p) {
            const int64_t base = n * C * P + p;
            double dot = 0.0;
            for (int64_t c = 0; c < C; ++c) dot += static_cast<double>(dy[base + c * P]) * y[base + c * P];
            for (int64_t c = 0; c < C; ++c) {
                const int64_t i = base + c * P;
                dpre[i] = y[i] * (dy[i] - static_cast<float>(dot));
            }
        }
}

void apply_activation(const ActivationSpec& act, float* y, int64_t N, int64_t C, int64_t P) {
    if (act.kind == Activation::softmax)
        softmax_forward(y, N, C, P);
    else
        activation_forward(act, y, N * C * P);
}

void apply_activation_backward(const ActivationSpec& act, const float* y, const float* dy, float* dpre, int64_t N,
                               int64_t C, int64_t P) {
    if (act.kind == Activation::softmax)
        softmax_backward(y, dy, dpre, N, C, P);
    else
        activation_backward(act, y, dy, dpre, N * C * P);
}

}  // namespace lenz::cpu
