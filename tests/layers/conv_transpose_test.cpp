// The convtranspose layer: outputs on a case computed by hand, the model file's words (parsing, spec
// round trip, one-line errors), what lenz summary counts for it, and bf16 and int8 runs.
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

namespace lenz::conv_transpose_layer_test {
namespace {

using testing::LayerHarness;

// One channel, weights 1, 2, 3, 4 (2x2), stride 2, bias 0.5: each input pixel v becomes the block
// v·(1 2; 3 4) + 0.5; padding=1 crops one row and column off each side, and output-padding=1 gives
// the bottom row and right column back.
TEST(ConvTransposeForward, SpreadsEachPixelOverItsBlockByHand) {
    for (const bool cropped : {false, true}) {
        LayerHarness h(
            cropped ? "convtranspose 1 2 stride=2 padding=1 output-padding=1" : "convtranspose 1 2 stride=2",
            {2, 2, 1}, 1);
        for (int64_t i = 0; i < 4; ++i) h.x()[i] = static_cast<float>(i + 1);  // (1 2; 3 4)
        auto params = h.layer().params();
        for (int64_t i = 0; i < 4; ++i) (*params[0].value)[i] = static_cast<float>(i + 1);
        (*params[1].value)[0] = 0.5f;
        const Buffer& y = h.forward(false);
        const std::vector<float> full{1.5f, 2.5f, 2.5f, 4.5f, 3.5f, 4.5f,  6.5f,  8.5f,
                                      3.5f, 6.5f, 4.5f, 8.5f, 9.5f, 12.5f, 12.5f, 16.5f};
        if (!cropped) {
            ASSERT_EQ(h.layer().output_shape(), (Shape{4, 4, 1}));
            for (size_t i = 0; i < full.size(); ++i)
                EXPECT_FLOAT_EQ(y[static_cast<int64_t>(i)], full[i]) << i;
        } else {  // rows and columns 1..3 of the full output: (4 - 1)·2 - 2 + 2 + 1 = 3
            ASSERT_EQ(h.layer().output_shape(), (Shape{3, 3, 1}));
            for (int64_t r = 0; r < 3; ++r)
                for (int64_t c = 0; c < 3; ++c)
                    EXPECT_FLOAT_EQ(y[r * 3 + c], full[static_cast<size_t>((r + 1) * 4 + c + 1)])
                        << r << "," << c;
        }
    }
}

TEST(ConvTransposeText, ParsesAndGivesBackItsSpec) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"convtranspose 8 2 stride=2", "convtranspose 8 2x2 stride=2"},
        {"convtranspose 4 3x2 stride=2x1 padding=1x0 output-padding=1x0 groups=2 dilation=2 relu nobias",
         "convtranspose 4 3x2 stride=2x1 padding=1x0 output-padding=1x0 groups=2 dilation=2 relu nobias"},
        {"convtranspose 4 3 padding=valid", "convtranspose 4 3x3"},
        {"convtranspose 4 3 stride=2 padding=1 output-padding=1 leakyrelu=0.2",
         "convtranspose 4 3x3 stride=2 padding=1 output-padding=1 leakyrelu=0.2"},
    };
    for (const auto& [line, spec] : cases) {
        const LayerConfig config = parse_layer_config(line);
        ASSERT_NE(std::get_if<ConvTransposeConfig>(&config), nullptr) << line;
        std::unique_ptr<Layer> layer = make_layer(config);
        layer->connect(Shape{5, 6, 4});
        EXPECT_EQ(layer->spec(), spec) << line;
        std::unique_ptr<Layer> again = make_layer(parse_layer_config(layer->spec()));
        again->connect(Shape{5, 6, 4});
        EXPECT_EQ(again->spec(), spec);
        EXPECT_EQ(again->output_shape(), layer->output_shape()) << line;
    }
    // (H - 1)·S - 2P + D·(K - 1) + output_padding + 1 on each axis.
    std::unique_ptr<Layer> l = make_layer(
        parse_layer_config("convtranspose 4 3x2 stride=2x3 padding=1x0 output-padding=1x2 dilation=2x1"));
    l->connect(Shape{5, 6, 4});
    EXPECT_EQ(l->output_shape(), (Shape{(5 - 1) * 2 - 2 + 2 * 2 + 1 + 1, (6 - 1) * 3 - 0 + 1 + 2 + 1, 4}));
}

