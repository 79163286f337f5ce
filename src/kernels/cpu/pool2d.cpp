#include "kernels/cpu/pool2d.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/vector_isa.h"

namespace lenz::cpu {
namespace {

struct Window {
    int64_t h0, h1, w0, w1;  // real input rows [h0, h1), columns [w0, w1)
};

Window window_at(const ConvGeometry& g, int64_t oh, int64_t ow) {
    const int64_t hs = oh * g.SH - g.PT, ws = ow * g.SW - g.PL;
    return {std::max<int64_t>(hs, 0), std::min(hs + g.KH, g.H), std::max<int64_t>(ws, 0),
            std::min(ws + g.KW, g.W)};
}

// What an average divides by: the whole window, padding included (never past it, as without ceil
// every window lies within the padded input), or the real pixels in it.
float divisor(const ConvGeometry& g, const Window& w, bool count_padding) {
    return static_cast<float>(count_padding ? g.KH * g.KW : (w.h1 - w.h0) * (w.w1 - w.w0));
}

// Index within the plane of the first maximum of the window (of float32, or of int8 values at int8
// inference, whose order is their values' order).
template <class T>
int64_t argmax_in(const ConvGeometry& g, const T* plane, const Window& w) {
    int64_t best = w.h0 * g.W + w.w0;
    for (int64_t h = w.h0; h < w.h1; ++h)
        for (int64_t c = w.w0; c < w.w1; ++c)
            if (plane[h * g.W + c] > plane[best]) best = h * g.W + c;
    return best;
}

// The common 2x2 window with stride 2 and no padding, without the general window bookkeeping.
bool is_plain_2x2(const ConvGeometry& g) {
    return g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.PT == 0 && g.PL == 0 && 2 * g.OH <= g.H &&
           2 * g.OW <= g.W;
}

// Index (in the plane) of the first maximum of the 2x2 window at (oh, ow), in scan order.
template <class T>
int64_t argmax_2x2(const T* plane, int64_t W, int64_t oh, int64_t ow) {
    const int64_t i = 2 * oh * W + 2 * ow;
    int64_t best = i;
    if (plane[i + 1] > plane[best]) best = i + 1;
    if (plane[i + W] > plane[best]) best = i + W;
    if (plane[i + W + 1] > plane[best]) best = i + W + 1;
    return best;
}

}  // namespace

namespace {

template <class T>
void maxpool_forward_nchw(const ConvGeometry& g, int64_t N, const T* x, T* y) {
    if (is_plain_2x2(g)) {  // the common case: each output row from two input rows, no bookkeeping
#pragma omp parallel for schedule(static) if (N * g.C * g.OH * g.OW >= (1 << 14))
        for (int64_t row = 0; row < N * g.C * g.OH; ++row) {
            const int64_t plane = row / g.OH, oh = row % g.OH;
            const T* a = x + (plane * g.H + 2 * oh) * g.W;
            const T* b = a + g.W;
            T* out = y + row * g.OW;
#pragma omp simd
            for (int64_t ow = 0; ow < g.OW; ++ow)
                out[ow] = std::max(std::max(a[2 * ow], a[2 * ow + 1]), std::max(b[2 * ow], b[2 * ow + 1]));
        }
        return;
    }
#pragma omp parallel for schedule(static) if (N * g.C > 1)
    for (int64_t nc = 0; nc < N * g.C; ++nc) {
        const T* plane = x + nc * g.H * g.W;
        T* out = y + nc * g.OH * g.OW;
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow)
                out[oh * g.OW + ow] = plane[argmax_in(g, plane, window_at(g, oh, ow))];
    }
}

void avgpool_forward_nchw(const ConvGeometry& g, int64_t N, const float* x, float* y, bool count_padding) {
#pragma omp parallel for schedule(static) if (N * g.C > 1)
    for (int64_t nc = 0; nc < N * g.C; ++nc) {
        const float* plane = x + nc * g.H * g.W;
        float* out = y + nc * g.OH * g.OW;
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                const Window w = window_at(g, oh, ow);
                float sum = 0.0f;
                for (int64_t h = w.h0; h < w.h1; ++h)
                    for (int64_t c = w.w0; c < w.w1; ++c) sum += plane[h * g.W + c];
                out[oh * g.OW + ow] = sum / divisor(g, w, count_padding);
            }
    }
}

