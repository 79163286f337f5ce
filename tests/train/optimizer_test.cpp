// One optimizer step against values computed by hand, and the learning-rate schedules.
#include <gtest/gtest.h>

#include "lenz/train.h"

namespace lenz {
namespace {

// A model with exactly two weights, w = (1, 2), whose gradient we set to g = (0.5, -1).
struct TwoWeights {
    Model model = parse_model("input 1x1x2\ndense 1 nobias\n", "m");
    Buffer* w;
    Buffer* g;
    TwoWeights() {
        model.init_params(1);
        model.allocate_gradients();
        ParamRef p = model.layer(0).params()[0];
        w = p.value;
        g = p.grad;
        (*w)[0] = 1;
        (*w)[1] = 2;
        set_grad();
    }
    void set_grad() {
        (*g)[0] = 0.5f;
        (*g)[1] = -1;
    }
};

TEST(Optimizer, PlainSgd) {
    TwoWeights t;
    Optimizer opt(t.model, {.kind = OptimizerKind::sgd});
    opt.step(0.1);
    EXPECT_FLOAT_EQ((*t.w)[0], 0.95f);
    EXPECT_FLOAT_EQ((*t.w)[1], 2.1f);
}

TEST(Optimizer, SgdWeightDecayAddsToTheGradient) {
    TwoWeights t;
    Optimizer opt(t.model, {.kind = OptimizerKind::sgd, .weight_decay = 0.1});
    opt.step(0.1);
    EXPECT_FLOAT_EQ((*t.w)[0], 1 - 0.1f * (0.5f + 0.1f));
    EXPECT_FLOAT_EQ((*t.w)[1], 2 - 0.1f * (-1 + 0.2f));
}

TEST(Optimizer, MomentumSecondStepUsesTheVelocity) {
    TwoWeights t;
    Optimizer opt(t.model, {.kind = OptimizerKind::momentum, .momentum = 0.9});
    opt.step(0.1);  // velocity = g; w = 1 - 0.05
    EXPECT_FLOAT_EQ((*t.w)[0], 0.95f);
    opt.step(0.1);  // velocity = 0.9 g + g = 1.9 g; w = 0.95 - 0.1 * 0.95
    EXPECT_FLOAT_EQ((*t.w)[0], 0.95f - 0.095f);
    EXPECT_FLOAT_EQ((*t.w)[1], 2.1f + 0.19f);
}

TEST(Optimizer, Nesterov) {
    TwoWeights t;
    Optimizer opt(t.model, {.kind = OptimizerKind::momentum, .momentum = 0.9, .nesterov = true});
    opt.step(0.1);  // velocity = g; update = g + 0.9 g
    EXPECT_FLOAT_EQ((*t.w)[0], 1 - 0.1f * 1.9f * 0.5f);
}

TEST(Optimizer, AdamFirstStepMovesByTheLearningRate) {
    TwoWeights t;
    Optimizer opt(t.model, {.kind = OptimizerKind::adam});
    opt.step(0.1);  // bias-corrected m / sqrt(v) = sign(g)
    EXPECT_NEAR((*t.w)[0], 0.9, 1e-6);
    EXPECT_NEAR((*t.w)[1], 2.1, 1e-6);
    // second step with gradient (0.5, -1) again: m_hat = g, v_hat = g^2 -> the same move
    opt.step(0.1);
    EXPECT_NEAR((*t.w)[0], 0.8, 1e-5);
    ASSERT_EQ(opt.state().size(), 2u);
    EXPECT_EQ(opt.state()[0].name, "1.dense.weight.m");
}

TEST(Optimizer, AdamWDecaysTheWeightsApart) {
    TwoWeights t;
    Optimizer opt(t.model, {.kind = OptimizerKind::adamw, .weight_decay = 0.1});
    opt.step(0.1);  // w *= 1 - 0.01, then w -= 0.1 * sign(g)
    EXPECT_NEAR((*t.w)[0], 0.99 - 0.1, 1e-6);
    EXPECT_NEAR((*t.w)[1], 1.98 + 0.1, 1e-6);
}

TEST(Schedule, Cosine) {
    ScheduleConfig c{.kind = ScheduleKind::cosine, .base_lr = 1.0};
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 0, 10, 100), 1.0);
    EXPECT_NEAR(learning_rate_at(c, 50, 10, 100), 0.5, 1e-12);
    EXPECT_NEAR(learning_rate_at(c, 100, 10, 100), 0.0, 1e-12);
}

TEST(Schedule, WarmupIsLinearThenTheSchedule) {
    ScheduleConfig c{.kind = ScheduleKind::constant, .base_lr = 1.0, .warmup_epochs = 1};
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 0, 10, 100), 0.1);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 4, 10, 100), 0.5);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 10, 10, 100), 1.0);
    ScheduleConfig cos{.kind = ScheduleKind::cosine, .base_lr = 1.0, .warmup_epochs = 1};
    EXPECT_DOUBLE_EQ(learning_rate_at(cos, 10, 10, 110), 1.0);  // the cosine starts after warm-up
    EXPECT_NEAR(learning_rate_at(cos, 60, 10, 110), 0.5, 1e-12);
}

TEST(Schedule, Step) {
    ScheduleConfig c{.kind = ScheduleKind::step, .base_lr = 1.0, .step_every = 2, .step_gamma = 0.5};
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 19, 10, 100), 1.0);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 20, 10, 100), 0.5);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 45, 10, 100), 0.25);
}

TEST(Loss, SoftmaxCrossEntropyIsStableAndItsGradientIsProbMinusOneHot) {
    const float logits[] = {1000, 1000, 0, -5, 0, 5};
    const int32_t labels[] = {0, 2};
    float d[6];
    int64_t correct = 0;
    const double loss = softmax_cross_entropy(logits, labels, 2, 3, d, &correct);
    const double p2 = std::exp(5.0) / (std::exp(-5.0) + 1 + std::exp(5.0));
    EXPECT_NEAR(loss, std::log(2.0) - std::log(p2), 1e-6);  // exp and sums in float
    EXPECT_NEAR(d[0], (0.5 - 1) / 2, 1e-7);
    EXPECT_NEAR(d[1], 0.5 / 2, 1e-7);
    EXPECT_NEAR(d[5], (p2 - 1) / 2, 1e-7);
    EXPECT_EQ(correct, 2);  // the first row ties; argmax takes the first
}

}  // namespace
}  // namespace lenz