TEST(ConvTransposeText, MistakesAreOneLineParseErrors) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"convtranspose",
         "m.lenz:2:14: convtranspose: expected the number of filters, e.g. convtranspose 32 2 stride=2"},
        {"convtranspose 4", "m.lenz:2:16: convtranspose: expected the kernel size, e.g. 2 or 3x3"},
        {"convtranspose 4 3 padding=same",
         "m.lenz:2:19: convtranspose: padding is in pixels (what is cut off each side of the output), e.g. "
         "padding=1; 'same' is for conv"},
        {"convtranspose 4 3 output-padding=same",
         "m.lenz:2:34: convtranspose: output-padding is in pixels, e.g. output-padding=1"},
        {"convtranspose 4 3 stride=2 stride=2", "m.lenz:2:28: convtranspose: option 'stride' given twice"},
        {"convtranspose 4 3 ceil",
         "m.lenz:2:19: convtranspose: unknown option 'ceil' (expected stride=S, padding=P, output-padding=P, "
         "groups=G, dilation=D, an activation (relu, leakyrelu[=A], sigmoid, tanh, softmax, logsoftmax, "
         "relu6, hardsigmoid, elu[=A]) or nobias)"},
        {"convtranspose 4 3 stride=2 output-padding=2",
         "m.lenz:2:1: convtranspose: output-padding 2x2 must be smaller than the stride or the dilation "
         "(stride 2x2, dilation 1x1) (input 4x5x2)"},
        {"convtranspose 3 3 groups=2",
         "m.lenz:2:1: convtranspose: groups=2 does not divide the 3 filters (input 4x5x2)"},
        {"convtranspose 4 3 groups=4",
         "m.lenz:2:1: convtranspose: groups=4 must divide both the 2 input channels and the 4 filters (input "
         "4x5x2)"},
        {"convtranspose 4 1 padding=3",
         "m.lenz:2:1: convtranspose: padding 3x3 leaves no output of input 4x5 (output -2x-1) (input 4x5x2)"},
    };
    for (const auto& [line, want] : cases) {
        std::string got = "(no error)";
        try {
            parse_model("input 4x5x2\n" + line + "\n", "m.lenz");
        } catch (const ParseError& e) {
            got = e.what();
        }
        EXPECT_EQ(got, want) << line;
        EXPECT_EQ(got.find('\n'), std::string::npos) << line;
    }
}

// Hand-computed: 4x5x6 through convtranspose 4 3 stride=2 padding=1 output-padding=1 groups=2 is
// 8x10x4 ((4 - 1)·2 - 2 + 2 + 1 + 1 = 8, (5 - 1)·2 - 2 + 2 + 1 + 1 = 10); weights 6·2·3·3 = 108 plus
// 4 biases; every input value times each of its 3·3·2 weights: 4·5·6 · 18 = 2,160. Then convtranspose
// 3 2 stride=2 nobias: 16x20x3, 4·3·2·2 = 48 weights, 8·10·4 · 12 = 3,840.
TEST(ConvTransposeSummary, CountsAndExplainsItsMultiplications) {
    Model m = parse_model(
        "input 4x5x6\nconvtranspose 4 3 stride=2 padding=1 output-padding=1 groups=2 relu\n"
        "convtranspose 3 2 stride=2 nobias\n",
        "ct.lenz");
    const Summary s = summarize(m, {.batch = 2});
    ASSERT_EQ(s.layers.size(), 2u);
    const LayerCost& a = s.layers[0];
    const LayerCost& b = s.layers[1];
    EXPECT_EQ(a.output, (Shape{8, 10, 4}));
    EXPECT_EQ(a.params, 112);
    EXPECT_EQ(a.param_formula, "6·2·3·3 + 4");
    EXPECT_EQ(a.mults, 2160);
    EXPECT_EQ(a.mult_formula, "4·5·6 · (3·3·2)");
    EXPECT_EQ(a.weight_grad_mults, 2160);
    EXPECT_EQ(b.output, (Shape{16, 20, 3}));
    EXPECT_EQ(b.params, 48);
    EXPECT_EQ(b.mults, 3840);
    EXPECT_EQ(b.input_grad_mults, 3840);
    EXPECT_EQ(s.params, 112 + 48);
    EXPECT_EQ(s.mults, 2160 + 3840);
    const std::string text = format_summary(s, "ct.lenz", true);
    EXPECT_NE(text.find("layer 1 convtranspose: 4·5·6 · (3·3·2) = 2,160"), std::string::npos) << text;
    EXPECT_NE(text.find("\"padded positions included\" has no meaning here"), std::string::npos) << text;
    Model plain = parse_model("input 6x5x3\nconv 4 3x3\n", "plain.lenz");
    EXPECT_EQ(format_summary(summarize(plain, {.batch = 2}), "plain.lenz", true).find("transposed"),
              std::string::npos);
}

// A decoder: convtranspose runs in float32 in every precision, with the convolutions around it in
// bf16 or int8; nothing crashes and the answers stay within those precisions' rounding.
constexpr const char* kDecoder =
    "input 8x8x3\nconv 8 3x3 padding=same relu\nmaxpool 2\nconv 8 3x3 padding=same relu\n"
    "convtranspose 6 2 stride=2 relu\nconv 4 3x3 stride=2 padding=same relu\n"
    "convtranspose 4 3 stride=2 padding=1 output-padding=1\nconv 3 1x1\nglobalavgpool\nflatten\ndense 4\n";

TEST(ConvTransposePrecision, Bf16InferenceAndTrainingGiveTheFloatAnswerWithinBf16Rounding) {
    Model m = parse_model(kDecoder, "decoder.lenz");
    m.init_params(3);
    testing::expect_bf16_within_rounding(m);
}

TEST(ConvTransposePrecision, QuantisedModelGivesTheFloatAnswerWithinInt8Rounding) {
    Model m = parse_model(kDecoder, "decoder.lenz");
    m.init_params(3);
    testing::expect_int8_within_rounding(m);
}

}  // namespace
}  // namespace lenz::conv_transpose_layer_test