// One plane of the max-pool backward, (H, W), into a zeroed dplane: each dy added at the first
// maximum of its window, in scan order. The windows wholly inside a row find their maxima side by
// side, up to 64 at a time, a vector lane each; those cut by padding one by one.
[[gnu::always_inline]] inline void maxpool_backward_plane_nchw(const ConvGeometry& g, const float* in,
                                                               const float* dout, float* dplane) {
    constexpr int64_t kRun = 64;
    const int64_t lo = std::min(g.OW, (g.PL + g.SW - 1) / g.SW), last = g.W - g.KW + g.PL;
    const int64_t hi = std::clamp(last >= 0 ? last / g.SW + 1 : 0, lo, g.OW);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
        const float* d = dout + oh * g.OW;
        const Window rows = window_at(g, oh, 0);
        for (int64_t ow = 0; ow < lo; ++ow) dplane[argmax_in(g, in, window_at(g, oh, ow))] += d[ow];
        for (int64_t o0 = lo; o0 < hi; o0 += kRun) {
            const int64_t count = std::min(kRun, hi - o0), base = o0 * g.SW - g.PL;
            float best[kRun];
            int64_t arg[kRun];
#pragma omp simd
            for (int64_t j = 0; j < count; ++j) {
                arg[j] = rows.h0 * g.W + base + j * g.SW;
                best[j] = in[arg[j]];
            }
            for (int64_t h = rows.h0; h < rows.h1; ++h)
                for (int64_t kw = 0; kw < g.KW; ++kw) {
                    const int64_t first = h * g.W + base + kw;
#pragma omp simd
                    for (int64_t j = 0; j < count; ++j) {
                        const int64_t i = first + j * g.SW;
                        const bool more = in[i] > best[j];
                        best[j] = more ? in[i] : best[j];
                        arg[j] = more ? i : arg[j];
                    }
                }
            for (int64_t j = 0; j < count; ++j) dplane[arg[j]] += d[o0 + j];
        }
        for (int64_t ow = hi; ow < g.OW; ++ow) dplane[argmax_in(g, in, window_at(g, oh, ow))] += d[ow];
    }
}

void maxpool_backward_nchw(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                           const ImageGradientSink& sink, float* workspace, int threads) {
    const int64_t plane = g.H * g.W, out_plane = g.OH * g.OW;
    const bool tiles_exactly = is_plain_2x2(g) && g.H == 2 * g.OH && g.W == 2 * g.OW;
    const auto route_plane = VectorBuilds<&maxpool_backward_plane_nchw>::best();
    for_each_image_gradient(N, g.C * plane, workspace, threads, sink, [&](int64_t n, float* dx) {
        if (tiles_exactly) {  // every input belongs to exactly one window: write, no zeroing pass
            for (int64_t c = 0; c < g.C; ++c) {
                const float* in = x + (n * g.C + c) * plane;
                const float* dout = dy + (n * g.C + c) * out_plane;
                float* dplane = dx + c * plane;
                for (int64_t oh = 0; oh < g.OH; ++oh)
                    for (int64_t ow = 0; ow < g.OW; ++ow) {
                        const int64_t i = 2 * oh * g.W + 2 * ow, best = argmax_2x2(in, g.W, oh, ow);
                        const float d = dout[oh * g.OW + ow] + 0.0f;  // -0 as +0, as 0 + (-0) gives
                        dplane[i] = best == i ? d : 0.0f;
                        dplane[i + 1] = best == i + 1 ? d : 0.0f;
                        dplane[i + g.W] = best == i + g.W ? d : 0.0f;
                        dplane[i + g.W + 1] = best == i + g.W + 1 ? d : 0.0f;
                    }
            }
            return;
        }
        std::memset(dx, 0, sizeof(float) * static_cast<size_t>(g.C * plane));
        for (int64_t c = 0; c < g.C; ++c)
            route_plane(g, x + (n * g.C + c) * plane, dy + (n * g.C + c) * out_plane, dx + c * plane);
    });
}

