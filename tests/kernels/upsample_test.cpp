// The upsampling kernels against plain loops in double written from the definitions, in both
// layouts, over odd sizes, one channel, scales 1 to 4; backward is deterministic.
#include "kernels/cpu/upsample.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lenz {
namespace {

struct UpsampleCase {
    int64_t N, C, H, W, SH, SW;
    bool bilinear, align;
    std::string str() const {
        return "N=" + std::to_string(N) + " C=" + std::to_string(C) + " H=" + std::to_string(H) +
               " W=" + std::to_string(W) + " scale " + std::to_string(SH) + "x" + std::to_string(SW) +
               (bilinear ? align ? " bilinear align-corners" : " bilinear" : " nearest");
    }
};

// The input indices and weights output o reads along one axis, from the definitions:
// nearest floor(o / S); bilinear at (o + 0.5) / S - 0.5 (at least 0), or o · (in - 1) / (out - 1).
struct UpsampleAxisWeights {
    std::vector<std::array<int64_t, 2>> index;
    std::vector<std::array<double, 2>> weight;
};
UpsampleAxisWeights upsample_reference_axis(int64_t in, int64_t S, bool bilinear, bool align) {
    const int64_t out = in * S;
    UpsampleAxisWeights a;
    for (int64_t o = 0; o < out; ++o) {
        if (!bilinear) {
            a.index.push_back({o / S, o / S});
            a.weight.push_back({1.0, 0.0});
            continue;
        }
        double x = align ? (out > 1 ? static_cast<double>(o) * static_cast<double>(in - 1) /
                                          static_cast<double>(out - 1)
                                    : 0.0)
                         : std::max((static_cast<double>(o) + 0.5) / static_cast<double>(S) - 0.5, 0.0);
        if (S == 1) x = static_cast<double>(o);
        const auto i0 = std::min(static_cast<int64_t>(std::floor(x)), in - 1);
        const int64_t i1 = std::min(i0 + 1, in - 1);
        const double l = std::clamp(x - static_cast<double>(i0), 0.0, 1.0);
        a.index.push_back({i0, i1});
        a.weight.push_back({1.0 - l, l});
    }
    return a;
}

// y: (N, C, OH, OW) in double.
std::vector<double> upsample_reference_forward(const UpsampleCase& k, const std::vector<float>& x) {
    const UpsampleAxisWeights rows = upsample_reference_axis(k.H, k.SH, k.bilinear, k.align),
                              cols = upsample_reference_axis(k.W, k.SW, k.bilinear, k.align);
    const int64_t OH = k.H * k.SH, OW = k.W * k.SW;
    std::vector<double> y(static_cast<size_t>(k.N * k.C * OH * OW));
    for (int64_t p = 0; p < k.N * k.C; ++p)
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                double sum = 0;
                for (int a = 0; a < 2; ++a)
                    for (int b = 0; b < 2; ++b)
                        sum +=
                            rows.weight[static_cast<size_t>(oh)][a] *
                            cols.weight[static_cast<size_t>(ow)][b] *
                            x[static_cast<size_t>((p * k.H + rows.index[static_cast<size_t>(oh)][a]) * k.W +
                                                  cols.index[static_cast<size_t>(ow)][b])];
                y[static_cast<size_t>((p * OH + oh) * OW + ow)] = sum;
            }
    return y;
}

// dx: (N, C, H, W) in double, each dy handed to what it was read from.
std::vector<double> upsample_reference_backward(const UpsampleCase& k, const std::vector<float>& dy) {
    const UpsampleAxisWeights rows = upsample_reference_axis(k.H, k.SH, k.bilinear, k.align),
                              cols = upsample_reference_axis(k.W, k.SW, k.bilinear, k.align);
    const int64_t OH = k.H * k.SH, OW = k.W * k.SW;
    std::vector<double> dx(static_cast<size_t>(k.N * k.C * k.H * k.W), 0.0);
    for (int64_t p = 0; p < k.N * k.C; ++p)
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow)
                for (int a = 0; a < 2; ++a)
                    for (int b = 0; b < 2; ++b)
                        dx[static_cast<size_t>((p * k.H + rows.index[static_cast<size_t>(oh)][a]) * k.W +
                                               cols.index[static_cast<size_t>(ow)][b])] +=
                            rows.weight[static_cast<size_t>(oh)][a] *
                            cols.weight[static_cast<size_t>(ow)][b] *
                            dy[static_cast<size_t>((p * OH + oh) * OW + ow)];
    return dx;
}

// (N, C, H, W) -> (N, H, W, C) and back.
std::vector<float> upsample_to_nhwc(const std::vector<float>& v, int64_t N, int64_t C, int64_t H, int64_t W) {
    std::vector<float> out(v.size());
    for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < H * W; ++p)
                out[static_cast<size_t>((n * H * W + p) * C + c)] =
                    v[static_cast<size_t>((n * C + c) * H * W + p)];
    return out;
}

std::vector<float> upsample_pattern(int64_t size, float phase) {
    std::vector<float> v(static_cast<size_t>(size));
    for (int64_t i = 0; i < size; ++i)
        v[static_cast<size_t>(i)] = std::sin(0.37f * static_cast<float>(i) + phase);
    return v;
}

