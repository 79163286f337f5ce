#include "kernels/reference/conv2d.h"

#include <cstring>

namespace lenz::reference {

// Calls f(n, oc, oh, ow, c, kh, kw, input index) for every multiplication that touches real input;
// c counts within the filter's group (0 .. C/G), as the weights do.
template <class F>
static void for_each_tap(const ConvGeometry& g, int64_t N, F f) {
    const int64_t filters_per_group = g.OC / g.G, Cg = g.group_channels();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t oc = 0; oc < g.OC; ++oc)
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow)
                    for (int64_t c = 0; c < Cg; ++c)
                        for (int64_t kh = 0; kh < g.KH; ++kh)
                            for (int64_t kw = 0; kw < g.KW; ++kw) {
                                const int64_t ih = oh * g.SH - g.PT + kh * g.DH,
                                              iw = ow * g.SW - g.PL + kw * g.DW;
                                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                                const int64_t channel = oc / filters_per_group * Cg + c;
                                f(n, oc, oh, ow, c, kh, kw, ((n * g.C + channel) * g.H + ih) * g.W + iw);
                            }
}

static int64_t out_index(const ConvGeometry& g, int64_t n, int64_t oc, int64_t oh, int64_t ow) {
    return ((n * g.OC + oc) * g.OH + oh) * g.OW + ow;
}
static int64_t weight_index(const ConvGeometry& g, int64_t oc, int64_t c, int64_t kh, int64_t kw) {
    return ((oc * g.group_channels() + c) * g.KH + kh) * g.KW + kw;
}

void conv2d_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                    float* y) {
    for (int64_t n = 0; n < N; ++n)
        for (int64_t oc = 0; oc < g.OC; ++oc)
            for (int64_t p = 0; p < g.OH * g.OW; ++p) y[(n * g.OC + oc) * g.OH * g.OW + p] = b ? b[oc] : 0.0f;
    for_each_tap(
        g, N,
        [&](int64_t n, int64_t oc, int64_t oh, int64_t ow, int64_t c, int64_t kh, int64_t kw, int64_t xi) {
            y[out_index(g, n, oc, oh, ow)] += x[xi] * w[weight_index(g, oc, c, kh, kw)];
        });
}

void conv2d_backward_data(const ConvGeometry& g, int64_t N, const float* dy, const float* w, float* dx) {
    std::memset(dx, 0, sizeof(float) * static_cast<size_t>(N * g.C * g.H * g.W));
    for_each_tap(
        g, N,
        [&](int64_t n, int64_t oc, int64_t oh, int64_t ow, int64_t c, int64_t kh, int64_t kw, int64_t xi) {
            dx[xi] += dy[out_index(g, n, oc, oh, ow)] * w[weight_index(g, oc, c, kh, kw)];
        });
}

void conv2d_backward_weights(const ConvGeometry& g, int64_t N, const float* x, const float* dy, float* dw,
                             float* db) {
    for_each_tap(
        g, N,
        [&](int64_t n, int64_t oc, int64_t oh, int64_t ow, int64_t c, int64_t kh, int64_t kw, int64_t xi) {
            dw[weight_index(g, oc, c, kh, kw)] += x[xi] * dy[out_index(g, n, oc, oh, ow)];
        });
    if (db)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t oc = 0; oc < g.OC; ++oc)
                for (int64_t p = 0; p < g.OH * g.OW; ++p) db[oc] += dy[(n * g.OC + oc) * g.OH * g.OW + p];
}

}  // namespace lenz::reference
