// The upsample layer: outputs and input gradients on cases computed by hand, the model file's
// words (parsing, spec round trip, one-line errors), and what lenz summary counts for it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "layers/gradient_check.h"
#include "layers/precision_check.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/quantize.h"
#include "lenz/summary.h"

namespace lenz::testing {
namespace {

void fill_upsample_input(Buffer& b, const std::vector<float>& values) {
    ASSERT_EQ(b.size(), static_cast<int64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) b[static_cast<int64_t>(i)] = values[i];
}

void expect_upsample_values(const float* got, int64_t size, const std::vector<float>& want,
                            const std::string& what) {
    ASSERT_EQ(size, static_cast<int64_t>(want.size())) << what;
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << what << ": index " << i;
}

// dx for dy = all ones, the layer on image `h`'s input.
std::vector<float> gradient_of_ones(LayerHarness& h) {
    h.forward(true);
    Buffer dy(h.y().size());
    for (int64_t i = 0; i < dy.size(); ++i) dy[i] = 1.0f;
    Buffer dx(h.x().size());
    h.layer().backward(h.x().data(), h.y().data(), dy.data(),
                       InputGradient::overwriting(dx.data(), h.layer().input_shape()), h.pass(true));
    return {dx.data(), dx.data() + dx.size()};
}

TEST(UpsampleForward, NearestCopiesEachPixelIntoABlock) {
    LayerHarness h("upsample 2x3", {2, 2, 1}, 1);
    fill_upsample_input(h.x(), {1, 2, 3, 4});
    EXPECT_EQ(h.layer().output_shape(), (Shape{4, 6, 1}));
    const Buffer& y = h.forward(false);
    expect_upsample_values(y.data(), y.size(),
                           {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}, "y");
    // Each input pixel was copied into 2·3 outputs: its gradient is their sum.
    expect_upsample_values(gradient_of_ones(h).data(), 4, {6, 6, 6, 6}, "dx");
}

// x = 2·row + column is linear on a 2x2 input, so bilinear interpolation by 2 gives 2·t(oh) + t(ow)
// exactly, with t the source coordinate of each of the 4 output rows and columns.
void expect_linear_ramp_sampled_at(const char* spec, const float (&t)[4]) {
    LayerHarness h(spec, {2, 2, 1}, 1);
    fill_upsample_input(h.x(), {0, 1, 2, 3});
    std::vector<float> want;
    for (float r : t)
        for (float c : t) want.push_back(2 * r + c);
    const Buffer& y = h.forward(false);
    expect_upsample_values(y.data(), y.size(), want, spec);
}

// Half-pixel centres: (o + 0.5) / 2 - 0.5 clamped to [0, 1] = 0, 0.25, 0.75, 1.
TEST(UpsampleForward, BilinearSamplesAtHalfPixelCentres) {
    expect_linear_ramp_sampled_at("upsample 2 bilinear", {0, 0.25f, 0.75f, 1});
}

// With the corners aligned the coordinates are o · (in - 1) / (out - 1) = 0, 1/3, 2/3, 1.
TEST(UpsampleForward, BilinearWithAlignedCornersKeepsTheCorners) {
    expect_linear_ramp_sampled_at("upsample 2 bilinear align-corners", {0, 1.0f / 3, 2.0f / 3, 1});
}

// One row of 3 widened by 2, corners aligned: the 6 outputs sit at 0, 0.4, 0.8, 1.2, 1.6, 2, so
// x = (0, 1, 4) gives 0, 0.4, 0.8, 1.6, 2.8, 4; the weights each input gets add up to 1 + 0.6 + 0.2,
// 0.4 + 0.8 + 0.8 + 0.4 and 0.2 + 0.6 + 1.
TEST(UpsampleForward, AlignedCornersOnAnOddWidthByHand) {
    LayerHarness h("upsample 1x2 bilinear align-corners", {1, 3, 1}, 1);
    fill_upsample_input(h.x(), {0, 1, 4});
    const Buffer& y = h.forward(false);
    expect_upsample_values(y.data(), y.size(), {0, 0.4f, 0.8f, 1.6f, 2.8f, 4}, "y");
    expect_upsample_values(gradient_of_ones(h).data(), 3, {1.8f, 2.4f, 1.8f}, "dx");
}

// Half-pixel on a width of 3 by 2: outputs at 0 (clamped), 0.25, 0.75, 1.25, 1.75, 2 (clamped),
// so x = (0, 1, 4) gives 0, 0.25, 0.75, 1.75, 3.25, 4, and every input's weights add up to 2.
TEST(UpsampleForward, HalfPixelOnAnOddWidthByHand) {
    LayerHarness h("upsample 1x2 bilinear", {1, 3, 1}, 2);
    fill_upsample_input(h.x(), {0, 1, 4, 1, 1, 1});
    const Buffer& y = h.forward(false);
    expect_upsample_values(y.data(), y.size(), {0, 0.25f, 0.75f, 1.75f, 3.25f, 4, 1, 1, 1, 1, 1, 1}, "y");
    expect_upsample_values(gradient_of_ones(h).data(), 6, {2, 2, 2, 2, 2, 2}, "dx");
}

// A size of another ratio, 3 to 5 (r = 0.6): bilinear samples at (o + 0.5)·0.6 - 0.5 = 0 (clamped),
// 0.4, 1, 1.6, 2.2 (the last input, which has no right neighbour), so x = (0, 1, 4) gives 0, 0.4,
// 1, 2.8, 4; nearest reads floor(o·0.6) = 0, 0, 1, 1, 2.
TEST(UpsampleForward, ASizeOfAnyRatioByHand) {
    LayerHarness bilinear("upsample size=1x5 bilinear", {1, 3, 1}, 1);
    fill_upsample_input(bilinear.x(), {0, 1, 4});
    EXPECT_EQ(bilinear.layer().output_shape(), (Shape{1, 5, 1}));
    const Buffer& y = bilinear.forward(false);
    expect_upsample_values(y.data(), y.size(), {0, 0.4f, 1, 2.8f, 4}, "bilinear");
    LayerHarness nearest("upsample size=1x5", {1, 3, 1}, 1);
    fill_upsample_input(nearest.x(), {0, 1, 4});
    const Buffer& z = nearest.forward(false);
    expect_upsample_values(z.data(), z.size(), {0, 0, 1, 1, 4}, "nearest");
    expect_upsample_values(gradient_of_ones(nearest).data(), 3, {2, 2, 1}, "nearest dx");
}

TEST(UpsampleText, SpecsRoundTrip) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"upsample 2", "upsample 2"},
        {"upsample 2 nearest", "upsample 2"},
        {"upsample 2x3", "upsample 2x3"},
        {"upsample 3x3 bilinear", "upsample 3 bilinear"},
        {"upsample 2x1 bilinear", "upsample 2x1 bilinear"},
        {"upsample 2 align-corners bilinear", "upsample 2 bilinear align-corners"},
        {"upsample size=65x33 bilinear", "upsample size=65x33 bilinear"},
        {"upsample size=7", "upsample size=7x7"},
    };
    for (const auto& [line, spec] : cases) {
        const LayerConfig config = parse_layer_config(line);
        const auto* up = std::get_if<UpsampleConfig>(&config);
        ASSERT_NE(up, nullptr) << line;
        std::unique_ptr<Layer> layer = make_layer(config);
        layer->connect(Shape{3, 5, 2});
        EXPECT_EQ(layer->spec(), spec) << line;
        const Shape want =
            up->size_h ? Shape{up->size_h, up->size_w, 2} : Shape{3 * up->scale_h, 5 * up->scale_w, 2};
        EXPECT_EQ(layer->output_shape(), want) << line;
        const LayerConfig again = parse_layer_config(layer->spec());
        const auto* back = std::get_if<UpsampleConfig>(&again);
        ASSERT_NE(back, nullptr) << spec;
        EXPECT_EQ(back->scale_h, up->scale_h);
        EXPECT_EQ(back->scale_w, up->scale_w);
        EXPECT_EQ(back->mode, up->mode);
        EXPECT_EQ(back->align_corners, up->align_corners);
        EXPECT_EQ(back->size_h, up->size_h);
        EXPECT_EQ(back->size_w, up->size_w);
    }
}

