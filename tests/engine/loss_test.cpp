// The training losses (lenz/loss.h): hand-computed cases, PyTorch's goldens
// (tools/make_loss_goldens.py) in both layouts, finite differences of the loss itself, the errors,
// and a segmentation model's parameter gradients through TrainingStep.
#include "lenz/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/parameter_gradients.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/random.h"

namespace lenz {
namespace {

LossValue classify(const LossConfig& config, const float* logits, const int32_t* labels, int64_t N, int64_t K,
                   float* gradient) {
    return softmax_loss(config, logits, Shape{1, 1, K}, false, Targets{labels, nullptr}, N, gradient);
}

TEST(Loss, CrossEntropyIsStableAndItsGradientIsProbMinusOneHot) {
    const float logits[] = {1000, 1000, 0, -5, 0, 5};
    const int32_t labels[] = {0, 2};
    float d[6];
    const LossValue v = classify({}, logits, labels, 2, 3, d);
    const double p2 = std::exp(5.0) / (std::exp(-5.0) + 1 + std::exp(5.0));
    EXPECT_NEAR(v.loss_sum, std::log(2.0) - std::log(p2), 1e-6);  // exp and sums in float
    EXPECT_NEAR(d[0], (0.5 - 1) / 2, 1e-7);
    EXPECT_NEAR(d[1], 0.5 / 2, 1e-7);
    EXPECT_NEAR(d[5], (p2 - 1) / 2, 1e-7);
    EXPECT_EQ(v.correct, 2);  // the first row ties; argmax takes the first
    EXPECT_EQ(v.counted, 2);
}

// With label smoothing e the targets are q = (1 - e) onehot + e / K: the loss is -Σ q log p (what
// PyTorch's CrossEntropyLoss(label_smoothing=e) computes, here by hand in double precision) and
// its gradient, checked by finite differences of that loss, is (p - q) / N.
TEST(Loss, LabelSmoothingAimsAtTheSmoothedTargets) {
    const float logits[] = {2.0f, -1.0f, 0.5f, 0.25f, 3.0f, -2.0f, 1.0f, 0.0f};
    const int32_t labels[] = {0, 1};  // the first row's largest logit is its label, the second's is not
    const float e = 0.1f;
    auto smoothed_loss = [&](const float* z) {
        double total = 0;
        for (int n = 0; n < 2; ++n) {
            double sum = 0;
            for (int k = 0; k < 4; ++k) sum += std::exp(double(z[n * 4 + k]));
            for (int k = 0; k < 4; ++k) {
                const double q = (k == labels[n] ? 1 - e : 0.0) + e / 4.0;
                total -= q * (z[n * 4 + k] - std::log(sum));
            }
        }
        return total;
    };
    float d[8];
    LossConfig config;
    config.label_smoothing = e;
    const LossValue v = classify(config, logits, labels, 2, 4, d);
    EXPECT_NEAR(v.loss_sum, smoothed_loss(logits), 1e-5);
    for (int i = 0; i < 8; ++i) {
        float plus[8], minus[8];
        std::copy(logits, logits + 8, plus);
        std::copy(logits, logits + 8, minus);
        plus[i] += 1e-3f;
        minus[i] -= 1e-3f;
        const double numeric = (smoothed_loss(plus) - smoothed_loss(minus)) / 2e-3 / 2;  // mean over N = 2
        EXPECT_NEAR(d[i], numeric, 1e-4) << i;
    }
    EXPECT_EQ(v.correct, 1);
}

// Two pixels of two classes with equal logits: p = 1/2 each. The first pixel is class 0, the
// second ignored: the loss is log 2 over the one pixel that counts, and the ignored one gets no
// gradient.
TEST(Loss, PixelCrossEntropyLeavesIgnoredPixelsOut) {
    const float logits[] = {0.5f, 0.5f, 0.5f, 0.5f};  // (K = 2, H = 1, W = 2)
    const uint8_t mask[] = {0, kIgnorePixel};
    float d[4];
    const LossValue v = softmax_loss({}, logits, Shape{1, 2, 2}, false, Targets{nullptr, mask}, 1, d);
    EXPECT_NEAR(v.loss_sum, std::log(2.0), 1e-7);
    EXPECT_EQ(v.counted, 1);
    EXPECT_EQ(v.correct, 1);        // a tie goes to the first class
    EXPECT_NEAR(d[0], -0.5, 1e-7);  // class 0, pixel 0: p - 1
    EXPECT_NEAR(d[2], 0.5, 1e-7);   // class 1, pixel 0
    EXPECT_EQ(d[1], 0.0f);
    EXPECT_EQ(d[3], 0.0f);
    const uint8_t all_ignored[] = {kIgnorePixel, kIgnorePixel};
    const LossValue none =
        softmax_loss({}, logits, Shape{1, 2, 2}, false, Targets{nullptr, all_ignored}, 1, d);
    EXPECT_EQ(none.loss_sum, 0.0);
    EXPECT_EQ(none.counted, 0);
    for (float g : d) EXPECT_EQ(g, 0.0f);
}

struct GoldenCase {
    std::string name;
    LossConfig config;
    int64_t n = 0, k = 0, h = 0, w = 0;
    std::vector<float> logits, gradient;
    std::vector<uint8_t> masks;
    double value = 0;
};

std::vector<GoldenCase> golden_cases() {
    std::ifstream in(std::filesystem::path(LENZ_SOURCE_DIR) / "tests" / "golden" / "loss" /
                     "softmax_losses.json");
    const nlohmann::json cases = nlohmann::json::parse(in);
    std::vector<GoldenCase> out;
    for (const nlohmann::json& c : cases) {
        GoldenCase g;
        g.name = c["name"];
        g.config.kind = parse_loss(c["loss"]);
        g.config.class_weights = c["class_weights"].get<std::vector<float>>();
        g.config.label_smoothing = c["label_smoothing"].get<float>();
        const std::vector<int64_t> shape = c["shape"];
        g.n = shape[0], g.k = shape[1], g.h = shape[2], g.w = shape[3];
        g.logits = c["logits"].get<std::vector<float>>();
        g.gradient = c["gradient"].get<std::vector<float>>();
        for (int v : c["masks"]) g.masks.push_back(static_cast<uint8_t>(v));
        g.value = c["value"];
        out.push_back(std::move(g));
    }
    return out;
}

// (N, K, H, W) -> (N, H, W, K).
std::vector<float> to_channels_last(const std::vector<float>& planar, int64_t N, int64_t K, int64_t P) {
    std::vector<float> out(planar.size());
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k)
            for (int64_t p = 0; p < P; ++p)
                out[static_cast<size_t>((n * P + p) * K + k)] =
                    planar[static_cast<size_t>((n * K + k) * P + p)];
    return out;
}

TEST(Loss, PixelLossesMatchPyTorchInBothLayouts) {
    const std::vector<GoldenCase> cases = golden_cases();
    ASSERT_EQ(cases.size(), 5u);
    for (const GoldenCase& c : cases) {
        SCOPED_TRACE(c.name);
        const Shape shape{c.h, c.w, c.k};
        const Targets targets{nullptr, c.masks.data()};
        std::vector<float> d(c.logits.size());
        const LossValue planar =
            softmax_loss(c.config, c.logits.data(), shape, false, targets, c.n, d.data());
        EXPECT_NEAR(planar.loss_sum / static_cast<double>(c.n), c.value, 2e-6 * (1 + std::abs(c.value)));
        for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], c.gradient[i], 2e-7) << i;
        const int64_t P = c.h * c.w;
        const std::vector<float> logits_nhwc = to_channels_last(c.logits, c.n, c.k, P),
                                 want_nhwc = to_channels_last(c.gradient, c.n, c.k, P);
        std::vector<float> d_nhwc(d.size());
        const LossValue nhwc =
            softmax_loss(c.config, logits_nhwc.data(), shape, true, targets, c.n, d_nhwc.data());
        EXPECT_NEAR(nhwc.loss_sum, planar.loss_sum, 1e-9);
        for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d_nhwc[i], want_nhwc[i], 2e-7) << i;
        // The gradient may be written over the logits.
        std::vector<float> in_place = c.logits;
        softmax_loss(c.config, in_place.data(), shape, false, targets, c.n, in_place.data());
        EXPECT_EQ(in_place, d);
    }
}