void avgpool_backward_nchw(const ConvGeometry& g, int64_t N, const float* dy, const ImageGradientSink& sink,
                           float* workspace, int threads, bool count_padding) {
    const int64_t plane = g.H * g.W, out_plane = g.OH * g.OW;
    for_each_image_gradient(N, g.C * plane, workspace, threads, sink, [&](int64_t n, float* dx) {
        std::memset(dx, 0, sizeof(float) * static_cast<size_t>(g.C * plane));
        for (int64_t c = 0; c < g.C; ++c) {
            const float* dout = dy + (n * g.C + c) * out_plane;
            float* dplane = dx + c * plane;
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    const Window w = window_at(g, oh, ow);
                    const float share = dout[oh * g.OW + ow] / divisor(g, w, count_padding);
                    for (int64_t h = w.h0; h < w.h1; ++h)
                        for (int64_t col = w.w0; col < w.w1; ++col) dplane[h * g.W + col] += share;
                }
        }
    });
}

// Channels-last: a window's pixels are rows of C channels, which the loops below run along. Each
// window's maximum over a run of kWidth channels stays in registers while the window's pixels pass;
// kept in memory, the run was stored and reloaded at every pixel.
template <class T, int64_t kWidth>
[[gnu::always_inline]] inline void max_of_window(const T* image, int64_t W, int64_t C, const Window& w,
                                                 T* out) {
    T best[kWidth];
    const T* first = image + (w.h0 * W + w.w0) * C;
    for (int64_t k = 0; k < kWidth; ++k) best[k] = first[k];
    for (int64_t h = w.h0; h < w.h1; ++h)
        for (int64_t col = w.w0; col < w.w1; ++col) {
            const T* in = image + (h * W + col) * C;
#pragma omp simd
            for (int64_t k = 0; k < kWidth; ++k) best[k] = in[k] > best[k] ? in[k] : best[k];
        }
    for (int64_t k = 0; k < kWidth; ++k) out[k] = best[k];
}

// One output row of one image, in runs of 64, 16, 4 and 1 channels (64 floats are four AVX-512
// registers; 64 bytes, at int8, one).
template <class T>
[[gnu::always_inline]] inline void maxpool_row_nhwc(const ConvGeometry& g, const T* image, int64_t oh, T* out,
                                                    int64_t out_stride) {
    const int64_t C = g.C;
    for (int64_t ow = 0; ow < g.OW; ++ow, out += out_stride) {
        const Window w = window_at(g, oh, ow);
        int64_t c = 0;
        for (; c + 64 <= C; c += 64) max_of_window<T, 64>(image + c, g.W, C, w, out + c);
        for (; c + 16 <= C; c += 16) max_of_window<T, 16>(image + c, g.W, C, w, out + c);
        for (; c + 4 <= C; c += 4) max_of_window<T, 4>(image + c, g.W, C, w, out + c);
        for (; c < C; ++c) max_of_window<T, 1>(image + c, g.W, C, w, out + c);
    }
}

template <class T>
void maxpool_forward_nhwc(const ConvGeometry& g, int64_t N, const T* x, T* y, int64_t y_stride) {
    const auto row_of = VectorBuilds<&maxpool_row_nhwc<T>>::best();
#pragma omp parallel for schedule(static) if (N * g.OH * g.OW * g.C >= (1 << 14))
    for (int64_t row = 0; row < N * g.OH; ++row)
        row_of(g, x + row / g.OH * g.H * g.W * g.C, row % g.OH, y + row * g.OW * y_stride, y_stride);
}