// Each mistake is one line naming the file, line and column, and what was wrong.
TEST(UpsampleText, MistakesAreOneLineParseErrors) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"upsample",
         "m.lenz:2:9: upsample: expected the scale or the size, e.g. upsample 2, upsample 2x3 or "
         "upsample size=65x65"},
        {"upsample size=0x5", "m.lenz:2:15: upsample: size height must be positive, got 0"},
        {"upsample 0", "m.lenz:2:10: upsample: scale must be positive, got 0"},
        {"upsample 2x0", "m.lenz:2:12: upsample: scale width must be positive, got 0"},
        {"upsample -2", "m.lenz:2:10: upsample: expected scale as a positive whole number, got '-2'"},
        {"upsample 1.5", "m.lenz:2:10: upsample: expected scale as a positive whole number, got '1.5'"},
        {"upsample 2 cubic",
         "m.lenz:2:12: upsample: unknown option 'cubic' (expected nearest, bilinear or align-corners)"},
        {"upsample 2 bilinear nearest", "m.lenz:2:21: upsample: only one of nearest and bilinear"},
        {"upsample 2 bilinear align-corners align-corners",
         "m.lenz:2:35: upsample: option 'align-corners' given twice"},
        {"upsample 2 align-corners",
         "m.lenz:2:1: upsample: align-corners is for bilinear, e.g. upsample 2 bilinear align-corners"},
        {"upsample 2 nearest align-corners",
         "m.lenz:2:1: upsample: align-corners is for bilinear, e.g. upsample 2 bilinear align-corners"},
        {"upsample 99999999", "m.lenz:2:10: upsample: scale 99999999 is larger than the limit 16777216"},
        {"upsample 16777216",
         "m.lenz:2:1: upsample: the output 67108864x16777216 is larger than the limit 16777216 (input "
         "4x1x2)"},
    };
    for (const auto& [line, want] : cases) {
        std::string got = "(no error)";
        try {
            parse_model("input 4x1x2\n" + line + "\n", "m.lenz");
        } catch (const ParseError& e) {
            got = e.what();
        }
        EXPECT_EQ(got, want) << line;
        EXPECT_EQ(got.find('\n'), std::string::npos) << line;
    }
}

