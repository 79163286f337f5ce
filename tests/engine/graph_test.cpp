// Graphs, not chains: residual connections, branches that concatenate, gates that multiply, values
// read by several layers. The engine's gradients against finite differences of the whole model's
// loss, inference against the training forward, and allocation against the plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/parameter_gradients.h"
#include "engine/schedule.h"
#include "engine/value_graph.h"
#include "lenz/buffer.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/report.h"
#include "lenz/summary.h"

namespace lenz {
namespace {

// A residual block, as ResNet has it: the stem's output is added to what two convolutions make of it.
const char* kResidual =
    "input 6x5x3\n"
    "conv 4 3x3 padding=same tanh name=stem\n"
    "conv 4 3x3 padding=same sigmoid\n"
    "conv 4 3x3 padding=same name=b2\n"
    "add stem b2 tanh\n"
    "globalavgpool\n"
    "flatten\n"
    "dense 3 softmax\n";

// Two branches from one value, concatenated (GoogLeNet, DenseNet), and a 1x1 conv reading the stem
// a third time.
const char* kBranches =
    "input 6x6x2\n"
    "conv 3 3x3 padding=same tanh name=stem\n"
    "conv 2 1x1 sigmoid name=a\n"
    "conv 4 3x3 padding=same tanh from=stem name=b\n"
    "concat a b stem\n"
    "avgpool 2 name=cat\n"
    "conv 2 1x1 from=stem name=side\n"
    "globalavgpool from=side name=pooled\n"
    "globalavgpool from=cat name=pooled_cat\n"
    "concat pooled pooled_cat\n"
    "flatten\n"
    "dense 3\n";

// Squeeze-and-excitation: a per-channel gate computed from the value it scales.
const char* kSqueezeExcite =
    "input 5x5x3\n"
    "conv 4 3x3 padding=same tanh name=x\n"
    "globalavgpool\n"
    "dense 2 tanh\n"
    "dense 4 sigmoid name=gate\n"
    "conv 4 1x1 tanh from=x name=y\n"
    "mul y gate\n"
    "flatten name=flat\n"
    "dense 3 tanh from=flat name=left\n"
    "dense 3 from=flat name=right\n"
    "add left right\n";

// ShuffleNet v2's unit: split the channels, transform one half, concatenate, shuffle.
const char* kShuffleUnit =
    "input 5x5x4\n"
    "conv 6 3x3 padding=same tanh name=x\n"
    "slice 0:3 name=kept\n"
    "slice 3:6 from=x\n"
    "conv 3 1x1 relu\n"
    "conv 3 3x3 padding=same groups=3\n"
    "hardswish\n"
    "conv 3 1x1 name=changed\n"
    "concat kept changed\n"
    "shuffle 2\n"
    "globalavgpool\n"
    "dense 3\n";

// ConvNeXt's block: depthwise 7x7 (here 3x3), layer norm, pointwise up, gelu, pointwise down, residual;
// and EfficientNet's silu.
const char* kConvNeXtBlock =
    "input 5x5x3\n"
    "conv 4 3x3 padding=same name=stem\n"
    "conv 4 3x3 padding=same groups=4\n"
    "layernorm eps=1e-06\n"
    "conv 8 1x1\n"
    "gelu\n"
    "conv 4 1x1 name=branch\n"
    "add stem branch\n"
    "silu\n"
    "layernorm\n"
    "globalavgpool\n"
    "dense 3\n";

// Channels-last from the first convolution to the last: batch norm, a standalone relu, a residual
// add, a per-channel gate (mul) and a concatenation keep the layout, so no value between the
// convolutions is reordered.
const char* kChannelsLast =
    "input 6x6x3\n"
    "conv 4 3x3 padding=same nobias name=stem\n"
    "batchnorm\n"
    "relu name=a\n"
    "conv 4 3x3 padding=same name=b\n"
    "add a b relu name=r\n"
    "globalavgpool from=input\n"
    "dense 4 sigmoid name=gate\n"
    "mul r gate name=m\n"
    "conv 3 1x1 tanh name=c1\n"
    "conv 2 3x3 padding=same from=m name=c2\n"
    "concat c1 c2\n"
    "conv 4 3x3 padding=same\n"
    "globalavgpool\n"
    "flatten\n"
    "dense 3\n";

// A U-Net's encoder and decoder: each decoder stage upsamples (nearest, then bilinear by 2x3, then
// bilinear with aligned corners) and concatenates the encoder's output of that size, which stays
// alive until then.
const char* kUNet =
    "input 8x12x2\n"
    "conv 4 3x3 padding=same tanh name=e1\n"
    "maxpool 2\n"
    "conv 4 3x3 padding=same tanh name=e2\n"
    "maxpool 2x3\n"
    "conv 6 3x3 padding=same tanh\n"
    "upsample 2x3 bilinear name=u2\n"
    "concat u2 e2\n"
    "conv 4 3x3 padding=same tanh\n"
    "upsample 2 name=u1\n"
    "concat u1 e1\n"
    "conv 3 3x3 padding=same tanh\n"
    "avgpool 2\n"
    "upsample 2 bilinear align-corners\n"
    "conv 3 1x1 tanh\n"
    "globalavgpool\n"
    "flatten\n"
    "dense 3\n";

// A U-Net with learned upsampling: each decoder stage is a convtranspose of stride 2 (2x2 with a
// fused activation; 3x3 with padding=1 output-padding=1, as PyTorch U-Nets write it), then the
// concatenation with the encoder's output of that size.
const char* kUNetTransposed =
    "input 8x12x2\n"
    "conv 4 3x3 padding=same tanh name=e1\n"
    "maxpool 2\n"
    "conv 4 3x3 padding=same tanh name=e2\n"
    "maxpool 2\n"
    "conv 6 3x3 padding=same tanh\n"
    "convtranspose 4 2 stride=2 tanh name=u2\n"
    "concat u2 e2\n"
    "conv 4 3x3 padding=same tanh\n"
    "convtranspose 3 3 stride=2 padding=1 output-padding=1 name=u1\n"
    "concat u1 e1\n"
    "conv 3 1x1 tanh\n"
    "globalavgpool\n"
    "flatten\n"
    "dense 3\n";

Model graph_model(const std::string& text) {
    Model m = parse_model(text, "graph.lenz");
    m.init_params(11);
    return m;
}

Buffer random_input(const Model& m, int64_t batch, uint64_t seed) {
    Rng rng(seed);
    Buffer x(batch * m.input_shape().elements());
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1.0f, 1.0f);
    return x;
}

// Every parameter's gradient from TrainingStep::run against central differences of the mean
// cross-entropy, with a kink guard as in the layer checks.
void expect_parameter_gradients_match(const std::string& text) {
    SCOPED_TRACE(text);
    constexpr int64_t N = 3;
    Model m = graph_model(text);
    const Buffer x = random_input(m, N, 5);
    std::vector<int32_t> labels{0, 2, 1};
    TrainingStep step(m, N);
    testing::expect_parameter_gradients_match(
        m, [&] { return step.run(x.data(), labels.data(), N, 1).loss_sum / N; });
}

TEST(Graph, ResidualGradientsMatchFiniteDifferences) {
    expect_parameter_gradients_match(kResidual);
}

TEST(Graph, BranchesAndConcatGradientsMatchFiniteDifferences) {
    expect_parameter_gradients_match(kBranches);
}

TEST(Graph, SqueezeExciteAndSharedFlattenGradientsMatchFiniteDifferences) {
    expect_parameter_gradients_match(kSqueezeExcite);
}

TEST(Graph, ShuffleUnitGradientsMatchFiniteDifferences) {
    expect_parameter_gradients_match(kShuffleUnit);
}

// Pools between convolutions run channels-last: the 2x2 max pool's own path, a 3x3 one with
// padding, and an average that counts its padding.
TEST(Graph, ChannelsLastPoolGradientsMatchFiniteDifferences) {
    const char* pools =
        "input 8x8x2\nconv 4 3x3 padding=same tanh\nmaxpool 2\nconv 4 3x3 padding=same tanh\n"
        "maxpool 3 stride=2 padding=1\nconv 4 1x1 tanh\navgpool 3 stride=1 padding=1 count-padding\n"
        "conv 3 1x1 tanh\nflatten\ndense 3 softmax\n";
    const std::vector<Layouts> layouts = plan_layouts(parse_model(pools, "m"));
    for (size_t pool : {1, 3, 5}) ASSERT_EQ(layouts[pool].input, Layout::nhwc) << pool;
    expect_parameter_gradients_match(pools);
}

TEST(Graph, ChannelsLastThroughBatchNormAddMulAndConcat) {
    Model m = graph_model(kChannelsLast);
    const std::vector<Layouts> layouts = plan_layouts(m);
    for (int64_t i : {1, 2, 3, 4, 7, 8, 9, 10})  // batchnorm .. concat: input and output channels-last
        EXPECT_TRUE(layouts[static_cast<size_t>(i)].input == Layout::nhwc &&
                    layouts[static_cast<size_t>(i)].output == Layout::nhwc)
            << "layer " << i + 1;
    EXPECT_EQ(layouts[0].input, Layout::nchw);   // the model's input
    EXPECT_EQ(layouts[12].input, Layout::nhwc);  // the global pool reads either layout
    expect_parameter_gradients_match(kChannelsLast);
    // Global max pooling, channels-last: the gradient goes to each channel's first maximum.
    const char* max_pooled =
        "input 5x5x2\nconv 3 3x3 padding=same\nconv 4 3x3 padding=same\nglobalmaxpool\n"
        "flatten\ndense 3\n";
    EXPECT_EQ(plan_layouts(graph_model(max_pooled))[2].input, Layout::nhwc);
    expect_parameter_gradients_match(max_pooled);
    // The plain (N, C, H, W) path of the report's feature maps computes the same.
    const Buffer x = random_input(m, 1, 3);
    const std::vector<std::vector<float>> plain = layer_outputs(m, x.data());
    Inference inference(m, 1);
    const float* y = inference.run(x.data(), 1);
    for (int64_t k = 0; k < 3; ++k) EXPECT_NEAR(y[k], plain.back()[static_cast<size_t>(k)], 1e-5f) << k;
}

// The upsamples between convolutions run channels-last, and the encoder's outputs stay alive in the
// arena until the concatenations read them.
TEST(Graph, UNetUpsampleAndConcatGradientsMatchFiniteDifferences) {
    const std::vector<Layouts> layouts = plan_layouts(parse_model(kUNet, "unet.lenz"));
    for (size_t up : {5, 8, 12}) EXPECT_EQ(layouts[up].input, Layout::nhwc) << "layer " << up + 1;
    expect_parameter_gradients_match(kUNet);
    const Summary s = summarize(graph_model(kUNet), {.batch = 1});
    EXPECT_EQ(s.layers[0].last_read, 10);  // e1, read by the second concatenation
    EXPECT_EQ(s.layers[2].last_read, 7);   // e2, by the first
}

// 8x12 pools to 4x6 and 2x3; convtranspose 2 stride=2 gives 4x6 back for e2, and 3 stride=2
// padding=1 output-padding=1 gives (4 - 1)·2 - 2 + 2 + 1 + 1 = 8 by 12 for e1. The encoder's outputs
// stay alive until the concatenations read them.
TEST(Graph, UNetConvTransposeAndConcatGradientsMatchFiniteDifferences) {
    Model m = parse_model(kUNetTransposed, "unet.lenz");
    EXPECT_EQ(m.layer(5).output_shape(), (Shape{4, 6, 4}));
    EXPECT_EQ(m.layer(8).output_shape(), (Shape{8, 12, 3}));
    expect_parameter_gradients_match(kUNetTransposed);
    const Summary s = summarize(graph_model(kUNetTransposed), {.batch = 1});
    EXPECT_EQ(s.layers[0].last_read, 10);  // e1, read by the second concatenation
    EXPECT_EQ(s.layers[2].last_read, 7);   // e2, by the first
}

TEST(Graph, ConvNeXtBlockGradientsMatchFiniteDifferences) {
    expect_parameter_gradients_match(kConvNeXtBlock);
}

// The arena packs values by lifetime; nothing may be overwritten while a later layer still reads it.
TEST(Graph, InferenceMatchesTheTrainingForward) {
    for (const char* text : {kResidual, kBranches, kSqueezeExcite, kShuffleUnit, kConvNeXtBlock,
                             kChannelsLast, kUNet, kUNetTransposed}) {
        SCOPED_TRACE(text);
        Model m = graph_model(text);
        const Buffer x = random_input(m, 4, 9);
        Inference inference(m, 4);
        const float* a = inference.run(x.data(), 4);
        const int64_t K = m.output_shape().elements();
        std::vector<float> first(a, a + 4 * K);
        TrainingStep step(m, 4);
        const float* b = step.forward(x.data(), 4, false, 0);
        for (int64_t i = 0; i < 4 * K; ++i) EXPECT_NEAR(first[static_cast<size_t>(i)], b[i], 1e-5f) << i;
        // A smaller batch on the same plan.
        const float* c = inference.run(x.data(), 2);
        for (int64_t i = 0; i < 2 * K; ++i) EXPECT_NEAR(c[i], b[i], 1e-5f) << i;
    }
}

TEST(Graph, EngineAllocatesExactlyThePlan) {
    for (const char* text :
         {kResidual, kBranches, kSqueezeExcite, kShuffleUnit, kConvNeXtBlock, kUNet, kUNetTransposed}) {
        SCOPED_TRACE(text);
        Model m = graph_model(text);
        int64_t before = buffer_bytes_live();
        {
            Inference inference(m, 5);
            EXPECT_EQ(buffer_bytes_live() - before,
                      plan_inference(m, 5).bytes() - 4 * plan_inference(m, 5).param_floats);
        }
        before = buffer_bytes_live();
        Model fresh = parse_model(text, "graph.lenz");
        fresh.init_params(1);
        const int64_t params = buffer_bytes_live() - before;
        TrainingStep step(fresh, 5);
        EXPECT_EQ(buffer_bytes_live() - before, plan_training(fresh, 5, OptimizerKind::sgd).bytes())
            << params;
    }
}

// While the skip connection is alive, the arena holds it beside the branch: more than any pair of
// consecutive values, and no more than every value at once. (Conv 3 has an activation of its own,
// so the add does not fold into it.)
TEST(Graph, ResidualArenaHoldsTheSkipConnection) {
    Model m = parse_model(
        "input 8x8x4\nconv 4 3x3 padding=same name=stem\nconv 8 3x3 padding=same\nconv 4 3x3 padding=same "
        "relu name=b\nadd stem b\n",
        "m");
    // Alive while conv 3 runs: stem (256), conv 2's output (512) and conv 3's (256).
    EXPECT_EQ(plan_inference(m, 1).arena_floats, 256 + 512 + 256);
    // Without its activation, conv 3 takes the add over and writes over stem.
    Model fused = parse_model(
        "input 8x8x4\nconv 4 3x3 padding=same name=stem\nconv 8 3x3 padding=same\nconv 4 3x3 padding=same "
        "name=b\nadd stem b\n",
        "m");
    EXPECT_EQ(plan_inference(fused, 1).arena_floats, 256 + 512);
}

// At inference add and mul write over an input that only they read: ResNet's `out += identity`.
TEST(Graph, AddAndMulWriteOverAnInputNobodyElseReads) {
    Model m = parse_model(
        "input 8x8x4\nconv 4 3x3 padding=same name=stem\nconv 4 3x3 padding=same name=b\nadd stem b name=s\n"
        "add s s\nmul stem b\n",
        "m");
    const ValueGraph g = analyse(m);
    EXPECT_FALSE(g.in_place[2]);  // stem and b are read again by the mul
    EXPECT_FALSE(g.in_place[3]);  // `add s s` reads s twice: writing over it would change its second read
    EXPECT_FALSE(g.in_place[4]);
    Model r = parse_model(
        "input 8x8x4\nconv 4 3x3 padding=same name=stem\nconv 4 3x3 padding=same name=b\nadd stem b name=s\n"
        "conv 4 1x1 name=gate\nmul s gate\n",
        "r");
    const ValueGraph h = analyse(r);
    EXPECT_TRUE(h.in_place[2]);  // over b, the input that only the add reads (the stem feeds conv b too)
    EXPECT_EQ(h.inference_storage(3), 2);
    const InferenceSchedule schedule = schedule_inference(r, 2);
    EXPECT_EQ(schedule.value_offset[3], schedule.value_offset[2]);
    EXPECT_TRUE(h.in_place[4]);  // mul over its gate (s is read by the gate's conv too)
    EXPECT_EQ(h.inference_storage(5), 4);
    // And the results are those of the training forward, which keeps every value apart.
    r.init_params(3);
    const Buffer x = random_input(r, 2, 4);
    Inference inference(r, 2);
    const float* a = inference.run(x.data(), 2);
    std::vector<float> first(a, a + 2 * 256);
    TrainingStep step(r, 2);
    const float* b = step.forward(x.data(), 2, false, 0);
    for (int64_t i = 0; i < 2 * 256; ++i) ASSERT_NEAR(first[static_cast<size_t>(i)], b[i], 1e-5f) << i;
}

// 100,000 layers: 50,000 residual steps. Nothing recurses (file order is the topological order),
// and the planner and the summary sweep the layers instead of comparing every pair of values.
TEST(Graph, AHundredThousandLayersPlanAndRun) {
    std::string text = "input 4x4x2\nrelu name=v0\n";
    for (int k = 0; k < 49999; ++k)
        text += "tanh name=t" + std::to_string(k) + "\nadd v" + std::to_string(k) + " t" + std::to_string(k) +
                " name=v" + std::to_string(k + 1) + "\n";
    text += "globalavgpool\n";
    Model m = parse_model(text, "deep.lenz");
    ASSERT_EQ(m.size(), 100000);
    const Summary s = summarize(m, {.batch = 2});
    EXPECT_EQ(s.pair_bytes, 2 * 32 * 4);  // at a tanh: its input (which the add reads too) and its output
    const InferencePlan plan = plan_inference(m, 2);
    EXPECT_EQ(plan.arena_floats, 2 * 2 * 32);  // the add writes over the tanh.s output
    Inference inference(m, 2);
    const Buffer x = random_input(m, 2, 1);
    const float* y = inference.run(x.data(), 2);
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isfinite(y[i]));
    TrainingStep step(m, 2);
    std::vector<int32_t> labels{0, 1};
    EXPECT_TRUE(std::isfinite(step.run(x.data(), labels.data(), 2, 1).loss_sum));
}

