// The .lenz format: every layer and option parses, the text round-trips, and every mistake is one
// line naming file, line and column.
#include "lenz/model_text.h"

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
    const std::string mobile = "input 8x8x3\nconv 4 3x3 relu6\nhardsigmoid\nrelu6\ndense 3 hardsigmoid\n";
    EXPECT_EQ(parse_model(mobile, "m.lenz").to_text(), mobile);
    Model m = parse_model(text, "m.lenz");
    EXPECT_EQ(m.size(), 13);
    EXPECT_EQ(m.layer(1).output_shape(), (Shape{16, 30, 8}));
    EXPECT_EQ(m.output_shape(), (Shape{1, 1, 10}));
    EXPECT_TRUE(m.ends_with_softmax());
    Model again = parse_model(m.to_text(), "again");
    EXPECT_EQ(again.to_text(), m.to_text());
    EXPECT_EQ(m.layer(1).spec(), "conv 8 3x5 stride=2x1 padding=1x2 leakyrelu=0.2 nobias");
}

TEST(ModelText, ShuffleNetAndConvNeXtLayersRoundTrip) {
    const std::string text =
        "input 8x8x6\nconv 8 1x1 name=a\nslice 0:4 name=left\nslice 4:8 from=a\nhardswish\nsilu\ngelu "
        "name=g\n"
        "concat left g\nshuffle 2\nlayernorm eps=1e-06\nlayernorm\n";
    Model m = parse_model(text, "m.lenz");
    EXPECT_EQ(m.layer(1).output_shape(), (Shape{8, 8, 4}));
    EXPECT_EQ(m.output_shape(), (Shape{8, 8, 8}));
    int64_t params = 0;
    for (int64_t i = 0; i < m.size(); ++i) params += m.layer(i).param_count();
    EXPECT_EQ(params, 8 * 6 + 8 + 2 * 2 * 8);
    EXPECT_EQ(m.layer(2).spec(), "slice 4:8");
    EXPECT_EQ(parse_model(m.to_text(), "again").to_text(), m.to_text());
    // swish is silu's other name
    EXPECT_EQ(parse_model("input 2x2x1\nswish\n", "m").layer(0).spec(), "silu");
}

// Layer::config() is the typed form of spec(): a layer made from it writes the same line, for
// every layer type and option.
TEST(ModelText, EveryLayerGivesItsTypedConfigBack) {
    const std::string text =
        "input 12x12x4\nconv 8 3x5 stride=2x1 padding=1x2 groups=2 dilation=1x2 leakyrelu=0.2 nobias\n"
        "batchnorm\nrelu6\nmaxpool 3 stride=2 padding=1 ceil\navgpool 2 padding=same\nlayernorm eps=1e-06\n"
        "slice 2:6 name=s\nshuffle 2\ngelu name=g\nadd s g hardsigmoid\nconcat s g\nmul s g\n"
        "globalmaxpool\nflatten\ndropout 0.25\ndense 5 softmax\n";
    Model m = parse_model(text, "m.lenz");
    for (int64_t i = 0; i < m.size(); ++i)
        EXPECT_EQ(make_layer(m.layer(i).config())->spec(), m.layer(i).spec()) << "layer " << i + 1;
    const auto conv = std::get<Conv2dConfig>(m.layer(0).config());
    EXPECT_EQ(conv.groups, 2);
    EXPECT_EQ(conv.dilation_w, 2);
    EXPECT_FALSE(conv.bias);
    EXPECT_EQ(std::get<ChannelSliceConfig>(m.layer(6).config()).end, 6);
    EXPECT_EQ(std::get<ActivationConfig>(m.layer(8).config()).activation.kind, Activation::gelu);
}