struct UpsampleRun {
    std::vector<float> y, dx;  // in the layout asked for
};
UpsampleRun run_upsample_kernels(const UpsampleCase& k, const std::vector<float>& x,
                                 const std::vector<float>& dy, Layout layout, int threads) {
    const std::vector<cpu::UpsampleTap> rows = cpu::upsample_taps(k.H, k.H * k.SH, k.bilinear, k.align),
                                        cols = cpu::upsample_taps(k.W, k.W * k.SW, k.bilinear, k.align);
    const cpu::UpsampleGeometry g{k.C,        k.H,        k.W,         k.H * k.SH,
                                  k.W * k.SW, k.bilinear, rows.data(), cols.data()};
    UpsampleRun r;
    r.y.resize(dy.size());
    cpu::upsample_forward(g, k.N, x.data(), r.y.data(), layout);
    const int64_t image = k.C * k.H * k.W;
    r.dx.resize(x.size());
    std::vector<float> workspace(static_cast<size_t>(threads * image));
    cpu::upsample_backward(
        g, k.N, dy.data(),
        [&](int64_t n, const float* image_dx) {
            std::copy(image_dx, image_dx + image, r.dx.begin() + n * image);
        },
        workspace.data(), threads, layout);
    return r;
}

TEST(UpsampleKernel, BothLayoutsMatchTheDefinitionsForwardAndBackward) {
    std::vector<UpsampleCase> cases;
    for (const auto& [N, C, H, W] : {std::array<int64_t, 4>{2, 3, 5, 7},
                                     {1, 1, 1, 1},
                                     {1, 1, 3, 1},
                                     {3, 17, 4, 3},
                                     {1, 64, 9, 10},
                                     {2, 5, 32, 40}})
        for (const auto& [SH, SW] : {std::array<int64_t, 2>{2, 2}, {2, 3}, {1, 4}, {3, 1}})
            for (const auto& [bilinear, align] :
                 {std::array<bool, 2>{false, false}, {true, false}, {true, true}})
                cases.push_back({N, C, H, W, SH, SW, bilinear, align});
    for (const UpsampleCase& k : cases) {
        SCOPED_TRACE(k.str());
        const int64_t OH = k.H * k.SH, OW = k.W * k.SW;
        const std::vector<float> x = upsample_pattern(k.N * k.C * k.H * k.W, 0.1f),
                                 dy = upsample_pattern(k.N * k.C * OH * OW, 0.7f);
        const std::vector<double> want_y = upsample_reference_forward(k, x),
                                  want_dx = upsample_reference_backward(k, dy);
        const UpsampleRun planar = run_upsample_kernels(k, x, dy, Layout::nchw, 2);
        const UpsampleRun last =
            run_upsample_kernels(k, upsample_to_nhwc(x, k.N, k.C, k.H, k.W),
                                 upsample_to_nhwc(dy, k.N, k.C, OH, OW), Layout::nhwc, 2);
        for (size_t i = 0; i < want_y.size(); ++i)
            ASSERT_NEAR(planar.y[i], want_y[i], 1e-5) << "y[" << i << "], (N, C, H, W)";
        const std::vector<float> want_y_nhwc =
            upsample_to_nhwc(std::vector<float>(want_y.begin(), want_y.end()), k.N, k.C, OH, OW);
        for (size_t i = 0; i < want_y_nhwc.size(); ++i)
            ASSERT_NEAR(last.y[i], want_y_nhwc[i], 1e-5) << "y[" << i << "], (N, H, W, C)";
        // A gradient sums up to S_h·S_w·4 shares: its float error grows with them.
        const double tolerance = 1e-5 * static_cast<double>(k.SH * k.SW * 4);
        for (size_t i = 0; i < want_dx.size(); ++i)
            ASSERT_NEAR(planar.dx[i], want_dx[i], tolerance) << "dx[" << i << "], (N, C, H, W)";
        const std::vector<float> want_dx_nhwc =
            upsample_to_nhwc(std::vector<float>(want_dx.begin(), want_dx.end()), k.N, k.C, k.H, k.W);
        for (size_t i = 0; i < want_dx_nhwc.size(); ++i)
            ASSERT_NEAR(last.dx[i], want_dx_nhwc[i], tolerance) << "dx[" << i << "], (N, H, W, C)";
    }
}

// One image a thread, in a fixed order: the same bits whatever the thread count.
TEST(UpsampleKernel, BackwardIsTheSameOnAnyNumberOfThreads) {
    const UpsampleCase k{5, 6, 7, 9, 2, 3, true, false};
    const std::vector<float> x = upsample_pattern(k.N * k.C * k.H * k.W, 0.2f),
                             dy = upsample_pattern(k.N * k.C * 14 * 27, 0.4f);
    for (const Layout layout : {Layout::nchw, Layout::nhwc}) {
        const UpsampleRun one = run_upsample_kernels(k, x, dy, layout, 1),
                          three = run_upsample_kernels(k, x, dy, layout, 3);
        EXPECT_EQ(one.dx, three.dx);
        EXPECT_EQ(one.y, three.y);
    }
}

}  // namespace
}  // namespace lenz
