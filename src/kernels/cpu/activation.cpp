#include "kernels/cpu/activation.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/cpu/exp_approx.h"
#include "kernels/cpu/vector_isa.h"

namespace lenz::cpu {

namespace {

// Below this many elements a thread team costs more than it saves (and OpenMP's `if` clause would
// still enter the runtime on every call, which conv kernels make once per output row).
constexpr int64_t kParallelElements = 1 << 16;

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrtTwoPi = 0.39894228040143268f;

// out[i] = op(a[i]) and out[i] = op(a[i], b[i]). The pointers are plain arguments, not lambda
// captures, so the compiler can vectorise (captured pointers must be re-read after every store).
template <class Op>
void map1(const float* a, float* out, int64_t n, Op op) {
    if (n >= kParallelElements) {
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n; ++i) out[i] = op(a[i]);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) out[i] = op(a[i]);
    }
}

template <class Op>
void map2(const float* a, const float* b, float* out, int64_t n, Op op) {
    if (n >= kParallelElements) {
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
    }
}

// The activations built on exp, one span at a time: out[i] from a[i] (and b[i]), in one build per
// vector level (vector_isa.h; the loops are plain arithmetic, so each build is the same sums). The
// callers cut the work among threads.
using SpanFn = void (*)(const float* a, const float* b, float* out, int64_t n);

[[gnu::always_inline]] inline void sigmoid_body(const float* x, const float*, float* y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + exp_approx(-x[i]));
}

[[gnu::always_inline]] inline void silu_body(const float* x, const float*, float* y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + exp_approx(-x[i]));
}

// σ(x) · (1 + x · (1 - σ(x)))
[[gnu::always_inline]] inline void silu_backward_body(const float* x, const float* dy, float* dpre,
                                                      int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        const float s = 1.0f / (1.0f + exp_approx(-x[i]));
        dpre[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

template <SpanFn Body>
SpanFn best() {
    return VectorBuilds<Body>::best();
}

// span(begin, count) over [0, n), in blocks shared among the threads when n is large.
template <class Span>
void in_spans(int64_t n, Span span) {
    if (n < kParallelElements) return span(0, n);
    constexpr int64_t kBlock = 1 << 14;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < (n + kBlock - 1) / kBlock; ++b)
        span(b * kBlock, std::min(kBlock, n - b * kBlock));
}

}  // namespace

void activation_forward(const ActivationSpec& act, float* y, int64_t count) {
    const float a = act.alpha;
    switch (act.kind) {
        case Activation::none:
        case Activation::softmax:
        case Activation::log_softmax:
            return;
        case Activation::elu:  // expm1 keeps the small negative values exact, as PyTorch
            return map1(y, y, count, [a](float v) { return v > 0.0f ? v : a * std::expm1(v); });
        case Activation::relu:
            return map1(y, y, count, [](float v) { return v > 0.0f ? v : 0.0f; });
        case Activation::leaky_relu:
            return map1(y, y, count, [a](float v) { return v > 0.0f ? v : a * v; });
        case Activation::sigmoid:
            return in_spans(count, [y, span = best<sigmoid_body>()](int64_t at, int64_t n) {
                span(y + at, nullptr, y + at, n);
            });
        case Activation::tanh:
            return map1(y, y, count, [](float v) { return std::tanh(v); });
        case Activation::relu6:
            return map1(y, y, count, [](float v) { return std::min(std::max(v, 0.0f), 6.0f); });
        case Activation::hard_sigmoid:
            return map1(y, y, count, [](float v) { return std::min(std::max(v / 6.0f + 0.5f, 0.0f), 1.0f); });
        case Activation::hard_swish:
            return map1(y, y, count,
                        [](float v) { return v * std::min(std::max(v + 3.0f, 0.0f), 6.0f) / 6.0f; });
        case Activation::silu:
            return in_spans(count, [y, span = best<silu_body>()](int64_t at, int64_t n) {
                span(y + at, nullptr, y + at, n);
            });
        case Activation::gelu:
            return map1(y, y, count, [](float v) { return 0.5f * v * (1.0f + std::erf(v * kSqrtHalf)); });
    }
}