void avgpool_forward_nhwc(const ConvGeometry& g, int64_t N, const float* x, float* y, bool count_padding,
                          int64_t y_stride) {
    const int64_t C = g.C;
#pragma omp parallel for schedule(static) if (N * g.OH > 1)
    for (int64_t row = 0; row < N * g.OH; ++row) {
        const int64_t n = row / g.OH, oh = row % g.OH;
        const float* image = x + n * g.H * g.W * C;
        for (int64_t ow = 0; ow < g.OW; ++ow) {
            const Window w = window_at(g, oh, ow);
            float* out = y + (row * g.OW + ow) * y_stride;
            std::fill(out, out + C, 0.0f);
            for (int64_t h = w.h0; h < w.h1; ++h)
                for (int64_t col = w.w0; col < w.w1; ++col) {
                    const float* in = image + (h * g.W + col) * C;
#pragma omp simd
                    for (int64_t c = 0; c < C; ++c) out[c] += in[c];
                }
            const float scale = 1.0f / divisor(g, w, count_padding);
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) out[c] *= scale;
        }
    }
}

// Channels-last max-pool backward, one run of kWidth channels of one window: the first maximum of
// each lane (strict > in scan order) and its tap stay in registers while the taps pass, then each
// tap gets its lane's dy where it won and 0 elsewhere. A tap the window is the first (in scan
// order) to reach is written, the others add to what earlier windows left there; added zeros change
// no sum (one that starts at +0 is never -0), and the + 0.0f turns a written -0 into the +0 that
// 0 + (-0) gives: dx is bit for bit that of adding each dy in scan order into a zeroed image.
//
// kWidth floats, and as many int32 lanes, in GCC's generic vectors: each build of vector_isa.h
// makes them its own registers (one AVX-512 register for 16, two AVX2 or four SSE ones). With
// `omp simd` on arrays instead, GCC kept the runs on the stack and compared lane by lane.
template <int64_t kWidth>
struct Lanes {
    typedef float Floats __attribute__((vector_size(4 * kWidth)));
    typedef int32_t Ints __attribute__((vector_size(4 * kWidth)));
};

template <int64_t kWidth>
[[gnu::always_inline]] inline void route_window_nhwc(const float* x, const float* d, float* dx,
                                                     const int64_t* at, const bool* fresh, int32_t taps) {
    using Floats = typename Lanes<kWidth>::Floats;
    using Ints = typename Lanes<kWidth>::Ints;
    Floats best, v, grad, out;
    Ints arg = {};
    std::memcpy(&best, x + at[0], sizeof best);
    for (int32_t t = 1; t < taps; ++t) {
        std::memcpy(&v, x + at[t], sizeof v);
        const Ints more = v > best;
        best = more ? v : best;
        arg = more ? arg * 0 + t : arg;
    }
    std::memcpy(&grad, d, sizeof grad);
    const Floats zero = {};
    for (int32_t t = 0; t < taps; ++t) {
        const Floats share = arg == t ? grad : zero;
        float* o = dx + at[t];
        if (fresh[t]) {
            out = share + 0.0f;
        } else {
            std::memcpy(&out, o, sizeof out);
            out += share;
        }
        std::memcpy(o, &out, sizeof out);
    }
}

// One channel of the above.
[[gnu::always_inline]] inline void route_window_channel(const float* x, float d, float* dx, const int64_t* at,
                                                        const bool* fresh, int32_t taps) {
    int32_t arg = 0;
    for (int32_t t = 1; t < taps; ++t)
        if (x[at[t]] > x[at[arg]]) arg = t;
    for (int32_t t = 0; t < taps; ++t) {
        const float share = arg == t ? d : 0.0f;
        dx[at[t]] = fresh[t] ? share + 0.0f : dx[at[t]] + share;
    }
}

// The most taps a window may have for the builds below; larger windows zero dx and go tap by tap.
constexpr int64_t kMaxTaps = 64;

