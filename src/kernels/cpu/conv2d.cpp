#include "kernels/cpu/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"

namespace lenz::cpu {
namespace {

// One tile of im2col is at most this many floats (1 MB): big enough for an efficient GEMM,
// small enough to stay in L2 while it is consumed.
constexpr int64_t kTileFloats = 1 << 18;

// A 1x1 stride-1 unpadded convolution is already a GEMM over the input: no im2col needed.
bool is_pointwise(const ConvGeometry& g) {
    return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT == 0 && g.PL == 0 && g.OH == g.H &&
           g.OW == g.W;
}

// Output columns [lo, hi) of a row whose input column iw = ow * SW - PL + kw is inside the image;
// the rest read padding. Computed once per row instead of testing every element.
struct ValidColumns {
    int64_t lo, hi;
};
ValidColumns valid_columns(const ConvGeometry& g, int64_t kw) {
    const int64_t shift = kw - g.PL;  // iw = ow * SW + shift
    int64_t lo = shift >= 0 ? 0 : (-shift + g.SW - 1) / g.SW;
    int64_t hi = g.W - shift <= 0 ? 0 : (g.W - shift + g.SW - 1) / g.SW;
    lo = std::min(lo, g.OW);
    hi = std::clamp(hi, lo, g.OW);
    return {lo, hi};
}

// Calls segment(t, oh, ow0, ow1) for the pieces of output rows that positions [p0, p0 + T) cover,
// t being the column of the tile where the piece starts.
template <class F>
void for_each_row_piece(const ConvGeometry& g, int64_t p0, int64_t T, F segment) {
    int64_t t = 0;
    while (t < T) {
        const int64_t p = p0 + t, oh = p / g.OW, ow0 = p % g.OW;
        const int64_t ow1 = std::min(g.OW, ow0 + (T - t));
        segment(t, oh, ow0, ow1);
        t += ow1 - ow0;
    }
}

// col: (C*KH*KW, T) for output positions [p0, p0 + T) of one image x: (C, H, W).
void im2col_tile(const ConvGeometry& g, const float* x, int64_t p0, int64_t T, float* col) {
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t kh = 0; kh < g.KH; ++kh)
            for (int64_t kw = 0; kw < g.KW; ++kw) {
                float* row = col + ((c * g.KH + kh) * g.KW + kw) * T;
                const float* plane = x + c * g.H * g.W;
                const ValidColumns v = valid_columns(g, kw);
                for_each_row_piece(g, p0, T, [&](int64_t t, int64_t oh, int64_t ow0, int64_t ow1) {
                    float* out = row + t;  // out[ow - ow0] for ow in [ow0, ow1)
                    const int64_t ih = oh * g.SH - g.PT + kh;
                    if (ih < 0 || ih >= g.H) {
                        std::fill(out, out + (ow1 - ow0), 0.0f);
                        return;
                    }
                    const int64_t lo = std::clamp(v.lo, ow0, ow1), hi = std::clamp(v.hi, lo, ow1);
                    std::fill(out, out + (lo - ow0), 0.0f);
                    const float* in = plane + ih * g.W;  // in[ow * SW + shift] for valid ow
                    const int64_t shift = kw - g.PL;
                    if (g.SW == 1 && hi > lo)
                        std::copy(in + lo + shift, in + hi + shift, out + (lo - ow0));
                    else
                        for (int64_t ow = lo; ow < hi; ++ow) out[ow - ow0] = in[ow * g.SW + shift];
                    std::fill(out + (hi - ow0), out + (ow1 - ow0), 0.0f);
                });
            }
}

// The adjoint of im2col_tile: dx (C, H, W) += scatter of col.
void col2im_tile(const ConvGeometry& g, const float* col, int64_t p0, int64_t T, float* dx) {
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t kh = 0; kh < g.KH; ++kh)
            for (int64_t kw = 0; kw < g.KW; ++kw) {
                const float* row = col + ((c * g.KH + kh) * g.KW + kw) * T;
                float* plane = dx + c * g.H * g.W;
                const ValidColumns v = valid_columns(g, kw);
                for_each_row_piece(g, p0, T, [&](int64_t t, int64_t oh, int64_t ow0, int64_t ow1) {
                    const int64_t ih = oh * g.SH - g.PT + kh;
                    if (ih < 0 || ih >= g.H) return;
                    const float* in = row + t;  // in[ow - ow0]
                    float* out = plane + ih * g.W;
                    const int64_t shift = kw - g.PL;
                    const int64_t lo = std::clamp(v.lo, ow0, ow1), hi = std::clamp(v.hi, lo, ow1);
                    for (int64_t ow = lo; ow < hi; ++ow) out[ow * g.SW + shift] += in[ow - ow0];
                });
            }
}

int64_t tiles_per_image(const ConvGeometry& g) {
    const int64_t T = conv2d_tile_positions(g);
    return (g.positions() + T - 1) / T;
}

}  // namespace

int64_t conv2d_tile_positions(const ConvGeometry& g) {
    int64_t T = std::max<int64_t>(64, kTileFloats / g.patch());
    return std::min(T, g.positions());
}