TEST(Graph, TrainingLearnsAResidualModel) {
    // Two classes told apart by the sign of the mean: a few steps of SGD must lower the loss.
    Model m = graph_model(kResidual);
    constexpr int64_t N = 8;
    Buffer x(N * m.input_shape().elements());
    std::vector<int32_t> labels(N);
    for (int64_t n = 0; n < N; ++n) {
        labels[static_cast<size_t>(n)] = static_cast<int32_t>(n % 2) * 2;
        for (int64_t i = 0; i < m.input_shape().elements(); ++i)
            x[n * m.input_shape().elements() + i] = (n % 2 ? 0.5f : -0.5f) + 0.1f * static_cast<float>(i % 3);
    }
    TrainingStep step(m, N);
    const double first = step.run(x.data(), labels.data(), N, 0).loss_sum;
    for (int s = 0; s < 30; ++s) {
        step.run(x.data(), labels.data(), N, 0);
        for (Model::NamedParam& p : m.named_params())
            for (int64_t i = 0; i < p.ref.value->size(); ++i) (*p.ref.value)[i] -= 0.5f * (*p.ref.grad)[i];
    }
    EXPECT_LT(step.run(x.data(), labels.data(), N, 0).loss_sum, 0.5 * first);
}

}  // namespace
}  // namespace lenz