// One image of dx for channels-last max pooling, windows in scan order, channels in runs of 16, 8,
// 4 and 1. Where windows overlap or abut (stride <= kernel), every input is first reached by the
// window (oh, ow) whose row and column are the first to reach it: the tap (kh, kw) is new there
// when oh == 0 or kh >= KH - SH, and ow == 0 or kw >= KW - SW; inputs past the last window are
// zeroed. Otherwise (`zeroed`) dx arrives zeroed and every tap adds.
[[gnu::always_inline]] inline void maxpool_backward_image_nhwc(const ConvGeometry& g, const float* x,
                                                               const float* dy, float* dx, bool zeroed) {
    const int64_t C = g.C;
    int64_t at[kMaxTaps];
    bool fresh[kMaxTaps];
    for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
            const Window w = window_at(g, oh, ow);
            const int64_t hs = oh * g.SH - g.PT, ws = ow * g.SW - g.PL;
            int32_t taps = 0;
            for (int64_t h = w.h0; h < w.h1; ++h)
                for (int64_t col = w.w0; col < w.w1; ++col, ++taps) {
                    at[taps] = (h * g.W + col) * C;
                    fresh[taps] =
                        !zeroed && (oh == 0 || h - hs >= g.KH - g.SH) && (ow == 0 || col - ws >= g.KW - g.SW);
                }
            const float* d = dy + (oh * g.OW + ow) * C;
            int64_t c = 0;
            for (; c + 16 <= C; c += 16) route_window_nhwc<16>(x + c, d + c, dx + c, at, fresh, taps);
            for (; c + 8 <= C; c += 8) route_window_nhwc<8>(x + c, d + c, dx + c, at, fresh, taps);
            for (; c + 4 <= C; c += 4) route_window_nhwc<4>(x + c, d + c, dx + c, at, fresh, taps);
            for (; c < C; ++c) route_window_channel(x + c, d[c], dx + c, at, fresh, taps);
        }
    if (zeroed) return;
    const int64_t rows = std::min(g.H, (g.OH - 1) * g.SH - g.PT + g.KH),
                  cols = std::min(g.W, (g.OW - 1) * g.SW - g.PL + g.KW);
    for (int64_t h = 0; h < rows; ++h) std::fill(dx + (h * g.W + cols) * C, dx + (h + 1) * g.W * C, 0.0f);
    std::fill(dx + rows * g.W * C, dx + g.H * g.W * C, 0.0f);
}

// Whether every input lies in some window, each window's taps fit maxpool_backward_image_nhwc's
// table, and the first window reaches the first row and column.
bool windows_cover(const ConvGeometry& g) {
    return g.SH <= g.KH && g.SW <= g.KW && g.PT < g.KH && g.PL < g.KW && g.KH * g.KW <= kMaxTaps;
}

void maxpool_backward_nhwc(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                           const ImageGradientSink& sink, float* workspace, int threads) {
    const int64_t C = g.C, image = g.H * g.W * C;
    if (is_plain_2x2(g) && g.H == 2 * g.OH && g.W == 2 * g.OW) {
        // Every input in exactly one window: each gets its window's dy where it is the window's first
        // maximum (in scan order, as in (N, C, H, W)) and 0 elsewhere; no zeroing pass.
        for_each_image_gradient(N, image, workspace, threads, sink, [&](int64_t n, float* dx) {
            const float* in = x + n * image;
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    const int64_t at = (2 * oh * g.W + 2 * ow) * C, below = g.W * C;
                    const float *a = in + at, *b = a + C, *c = a + below, *d = c + C;
                    float *da = dx + at, *db = da + C, *dc = da + below, *dd = dc + C;
                    const float* grad = dy + ((n * g.OH + oh) * g.OW + ow) * C;
#pragma omp simd
                    for (int64_t k = 0; k < C; ++k) {
                        const float best_ab = b[k] > a[k] ? b[k] : a[k];
                        const bool is_b = b[k] > a[k], is_c = c[k] > best_ab;
                        const float best_abc = is_c ? c[k] : best_ab;
                        const bool is_d = d[k] > best_abc;
                        da[k] = (!is_b && !is_c && !is_d ? grad[k] : 0.0f) + 0.0f;  // -0 as +0
                        db[k] = (is_b && !is_c && !is_d ? grad[k] : 0.0f) + 0.0f;
                        dc[k] = (is_c && !is_d ? grad[k] : 0.0f) + 0.0f;
                        dd[k] = (is_d ? grad[k] : 0.0f) + 0.0f;
                    }
                }
        });
        return;
    }
    if (g.KH * g.KW <= kMaxTaps) {
        const bool covered = windows_cover(g);
        const auto build = VectorBuilds<&maxpool_backward_image_nhwc>::best();
        for_each_image_gradient(N, image, workspace, threads, sink, [&](int64_t n, float* dx) {
            if (!covered) std::fill(dx, dx + image, 0.0f);
            build(g, x + n * image, dy + n * g.OH * g.OW * C, dx, !covered);
        });
        return;
    }
    for_each_image_gradient(N, image, workspace, threads, sink, [&](int64_t n, float* dx) {
        std::fill(dx, dx + image, 0.0f);
        const float* in = x + n * image;
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                const Window w = window_at(g, oh, ow);
                const float* d = dy + ((n * g.OH + oh) * g.OW + ow) * C;
                for (int64_t c = 0; c < C; ++c) {  // the first maximum in scan order, as in (N, C, H, W)
                    int64_t best = (w.h0 * g.W + w.w0) * C + c;
                    for (int64_t h = w.h0; h < w.h1; ++h)
                        for (int64_t col = w.w0; col < w.w1; ++col) {
                            const int64_t at = (h * g.W + col) * C + c;
                            if (in[at] > in[best]) best = at;
                        }
                    dx[best] += d[c];
                }
            }
    });
}