int64_t conv2d_forward_workspace(const ConvGeometry& g, int threads) {
    if (is_pointwise(g)) return 0;
    return threads * g.patch() * conv2d_tile_positions(g);
}

int64_t conv2d_backward_workspace(const ConvGeometry& g, int threads) {
    // per thread: one column tile, one image of dx, and private dw and db so threads never add
    // into the same sums
    return threads * (g.patch() * conv2d_tile_positions(g) + g.C * g.H * g.W + g.OC * g.patch() + g.OC);
}

void conv2d_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                    const ActivationSpec& act, float* y, float* workspace, int threads) {
    const int64_t K = g.patch(), P = g.positions(), T = conv2d_tile_positions(g);
    const int64_t tiles = tiles_per_image(g);
    const bool pointwise = is_pointwise(g);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t item = 0; item < N * tiles; ++item) {
        const int64_t n = item / tiles, p0 = (item % tiles) * T, width = std::min(T, P - p0);
        const float* image = x + n * g.C * g.H * g.W;
        float* out = y + n * g.OC * P + p0;  // (OC, width) with row stride P
        const float* col;
        int64_t ldcol;
        if (pointwise) {
            col = image + p0;
            ldcol = P;
        } else {
            float* tile = workspace + omp_get_thread_num() * K * T;
            im2col_tile(g, image, p0, width, tile);
            col = tile;
            ldcol = width;
        }
        gemm(false, false, g.OC, width, K, 1.0f, w, K, col, ldcol, 0.0f, out, P);
        for (int64_t oc = 0; oc < g.OC; ++oc) {
            float* row = out + oc * P;
            if (b) {
                const float bias = b[oc];
                for (int64_t t = 0; t < width; ++t) row[t] += bias;
            }
            if (act.kind != Activation::softmax) activation_forward(act, row, width);
        }
    }
    if (act.kind == Activation::softmax) softmax_forward(y, N, g.OC, P);
}

void conv2d_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy, const float* w,
                     const ImageGradientSink& store_dx, float* dw, float* db, float* workspace, int threads) {
    const int64_t K = g.patch(), P = g.positions(), T = conv2d_tile_positions(g), image = g.C * g.H * g.W;
    const int64_t tiles = tiles_per_image(g);
    const int64_t per_thread = K * T + image + g.OC * K + g.OC;
    const bool pointwise = is_pointwise(g);
    // Zeroed here, not inside the team: OpenMP may give us fewer threads than asked for.
    for (int t = 0; t < threads; ++t)
        std::memset(workspace + t * per_thread + K * T + image, 0, sizeof(float) * static_cast<size_t>(g.OC * K + g.OC));
    // Images are split over threads statically, so each thread's partial sums and the order in
    // which they are added below are fixed: the result is the same every run for a thread count.
#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num();
        float* tile = workspace + tid * per_thread;
        float* dx_image = tile + K * T;
        float* dw_part = dx_image + image;
        float* db_part = dw_part + g.OC * K;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            const float* x_image = x + n * image;
            const float* dy_image = dy + n * g.OC * P;
            if (store_dx && !pointwise) std::memset(dx_image, 0, sizeof(float) * static_cast<size_t>(image));
            for (int64_t t0 = 0; t0 < tiles; ++t0) {
                const int64_t p0 = t0 * T, width = std::min(T, P - p0);
                // dw += dy_tile (OC, width) * col^T (width, K)
                if (pointwise) {
                    gemm(false, true, g.OC, K, width, 1.0f, dy_image + p0, P, x_image + p0, P, 1.0f, dw_part, K);
                } else {
                    im2col_tile(g, x_image, p0, width, tile);
                    gemm(false, true, g.OC, K, width, 1.0f, dy_image + p0, P, tile, width, 1.0f, dw_part, K);
                }
                if (store_dx) {
                    // dcol (K, width) = w^T (K, OC) * dy_tile (OC, width)
                    if (pointwise) {
                        gemm(true, false, K, width, g.OC, 1.0f, w, K, dy_image + p0, P, 0.0f, dx_image + p0, P);
                    } else {
                        gemm(true, false, K, width, g.OC, 1.0f, w, K, dy_image + p0, P, 0.0f, tile, width);
                        col2im_tile(g, tile, p0, width, dx_image);
                    }
                }
            }
            if (db)
                for (int64_t oc = 0; oc < g.OC; ++oc) {
                    const float* row = dy_image + oc * P;
                    float s = 0.0f;
                    for (int64_t p = 0; p < P; ++p) s += row[p];
                    db_part[oc] += s;
                }
            if (store_dx) store_dx(n, dx_image);  // x_image is no longer read after this
        }
    }
    for (int t = 0; t < threads; ++t) {
        const float* dw_part = workspace + t * per_thread + K * T + image;
        for (int64_t i = 0; i < g.OC * K; ++i) dw[i] += dw_part[i];
        if (db)
            for (int64_t oc = 0; oc < g.OC; ++oc) db[oc] += dw_part[g.OC * K + oc];
    }
}

}  // namespace lenz::cpu
