// The pooling kernels against plain sums in double.
#include "kernels/cpu/pool2d.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
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

}  // namespace
}  // namespace lenz