// Every loss's gradient against central differences of its own value, through an element-wise
// output activation (sigmoid) too.
TEST(Loss, GradientsMatchFiniteDifferences) {
    const int64_t N = 2, K = 3, H = 2, W = 3, P = H * W;
    Rng rng(7);
    std::vector<float> logits(static_cast<size_t>(N * K * P));
    for (float& v : logits) v = rng.uniform(0.05f, 0.95f);  // sigmoid outputs
    std::vector<uint8_t> masks{0, 1, 2, kIgnorePixel, 1, 1, 2, 2, 0, 1, kIgnorePixel, 0};
    const Shape shape{H, W, K};
    for (const char* kind : {"ce", "dice", "ce+dice"}) {
        for (const ActivationSpec act : {ActivationSpec{}, ActivationSpec{Activation::sigmoid}}) {
            SCOPED_TRACE(std::string(kind) + " " + act.str());
            LossConfig config;
            config.kind = parse_loss(kind);
            config.class_weights = {0.5f, 1.0f, 2.0f};
            config.label_smoothing = 0.1f;
            std::vector<float> d(logits.size());
            softmax_loss(config, logits.data(), shape, false, Targets{nullptr, masks.data()}, N, d.data(),
                         act);
            for (size_t i = 0; i < logits.size(); ++i) {
                // With sigmoid the logits are its outputs y; the loss's input is z = logit(y).
                auto loss_at = [&](double delta) {
                    std::vector<float> moved = logits;
                    if (act.kind == Activation::sigmoid) {
                        const double y = logits[i], z = std::log(y / (1 - y)) + delta;
                        moved[i] = static_cast<float>(1 / (1 + std::exp(-z)));
                    } else {
                        moved[i] = static_cast<float>(logits[i] + delta);
                    }
                    // The loss is of the logits as stored; with sigmoid, as if the layer's output
                    // were its input (what backward means by dL/dz · f'(z)).
                    return softmax_loss(config, moved.data(), shape, false, Targets{nullptr, masks.data()}, N,
                                        nullptr)
                               .loss_sum /
                           N;
                };
                if (act.kind == Activation::sigmoid) {
                    // dL/dz = dL/dy · y(1 - y): compare against the plain gradient times the slope.
                    std::vector<float> plain(logits.size());
                    softmax_loss(config, logits.data(), shape, false, Targets{nullptr, masks.data()}, N,
                                 plain.data());
                    EXPECT_NEAR(d[i], plain[i] * logits[i] * (1 - logits[i]), 1e-7) << i;
                    continue;
                }
                const double h = 1e-2;
                const double numeric = (loss_at(h) - loss_at(-h)) / (2 * h);
                EXPECT_NEAR(d[i], numeric, 2e-4 * (1 + std::abs(numeric))) << i;
            }
        }
    }
}

