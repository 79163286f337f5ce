#include "kernels/cpu/channel_runs.h"

#include "kernels/cpu/vector_isa.h"

namespace lenz::cpu {
namespace {

// Short runs (a concatenation's operand often has 16 to 128 channels) are a few vector moves each;
// a call of memcpy per run cost more than the moves.
[[gnu::always_inline]] inline void copy_body(const float* src, int64_t src_stride, float* dst,
                                             int64_t dst_stride, int64_t rows, int64_t width) {
    for (int64_t r = 0; r < rows; ++r, src += src_stride, dst += dst_stride)
#pragma omp simd
        for (int64_t i = 0; i < width; ++i) dst[i] = src[i];
}

[[gnu::always_inline]] inline void add_body(const float* src, int64_t src_stride, float* dst,
                                            int64_t dst_stride, int64_t rows, int64_t width) {
    for (int64_t r = 0; r < rows; ++r, src += src_stride, dst += dst_stride)
#pragma omp simd
        for (int64_t i = 0; i < width; ++i) dst[i] += src[i];
}

// No restrict: y may be x, element for element, which the vectorised loop allows.
[[gnu::always_inline]] inline void scale_body(const float* x, const float* scale, float* y, int64_t rows,
                                              int64_t width) {
    for (int64_t r = 0; r < rows; ++r, x += width, y += width)
#pragma omp simd
        for (int64_t i = 0; i < width; ++i) y[i] = x[i] * scale[i];
}

}  // namespace

void copy_runs(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
               int64_t width) {
    VectorBuilds<copy_body>::best()(src, src_stride, dst, dst_stride, rows, width);
}

void add_runs(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
              int64_t width) {
    VectorBuilds<add_body>::best()(src, src_stride, dst, dst_stride, rows, width);
}

void scale_runs(const float* x, const float* scale, float* y, int64_t rows, int64_t width) {
    VectorBuilds<scale_body>::best()(x, scale, y, rows, width);
}

}  // namespace lenz::cpu
