#include "kernels/reference/conv_transpose.h"

#include <cstring>

namespace lenz::reference {

// Calls f(input index, weight index, output index) for every product the transposed convolution
// forms: input (n, c, ih, iw) times weight (c, f, kh, kw) lands on output channel g·(OC/G) + f.
template <class F>
static void for_each_product(const ConvGeometry& g, int64_t N, F f) {
    const int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < g.C; ++c)
            for (int64_t ih = 0; ih < g.H; ++ih)
                for (int64_t iw = 0; iw < g.W; ++iw)
                    for (int64_t of = 0; of < OCg; ++of)
                        for (int64_t kh = 0; kh < g.KH; ++kh)
                            for (int64_t kw = 0; kw < g.KW; ++kw) {
                                const int64_t oh = ih * g.SH - g.PT + kh * g.DH,
                                              ow = iw * g.SW - g.PL + kw * g.DW;
                                if (oh < 0 || oh >= g.OH || ow < 0 || ow >= g.OW) continue;
                                const int64_t oc = c / Cg * OCg + of;
                                f(((n * g.C + c) * g.H + ih) * g.W + iw,
                                  ((c * OCg + of) * g.KH + kh) * g.KW + kw,
                                  ((n * g.OC + oc) * g.OH + oh) * g.OW + ow);
                            }
}

void conv_transpose_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                            float* y) {
    for (int64_t n = 0; n < N; ++n)
        for (int64_t oc = 0; oc < g.OC; ++oc)
            for (int64_t p = 0; p < g.OH * g.OW; ++p) y[(n * g.OC + oc) * g.OH * g.OW + p] = b ? b[oc] : 0.0f;
    for_each_product(g, N, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += x[xi] * w[wi]; });
}

void conv_transpose_backward_data(const ConvGeometry& g, int64_t N, const float* dy, const float* w,
                                  float* dx) {
    std::memset(dx, 0, sizeof(float) * static_cast<size_t>(N * g.C * g.H * g.W));
    for_each_product(g, N, [&](int64_t xi, int64_t wi, int64_t yi) { dx[xi] += dy[yi] * w[wi]; });
}

void conv_transpose_backward_weights(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                                     float* dw, float* db) {
    for_each_product(g, N, [&](int64_t xi, int64_t wi, int64_t yi) { dw[wi] += x[xi] * dy[yi]; });
    if (db)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t oc = 0; oc < g.OC; ++oc)
                for (int64_t p = 0; p < g.OH * g.OW; ++p) db[oc] += dy[(n * g.OC + oc) * g.OH * g.OW + p];
}

}  // namespace lenz::reference
