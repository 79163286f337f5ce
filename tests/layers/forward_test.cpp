// Layer outputs on cases small enough to compute by hand.
#include <gtest/gtest.h>

#include "layers/gradient_check.h"
#include "lenz/error.h"

namespace lenz::testing {

void set(Buffer& b, std::initializer_list<float> values) {
    ASSERT_EQ(b.size(), static_cast<int64_t>(values.size()));
    int64_t i = 0;
    for (float v : values) b[i++] = v;
}

void expect_values(const Buffer& b, std::initializer_list<float> values) {
    ASSERT_EQ(b.size(), static_cast<int64_t>(values.size()));
    int64_t i = 0;
    for (float v : values) {
        EXPECT_NEAR(b[i], v, 1e-5) << "index " << i;
        ++i;
    }
}

Buffer& param(Layer& layer, const std::string& name) {
    for (ParamRef& p : layer.params())
        if (p.name == name) return *p.value;
    throw Error("no parameter " + name);
}

TEST(ConvForward, TwoByTwoKernelOnThreeByThree) {
    // x = 1..9 in a 3x3 grid; kernel [[1, 0], [0, -1]] computes x[i][j] - x[i+1][j+1] = -4 everywhere; bias
    // 0.5.
    LayerHarness h("conv 1 2x2", {3, 3, 1}, 1);
    set(h.x(), {1, 2, 3, 4, 5, 6, 7, 8, 9});
    set(param(h.layer(), "weight"), {1, 0, 0, -1});
    set(param(h.layer(), "bias"), {0.5f});
    expect_values(h.forward(false), {-3.5f, -3.5f, -3.5f, -3.5f});
}

TEST(ConvForward, SamePaddingStride2PutsTheExtraPixelBottomRight) {
    // 4x4 input of ones, 3x3 kernel of ones, stride 2, same: output 2x2, total padding 1 (bottom/right).
    // Top-left window covers rows 0..2, cols 0..2 (9 ones); bottom-right covers rows 2..3, cols 2..3 (4
    // ones).
    LayerHarness h("conv 1 3x3 stride=2 padding=same nobias", {4, 4, 1}, 1);
    for (int64_t i = 0; i < 16; ++i) h.x()[i] = 1;
    for (int64_t i = 0; i < 9; ++i) param(h.layer(), "weight")[i] = 1;
    expect_values(h.forward(false), {9, 6, 6, 4});
}

TEST(ConvForward, MultiChannelSumsOverChannelsWithRelu) {
    // Two channels, 1x1 kernel weights (1, -2), bias -1: y = relu(a - 2b - 1).
    LayerHarness h("conv 1 1x1 relu", {1, 2, 2}, 1);
    set(h.x(), {5, 1, 1, 0});  // channel 0: (5, 1); channel 1: (1, 0)
    set(param(h.layer(), "weight"), {1, -2});
    set(param(h.layer(), "bias"), {-1});
    expect_values(h.forward(false), {2, 0});
}

TEST(PoolForward, MaxAndAverage) {
    LayerHarness m("maxpool 2", {2, 4, 1}, 1);
    set(m.x(), {1, 5, 2, 0, 3, 4, 8, -1});
    expect_values(m.forward(false), {5, 8});
    LayerHarness a("avgpool 2", {2, 4, 1}, 1);
    set(a.x(), {1, 5, 2, 0, 3, 4, 8, -1});
    expect_values(a.forward(false), {3.25f, 2.25f});
}

TEST(PoolForward, AverageIgnoresPadding) {
    // 3x3 input, window 2 stride 2 same: output 2x2, padding at bottom/right only; the corner window
    // holds the single real value 9, so its average is 9, not 9/4.
    LayerHarness a("avgpool 2 padding=same", {3, 3, 1}, 1);
    set(a.x(), {1, 2, 3, 4, 5, 6, 7, 8, 9});
    expect_values(a.forward(false), {3, 4.5f, 7.5f, 9});
}

TEST(PoolForward, AverageCountsPaddingWhenAsked) {
    // The same input padded by one all round, window 3, stride 2: every window divides by 9 (PyTorch's
    // count_include_pad=True); the top-left one holds 1, 2, 4 and 5 and five zeros of padding.
    LayerHarness a("avgpool 3 stride=2 padding=1 count-padding", {3, 3, 1}, 1);
    set(a.x(), {1, 2, 3, 4, 5, 6, 7, 8, 9});
    expect_values(a.forward(false), {12.0f / 9, 16.0f / 9, 24.0f / 9, 28.0f / 9});
}

TEST(PoolForward, Global) {
    LayerHarness a("globalavgpool", {5, 5, 1}, 1);
    for (int64_t i = 0; i < 25; ++i) a.x()[i] = static_cast<float>(i);
    expect_values(a.forward(false), {12});
    LayerHarness m("globalmaxpool", {5, 5, 1}, 1);
    for (int64_t i = 0; i < 25; ++i) m.x()[i] = static_cast<float>(i);
    expect_values(m.forward(false), {24});
}

TEST(DenseForward, WeightsTimesInputsPlusBias) {
    LayerHarness h("dense 2", {1, 1, 3}, 1);
    set(h.x(), {1, 2, 3});
    set(param(h.layer(), "weight"), {1, 0, -1, 0.5f, 0.5f, 0.5f});
    set(param(h.layer(), "bias"), {10, 0});
    expect_values(h.forward(false), {8, 3});
}

TEST(SoftmaxForward, SumsToOneAndIsStable) {
    LayerHarness h("softmax", {1, 1, 3}, 1);
    set(h.x(), {1000, 1001, 1002});  // would overflow exp() without subtracting the max
    const float e1 = std::exp(-1.0f), e2 = std::exp(-2.0f), z = 1 + e1 + e2;
    expect_values(h.forward(false), {e2 / z, e1 / z, 1 / z});
}

TEST(DropoutForward, InvertedInTrainingIdentityAtInference) {
    LayerHarness h("dropout 0.5", {10, 10, 10}, 1);
    for (int64_t i = 0; i < h.x().size(); ++i) h.x()[i] = 1;
    const Buffer& y = h.forward(true);
    int64_t zeros = 0;
    for (int64_t i = 0; i < y.size(); ++i) {
        EXPECT_TRUE(y[i] == 0.0f || y[i] == 2.0f);
        zeros += y[i] == 0.0f;
    }
    EXPECT_NEAR(static_cast<double>(zeros) / y.size(), 0.5, 0.05);
    const Buffer& y2 = h.forward(false);
    for (int64_t i = 0; i < y2.size(); ++i) ASSERT_EQ(y2[i], 1.0f);
}

TEST(BatchNormForward, NormalisesInTrainingUsesRunningStatsAtInference) {
    LayerHarness h("batchnorm", {1, 1, 1}, 4);
    set(h.x(), {1, 2, 3, 4});  // mean 2.5, biased variance 1.25
    const float s = 1.0f / std::sqrt(1.25f + 1e-5f);
    expect_values(h.forward(true), {-1.5f * s, -0.5f * s, 0.5f * s, 1.5f * s});
    // running mean 0.9*0 + 0.1*2.5; running var 0.9*1 + 0.1*(1.25*4/3)
    expect_values(param(h.layer(), "running_mean"), {0.25f});
    expect_values(param(h.layer(), "running_var"), {0.9f + 0.1f * 5.0f / 3.0f});
    const float rv = 0.9f + 0.1f * 5.0f / 3.0f;
    const float k = 1.0f / std::sqrt(rv + 1e-5f);
    expect_values(h.forward(false), {0.75f * k, 1.75f * k, 2.75f * k, 3.75f * k});
}

}  // namespace lenz::testing