TEST(Loss, BadTargetsAndConfigurationsSayWhat) {
    const float logits[6] = {};
    const uint8_t bad_mask[] = {0, 7};
    try {
        softmax_loss({}, logits, Shape{1, 2, 3}, false, Targets{nullptr, bad_mask}, 1, nullptr);
        FAIL() << "no error";
    } catch (const ShapeError& e) {
        EXPECT_STREQ(e.what(),
                     "mask value 7 at row 0, column 1 of image 0 is outside the model's 3 classes "
                     "(255 is ignored)");
    }
    const int32_t bad_label[] = {3};
    EXPECT_THROW(classify({}, logits, bad_label, 1, 3, nullptr), ShapeError);
    const int32_t label[] = {1};
    LossConfig dice;
    dice.kind = LossKind::dice;
    EXPECT_THROW(classify(dice, logits, label, 1, 3, nullptr), ShapeError);
    LossConfig weights;
    weights.class_weights = {1.0f, 2.0f};
    EXPECT_THROW(classify(weights, logits, label, 1, 3, nullptr), ShapeError);
    EXPECT_THROW(parse_loss("focal"), ParseError);
    for (const char* name : {"ce", "dice", "ce+dice"}) EXPECT_EQ(loss_name(parse_loss(name)), name);
}

// A fully convolutional model trained per pixel: every parameter's gradient from TrainingStep
// against central differences of its mean loss, in both the planar and channels-last layouts the
// planner picks for its values.
TEST(Loss, SegmentationModelGradientsMatchFiniteDifferences) {
    constexpr int64_t N = 2;
    Model m = parse_model(
        "input 6x6x2\n"
        "conv 4 3x3 padding=same tanh name=enc\n"
        "maxpool 2\n"
        "convtranspose 3 2 stride=2 tanh name=up\n"
        "concat up enc\n"
        "conv 3 1x1\n",
        "seg.lenz");
    m.init_params(3);
    Rng rng(5);
    Buffer x(N * m.input_shape().elements());
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.0f, 1.0f);
    std::vector<uint8_t> masks(static_cast<size_t>(N * 36));
    for (size_t i = 0; i < masks.size(); ++i)
        masks[i] = i % 7 == 3 ? kIgnorePixel : static_cast<uint8_t>(i % 3);
    for (const char* kind : {"ce", "ce+dice"}) {
        SCOPED_TRACE(kind);
        TrainingStep step(m, N);
        LossConfig config;
        config.kind = parse_loss(kind);
        step.set_loss(config);
        const Targets targets{nullptr, masks.data()};
        const LossValue first = step.run(x.data(), targets, N, 1);
        EXPECT_EQ(first.counted,
                  N * 36 - static_cast<int64_t>(std::count(masks.begin(), masks.end(), kIgnorePixel)));
        testing::expect_parameter_gradients_match(
            m, [&] { return step.run(x.data(), targets, N, 1).loss_sum / N; }, 0.8);
    }
}

}  // namespace
}  // namespace lenz
