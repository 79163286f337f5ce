// The max-pool backward kernels against the plain definition: a zeroed dx, and each window's dy
// added, window by window in scan order, at the first maximum of the window (rows, then columns).
// Compared bit for bit (negative zeros in dy included), in both layouts, on windows that overlap,
// abut, leave gaps, hang over the padding or over a ceil-mode edge, with ties everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/pool2d.h"

namespace lenz {
// Its own namespace: the unity build puts this file beside others with a Case of their own.
namespace maxpool_backward_test {
namespace {

// Index of value (n, c, h, w) in the layout.
int64_t index_of(Layout layout, int64_t C, int64_t H, int64_t W, int64_t n, int64_t c, int64_t h, int64_t w) {
    return layout == Layout::nhwc ? ((n * H + h) * W + w) * C + c : ((n * C + c) * H + h) * W + w;
}

std::vector<float> reference_backward(const ConvGeometry& g, int64_t N, const std::vector<float>& x,
                                      const std::vector<float>& dy, Layout layout) {
    std::vector<float> dx(x.size(), 0.0f);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < g.C; ++c)
            for (int64_t oh = 0; oh < g.OH; ++oh)
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    int64_t best = -1;
                    for (int64_t h = oh * g.SH - g.PT; h < oh * g.SH - g.PT + g.KH; ++h)
                        for (int64_t w = ow * g.SW - g.PL; w < ow * g.SW - g.PL + g.KW; ++w) {
                            if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                            const int64_t i = index_of(layout, g.C, g.H, g.W, n, c, h, w);
                            if (best < 0 || x[static_cast<size_t>(i)] > x[static_cast<size_t>(best)])
                                best = i;
                        }
                    dx[static_cast<size_t>(best)] +=
                        dy[static_cast<size_t>(index_of(layout, g.C, g.OH, g.OW, n, c, oh, ow))];
                }
    return dx;
}

std::vector<float> kernel_backward(const ConvGeometry& g, int64_t N, const std::vector<float>& x,
                                   const std::vector<float>& dy, Layout layout, int threads) {
    const int64_t image = g.C * g.H * g.W;
    std::vector<float> dx(x.size(), 12345.0f), workspace(static_cast<size_t>(threads * image), 777.0f);
    const cpu::ImageGradientSink sink = [&](int64_t n, const float* image_dx) {
        std::memcpy(dx.data() + n * image, image_dx, sizeof(float) * static_cast<size_t>(image));
    };
    cpu::maxpool_backward(g, N, x.data(), dy.data(), sink, workspace.data(), threads, layout);
    return dx;
}

// The inputs: four kinds of ties. 0: few distinct levels; 1: post-ReLU, mostly zeros; 2: constant
// (every window ties throughout); 3: distinct values, with a NaN now and then (never a maximum).
float input_value(int kind, int64_t i) {
    const float s = std::sin(0.37f * static_cast<float>(i) + 0.1f);
    switch (kind) {
        case 0:
            return std::floor(3.0f * s);
        case 1:
            return std::max(0.0f, std::floor(4.0f * s) - 2.0f);
        case 2:
            return 1.5f;
        default:
            return i % 97 == 13 ? std::nanf("") : s * static_cast<float>(i % 11);
    }
}

// dy: small integers and halves (sums exact only in order), with negative zeros.
float gradient_value(int64_t i) {
    if (i % 7 == 3) return -0.0f;
    return std::cos(0.71f * static_cast<float>(i)) * 3.0f + 0.25f * static_cast<float>(i % 5);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

struct Case {
    int64_t N, H, W, KH, KW, SH, SW, PT, PL, OH, OW;
    const char* what;
};

TEST(MaxpoolBackwardKernel, RoutesEachGradientToTheFirstMaximumOfItsWindow) {
    const Case cases[] = {
        {3, 12, 12, 3, 3, 2, 2, 1, 1, 6, 6, "ResNet stem 3x3/2/1, even size"},
        {2, 9, 11, 3, 3, 2, 2, 1, 1, 5, 6, "3x3/2/1, odd sizes"},
        {1, 8, 8, 3, 3, 2, 2, 0, 0, 4, 4, "3x3/2 ceil mode: the last window hangs over"},
        {1, 9, 9, 3, 3, 2, 2, 0, 0, 4, 4, "3x3/2 unpadded"},
        {2, 7, 6, 3, 3, 1, 1, 1, 1, 7, 6, "3x3/1/1"},
        {1, 7, 8, 5, 5, 1, 1, 2, 2, 7, 8, "5x5/1/2: the padding spans two strides"},
        {2, 6, 8, 2, 2, 2, 2, 0, 0, 3, 4, "2x2/2 tiling exactly"},
        {1, 7, 9, 2, 2, 2, 2, 0, 0, 3, 4, "2x2/2 leaving a last row and column"},
        {1, 10, 11, 2, 2, 3, 3, 0, 0, 3, 4, "2x2/3: gaps between windows"},
        {1, 9, 7, 3, 2, 2, 1, 1, 0, 5, 6, "3x2 with strides 2 and 1"},
        {1, 5, 5, 1, 1, 2, 2, 0, 0, 3, 3, "1x1/2"},
        {1, 12, 12, 9, 9, 1, 1, 4, 4, 12, 12, "9x9/1/4: more taps than the vector kernel's table"},
        {5, 5, 6, 3, 3, 2, 2, 1, 1, 3, 3, "a batch over the threads"},
    };
    for (const Case& k : cases)
        for (const int64_t C : {1, 3, 16, 64, 67})
            for (const Layout layout : {Layout::nhwc, Layout::nchw})
                for (int kind = 0; kind < 4; ++kind) {
                    const ConvGeometry g{C, k.H, k.W, C, k.OH, k.OW, k.KH, k.KW, k.SH, k.SW, k.PT, k.PL};
                    std::vector<float> x(static_cast<size_t>(k.N * C * k.H * k.W)),
                        dy(static_cast<size_t>(k.N * C * k.OH * k.OW));
                    for (size_t i = 0; i < x.size(); ++i) x[i] = input_value(kind, static_cast<int64_t>(i));
                    for (size_t i = 0; i < dy.size(); ++i) dy[i] = gradient_value(static_cast<int64_t>(i));
                    const std::vector<float> want = reference_backward(g, k.N, x, dy, layout);
                    for (const int threads : {1, 2}) {
                        const std::vector<float> got = kernel_backward(g, k.N, x, dy, layout, threads);
                        ASSERT_TRUE(same_bits(got, want))
                            << k.what << ", C=" << C << (layout == Layout::nhwc ? " NHWC" : " NCHW")
                            << ", inputs " << kind << ", threads " << threads;
                    }
                }
}

}  // namespace
}  // namespace maxpool_backward_test
}  // namespace lenz
