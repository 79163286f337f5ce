// Inference folds a batch norm and an activation into the convolution before them, lets a batch
// norm or a channel shuffle read the inputs of the concatenation before it, and lets pools, slices
// and concatenations write straight into the concatenation that reads them: the outputs of running
// every layer, in less memory, with the folded layers not run at all.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine/schedule.h"
#include "lenz/buffer.h"
#include "lenz/engine.h"
#include "lenz/model_text.h"
#include "lenz/random.h"

namespace lenz {
namespace {

// Batch-norm statistics, scales and shifts away from their defaults, so that a wrong fold shows.
void perturb_batchnorms(Model& m, uint64_t seed) {
    Rng rng(seed);
    for (int64_t i = 0; i < m.size(); ++i) {
        if (m.layer(i).kind() != "batchnorm") continue;
        for (ParamRef& p : m.layer(i).params())
            for (int64_t k = 0; k < p.value->size(); ++k)
                (*p.value)[k] = p.name == "running_var" ? rng.uniform(0.5f, 1.5f)
                                : p.name == "weight"    ? rng.uniform(0.5f, 1.5f)
                                                        : rng.uniform(-0.5f, 0.5f);
    }
}

int64_t absorbed_count(const InferenceSchedule& plan) {
    return std::count_if(plan.absorbed_by.begin(), plan.absorbed_by.end(),
                         [](int64_t by) { return by >= 0; });
}

// A chain (plain layouts around the pool) and a residual graph that stays channels-last, with a
// depthwise convolution and the activations that only inference fuses (hard-swish, SiLU, GELU).
const char* const kChain =
    "input 12x10x3\nconv 16 3x3 padding=same nobias\nbatchnorm\nrelu\nconv 16 3x3 padding=same\nbatchnorm\n"
    "maxpool 2\nconv 24 1x1\nbatchnorm\nhardswish\nflatten\ndense 5\n";
const char* const kGraph =
    "input 12x12x8\nconv 32 3x3 padding=same nobias\nbatchnorm\nrelu name=a\nconv 32 3x3 padding=same "
    "nobias\n"
    "batchnorm\nrelu\nconv 32 3x3 padding=same nobias\nbatchnorm name=b\nadd a b relu\n"
    "conv 32 3x3 padding=same groups=32\nbatchnorm\nsilu\nconv 16 1x1\ngelu\nglobalavgpool\ndense 4\n";
// A batch norm after an activation (DenseNet's order) cannot fold into the convolution, but takes
// the activation after it.
// ConvNeXt's layer scale, imported as a 1x1 depthwise convolution: a per-channel map too.
const char* const kLayerScale =
    "input 8x8x4\nconv 8 3x3 padding=same\nconv 8 1x1 groups=8 nobias\nrelu\nconv 8 1x1 groups=8\nflatten\n"
    "dense 3\n";
// Residual adds that fold into a convolution: ResNet's projection shortcut, which comes after the
// branch it is added to; and an add whose output is the model's, in (N, C, H, W), where the
// convolution's primitive writes another layout and the residual is converted into it first.
const char* const kProjection =
    "input 8x8x8\nconv 16 3x3 padding=same nobias\nbatchnorm\nrelu name=r\nconv 16 3x3 padding=same nobias\n"
    "batchnorm name=m\nconv 16 1x1 stride=1 nobias from=r\nbatchnorm name=p\nadd m p relu\nglobalavgpool\n"
    "dense 3\n";
const char* const kResidualLast =
    "input 8x8x4\nconv 16 3x3 padding=same relu name=stem\nconv 16 3x3 padding=same nobias\nbatchnorm "
    "name=b\nadd stem b\n";
// Squeeze-and-excitation: the pools of a convolution's output go into it, whatever activation it
// ends with (SiLU, which Lenz applies itself, and hard-swish and ReLU, which oneDNN does).
const char* const kSqueezeExciteBlocks =
    "input 12x12x8\nconv 32 3x3 padding=same nobias\nbatchnorm\nsilu name=a\nglobalavgpool\nconv 8 1x1\n"
    "silu\nconv 32 1x1 sigmoid name=gate\nmul a gate\nconv 24 3x3 padding=same groups=8\nhardswish "
    "name=h\nglobalavgpool\nconv 24 1x1 relu name=g2\nmul h g2\nconv 16 1x1\nrelu\nglobalavgpool\ndense 3\n";
// DenseNet: each layer concatenates every feature map before it, then normalises and activates
// that, so each concatenation goes into the batch norm right after it. The last is read by a pool
// and is written.
const char* const kDenseBlock =
    "input 10x10x4\nconv 8 3x3 padding=same nobias\nbatchnorm\nrelu name=x0\nconv 6 3x3 padding=same "
    "name=f1\nconcat x0 f1\nbatchnorm\nrelu\nconv 6 1x1 name=f2\nconcat x0 f1 f2\nbatchnorm\nrelu\n"
    "conv 6 3x3 padding=same name=f3\nconcat x0 f2 f3\nmaxpool 2\nflatten\ndense 3\n";
// ShuffleNet: half the channels pass by, the other half through a branch; the concatenation of the
// two goes into the channel shuffle right after it. The second block concatenates three runs that
// cross the shuffle's groups (2 + 6 + 4 channels in groups of 4).
const char* const kShuffleBlocks =
    "input 8x8x4\nconv 8 1x1 relu name=x\nslice 0:4 from=x name=x1\nslice 4:8 from=x\nconv 4 1x1 relu\n"
    "conv 4 3x3 padding=same groups=4\nconv 4 1x1 relu name=b\nconcat x1 b\nshuffle 2\nconv 2 1x1 name=p\n"
    "conv 6 1x1 name=q from=x\nconv 4 1x1 name=r from=x\nconcat p q r\nshuffle 3\nconv 4 1x1\nglobalavgpool\n"
    "dense 3\n";
// Inception: a reduction block concatenates a convolution with a max pool, then a block
// concatenates a concatenation (of a convolution and a max pool), an average pool and a channel
// slice: the pools, the slice and the inner concatenation write straight into their slices.
const char* const kInceptionBlocks =
    "input 9x9x4\nconv 8 1x1 relu name=x\nconv 6 3x3 stride=2 relu name=a\nmaxpool 3 stride=2 from=x "
    "name=m\nconcat a m\nconv 8 1x1 relu name=y\nconv 4 1x1 name=b1\nmaxpool 3 stride=1 padding=same "
    "from=y name=b2\nconcat b1 b2 name=inner\navgpool 3 stride=1 padding=same from=y name=ap\nslice 0:4 "
    "from=y name=sl\nconcat y inner ap sl\nconv 8 1x1 relu\nglobalavgpool\ndense 3\n";
const char* const kNormThenActivate =
    "input 10x10x4\nconv 8 3x3 relu\nbatchnorm\nrelu6\nconv 8 1x1\nbatchnorm\ngelu\nglobalavgpool\ndense 3\n";

TEST(Absorption, FoldedLayersComputeWhatRunningEveryLayerDoes) {
    for (const char* text : {kChain, kGraph, kNormThenActivate, kLayerScale, kProjection, kResidualLast,
                             kSqueezeExciteBlocks, kDenseBlock, kShuffleBlocks, kInceptionBlocks}) {
        SCOPED_TRACE(text);
        Model m = parse_model(text, "m.lenz");
        m.init_params(7);
        perturb_batchnorms(m, 9);
        Rng rng(11);
        Buffer x(3 * m.input_shape().elements());
        for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1, 1);
        const int64_t classes = m.output_shape().elements();
        Inference inference(m, 3);  // prepared for 3 images, run on 3 and on 1
        for (int64_t batch : {3, 1}) {
            const float* folded = inference.run(x.data(), batch);
            const std::vector<float> got(folded, folded + batch * classes);
            TrainingStep step(m, batch);
            const float* every = step.forward(x.data(), batch, false, 0);
            float largest = 0;
            for (int64_t k = 0; k < batch * classes; ++k) largest = std::max(largest, std::abs(every[k]));
            for (int64_t k = 0; k < batch * classes; ++k)  // folding reassociates float sums
                EXPECT_NEAR(got[static_cast<size_t>(k)], every[k], 1e-5f * largest)
                    << "batch " << batch << " [" << k << "]";
        }
    }
}

TEST(Absorption, WhatFoldsAndIntoWhat) {
    Model chain = parse_model(kChain, "m.lenz");
    const InferenceSchedule c = schedule_inference(chain, 2);
    // batchnorm and relu into conv 1; batchnorm into conv 4; batchnorm and hardswish into conv 8.
    EXPECT_EQ(c.absorbed_by, (std::vector<int64_t>{-1, 0, 0, -1, 3, -1, -1, 6, 6, -1, -1}));
    EXPECT_TRUE(c.absorbs[0].affine);
    EXPECT_EQ(c.absorbs[0].activation.kind, Activation::relu);
    EXPECT_EQ(c.absorbs[6].activation.kind, Activation::hard_swish);
    EXPECT_EQ(c.affine_from[3], 4);
    // The graph: every batch norm and activation after a convolution, the add (with its relu) into
    // the convolution whose batch norm b it reads, over a, and the pool into the last convolution.
    const InferenceSchedule g = schedule_inference(parse_model(kGraph, "m.lenz"), 2);
    EXPECT_EQ(absorbed_count(g), 10);
    EXPECT_EQ(g.means_into[12], 14);
    EXPECT_EQ(g.absorbed_by[7], 6);  // b itself is folded: the add reads the convolution's output
    EXPECT_EQ(g.absorbed_by[8], 6);
    EXPECT_TRUE(g.absorbs[6].affine);
    EXPECT_TRUE(g.absorbs[6].residual);
    EXPECT_EQ(g.absorbs[6].activation.kind, Activation::relu);
    EXPECT_EQ(g.value_offset[9], g.value_offset[3]);  // the add's output is where a was
    EXPECT_EQ(g.absorbs[12].activation.kind, Activation::gelu);
    // The projection is written last: the add goes into it, over the branch's output m.
    const InferenceSchedule p = schedule_inference(parse_model(kProjection, "m.lenz"), 2);
    EXPECT_EQ(p.absorbed_by[7], 5);
    EXPECT_TRUE(p.absorbs[5].residual);
    EXPECT_FALSE(p.absorbs[3].residual);
    // Each pool into the convolution whose output it averages, after what that absorbed; the pool's
    // output keeps a buffer of its own, which the convolution writes.
    const InferenceSchedule se = schedule_inference(parse_model(kSqueezeExciteBlocks, "m.lenz"), 2);
    EXPECT_EQ(se.means_into[0], 3);
    EXPECT_EQ(se.absorbed_by[3], 0);
    EXPECT_EQ(se.absorbs[0].activation.kind, Activation::silu);
    EXPECT_TRUE(se.absorbs[0].channel_means);
    EXPECT_EQ(se.means_into[8], 10);
    EXPECT_EQ(se.means_into[13], 15);
    EXPECT_NE(se.value_offset[4], se.value_offset[3]);
    // Not in int8, nor in a chain (whose arena holds two values at a time).
    EXPECT_EQ(schedule_inference(parse_model("input 8x8x4\nconv 8 3x3\nglobalavgpool\ndense 2\n", "m"), 1)
                  .means_into[0],
              -1);
    // Not where the residual is read after the convolution runs.
    const InferenceSchedule read_again = schedule_inference(
        parse_model("input 8x8x4\nconv 4 3x3 padding=same name=a\nconv 4 3x3 padding=same name=b\nadd a "
                    "b name=s\nadd s a\n",
                    "m"),
        1);
    EXPECT_EQ(absorbed_count(read_again), 0);

    const InferenceSchedule n = schedule_inference(parse_model(kNormThenActivate, "m.lenz"), 2);
    EXPECT_EQ(n.absorbed_by, (std::vector<int64_t>{-1, -1, 1, -1, 3, 3, -1, -1}));
    EXPECT_FALSE(n.absorbs[1].affine);
    EXPECT_EQ(n.absorbs[1].activation.kind, Activation::relu6);

    // Each batch norm reads the concatenation before it through; the pool reads a written one.
    const InferenceSchedule d = schedule_inference(parse_model(kDenseBlock, "m.lenz"), 2);
    EXPECT_EQ(d.reads_through,
              (std::vector<int64_t>{-1, -1, -1, -1, -1, 4, -1, -1, -1, 8, -1, -1, -1, -1, -1, -1}));
    EXPECT_EQ(d.input_runs[5], (std::vector<int64_t>{8, 6}));
    EXPECT_EQ(d.input_runs[9], (std::vector<int64_t>{8, 6, 6}));
    // Each channel shuffle reads the concatenation before it through.
    const InferenceSchedule sh = schedule_inference(parse_model(kShuffleBlocks, "m.lenz"), 2);
    EXPECT_EQ(sh.reads_through[7], 6);
    EXPECT_EQ(sh.reads_through[12], 11);
    EXPECT_EQ(sh.input_runs[12], (std::vector<int64_t>{2, 6, 4}));
    // The inputs stay alive until their reader has run: its output lies apart from each of them.
    for (const char* text : {kDenseBlock, kShuffleBlocks,
                             "input 6x6x4\nconv 8 1x1 name=a\nconv 8 1x1 name=b\nconcat a b\n"
                             "batchnorm\nrelu\nconv 4 1x1\n"}) {
        SCOPED_TRACE(text);
        const Model m = parse_model(text, "m.lenz");
        const InferenceSchedule s = schedule_inference(m, 2);
        const auto span = [&](int64_t v) {
            const int64_t at = s.value_offset[static_cast<size_t>(v)];
            return std::pair{at, at + s.plan.slice * m.value_shape(v).elements()};
        };
        int64_t checked = 0;
        for (int64_t r = 0; r < m.size(); ++r) {
            const int64_t concat = s.reads_through[static_cast<size_t>(r)];
            if (concat < 0) continue;
            const auto [out_first, out_end] = span(r + 1);
            for (int64_t v : m.inputs(concat)) {
                const auto [first, end] = span(v);
                EXPECT_TRUE(end <= out_first || out_end <= first) << "layer " << r << " over value " << v;
                ++checked;
            }
        }
        EXPECT_GE(checked, 2);
    }
    // Not in int8, nor where a layer runs between the concatenation and its reader.
    const InferenceSchedule q = schedule_inference(parse_model(kDenseBlock, "m.lenz"), 2, Precision::int8);
    EXPECT_EQ(std::count(q.reads_through.begin(), q.reads_through.end(), -1), 16);
    const InferenceSchedule apart = schedule_inference(
        parse_model("input 6x6x4\nconv 4 3x3 padding=same name=a\nconv 4 1x1 name=b\nconcat a b name=c\n"
                    "conv 4 1x1 from=a\nbatchnorm from=c\n",
                    "m"),
        1);
    EXPECT_EQ(std::count(apart.reads_through.begin(), apart.reads_through.end(), -1), 5);

    // The first layer scale and the relu fold into the convolution; the second scale comes after
    // an activation and runs.
    const InferenceSchedule s = schedule_inference(parse_model(kLayerScale, "m.lenz"), 2);
    EXPECT_EQ(s.absorbed_by, (std::vector<int64_t>{-1, 0, 0, -1, -1, -1}));
    EXPECT_EQ(s.affine_from[0], 1);

    // Nothing folds where another layer reads the convolution's output, or after an activation.
    const InferenceSchedule shared = schedule_inference(
        parse_model("input 8x8x4\nconv 4 3x3 padding=same name=c\nbatchnorm name=n\nadd c n\n", "m"), 1);
    EXPECT_EQ(absorbed_count(shared), 0);
    const InferenceSchedule after_relu =
        schedule_inference(parse_model("input 8x8x4\nconv 4 3x3 relu\nbatchnorm\n", "m"), 1);
    EXPECT_EQ(absorbed_count(after_relu), 0);
}

TEST(Absorption, PoolsSlicesAndConcatenationsWriteStraightIntoTheConcatenationThatReadsThem) {
    const Model m = parse_model(kInceptionBlocks, "m.lenz");
    const InferenceSchedule s = schedule_inference(m, 2);
    using Slice = InferenceSchedule::ChannelSlice;
    const auto slice = [&](int64_t v) { return s.slice_of[static_cast<size_t>(v)]; };
    const auto same = [](Slice a, Slice b) {
        return a.concat == b.concat && a.channel == b.channel && a.stride == b.stride;
    };
    EXPECT_TRUE(same(slice(3), {3, 6, 14})) << "the max pool after the convolution's 6 channels";
    EXPECT_TRUE(same(slice(7), {7, 4, 32})) << "the inner max pool, at the outer concatenation's stride";
    EXPECT_TRUE(same(slice(8), {10, 8, 32})) << "the inner concatenation";
    EXPECT_TRUE(same(slice(9), {10, 20, 32}));
    EXPECT_TRUE(same(slice(10), {10, 28, 32}));
    // Convolutions write their own memory (oneDNN's kernels would write a slice only in their
    // reference kernel), and so does a value that other layers read too (y).
    for (int64_t v : {2, 5, 6}) EXPECT_EQ(slice(v).concat, -1) << "value " << v;
    // Each lies inside its concatenation's output, and that output lies apart from every other value
    // alive from the first write into it until the concatenation has run.
    const auto span = [&](int64_t v) {
        const int64_t at = s.value_offset[static_cast<size_t>(v)];
        return std::pair{at, at + s.plan.slice * m.value_shape(v).elements()};
    };
    const auto inside = [&](int64_t v, int64_t concat) {
        for (; slice(v).concat >= 0; v = slice(v).concat + 1)
            if (slice(v).concat == concat) return true;
        return false;
    };
    int64_t checked = 0;
    for (int64_t v = 1; v <= m.size(); ++v) {
        const int64_t concat = slice(v).concat;
        if (concat < 0) continue;
        const auto [out_first, out_end] = span(concat + 1);
        EXPECT_EQ(span(v).first, out_first + slice(v).channel);
        for (int64_t j = v - 1; j <= concat; ++j)
            for (int64_t u : m.inputs(j)) {
                if (u == 0 || inside(u, concat) || u == concat + 1) continue;
                const auto [first, end] = span(u);
                EXPECT_TRUE(end <= out_first || out_end <= first)
                    << "concat " << concat << " over value " << u;
                ++checked;
            }
    }
    EXPECT_GE(checked, 10);
    // Not in int8.
    const InferenceSchedule q = schedule_inference(m, 2, Precision::int8);
    for (const Slice& v : q.slice_of) EXPECT_EQ(v.concat, -1);
}

// What a run hands an observer (calibration) of a value written into a concatenation is the value
// itself: its channels of the concatenation's output at every pixel.
TEST(Absorption, ObserversSeeAValueWrittenIntoAConcatenationAsItself) {
    Model m = parse_model(kInceptionBlocks, "m.lenz");
    m.init_params(3);
    Rng rng(5);
    Buffer x(2 * m.input_shape().elements());
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1, 1);
    std::map<int64_t, std::vector<float>> seen;
    const Inference::ValueObserver observe = [&](int64_t value, const float* data, int64_t floats) {
        seen[value].assign(data, data + floats);
    };
    Inference inference(m, 2);
    inference.run(x.data(), 2, nullptr, &observe);
    const InferenceSchedule& s = inference.schedule();
    int64_t checked = 0;
    for (int64_t v = 1; v <= m.size(); ++v) {
        const InferenceSchedule::ChannelSlice slice = s.slice_of[static_cast<size_t>(v)];
        if (slice.concat < 0) continue;
        ASSERT_TRUE(seen.count(v) && seen.count(slice.concat + 1)) << "value " << v;
        const std::vector<float>&part = seen[v], &whole = seen[slice.concat + 1];
        const int64_t c = m.value_shape(v).c, C = m.value_shape(slice.concat + 1).c;
        for (int64_t pixel = 0; pixel < 2 * m.value_shape(v).h * m.value_shape(v).w; ++pixel)
            for (int64_t k = 0; k < c; ++k)
                ASSERT_EQ(part[static_cast<size_t>(pixel * c + k)],
                          whole[static_cast<size_t>(pixel * C + slice.channel + k)])
                    << "value " << v << " pixel " << pixel;
        ++checked;
    }
    EXPECT_EQ(checked, 5);
}

TEST(Absorption, AllocatesExactlyThePlanWhereFoldedLayersTakeNoMemory) {
    for (const char* text : {kChain, kGraph, kDenseBlock, kShuffleBlocks, kInceptionBlocks}) {
        SCOPED_TRACE(text);
        Model m = parse_model(text, "m.lenz");
        m.init_params(1);
        const int64_t before = buffer_bytes_live();
        Inference inference(m, 4);
        EXPECT_EQ(buffer_bytes_live() - before, inference.plan().bytes() - 4 * inference.plan().param_floats);
    }
    // The chain's arena is that of the same chain without the layers that fold.
    std::string bare = kChain;
    for (const std::string line : {"batchnorm\n", "relu\n", "hardswish\n"})
        for (size_t at; (at = bare.find(line)) != std::string::npos;) bare.erase(at, line.size());
    EXPECT_EQ(plan_inference(parse_model(kChain, "m"), 4).arena_floats,
              plan_inference(parse_model(bare, "bare"), 4).arena_floats);
}

}  // namespace
}  // namespace lenz
