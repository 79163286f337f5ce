// elu, logsoftmax and prelu in bf16 and int8: a model that uses each of them, standalone and fused,
// gives the float answer within the precision's rounding, and trains in bf16 to the float loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "lenz/engine.h"
#include "lenz/model_text.h"
#include "lenz/quantize.h"
#include "lenz/random.h"

namespace lenz::testing {
namespace {

constexpr const char* kActivationNet =
    "input 8x8x3\nconv 8 3x3 padding=same elu\nprelu channels\nconv 6 3x3 padding=same\nelu=0.5\n"
    "prelu\nconv 5 1x1 logsoftmax\nconv 4 3x3 stride=2 padding=same\nlogsoftmax\nglobalavgpool\nflatten\n"
    "dense 6 elu=2\nprelu channels\ndense 4 logsoftmax\n";

std::vector<float> activation_images(int64_t count, int64_t elements, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(count * elements));
    for (float& f : v) f = rng.uniform(-1.0f, 1.0f);
    return v;
}

// The largest difference between a float run's outputs and another precision's, and the largest output.
std::pair<float, float> activation_run_difference(Model& m, const std::vector<float>& x, int64_t N,
                                                  Precision p) {
    std::vector<float> want;
    {
        Inference f32(m, N);
        const float* y = f32.run(x.data(), N);
        want.assign(y, y + N * m.output_shape().elements());
    }
    Inference other(m, N, p);
    const float* y = other.run(x.data(), N);
    float worst = 0, largest = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        worst = std::max(worst, std::abs(y[i] - want[i]));
        largest = std::max(largest, std::abs(want[i]));
    }
    return {worst, largest};
}

// Slopes other than PyTorch's 0.25, one per channel different, so that the layer's weight counts.
void spread_slopes(Model& m) {
    for (Model::NamedParam& p : m.named_params())
        if (p.name.find(".prelu.") != std::string::npos)
            for (int64_t k = 0; k < p.ref.value->size(); ++k)
                (*p.ref.value)[k] = 0.1f + 0.07f * static_cast<float>(k);
}

TEST(ActivationPrecision, Bf16InferenceAndTrainingGiveTheFloatAnswerWithinBf16Rounding) {
    if (!cpu_supports(Precision::bf16)) GTEST_SKIP() << "this CPU has no bf16";
    Model m = parse_model(kActivationNet, "activations.lenz");
    m.init_params(3);
    spread_slopes(m);
    const int64_t N = 4;
    const std::vector<float> x = activation_images(N, m.input_shape().elements(), 5);
    const auto [worst, largest] = activation_run_difference(m, x, N, Precision::bf16);
    EXPECT_LT(worst, 0.03f * largest) << "largest output " << largest;
    EXPECT_GT(worst, 0.0f) << "bf16 really ran";
    const std::vector<int32_t> labels{0, 1, 2, 3};
    TrainingStep f32(m, N), bf16(m, N, Precision::bf16);
    const double want = f32.run(x.data(), labels.data(), N, 1).loss_sum;
    const double got = bf16.run(x.data(), labels.data(), N, 1).loss_sum;
    EXPECT_NEAR(got, want, 0.02 * std::abs(want));
}

TEST(ActivationPrecision, QuantisedModelGivesTheFloatAnswerWithinInt8Rounding) {
    Model m = parse_model(kActivationNet, "activations.lenz");
    m.init_params(3);
    spread_slopes(m);
    const int64_t N = 8;
    const std::vector<float> calibration = activation_images(32, m.input_shape().elements(), 6);
    m.set_value_ranges(calibrate(m, calibration.data(), 32));
    round_weights_to_int8(m);
    const std::vector<float> x = activation_images(N, m.input_shape().elements(), 7);
    const auto [worst, largest] = activation_run_difference(m, x, N, Precision::int8);
    EXPECT_LT(worst, 0.05f * largest) << "largest output " << largest;
    EXPECT_GT(worst, 0.0f) << "int8 really ran";
}

}  // namespace
}  // namespace lenz::testing
