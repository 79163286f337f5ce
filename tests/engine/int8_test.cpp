// int8 inference of whole models: calibration, the runner on a graph with folded batch norms, and
// the refusals (no calibration, training).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/schedule.h"
#include "lenz/buffer.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/model_text.h"
#include "lenz/quantize.h"
#include "lenz/random.h"

namespace lenz {
namespace {

// Convolutions with batch norms folded in, a depthwise convolution, a residual add, pooling and
// dense layers: every way a value reaches an int8 layer.
constexpr const char* kQuantizable = R"(input 16x16x3
conv 16 3x3 padding=same nobias
batchnorm
relu name=stem
conv 16 3x3 padding=same groups=16
batchnorm
relu
conv 16 1x1 name=branch
add stem branch relu
maxpool 2
conv 24 3x3 stride=2 padding=same tanh
globalavgpool
dense 32 relu
dense 10
)";

std::vector<float> random_images(int64_t count, int64_t elements, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(count * elements));
    for (float& f : v) f = rng.uniform(-2.0f, 2.0f);
    return v;
}

Model trained_looking_model() {
    Model m = parse_model(kQuantizable, "int8.lenz");
    m.init_params(5);
    // Batch norms with statistics that are not the defaults, so a wrong fold shows.
    Rng rng(9);
    for (Model::NamedParam& p : m.named_params())
        if (p.ref.name == "running_var" ||
            (p.ref.name == "weight" && p.name.find("batchnorm") != std::string::npos))
            for (int64_t k = 0; k < p.ref.value->size(); ++k) (*p.ref.value)[k] = rng.uniform(0.5f, 2.0f);
        else if (p.ref.name == "running_mean" || p.ref.name == "bias")
            for (int64_t k = 0; k < p.ref.value->size(); ++k) (*p.ref.value)[k] = rng.uniform(-0.3f, 0.3f);
    return m;
}

TEST(Int8, CalibrationRecordsTheRangeOfEveryHeldValue) {
    Model m = trained_looking_model();
    const auto images = random_images(40, m.input_shape().elements(), 1);
    const std::vector<ValueRange> ranges = calibrate(m, images.data(), 40, 16);
    ASSERT_EQ(static_cast<int64_t>(ranges.size()), m.size() + 1);
    EXPECT_EQ(ranges[0].min, *std::min_element(images.begin(), images.end()));
    EXPECT_EQ(ranges[0].max, *std::max_element(images.begin(), images.end()));
    EXPECT_EQ(ranges[3].min, 0.0f) << "the stem after its ReLU";
    EXPECT_GT(ranges[3].max, 0.0f);
    EXPECT_EQ(ranges[1].min, 0.0f) << "the first convolution's own output is folded away: never held";
    EXPECT_EQ(ranges[1].max, 0.0f);
    EXPECT_GE(ranges[11].min, -1.0f) << "after tanh";
    EXPECT_LE(ranges[11].max, 1.0f);
    EXPECT_LT(ranges[11].min, 0.0f);
}

// Calibration runs in float32, where a global average pool goes into the convolution whose output
// it averages: both values are still seen, each with its own range.
TEST(Int8, CalibrationSeesAPoolThatAConvolutionComputes) {
    Model m = parse_model(
        "input 8x8x3\nconv 16 3x3 padding=same name=a\nglobalavgpool\nconv 16 1x1 sigmoid name=g\nmul a g\n"
        "globalavgpool\ndense 4\n",
        "se.lenz");
    m.init_params(3);
    const auto images = random_images(8, m.input_shape().elements(), 2);
    ASSERT_EQ(schedule_inference(m, 4).means_into[0], 1);
    const std::vector<ValueRange> ranges = calibrate(m, images.data(), 8, 4);
    EXPECT_LT(ranges[1].min, ranges[1].max) << "the convolution's output";
    EXPECT_LT(ranges[2].min, ranges[2].max) << "its means";
    EXPECT_GE(ranges[2].min, ranges[1].min);
    EXPECT_LE(ranges[2].max, ranges[1].max);
}

TEST(Int8, QuantisedModelGivesTheFloatAnswerWithinInt8Rounding) {
    Model m = trained_looking_model();
    const int64_t image = m.input_shape().elements(), N = 24;
    const auto calibration = random_images(64, image, 2), test = random_images(N, image, 3);
    m.set_value_ranges(calibrate(m, calibration.data(), 64));
    round_weights_to_int8(m);
    std::vector<float> want(static_cast<size_t>(N * 10)), got(want.size());
    {
        Inference f32(m, N);
        const float* y = f32.run(test.data(), N);
        std::copy(y, y + want.size(), want.begin());
    }
    const int64_t before = buffer_bytes_live();
    Inference int8(m, N, Precision::int8);
    const InferencePlan plan = plan_inference(m, N, Precision::int8);
    EXPECT_EQ(buffer_bytes_live() - before, plan.bytes() - 4 * plan.param_floats)
        << "the runner allocates what the int8 plan says, beside the model's own weights";
    const float* y = int8.run(test.data(), N);
    std::copy(y, y + got.size(), got.begin());
    float largest = 0, worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        largest = std::max(largest, std::abs(want[i]));
        worst = std::max(worst, std::abs(want[i] - got[i]));
    }
    EXPECT_LT(worst, 0.05f * largest) << "largest output " << largest;
    EXPECT_GT(worst, 0.0f) << "int8 really ran";
    // A smaller batch on the same runner gives the same rows.
    const float* first = int8.run(test.data(), 3);
    for (size_t i = 0; i < 30; ++i) EXPECT_EQ(first[i], got[i]) << i;
}