TEST(ModelTextErrors, ChannelLayerMistakes) {
    EXPECT_EQ(parse_error("input 8x8x6\nshuffle 4\n"),
              "m.lenz:2:1: shuffle: 4 groups do not divide the input's 6 channels (input 8x8x6)");
    EXPECT_EQ(
        parse_error("input 8x8x6\nslice 2:9\n"),
        "m.lenz:2:1: slice: channels 2:9 are not a range inside the input's 6 channels (begin:end, 0 <= "
        "begin < end <= 6) (input 8x8x6)");
    EXPECT_EQ(
        parse_error("input 8x8x6\nconv 4 3 silu\n"),
        "m.lenz:2:10: conv: silu needs its input to train, so it is a layer of its own: write 'silu' on "
        "the next line");
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

// The graph forms: name=, from=, add, concat and mul; these forms are a contract.
TEST(ModelText, GraphsRoundTripWithTheirNames) {
    const std::string text =
        "input 8x8x3\n"
        "conv 8 3x3 padding=same relu name=stem\n"
        "conv 8 3x3 padding=same relu\n"
        "conv 8 3x3 padding=same name=b2\n"
        "add stem b2 relu name=block\n"
        "conv 4 1x1 from=stem name=side.branch-1\n"
        "concat block side.branch-1 stem\n"
        "globalavgpool name=pooled\n"
        "dense 20 sigmoid\n"
        "conv 20 1x1 from=_6\n";
    const std::string with_gate =
        "input 8x8x3\nconv 4 3x3 padding=same name=x\nglobalavgpool\ndense 4 sigmoid name=gate\nmul x gate\n";
    Model m = parse_model(with_gate, "m.lenz");
    EXPECT_EQ(m.inputs(3), (std::vector<int64_t>{1, 3}));
    EXPECT_EQ(m.output_shape(), (Shape{8, 8, 4}));
    EXPECT_EQ(m.to_text(), with_gate);
    EXPECT_EQ(parse_error(text), "m.lenz:10:18: conv: unknown name '_6'");

    Model g = parse_model(text.substr(0, text.rfind("conv 20")), "m.lenz");
    EXPECT_FALSE(g.is_chain());
    EXPECT_EQ(g.inputs(3), (std::vector<int64_t>{1, 3}));  // add stem b2
    EXPECT_EQ(g.inputs(4), (std::vector<int64_t>{1}));     // from=stem
    EXPECT_EQ(g.output_shape(), (Shape{1, 1, 20}));
    EXPECT_EQ(g.layer(5).output_shape(), (Shape{8, 8, 20}));  // 8 + 4 + 8 channels
    EXPECT_EQ(g.layer_text(3), "add stem b2 relu name=block");
    Model again = parse_model(g.to_text(), "again");
    EXPECT_EQ(again.to_text(), g.to_text());
    EXPECT_EQ(again.inputs(5), (std::vector<int64_t>{4, 5, 1}));

    // A model built in C++ without names gets names where a layer reads other than the line above.
    Model built({4, 4, 2});
    Conv2dConfig pointwise;
    pointwise.filters = 2;
    pointwise.kernel_h = pointwise.kernel_w = 1;
    built.add(make_conv2d(pointwise));
    built.add(make_conv2d(pointwise));
    built.add(make_add({}), {1, 2});
    EXPECT_EQ(built.to_text(), "input 4x4x2\nconv 2 1x1 name=_1\nconv 2 1x1 name=_2\nadd _1 _2\n");
    EXPECT_EQ(parse_model(built.to_text(), "b").to_text(), built.to_text());
}

TEST(ModelTextErrors, GraphMistakesNameTheLineAndColumn) {
    const std::string head = "input 8x8x3\nconv 4 3x3 padding=same name=a\n";
    EXPECT_EQ(parse_error(head + "conv 4 3x3 from=b\n"), "m.lenz:3:17: conv: unknown name 'b'");
    EXPECT_EQ(parse_error(head + "add a b\nconv 4 1x1 name=b\n"),
              "m.lenz:3:7: add: 'b' is used before it is defined (on line 4); a layer reads only what is "
              "written above it");
    EXPECT_EQ(parse_error(head + "conv 4 1x1 name=a\n"),
              "m.lenz:3:17: conv: the name 'a' is already given (on line 2)");
    EXPECT_EQ(parse_error(head + "conv 4 1x1 name=input\n"),
              "m.lenz:3:17: conv: the name 'input' is already given (to the model's input)");
    EXPECT_EQ(parse_error(head + "conv 5 1x1 name=c\nadd a c\n"),
              "m.lenz:4:1: add: inputs of different shapes, 8x8x4 and 8x8x5 (input 8x8x4 and 8x8x5)");
    EXPECT_EQ(parse_error(head + "maxpool 2 name=c\nconcat a c\n"),
              "m.lenz:4:1: concat: inputs of different sizes, 8x8x4 and 4x4x4 (height and width must match) "
              "(input 8x8x4 and 4x4x4)");
    EXPECT_EQ(parse_error(head + "globalavgpool\ndense 3 name=g\nmul a g\n"),
              "m.lenz:5:1: mul: the gate 1x1x3 is neither 8x8x4 nor 1x1x4 (one weight per channel) "
              "(input 8x8x4 and 1x1x3)");
    EXPECT_EQ(parse_error(head + "conv 4 1x1 groups=3\n"),
              "m.lenz:3:1: conv: groups=3 does not divide the 4 filters (input 8x8x4)");
    for (const char* bad : {"add a\n", "concat a\n", "mul a a a\n", "add a a from=a\n", "conv 4 1x1 name=\n",
                            "conv 4 1x1 name=a/b\n", "conv 4 1x1 from=a from=a\n", "add a a nobias\n",
                            "conv 4 1x1 name=x name=y\n"}) {
        const std::string msg = parse_error(head + bad);
        EXPECT_EQ(msg.rfind("m.lenz:3:", 0), 0u) << bad << " -> " << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
}

// ceil rounds the output size up, less a last window that would start past the input (PyTorch's rule).
TEST(ModelText, CeilModePooling) {
    Model m = parse_model("input 8x7x2\nmaxpool 3 stride=2 ceil\navgpool 2 padding=1 ceil\n", "m.lenz");
    EXPECT_EQ(m.layer(0).spec(), "maxpool 3x3 stride=2 ceil");
    EXPECT_EQ(m.layer(0).output_shape(), (Shape{4, 3, 2}));  // floor would give 3x3: (8 - 3) / 2 + 1 = 3
    EXPECT_EQ(m.layer(1).output_shape(), (Shape{3, 2, 2}));  // 4: padded 6 -> 3 + 1, the 4th would start past
    EXPECT_EQ(parse_model(m.to_text(), "again").to_text(), m.to_text());
    EXPECT_NE(parse_error("input 8x8x1\nconv 2 3 ceil\n").find("unknown option 'ceil'"), std::string::npos);
}

// count-padding divides an average by the whole window, as PyTorch's count_include_pad=True.
TEST(ModelText, AveragePoolingThatCountsPadding) {
    Model m = parse_model("input 8x8x2\navgpool 3 stride=1 padding=1 count-padding\n", "m.lenz");
    EXPECT_EQ(m.layer(0).spec(), "avgpool 3x3 stride=1 padding=1 count-padding");
    EXPECT_EQ(parse_model(m.to_text(), "again").to_text(), m.to_text());
    EXPECT_NE(parse_error("input 8x8x1\nmaxpool 3 padding=1 count-padding\n")
                  .find("unknown option 'count-padding'"),
              std::string::npos);
    EXPECT_NE(parse_error("input 8x8x1\navgpool 3 padding=1 ceil count-padding\n")
                  .find("count-padding is for average pooling without ceil"),
              std::string::npos);
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
        "dilation=D, an activation (relu, leakyrelu[=A], sigmoid, tanh, softmax, logsoftmax, relu6, "
        "hardsigmoid, elu[=A]) or nobias)");
    EXPECT_EQ(
        parse_error("input 28x28x1\npool 2\n"),
        "m.lenz:2:1: unknown layer 'pool' (expected conv, convtranspose, maxpool, avgpool, globalavgpool, "
        "globalmaxpool, "
        "flatten, dense, dropout, batchnorm, relu, leakyrelu, sigmoid, tanh, softmax, logsoftmax, relu6, "
        "hardsigmoid, hardswish, silu, gelu, elu, prelu, shuffle, slice, layernorm, upsample, add, concat "
        "or mul)");
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
        "input 8x8x6\nshuffle 4\n",  // does not divide the channels
        "input 8x8x6\nshuffle 0\n",
        "input 8x8x6\nshuffle\n",
        "input 8x8x6\nslice 0:7\n",  // past the channels
        "input 8x8x6\nslice 3:3\n",
        "input 8x8x6\nslice 4:2\n",
        "input 8x8x6\nslice 3\n",
        "input 8x8x6\nslice -1:2\n",
        "input 8x8x6\nslice 1:2 3\n",
        "input 8x8x6\nlayernorm eps=0\n",
        "input 8x8x6\nlayernorm eps=x\n",
        "input 8x8x6\nlayernorm 3\n",
        "input 8x8x6\ndense 4 gelu\n",  // needs its input: a layer of its own
        "input 8x8x6\nsilu 2\n",
    };
    for (const char* text : bad) {
        const std::string msg = parse_error(text);
        EXPECT_NE(msg, "(no error)") << "accepted: " << text;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_EQ(msg.rfind("m.lenz:", 0), 0u) << msg;
    }
}

