// The oneDNN transposed convolution against the naive reference loops, forward, input gradient and
// weight and bias gradients, in both layouts, over strides, padding, output padding (also beyond the
// padding), groups, depthwise, dilation, 1x1, one channel, odd sizes and batches.
#include "kernels/cpu/conv_transpose.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/reference/conv_transpose.h"
#include "layers/window.h"
#include "lenz/random.h"

namespace lenz::conv_transpose_kernel_test {
namespace {

struct Case {
    int64_t N, C, H, W, F, KH, KW, S, P, OP, G, D;
    std::string str() const {
        return "N=" + std::to_string(N) + " C=" + std::to_string(C) + " H=" + std::to_string(H) +
               " W=" + std::to_string(W) + " F=" + std::to_string(F) + " K=" + std::to_string(KH) + "x" +
               std::to_string(KW) + " S=" + std::to_string(S) + " P=" + std::to_string(P) +
               " OP=" + std::to_string(OP) + " G=" + std::to_string(G) + " D=" + std::to_string(D);
    }
};

std::vector<float> random_values(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
    return v;
}
// (N, C, P) <-> (N, P, C)
std::vector<float> to_nhwc(const std::vector<float>& a, int64_t N, int64_t C, int64_t P) {
    std::vector<float> b(a.size());
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < P; ++p)
                b[static_cast<size_t>((n * P + p) * C + c)] = a[static_cast<size_t>((n * C + c) * P + p)];
    return b;
}
std::vector<float> to_nchw(const std::vector<float>& a, int64_t N, int64_t C, int64_t P) {
    std::vector<float> b(a.size());
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < P; ++p)
                b[static_cast<size_t>((n * C + c) * P + p)] = a[static_cast<size_t>((n * P + p) * C + c)];
    return b;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i)
        if (std::abs(got[i] - want[i]) > 1e-4f * (1.0f + std::abs(want[i]))) {
            ADD_FAILURE() << what << ": first difference at index " << i << ": " << got[i] << " vs "
                          << want[i];
            return;
        }
}

void check(const Case& k) {
    SCOPED_TRACE(k.str());
    ConvTransposeConfig c;
    c.filters = k.F;
    c.kernel_h = k.KH;
    c.kernel_w = k.KW;
    c.stride_h = c.stride_w = k.S;
    c.padding_h = c.padding_w = k.P;
    c.output_padding_h = c.output_padding_w = k.OP;
    c.groups = k.G;
    c.dilation_h = c.dilation_w = k.D;
    const ConvGeometry g = resolve_conv_transpose(c, {k.H, k.W, k.C});
    const int64_t in = k.N * g.C * g.H * g.W, out = k.N * g.OC * g.OH * g.OW, P = g.H * g.W, OP = g.OH * g.OW;
    const int64_t weights = g.C * (g.OC / g.G) * g.KH * g.KW;
    const auto x = random_values(in, 1), w = random_values(weights, 2), b = random_values(g.OC, 3),
               dy = random_values(out, 4);
    std::vector<float> y_ref(static_cast<size_t>(out)), dx_ref(static_cast<size_t>(in)),
        dw_ref(static_cast<size_t>(weights), 0.5f), db_ref(static_cast<size_t>(g.OC), 0.25f);
    reference::conv_transpose_forward(g, k.N, x.data(), w.data(), b.data(), y_ref.data());
    reference::conv_transpose_backward_data(g, k.N, dy.data(), w.data(), dx_ref.data());
    reference::conv_transpose_backward_weights(g, k.N, x.data(), dy.data(), dw_ref.data(), db_ref.data());

    for (const Layout layout : {Layout::nchw, Layout::nhwc}) {
        SCOPED_TRACE(layout == Layout::nhwc ? "channels-last" : "(N, C, H, W)");
        const bool last = layout == Layout::nhwc;
        const Layouts layouts{layout, layout};
        std::vector<float> ws(
            static_cast<size_t>(std::max(cpu::conv_transpose_forward_workspace(g, k.N, true, {}, layouts),
                                         cpu::conv_transpose_backward_workspace(g, k.N, true, layouts)) +
                                16));
        const auto xl = last ? to_nhwc(x, k.N, g.C, P) : x, dyl = last ? to_nhwc(dy, k.N, g.OC, OP) : dy;
        std::vector<float> y(static_cast<size_t>(out));
        cpu::conv_transpose_forward(g, k.N, xl.data(), w.data(), b.data(), {}, y.data(), ws.data(), layouts);
        expect_close(last ? to_nchw(y, k.N, g.OC, OP) : y, y_ref, "y");

        std::vector<float> dx(static_cast<size_t>(in)), dw(static_cast<size_t>(weights), 0.5f),
            db(static_cast<size_t>(g.OC), 0.25f);
        const int64_t image = g.C * P;
        cpu::conv_transpose_backward(
            g, k.N, xl.data(), dyl.data(), w.data(),
            [&](int64_t n, const float* d) { std::copy(d, d + image, dx.begin() + n * image); }, dw.data(),
            db.data(), ws.data(), layouts);
        expect_close(last ? to_nchw(dx, k.N, g.C, P) : dx, dx_ref, "dx");
        expect_close(dw, dw_ref, "dw (accumulated onto 0.5)");
        expect_close(db, db_ref, "db (accumulated onto 0.25)");
    }
}

TEST(ConvTransposeKernel, MatchesTheReference) {
    const Case cases[] = {
        {2, 3, 4, 5, 4, 2, 2, 2, 0, 0, 1, 1},     // a U-Net's up step
        {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},     // 1x1, one pixel, one channel
        {3, 5, 3, 3, 7, 3, 3, 1, 1, 0, 1, 1},     // stride 1, padding 1
        {2, 4, 5, 3, 6, 3, 3, 2, 1, 1, 2, 1},     // stride 2, output padding, groups
        {1, 2, 3, 4, 3, 2, 2, 3, 0, 2, 1, 1},     // output padding beyond the padding
        {2, 3, 4, 4, 3, 3, 3, 1, 2, 0, 3, 2},     // depthwise, dilated
        {1, 6, 7, 5, 4, 5, 3, 2, 2, 1, 2, 2},     // odd sizes, dilation 2, non-square kernel
        {2, 32, 9, 11, 16, 2, 2, 2, 0, 0, 1, 1},  // channels enough for oneDNN's jit kernels
        {1, 16, 6, 6, 32, 4, 4, 2, 1, 0, 1, 1},   // DCGAN's 4x4 stride 2 padding 1
    };
    for (const Case& k : cases) check(k);
}

}  // namespace
}  // namespace lenz::conv_transpose_kernel_test