void avgpool_backward_nhwc(const ConvGeometry& g, int64_t N, const float* dy, const ImageGradientSink& sink,
                           float* workspace, int threads, bool count_padding) {
    const int64_t C = g.C, image = g.H * g.W * C;
    for_each_image_gradient(N, image, workspace, threads, sink, [&](int64_t n, float* dx) {
        std::fill(dx, dx + image, 0.0f);
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                const Window w = window_at(g, oh, ow);
                const float* d = dy + ((n * g.OH + oh) * g.OW + ow) * C;
                const float scale = 1.0f / divisor(g, w, count_padding);
                for (int64_t h = w.h0; h < w.h1; ++h)
                    for (int64_t col = w.w0; col < w.w1; ++col) {
                        float* out = dx + (h * g.W + col) * C;
#pragma omp simd
                        for (int64_t c = 0; c < C; ++c) out[c] += d[c] * scale;
                    }
            }
    });
}

// Adds to sum[k] the values of kWidth adjacent channels over P pixels, `stride` floats apart, in
// double, pixel by pixel in order. The sums stay in registers: with the width known only at run
// time, GCC kept them on the stack, and the chain of stores and reloads ran EfficientNet-B0's first
// pool (112x112x32) at 6.6 GB/s.
template <int64_t kWidth>
[[gnu::always_inline]] inline void add_pixels(const float* v, int64_t P, int64_t stride, double* sum) {
    double s[kWidth];
    for (int64_t k = 0; k < kWidth; ++k) s[k] = sum[k];
    for (int64_t p = 0; p < P; ++p, v += stride)
#pragma omp simd
        for (int64_t k = 0; k < kWidth; ++k) s[k] += v[k];
    for (int64_t k = 0; k < kWidth; ++k) sum[k] = s[k];
}

// add_pixels for any number of adjacent channels, in runs of 16, 8, 4, 2 and 1 (72 channels: 16,
// 16, 16, 16, 8). In the builds of vector_isa.h: at the baseline's two doubles a register, these
// sums took as long as the SiLU before them.
[[gnu::always_inline]] inline void add_channels(const float* v, int64_t channels, int64_t P, int64_t stride,
                                                double* sum) {
    int64_t c = 0;
    for (; c + 16 <= channels; c += 16) add_pixels<16>(v + c, P, stride, sum + c);
    for (; c + 8 <= channels; c += 8) add_pixels<8>(v + c, P, stride, sum + c);
    for (; c + 4 <= channels; c += 4) add_pixels<4>(v + c, P, stride, sum + c);
    for (; c + 2 <= channels; c += 2) add_pixels<2>(v + c, P, stride, sum + c);
    for (; c < channels; ++c) add_pixels<1>(v + c, P, stride, sum + c);
}

}  // namespace

