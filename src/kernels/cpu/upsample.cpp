#include "kernels/cpu/upsample.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lenz::cpu {

std::vector<UpsampleTap> upsample_taps(int64_t in, int64_t out, bool bilinear, bool align_corners) {
    std::vector<UpsampleTap> taps(static_cast<size_t>(out));
    // In float, as PyTorch's float kernels, so that the weights are the same numbers (in / out is
    // 1 / S exactly rounded for a whole factor S, as before sizes of any ratio were taken).
    const float quotient = static_cast<float>(in) / static_cast<float>(out);
    const int64_t whole = out % in == 0 ? out / in : 0;  // the factor, where it is whole
    for (int64_t o = 0; o < out; ++o) {
        UpsampleTap& t = taps[static_cast<size_t>(o)];
        if (!bilinear || in == out) {  // PyTorch reads the identity as such, bilinear or not
            t.i0 = t.i1 =
                whole ? o / whole
                      : std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * quotient)), in - 1);
            continue;
        }
        const float ratio = align_corners
                                ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f)
                                : quotient;
        const float source = align_corners ? ratio * static_cast<float>(o)
                                           : std::max(ratio * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
        t.i0 = std::min(static_cast<int64_t>(source), in - 1);
        t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
        t.l1 = std::clamp(source - static_cast<float>(t.i0), 0.0f, 1.0f);
        t.l0 = 1.0f - t.l1;
    }
    return taps;
}

namespace {

// Large enough that a parallel region pays for itself.
constexpr int64_t kParallelFloats = 1 << 15;

// x: (H, W) planes -> y: (OH, OW) planes, N·C of them.
void forward_nchw(const UpsampleGeometry& g, int64_t planes, const float* x, float* y) {
    const int64_t plane = g.H * g.W, out_plane = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * out_plane >= kParallelFloats)
    for (int64_t p = 0; p < planes; ++p) {
        const float* in = x + p * plane;
        float* out = y + p * out_plane;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
            const UpsampleTap& r = g.rows[oh];
            float* row = out + oh * g.OW;
            const float* a = in + r.i0 * g.W;
            if (!g.bilinear) {
                for (int64_t ow = 0; ow < g.OW; ++ow) row[ow] = a[g.columns[ow].i0];
                continue;
            }
            const float* b = in + r.i1 * g.W;
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                const UpsampleTap& c = g.columns[ow];
                row[ow] = r.l0 * (c.l0 * a[c.i0] + c.l1 * a[c.i1]) + r.l1 * (c.l0 * b[c.i0] + c.l1 * b[c.i1]);
            }
        }
    }
}

// x: (N, H, W, C) -> y: (N, OH, OW, C): each output pixel blends whole pixels of C channels.
void forward_nhwc(const UpsampleGeometry& g, int64_t N, const float* x, float* y) {
    const int64_t C = g.C;
#pragma omp parallel for schedule(static) if (N * g.OH * g.OW * C >= kParallelFloats)
    for (int64_t nr = 0; nr < N * g.OH; ++nr) {
        const int64_t n = nr / g.OH, oh = nr % g.OH;
        const UpsampleTap& r = g.rows[oh];
        const float* a = x + (n * g.H + r.i0) * g.W * C;
        const float* b = x + (n * g.H + r.i1) * g.W * C;
        float* row = y + nr * g.OW * C;
        for (int64_t ow = 0; ow < g.OW; ++ow) {
            const UpsampleTap& c = g.columns[ow];
            float* out = row + ow * C;
            if (!g.bilinear) {
                std::memcpy(out, a + c.i0 * C, sizeof(float) * static_cast<size_t>(C));
                continue;
            }
            const float *a0 = a + c.i0 * C, *a1 = a + c.i1 * C, *b0 = b + c.i0 * C, *b1 = b + c.i1 * C;
#pragma omp simd
            for (int64_t k = 0; k < C; ++k)
                out[k] = r.l0 * (c.l0 * a0[k] + c.l1 * a1[k]) + r.l1 * (c.l0 * b0[k] + c.l1 * b1[k]);
        }
    }
}

// One image: dy (C, OH, OW) added into a zeroed dx (C, H, W).
void backward_image_nchw(const UpsampleGeometry& g, const float* dy, float* dx) {
    for (int64_t c = 0; c < g.C; ++c) {
        const float* d = dy + c * g.OH * g.OW;
        float* plane = dx + c * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
            const UpsampleTap& r = g.rows[oh];
            const float* drow = d + oh * g.OW;
            float* a = plane + r.i0 * g.W;
            if (!g.bilinear) {
                for (int64_t ow = 0; ow < g.OW; ++ow) a[g.columns[ow].i0] += drow[ow];
                continue;
            }
            float* b = plane + r.i1 * g.W;
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                const UpsampleTap& col = g.columns[ow];
                const float top = r.l0 * drow[ow], bottom = r.l1 * drow[ow];
                a[col.i0] += col.l0 * top;
                a[col.i1] += col.l1 * top;
                b[col.i0] += col.l0 * bottom;
                b[col.i1] += col.l1 * bottom;
            }
        }
    }
}

// One image: dy (OH, OW, C) added into a zeroed dx (H, W, C).
void backward_image_nhwc(const UpsampleGeometry& g, const float* dy, float* dx) {
    const int64_t C = g.C;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
        const UpsampleTap& r = g.rows[oh];
        float* a = dx + r.i0 * g.W * C;
        float* b = dx + r.i1 * g.W * C;
        for (int64_t ow = 0; ow < g.OW; ++ow) {
            const UpsampleTap& col = g.columns[ow];
            const float* d = dy + (oh * g.OW + ow) * C;
            float* a0 = a + col.i0 * C;
            if (!g.bilinear) {
#pragma omp simd
                for (int64_t k = 0; k < C; ++k) a0[k] += d[k];
                continue;
            }
            float *a1 = a + col.i1 * C, *b0 = b + col.i0 * C, *b1 = b + col.i1 * C;
            const float w00 = r.l0 * col.l0, w01 = r.l0 * col.l1, w10 = r.l1 * col.l0, w11 = r.l1 * col.l1;
            // One tap at a time: taps may coincide (the last row or column reads itself twice).
#pragma omp simd
            for (int64_t k = 0; k < C; ++k) a0[k] += w00 * d[k];
#pragma omp simd
            for (int64_t k = 0; k < C; ++k) a1[k] += w01 * d[k];
#pragma omp simd
            for (int64_t k = 0; k < C; ++k) b0[k] += w10 * d[k];
#pragma omp simd
            for (int64_t k = 0; k < C; ++k) b1[k] += w11 * d[k];
        }
    }
}

}  // namespace

void upsample_forward(const UpsampleGeometry& g, int64_t N, const float* x, float* y, Layout layout) {
    if (layout == Layout::nhwc)
        forward_nhwc(g, N, x, y);
    else
        forward_nchw(g, N * g.C, x, y);
}

void upsample_backward(const UpsampleGeometry& g, int64_t N, const float* dy, const ImageGradientSink& sink,
                       float* workspace, int threads, Layout layout) {
    const int64_t image = g.C * g.H * g.W, out_image = g.C * g.OH * g.OW;
    for_each_image_gradient(N, image, workspace, threads, sink, [&](int64_t n, float* dx) {
        std::fill(dx, dx + image, 0.0f);
        if (layout == Layout::nhwc)
            backward_image_nhwc(g, dy + n * out_image, dx);
        else
            backward_image_nchw(g, dy + n * out_image, dx);
    });
}

}  // namespace lenz::cpu