void activation_backward(const ActivationSpec& act, const float* y, const float* dy, float* dpre,
                         int64_t count) {
    const float a = act.alpha;
    switch (act.kind) {
        case Activation::none:
        case Activation::softmax:
        case Activation::log_softmax:
            if (dpre != dy) std::copy(dy, dy + count, dpre);
            return;
        case Activation::elu:  // alpha · exp(x) = y + alpha where x <= 0; y > 0 exactly where x > 0
            return map2(y, dy, dpre, count, [a](float v, float g) { return v > 0.0f ? g : g * (v + a); });
        case Activation::relu:
            return map2(y, dy, dpre, count, [](float v, float g) { return v > 0.0f ? g : 0.0f; });
        case Activation::leaky_relu:
            // alpha > 0 keeps the sign, so y > 0 exactly where the input was.
            return map2(y, dy, dpre, count, [a](float v, float g) { return v > 0.0f ? g : a * g; });
        case Activation::sigmoid:
            return map2(y, dy, dpre, count, [](float v, float g) { return g * v * (1.0f - v); });
        case Activation::tanh:
            return map2(y, dy, dpre, count, [](float v, float g) { return g * (1.0f - v * v); });
        // The slope is known from the output wherever it is strictly inside the clipped range.
        case Activation::relu6:
            return map2(y, dy, dpre, count, [](float v, float g) { return v > 0.0f && v < 6.0f ? g : 0.0f; });
        case Activation::hard_sigmoid:
            return map2(y, dy, dpre, count,
                        [](float v, float g) { return v > 0.0f && v < 1.0f ? g / 6.0f : 0.0f; });
        case Activation::hard_swish:
        case Activation::silu:
        case Activation::gelu:
            throw std::logic_error(act.str() + ": the derivative needs the input, not the output");
    }
}

void activation_backward_from_input(const ActivationSpec& act, const float* x, const float* dy, float* dpre,
                                    int64_t count) {
    switch (act.kind) {
        case Activation::hard_swish:  // (2x + 3) / 6 on the ramp, as PyTorch (x = ±3 belongs to it)
            return map2(x, dy, dpre, count, [](float v, float g) {
                return v < -3.0f ? 0.0f : v > 3.0f ? g : g * (2.0f * v + 3.0f) / 6.0f;
            });
        case Activation::silu:
            return in_spans(count, [=, span = best<silu_backward_body>()](int64_t at, int64_t n) {
                span(x + at, dy + at, dpre + at, n);
            });
        case Activation::gelu:  // Φ(x) + x · φ(x)
            return map2(x, dy, dpre, count, [](float v, float g) {
                const float cdf = 0.5f * (1.0f + std::erf(v * kSqrtHalf));
                return g * (cdf + v * kInvSqrtTwoPi * std::exp(-0.5f * v * v));
            });
        default:
            throw std::logic_error(act.str() + ": its derivative is taken from the output");
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

void log_softmax_forward(float* y, int64_t N, int64_t C, int64_t P) {
    for (int64_t n = 0; n < N; ++n)
        for (int64_t p = 0; p < P; ++p) {
            float* v = y + n * C * P + p;
            float top = v[0];
            for (int64_t c = 1; c < C; ++c) top = std::max(top, v[c * P]);
            double sum = 0.0;
            for (int64_t c = 0; c < C; ++c) sum += std::exp(static_cast<double>(v[c * P] - top));
            const float shift = top + static_cast<float>(std::log(sum));
            for (int64_t c = 0; c < C; ++c) v[c * P] -= shift;
        }
}

void log_softmax_backward(const float* y, const float* dy, float* dpre, int64_t N, int64_t C, int64_t P) {
    for (int64_t n = 0; n < N; ++n)
        for (int64_t p = 0; p < P; ++p) {
            const int64_t base = n * C * P + p;
            double sum = 0.0;
            for (int64_t c = 0; c < C; ++c) sum += dy[base + c * P];
            for (int64_t c = 0; c < C; ++c) {
                const int64_t i = base + c * P;
                dpre[i] = dy[i] - std::exp(y[i]) * static_cast<float>(sum);
            }
        }
}

void apply_activation(const ActivationSpec& act, float* y, int64_t N, int64_t C, int64_t P) {
    if (act.kind == Activation::softmax)
        softmax_forward(y, N, C, P);
    else if (act.kind == Activation::log_softmax)
        log_softmax_forward(y, N, C, P);
    else
        activation_forward(act, y, N * C * P);
}

void apply_activation_backward(const ActivationSpec& act, const float* y, const float* dy, float* dpre,
                               int64_t N, int64_t C, int64_t P) {
    if (act.kind == Activation::softmax)
        softmax_backward(y, dy, dpre, N, C, P);
    else if (act.kind == Activation::log_softmax)
        log_softmax_backward(y, dy, dpre, N, C, P);
    else
        activation_backward(act, y, dy, dpre, N * C * P);
}

}  // namespace lenz::cpu