// No parameters; nearest multiplies nothing, bilinear 4 per output value forward and 4 per output
// gradient backward; --explain states the rule.
TEST(UpsampleSummary, CountsAndExplainsItsMultiplications) {
    Model m = parse_model(
        "input 6x5x3\nconv 4 3x3 padding=same relu\nupsample 2\nupsample 1x3 bilinear\nconv 2 1x1\n",
        "up.lenz");
    const Summary s = summarize(m, {.batch = 2});
    ASSERT_EQ(s.layers.size(), 4u);
    const LayerCost& nearest = s.layers[1];
    const LayerCost& bilinear = s.layers[2];
    EXPECT_EQ(nearest.output, (Shape{12, 10, 4}));
    EXPECT_EQ(nearest.params, 0);
    EXPECT_EQ(nearest.mults, 0);
    EXPECT_EQ(nearest.input_grad_mults, 0);
    EXPECT_EQ(bilinear.output, (Shape{12, 30, 4}));
    EXPECT_EQ(bilinear.params, 0);
    EXPECT_EQ(bilinear.mults, 12 * 30 * 4 * 4);
    EXPECT_EQ(bilinear.input_grad_mults, 12 * 30 * 4 * 4);
    EXPECT_EQ(bilinear.mult_formula, "12·30·4 · 4");
    EXPECT_EQ(s.mults, 6 * 5 * 4 * 27 + 12 * 30 * 4 * 4 + 12 * 30 * 2 * 4);
    const std::string text = format_summary(s, "up.lenz", true);
    EXPECT_NE(text.find("layer 3 upsample: 12·30·4 · 4 = 5,760"), std::string::npos) << text;
    EXPECT_NE(text.find("Upsampling has no weights"), std::string::npos) << text;
    EXPECT_NE(text.find("upsample 1x3 bilinear"), std::string::npos) << text;
}

TEST(UpsampleSummary, TheRuleIsExplainedOnlyWhereThereIsAnUpsample) {
    Model m = parse_model("input 6x5x3\nconv 4 3x3\n", "plain.lenz");
    EXPECT_EQ(format_summary(summarize(m, {.batch = 2}), "plain.lenz", true).find("Upsampling"),
              std::string::npos);
}

// A decoder between convolutions: upsample runs in float32 in every precision, as pooling does, with
// the convolutions around it in bf16 or int8.
constexpr const char* kUpsampleDecoder =
    "input 8x8x3\nconv 8 3x3 padding=same relu\nmaxpool 2\nconv 8 3x3 padding=same relu\n"
    "upsample 2 bilinear\nconv 6 3x3 padding=same relu\nupsample 2\nconv 4 3x3 stride=2 padding=same relu\n"
    "upsample 2 bilinear align-corners\nconv 3 1x1\nglobalavgpool\nflatten\ndense 4\n";

TEST(UpsamplePrecision, Bf16InferenceAndTrainingGiveTheFloatAnswerWithinBf16Rounding) {
    Model m = parse_model(kUpsampleDecoder, "decoder.lenz");
    m.init_params(3);
    expect_bf16_within_rounding(m);
}

TEST(UpsamplePrecision, QuantisedModelGivesTheFloatAnswerWithinInt8Rounding) {
    Model m = parse_model(kUpsampleDecoder, "decoder.lenz");
    m.init_params(3);
    expect_int8_within_rounding(m);
}

}  // namespace
}  // namespace lenz::testing
