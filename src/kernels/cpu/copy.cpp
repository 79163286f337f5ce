#include "kernels/cpu/copy.h"

#include "kernels/cpu/vector_isa.h"

namespace lenz::cpu {
namespace {

using RunsFn = void (*)(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
                        int64_t width);

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

template <RunsFn Body>
__attribute__((target("avx512f"))) void on_avx512(const float* src, int64_t src_stride, float* dst,
                                                  int64_t dst_stride, int64_t rows, int64_t width) {
    Body(src, src_stride, dst, dst_stride, rows, width);
}
template <RunsFn Body>
__attribute__((target("avx2"))) void on_avx2(const float* src, int64_t src_stride, float* dst,
                                             int64_t dst_stride, int64_t rows, int64_t width) {
    Body(src, src_stride, dst, dst_stride, rows, width);
}
template <RunsFn Body>
void on_baseline(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
                 int64_t width) {
    Body(src, src_stride, dst, dst_stride, rows, width);
}

template <RunsFn Body>
RunsFn best() {
    return for_this_cpu<RunsFn>(&on_avx512<Body>, &on_avx2<Body>, &on_baseline<Body>);
}

}  // namespace

void copy_runs(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
               int64_t width) {
    best<copy_body>()(src, src_stride, dst, dst_stride, rows, width);
}

void add_runs(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
              int64_t width) {
    best<add_body>()(src, src_stride, dst, dst_stride, rows, width);
}

}  // namespace lenz::cpu
