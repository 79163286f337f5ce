// One optimizer step against values computed by hand, and the learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>

#include "lenz/model_text.h"
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
    ScheduleConfig c{.kind = ScheduleKind::cosine, .base_lr = 1.0, .warmup_epochs = 0};
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

// The schedule as a function, over whole and fractional warm-ups: never above the peak, no jump where
// warm-up ends, and at the floor when the run ends. A fractional warm-up (0.1 epoch of 12 steps)
// once ramped to 10x the peak.
TEST(Schedule, NeverAboveThePeakAndContinuousAtTheEndOfWarmup) {
    const int64_t steps_per_epoch = 12, total = 36;
    for (ScheduleKind kind : {ScheduleKind::constant, ScheduleKind::cosine, ScheduleKind::step})
        for (double warmup : {0.0, 0.05, 0.1, 0.5, 1.0, 1.37, 2.0}) {
            SCOPED_TRACE(::testing::Message() << "kind " << static_cast<int>(kind) << ", warm-up " << warmup);
            const ScheduleConfig c{.kind = kind,
                                   .base_lr = 0.002,
                                   .warmup_epochs = warmup,
                                   .step_every = 1,
                                   .step_gamma = 0.5,
                                   .final_fraction = 0.01};
            double previous = 0;
            for (int64_t s = 0; s < total; ++s) {
                const double lr = learning_rate_at(c, s, steps_per_epoch, total);
                EXPECT_GT(lr, 0.0) << "step " << s;
                EXPECT_LE(lr, c.base_lr * (1 + 1e-12)) << "step " << s;
                // The ramp climbs by at most one warm-up step's share, and nothing after it jumps up.
                const double warmup_steps = warmup * steps_per_epoch;
                if (s > 0 && warmup_steps > 0) {
                    EXPECT_LE(lr - previous, c.base_lr / warmup_steps + 1e-12) << "step " << s;
                }
                if (s > 0 && s >= warmup_steps) {
                    EXPECT_LE(lr, previous * (1 + 1e-12)) << "step " << s;
                }
                previous = lr;
            }
            const double end = learning_rate_at(c, total, steps_per_epoch, total);
            if (kind == ScheduleKind::cosine) {
                EXPECT_NEAR(end, c.base_lr * c.final_fraction, 1e-15);
            }
            if (kind == ScheduleKind::step) {
                EXPECT_NEAR(end, c.base_lr * std::pow(0.5, 3), 1e-15);
            }
        }
}

TEST(Schedule, FractionalWarmupReachesThePeakAndStops) {
    // 0.1 of an epoch of 12 steps: 1.2 warm-up steps. Step 0 is at 1/1.2 of the peak, step 1 at the peak.
    const ScheduleConfig c{.kind = ScheduleKind::constant, .base_lr = 0.002, .warmup_epochs = 0.1};
    EXPECT_NEAR(learning_rate_at(c, 0, 12, 36), 0.002 / 1.2, 1e-15);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 1, 12, 36), 0.002);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 2, 12, 36), 0.002);
}

TEST(Schedule, Step) {
    ScheduleConfig c{
        .kind = ScheduleKind::step, .base_lr = 1.0, .warmup_epochs = 0, .step_every = 2, .step_gamma = 0.5};
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 19, 10, 100), 1.0);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 20, 10, 100), 0.5);
    EXPECT_DOUBLE_EQ(learning_rate_at(c, 45, 10, 100), 0.25);
}

}  // namespace
}  // namespace lenz