void maxpool_forward(const ConvGeometry& g, int64_t N, const float* x, float* y, Layout layout,
                     int64_t y_stride) {
    layout == Layout::nhwc ? maxpool_forward_nhwc(g, N, x, y, y_stride > 0 ? y_stride : g.C)
                           : maxpool_forward_nchw(g, N, x, y);
}
void maxpool_int8_forward(const ConvGeometry& g, int64_t N, const void* x, void* y, Layout layout,
                          bool is_unsigned) {
    const auto pool = [&](auto* type) {
        using T = std::remove_pointer_t<decltype(type)>;
        const auto* in = static_cast<const T*>(x);
        auto* out = static_cast<T*>(y);
        layout == Layout::nhwc ? maxpool_forward_nhwc(g, N, in, out, g.C)
                               : maxpool_forward_nchw(g, N, in, out);
    };
    is_unsigned ? pool(static_cast<uint8_t*>(nullptr)) : pool(static_cast<int8_t*>(nullptr));
}
void avgpool_forward(const ConvGeometry& g, int64_t N, const float* x, float* y, bool count_padding,
                     Layout layout, int64_t y_stride) {
    layout == Layout::nhwc ? avgpool_forward_nhwc(g, N, x, y, count_padding, y_stride > 0 ? y_stride : g.C)
                           : avgpool_forward_nchw(g, N, x, y, count_padding);
}
void maxpool_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                      const ImageGradientSink& sink, float* workspace, int threads, Layout layout) {
    layout == Layout::nhwc ? maxpool_backward_nhwc(g, N, x, dy, sink, workspace, threads)
                           : maxpool_backward_nchw(g, N, x, dy, sink, workspace, threads);
}
void avgpool_backward(const ConvGeometry& g, int64_t N, const float* dy, const ImageGradientSink& sink,
                      float* workspace, int threads, bool count_padding, Layout layout) {
    layout == Layout::nhwc ? avgpool_backward_nhwc(g, N, dy, sink, workspace, threads, count_padding)
                           : avgpool_backward_nchw(g, N, dy, sink, workspace, threads, count_padding);
}

namespace {

// Where value (c, p) of an image sits: c·P + p, or channels-last p·C + c.
struct PlaneStrides {
    int64_t channel, position;
};
PlaneStrides strides_of(Layout layout, int64_t C, int64_t P) {
    return layout == Layout::nhwc ? PlaneStrides{1, C} : PlaneStrides{P, 1};
}

// The first position of the largest value of channel c in one image.
int64_t first_max(const float* image, int64_t c, int64_t P, PlaneStrides s) {
    const float* v = image + c * s.channel;
    int64_t best = 0;
    for (int64_t p = 1; p < P; ++p)
        if (v[p * s.position] > v[best * s.position]) best = p;
    return best;
}

}  // namespace

void global_avgpool_forward(int64_t N, int64_t C, int64_t P, const float* x, float* y, Layout layout) {
    if (layout == Layout::nhwc) {
        // Each task sums a block of 16 channels over every pixel of one image, in double as below,
        // each pixel's block one contiguous 64-byte run. Each channel is summed pixel by pixel in
        // order, so the result does not depend on the thread count.
        constexpr int64_t kBlock = 16;
        const int64_t blocks = (C + kBlock - 1) / kBlock;
        const auto add = VectorBuilds<&add_channels>::best();
#pragma omp parallel for schedule(static) if (N * P * C >= (1 << 16))
        for (int64_t nb = 0; nb < N * blocks; ++nb) {
            const int64_t n = nb / blocks, c0 = nb % blocks * kBlock;
            const float* v = x + n * P * C + c0;
            double sum[kBlock] = {};
            const int64_t count = std::min(kBlock, C - c0);
            add(v, count, P, C, sum);
            for (int64_t k = 0; k < count; ++k)
                y[n * C + c0 + k] = static_cast<float>(sum[k] / static_cast<double>(P));
        }
        return;
    }
    const PlaneStrides s = strides_of(layout, C, P);
    for (int64_t nc = 0; nc < N * C; ++nc) {
        const float* v = x + nc / C * C * P + nc % C * s.channel;
        double sum = 0.0;
        for (int64_t p = 0; p < P; ++p) sum += v[p * s.position];
        y[nc] = static_cast<float>(sum / static_cast<double>(P));
    }
}

