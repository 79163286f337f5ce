// The pooling kernels against plain sums in double.
#include "kernels/cpu/pool2d.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/activation.h"

namespace lenz {
namespace {

// Channel counts that end in every run width (16, 8, 4, 2, 1) and sizes on both sides of the
// threaded path; the channels-last result equals the mean in double and the (N, C, P) path's.
TEST(GlobalAvgpoolKernel, ChannelsLastGivesTheMeanOfEachChannel) {
    for (const auto& [N, C, P] :
         {std::array<int64_t, 3>{2, 72, 3136}, {1, 31, 12544}, {3, 5, 7}, {1, 1152, 49}}) {
        std::vector<float> nhwc(static_cast<size_t>(N * P * C)), nchw(nhwc.size());
        for (int64_t n = 0; n < N; ++n)
            for (int64_t p = 0; p < P; ++p)
                for (int64_t c = 0; c < C; ++c) {
                    const float v = std::sin(0.37f * static_cast<float>(n * 7919 + p * 31 + c)) + 0.01f * c;
                    nhwc[static_cast<size_t>((n * P + p) * C + c)] = v;
                    nchw[static_cast<size_t>((n * C + c) * P + p)] = v;
                }
        std::vector<float> from_nhwc(static_cast<size_t>(N * C)), from_nchw(from_nhwc.size());
        cpu::global_avgpool_forward(N, C, P, nhwc.data(), from_nhwc.data(), Layout::nhwc);
        cpu::global_avgpool_forward(N, C, P, nchw.data(), from_nchw.data(), Layout::nchw);
        for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c) {
                double sum = 0.0;
                for (int64_t p = 0; p < P; ++p) sum += nhwc[static_cast<size_t>((n * P + p) * C + c)];
                const auto at = static_cast<size_t>(n * C + c);
                ASSERT_EQ(from_nhwc[at], static_cast<float>(sum / static_cast<double>(P)))
                    << "N=" << N << " C=" << C << " P=" << P << " image " << n << " channel " << c;
                ASSERT_EQ(from_nhwc[at], from_nchw[at]);
            }
    }
}

// The pass a convolution runs with a global average pool fused in: the activated values of
// activation_forward, and the means of global_avgpool_forward on them, to rounding (channels-last
// sums go piece by piece).
TEST(GlobalAvgpoolKernel, FusedWithTheActivationGivesWhatTheTwoGiveApart) {
    for (const Layout layout : {Layout::nhwc, Layout::nchw})
        for (const auto& [N, C, P] : {std::array<int64_t, 3>{2, 40, 3136}, {1, 1152, 49}, {3, 3, 5}}) {
            std::vector<float> x(static_cast<size_t>(N * C * P));
            for (size_t i = 0; i < x.size(); ++i) x[i] = 4.0f * std::sin(0.11f * static_cast<float>(i));
            std::vector<float> apart = x, fused = x, want(static_cast<size_t>(N * C)), got(want.size());
            std::vector<float> workspace(static_cast<size_t>(cpu::channel_means_workspace(N, C, P)));
            const ActivationSpec silu{Activation::silu};
            cpu::activation_forward(silu, apart.data(), N * C * P);
            cpu::global_avgpool_forward(N, C, P, apart.data(), want.data(), layout);
            cpu::activate_and_average(silu, fused.data(), N, C, P, layout, got.data(), workspace.data());
            for (size_t i = 0; i < x.size();
                 ++i)  // (a span's vector body and its scalar end may round apart)
                ASSERT_NEAR(fused[i], apart[i], 1e-6f * (1.0f + std::abs(apart[i])));
            for (size_t i = 0; i < want.size(); ++i)
                ASSERT_NEAR(got[i], want[i],
                            layout == Layout::nchw ? 0.0f : 1e-6f * (1.0f + std::abs(want[i])))
                    << "N=" << N << " C=" << C << " P=" << P << " [" << i << "]";
        }
}

// Channels-last max pooling against the window scanned pixel by pixel: channel counts that end in
// every run width (64, 16, 4, 1), windows cut by padding and by a ceil-mode last row and column,
// float32 and both int8 flavours, on either side of the threaded path.
template <class T>
std::vector<T> max_of_windows(const ConvGeometry& g, int64_t N, const std::vector<T>& x) {
    std::vector<T> y(static_cast<size_t>(N * g.OH * g.OW * g.C));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t oh = 0; oh < g.OH; ++oh)
            for (int64_t ow = 0; ow < g.OW; ++ow)
                for (int64_t c = 0; c < g.C; ++c) {
                    bool seen = false;
                    T best{};
                    for (int64_t h = oh * g.SH - g.PT; h < oh * g.SH - g.PT + g.KH; ++h)
                        for (int64_t w = ow * g.SW - g.PL; w < ow * g.SW - g.PL + g.KW; ++w) {
                            if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                            const T v = x[static_cast<size_t>(((n * g.H + h) * g.W + w) * g.C + c)];
                            if (!seen || v > best) best = v;
                            seen = true;
                        }
                    y[static_cast<size_t>(((n * g.OH + oh) * g.OW + ow) * g.C + c)] = best;
                }
    return y;
}

TEST(MaxpoolKernel, ChannelsLastTakesEachWindowsMaximum) {
    struct Case {
        int64_t N, H, W, K, S, P, OH, OW;
    };
    // 3x3 stride 2 in ceil mode (SqueezeNet: the last window hangs over the edge), padded 3x3
    // stride 1 (GoogLeNet's branch), 3x3 stride 2 padded (ResNet's stem), plain 2x2, and a batch
    // large enough for the threads
    const Case cases[] = {{1, 8, 8, 3, 2, 0, 4, 4},
                          {2, 7, 6, 3, 1, 1, 7, 6},
                          {1, 9, 9, 3, 2, 1, 5, 5},
                          {3, 6, 8, 2, 2, 0, 3, 4},
                          {9, 16, 16, 3, 2, 1, 8, 8}};
    for (const Case& k : cases)
        for (const int64_t C : {1, 3, 5, 17, 20, 64, 67, 85, 130}) {
            const ConvGeometry g{C, k.H, k.W, C, k.OH, k.OW, k.K, k.K, k.S, k.S, k.P, k.P};
            const size_t in = static_cast<size_t>(k.N * k.H * k.W * C);
            std::vector<float> x(in);
            std::vector<int8_t> q(in);
            std::vector<uint8_t> u(in);
            for (size_t i = 0; i < in; ++i) {
                x[i] = std::sin(0.37f * static_cast<float>(i)) * static_cast<float>(i % 11);
                q[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);
                u[i] = static_cast<uint8_t>(i * 53 % 256);
            }
            std::vector<float> y(static_cast<size_t>(k.N * k.OH * k.OW * C));
            std::vector<int8_t> qy(y.size());
            std::vector<uint8_t> uy(y.size());
            cpu::maxpool_forward(g, k.N, x.data(), y.data(), Layout::nhwc);
            cpu::maxpool_int8_forward(g, k.N, q.data(), qy.data(), Layout::nhwc, false);
            cpu::maxpool_int8_forward(g, k.N, u.data(), uy.data(), Layout::nhwc, true);
            ASSERT_EQ(y, max_of_windows(g, k.N, x)) << "C=" << C << " H=" << k.H << " K=" << k.K;
            ASSERT_EQ(qy, max_of_windows(g, k.N, q)) << "int8 C=" << C << " H=" << k.H;
            ASSERT_EQ(uy, max_of_windows(g, k.N, u)) << "uint8 C=" << C << " H=" << k.H;
        }
}

}  // namespace
}  // namespace lenz