TEST(Int8, RefusesAModelNeverCalibratedAndTraining) {
    Model m = trained_looking_model();
    try {
        Inference int8(m, 2, Precision::int8);
        FAIL() << "ran int8 without ranges";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lenz quantize"), std::string::npos) << e.what();
    }
    const auto images = random_images(4, m.input_shape().elements(), 4);
    m.set_value_ranges(calibrate(m, images.data(), 4));
    EXPECT_THROW(TrainingStep(m, 2, Precision::int8), Error);
    EXPECT_THROW(m.set_value_ranges({{0, 1}}), ShapeError) << "one range per value";
    m.replace_layer(m.size() - 1, make_dense({5, {}, true}));
    EXPECT_FALSE(m.calibrated()) << "a new head has no ranges";
}

// Between layers that write and read int8, values are held in int8: a convolution's output, a max
// pool of it, a flatten of that (a view) read by a dense layer; the model's output stays float32,
// and so does what a layer that cannot read int8 reads. They take a quarter of the arena.
TEST(Int8, ValuesAreHeldInInt8BetweenLayersThatWriteAndReadIt) {
    Model fashion = load_model_file(LENZ_SOURCE_DIR "/models/fashion.lenz");
    fashion.init_params(3);
    const InferenceSchedule s = schedule_inference(fashion, 8, Precision::int8);
    const std::vector<bool> expected{false, true, true, true, true, true, false, false};  // values 0..7
    for (size_t v = 0; v < expected.size(); ++v)
        EXPECT_EQ(s.int8_values[v].has_value(), expected[v]) << "value " << v;
    EXPECT_TRUE(s.int8_values[2]->is_unsigned) << "a max pool of a ReLU's output";
    EXPECT_EQ(s.int8_values[2]->scale, s.int8_values[1]->scale) << "a max pool keeps its input's scale";
    const InferencePlan f32 = schedule_inference(fashion, 8).plan;  // per image: float32 may run in streams
    EXPECT_LT(s.plan.arena_floats / s.plan.slice, f32.arena_floats / f32.slice / 3);

    Model m = trained_looking_model();
    const InferenceSchedule g = schedule_inference(m, 8, Precision::int8);
    EXPECT_FALSE(g.int8_values[3]) << "the stem: the add reads it, which reads float32 only";
    EXPECT_TRUE(g.int8_values[6]) << "the depthwise block's output, read by a 1x1 convolution only";
    EXPECT_FALSE(g.int8_values[9]) << "a max pool of a float32 value";
    EXPECT_FALSE(g.int8_values[m.size()]) << "the model's output";
}

// The fashion model with int8 values between its layers gives the float answer within int8
// rounding, at two batch sizes on one runner.
TEST(Int8, ChainOfInt8ValuesGivesTheFloatAnswer) {
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/fashion.lenz");
    m.init_params(4);
    const int64_t image = m.input_shape().elements(), N = 32;
    const auto calibration = random_images(128, image, 5), test = random_images(N, image, 6);
    m.set_value_ranges(calibrate(m, calibration.data(), 128));
    round_weights_to_int8(m);
    Inference f32(m, N), int8(m, N, Precision::int8);
    const float* want = f32.run(test.data(), N);
    std::vector<float> expected(want, want + N * 10);
    const float* got = int8.run(test.data(), N);
    int agree = 0;
    for (int64_t n = 0; n < N; ++n) {
        float worst = 0;
        for (int64_t k = 0; k < 10; ++k)
            worst = std::max(worst, std::abs(got[n * 10 + k] - expected[static_cast<size_t>(n * 10 + k)]));
        EXPECT_LT(worst, 0.05f) << "image " << n << ": softmax probabilities";
        agree += std::max_element(got + n * 10, got + n * 10 + 10) - (got + n * 10) ==
                 std::max_element(expected.begin() + n * 10, expected.begin() + n * 10 + 10) -
                     (expected.begin() + n * 10);
    }
    EXPECT_GE(agree, N - 2) << "top-1 classes";
    std::vector<float> first(got, got + 5 * 10);
    const float* again = int8.run(test.data(), 5);
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(again[i], first[i]) << i;
}

}  // namespace
}  // namespace lenz
