// The .lenz format: every layer and option parses, the text round-trips, and every mistake is one
// line naming file, line and column.
#include <gtest/gtest.h>

#include "lenz/error.h"
#include "lenz/model.h"

namespace lenz {
namespace {

std::string parse_error(const std::string& text) {
    try {
        parse_model(text, "m.lenz");
    } catch (const ParseError& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(ModelText, ParsesEveryLayerAndRoundTrips) {
    const std::string text =
        "# comment line\n"
        "input 32x30x3   # trailing comment\n"
        "conv 8 3x3 padding=same relu\n"
        "conv 8 3x5 stride=2x1 padding=1x2 leakyrelu=0.2 nobias\n"
        "batchnorm\n"
        "relu\n"
        "maxpool 2\n"
        "avgpool 3 stride=1 padding=1\n"
        "conv 16 1x1 stride=2 padding=valid tanh\n"
        "globalavgpool\n"
        "flatten\n"
        "dropout 0.25\n"
        "dense 20 sigmoid\n"
        "dense 10 nobias\n"
        "softmax\n";
    Model m = parse_model(text, "m.lenz");
    EXPECT_EQ(m.size(), 13);
    EXPECT_EQ(m.layer(1).output_shape(), (Shape{16, 30, 8}));
    EXPECT_EQ(m.output_shape(), (Shape{1, 1, 10}));
    EXPECT_TRUE(m.ends_with_softmax());
    Model again = parse_model(m.to_text(), "again");
    EXPECT_EQ(again.to_text(), m.to_text());
    EXPECT_EQ(m.layer(1).spec(), "conv 8 3x5 stride=2x1 padding=1x2 leakyrelu=0.2 nobias");
}

TEST(ModelText, GroupedDepthwiseAndDilatedConvolutionsRoundTrip) {
    Model m = parse_model(
        "input 16x16x8\nconv 16 3x3 padding=same groups=8 relu\nconv 8 1x1 groups=2\n"
        "conv 8 3x3 padding=same dilation=2\nconv 4 3x2 dilation=2x3\n",
        "m.lenz");
    EXPECT_EQ(m.layer(0).spec(), "conv 16 3x3 padding=same groups=8 relu");
    EXPECT_EQ(m.layer(2).spec(), "conv 8 3x3 padding=same dilation=2");
    EXPECT_EQ(m.layer(3).spec(), "conv 4 3x2 dilation=2x3");
    EXPECT_EQ(m.layer(0).param_count(), (3 * 3 * 1 + 1) * 16);  // depthwise: each filter sees 1 channel
    EXPECT_EQ(m.layer(1).param_count(), (1 * 1 * 8 + 1) * 8);   // 2 groups of 8 of the 16 channels
    EXPECT_EQ(m.layer(0).mult_count(), 16 * 16 * 16 * 9);
    EXPECT_EQ(m.layer(2).output_shape(), (Shape{16, 16, 8}));  // same padding covers the 5x5 span
    EXPECT_EQ(m.layer(3).output_shape(), (Shape{12, 13, 4}));  // valid: spans 5x4
    EXPECT_EQ(parse_model(m.to_text(), "again").to_text(), m.to_text());
    EXPECT_EQ(parse_error("input 8x8x6\nconv 8 3 groups=4\n"),
              "m.lenz:2:1: conv: groups=4 does not divide the 6 input channels (input 8x8x6)");
}

TEST(ModelText, GlobalMaxPool) {
    Model m = parse_model("input 8x8x4\nglobalmaxpool\n", "m");
    EXPECT_EQ(m.output_shape(), (Shape{1, 1, 4}));
}

TEST(ModelText, CrLfLineEndings) {
    Model m = parse_model("input 4x4x1\r\nconv 2 3x3\r\n", "m");
    EXPECT_EQ(m.output_shape(), (Shape{2, 2, 2}));
}

TEST(ModelTextErrors, NameFileLineColumnAndExpectation) {
    EXPECT_EQ(
        parse_error("input 28x28x1\nconv 32 3x3 strde=2\n"),
        "m.lenz:2:13: conv: unknown option 'strde=2' (expected stride=S, padding=same|valid|P, groups=G, "
        "dilation=D, an activation (relu, leakyrelu[=A], sigmoid, tanh, softmax) or nobias)");
    EXPECT_EQ(
        parse_error("input 28x28x1\npool 2\n"),
        "m.lenz:2:1: unknown layer 'pool' (expected conv, maxpool, avgpool, globalavgpool, globalmaxpool, "
        "flatten, dense, dropout, batchnorm, relu, leakyrelu, sigmoid, tanh or softmax)");
    EXPECT_EQ(
        parse_error("input 3x3x1\nconv 1 5x5\n"),
        "m.lenz:2:1: conv: kernel 5x5 is larger than its padded input 3x3 (padding=valid) (input 3x3x1)");
}

TEST(ModelTextErrors, EveryMistakeIsAParseError) {
    const char* bad[] = {
        "",                                        // empty
        "# only a comment\n",                      // no input
        "conv 3 3x3\n",                            // no input first
        "input 28x28\nconv 1 3\n",                 // input without channels
        "input 0x28x1\nconv 1 3\n",                // zero size
        "input -1x28x1\nconv 1 3\n",               // negative
        "input 28x28x1\n",                         // no layers
        "input 28x28x1\ninput 28x28x1\n",          // input twice
        "input 28x28x1\nconv\n",                   // missing filters
        "input 28x28x1\nconv 32\n",                // missing kernel
        "input 28x28x1\nconv 0 3\n",               // zero filters
        "input 28x28x1\nconv 3.5 3\n",             // not an integer
        "input 28x28x1\nconv 3 3x\n",              // bad kernel
        "input 28x28x1\nconv 3 3 stride=0\n",      // zero stride
        "input 28x28x1\nconv 3 3 padding=full\n",  // bad padding
        "input 28x28x1\nconv 3 3 relu relu\n",     // two activations
        "input 28x28x1\nconv 3 3 stride=1 stride=2\n",
        "input 28x28x1\nconv 3 3 leakyrelu=2\n",   // slope out of range
        "input 28x28x1\ndense 10 padding=same\n",  // option of another layer
        "input 28x28x1\nmaxpool 2 relu\n",
        "input 28x28x1\nflatten 3\n",
        "input 28x28x1\ndropout 1.5\n",
        "input 28x28x1\ndropout abc\n",
        "input 28x28x1\nmaxpool 30\n",           // window larger than input
        "input 28x28x1\nmaxpool 2 padding=2\n",  // pooling padding must be smaller than the window
        "input 28x28x1\nconv 99999999999 3\n",   // absurd filter count
        "input 99999999x99999999x99999999\nconv 1 1\n",
        "input 16000000x16000000x16000000\nconv 1 3\n",  // overflows 64-bit sizes
        "input 8x8x6\nconv 6 3 groups=0\n",
        "input 8x8x6\nconv 6 3 groups=4\n",  // does not divide the filters
        "input 8x8x6\nconv 8 3 groups=4\n",  // does not divide the input channels
        "input 8x8x6\nconv 6 3 groups=2 groups=2\n",
        "input 8x8x6\nconv 6 3 dilation=0\n",
        "input 8x8x6\nconv 6 3 dilation=4\n",   // spans 9x9 on 8x8
        "input 8x8x6\nmaxpool 2 dilation=2\n",  // convolutions only
        "input 8x8x6\ndense 4 groups=2\n",
    };
    for (const char* text : bad) {
        const std::string msg = parse_error(text);
        EXPECT_NE(msg, "(no error)") << "accepted: " << text;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_EQ(msg.rfind("m.lenz:", 0), 0u) << msg;
    }
}

TEST(ModelTextErrors, MissingFile) {
    EXPECT_THROW(load_model_file("/nonexistent/model.lenz"), IoError);
}

}  // namespace
}  // namespace lenz