TEST(ModelTextErrors, MoreThanTwoHundredThousandLayers) {
    std::string text = "input 2x2x1\n";
    for (int i = 0; i < 200001; ++i) text += "relu\n";
    EXPECT_EQ(parse_error(text), "m.lenz:200002:1: more than 200000 layers");
}

// prelu, elu[=A] (standalone and fused) and logsoftmax round-trip through their spec, with
// PReLU's slope count and its multiplications one per value.
TEST(ModelText, PReluEluLogSoftmax) {
    Model m = parse_model(
        "input 6x6x3\nconv 4 3 elu\nprelu channels\nconv 5 3 elu=0.5\nprelu\nelu=2\nlogsoftmax\n"
        "flatten\ndense 3 logsoftmax\n",
        "m.lenz");
    for (int64_t i = 0; i < m.size(); ++i)
        EXPECT_EQ(make_layer(m.layer(i).config())->spec(), m.layer(i).spec()) << "layer " << i + 1;
    EXPECT_EQ(m.layer(0).spec(), "conv 4 3x3 elu");
    EXPECT_EQ(m.layer(1).spec(), "prelu channels");
    EXPECT_EQ(m.layer(1).param_count(), 4);
    EXPECT_EQ(m.layer(1).mult_count(), 4 * 4 * 4);
    EXPECT_EQ(m.layer(2).spec(), "conv 5 3x3 elu=0.5");
    EXPECT_EQ(m.layer(3).param_count(), 1);
    EXPECT_EQ(m.layer(4).kind(), "elu");
    EXPECT_EQ(m.layer(4).spec(), "elu=2");
    EXPECT_EQ(std::get<ActivationConfig>(m.layer(5).config()).activation.kind, Activation::log_softmax);
    EXPECT_EQ(m.layer(7).spec(), "dense 3 logsoftmax");
    EXPECT_TRUE(m.ends_with_softmax());
}

TEST(ModelTextErrors, PReluAndElu) {
    EXPECT_EQ(parse_error("input 8x8x6\nprelu all\n"),
              "m.lenz:2:7: prelu: unknown option 'all' (expected channels, for one slope per channel: "
              "prelu channels)");
    EXPECT_EQ(parse_error("input 8x8x6\nprelu channels 2\n"),
              "m.lenz:2:16: prelu takes no further arguments, got '2'");
    EXPECT_EQ(parse_error("input 8x8x6\nelu=-1\n"),
              "m.lenz:2:5: elu: expected a positive alpha such as 1.0, got '-1'");
    EXPECT_EQ(parse_error("input 8x8x6\nconv 3 3 elu=x\n"),
              "m.lenz:2:14: elu: expected a positive alpha such as 1.0, got 'x'");
}

TEST(ModelTextErrors, MissingFile) {
    EXPECT_THROW(load_model_file("/nonexistent/model.lenz"), IoError);
}

}  // namespace
}  // namespace lenz