namespace {

// Pixels in one piece of a channels-last image: about 64 KB, so that the piece is still in cache
// when its channels are summed after the activation.
int64_t piece_pixels(int64_t C) {
    return std::max<int64_t>(1, (int64_t{1} << 14) / C);
}

}  // namespace

int64_t channel_means_workspace(int64_t N, int64_t C, int64_t P) {
    const int64_t pieces = (P + piece_pixels(C) - 1) / piece_pixels(C);
    return 2 * N * pieces * C;  // doubles
}

void activate_and_average(const ActivationSpec& act, float* y, int64_t N, int64_t C, int64_t P, Layout layout,
                          float* means, float* workspace) {
    if (layout == Layout::nchw) {
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 16))
        for (int64_t nc = 0; nc < N * C; ++nc) {
            float* plane = y + nc * P;
            activation_forward(act, plane, P);
            double sum = 0.0;
            for (int64_t p = 0; p < P; ++p) sum += plane[p];
            means[nc] = static_cast<float>(sum / static_cast<double>(P));
        }
        return;
    }
    const int64_t per_piece = piece_pixels(C), pieces = (P + per_piece - 1) / per_piece;
    auto* partial = reinterpret_cast<double*>(workspace);  // (N, pieces, C)
    const auto add = VectorBuilds<&add_channels>::best();
#pragma omp parallel for schedule(static) if (N * C * P >= (1 << 16))
    for (int64_t task = 0; task < N * pieces; ++task) {
        const int64_t n = task / pieces, p0 = task % pieces * per_piece, count = std::min(per_piece, P - p0);
        float* piece = y + (n * P + p0) * C;
        activation_forward(act, piece, count * C);
        double* sum = partial + task * C;
        std::fill(sum, sum + C, 0.0);
        add(piece, C, count, C, sum);
    }
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) {
            double sum = 0.0;
            for (int64_t k = 0; k < pieces; ++k) sum += partial[(n * pieces + k) * C + c];
            means[n * C + c] = static_cast<float>(sum / static_cast<double>(P));
        }
}

void global_maxpool_forward(int64_t N, int64_t C, int64_t P, const float* x, float* y, Layout layout) {
    const PlaneStrides s = strides_of(layout, C, P);
    for (int64_t nc = 0; nc < N * C; ++nc) {
        const float* image = x + nc / C * C * P;
        y[nc] = image[nc % C * s.channel + first_max(image, nc % C, P, s) * s.position];
    }
}

void global_avgpool_backward(int64_t N, int64_t C, int64_t P, const float* dy, const ImageGradientSink& sink,
                             float* workspace, int threads, Layout layout) {
    const PlaneStrides s = strides_of(layout, C, P);
    for_each_image_gradient(N, C * P, workspace, threads, sink, [&](int64_t n, float* dx) {
        for (int64_t c = 0; c < C; ++c) {
            const float share = dy[n * C + c] / static_cast<float>(P);
            for (int64_t p = 0; p < P; ++p) dx[c * s.channel + p * s.position] = share;
        }
    });
}

void global_maxpool_backward(int64_t N, int64_t C, int64_t P, const float* x, const float* dy,
                             const ImageGradientSink& sink, float* workspace, int threads, Layout layout) {
    const PlaneStrides s = strides_of(layout, C, P);
    for_each_image_gradient(N, C * P, workspace, threads, sink, [&](int64_t n, float* dx) {
        std::fill(dx, dx + C * P, 0.0f);
        for (int64_t c = 0; c < C; ++c)
            dx[c * s.channel + first_max(x + n * C * P, c, P, s) * s.position] = dy[n * C + c];
    });
}

}  // namespace lenz::cpu
