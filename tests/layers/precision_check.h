// A model in bf16 and in int8 against float32: its outputs within the precision's rounding, and in
// bf16 a training step's loss too. One check for every layer that runs in float32 between
// convolutions that do not (upsample, convtranspose, the activations), so that "does not crash and
// does not silently mis-compute" means the same for each.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "lenz/engine.h"
#include "lenz/quantize.h"
#include "lenz/random.h"

namespace lenz::testing {

inline std::vector<float> uniform_images(int64_t count, int64_t elements, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(count * elements));
    for (float& f : v) f = rng.uniform(-1.0f, 1.0f);
    return v;
}

// The largest difference between a float run's outputs and precision p's, and the largest output.
inline std::pair<float, float> precision_difference(Model& m, const std::vector<float>& x, int64_t N,
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

// bf16 inference within 3 % of the largest float output (and not equal to it: bf16 really ran), and
// a bf16 training step's loss within 2 % of float32's; the model's output has at least 4 classes.
inline void expect_bf16_within_rounding(Model& m) {
    if (!cpu_supports(Precision::bf16)) GTEST_SKIP() << "this CPU has no bf16";
    const int64_t N = 4;
    const std::vector<float> x = uniform_images(N, m.input_shape().elements(), 5);
    const auto [worst, largest] = precision_difference(m, x, N, Precision::bf16);
    EXPECT_LT(worst, 0.03f * largest) << "largest output " << largest;
    EXPECT_GT(worst, 0.0f) << "bf16 really ran";
    const std::vector<int32_t> labels{0, 1, 2, 3};
    TrainingStep f32(m, N), bf16(m, N, Precision::bf16);
    const double want = f32.run(x.data(), labels.data(), N, 1).loss_sum;
    const double got = bf16.run(x.data(), labels.data(), N, 1).loss_sum;
    EXPECT_NEAR(got, want, 0.02 * std::abs(want));
}

// Calibrated on 32 images and quantised, the model runs in int8 within 5 % of the largest float output.
inline void expect_int8_within_rounding(Model& m) {
    const int64_t N = 8;
    const std::vector<float> calibration = uniform_images(32, m.input_shape().elements(), 6);
    m.set_value_ranges(calibrate(m, calibration.data(), 32));
    round_weights_to_int8(m);
    const std::vector<float> x = uniform_images(N, m.input_shape().elements(), 7);
    const auto [worst, largest] = precision_difference(m, x, N, Precision::int8);
    EXPECT_LT(worst, 0.05f * largest) << "largest output " << largest;
    EXPECT_GT(worst, 0.0f) << "int8 really ran";
}

}  // namespace lenz::testing
