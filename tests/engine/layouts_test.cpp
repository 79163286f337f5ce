// Between two convolutions the engine keeps activations channels-last. The results must be those of
// the plain (N, C, H, W) path: forward outputs, the loss, and every parameter gradient.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/schedule.h"
#include "lenz/engine.h"
#include "lenz/model_text.h"
#include "lenz/report.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

bool is_nhwc(Layout l) {
    return l == Layout::nhwc;
}

TEST(Layouts, ChannelsLastOnlyBetweenTwoConvolutions) {
    Model m = parse_model(
        "input 16x16x3\nconv 8 3x3 relu\nconv 8 3x3 relu\nconv 4 3x3\nmaxpool 2\nconv 4 3x3 padding=same\n"
        "relu\nconv 6 1x1 softmax\n",
        "m");
    const std::vector<Layouts> l = plan_layouts(m);
    ASSERT_EQ(l.size(), 7u);
    // conv -> conv -> conv: channels-last on the two edges between them, plain on the outer sides.
    EXPECT_FALSE(is_nhwc(l[0].input));
    EXPECT_TRUE(is_nhwc(l[0].output));
    EXPECT_TRUE(is_nhwc(l[1].input));
    EXPECT_TRUE(is_nhwc(l[1].output));
    EXPECT_TRUE(is_nhwc(l[2].input));
    // through the max pool into the next convolution
    EXPECT_TRUE(is_nhwc(l[2].output) && is_nhwc(l[3].input) && is_nhwc(l[3].output) && is_nhwc(l[4].input));
    // conv -> relu layer -> conv (softmax over channels): plain from there.
    EXPECT_FALSE(is_nhwc(l[4].output));
    for (size_t i = 5; i < l.size(); ++i) EXPECT_FALSE(is_nhwc(l[i].input) || is_nhwc(l[i].output)) << i;
}

TEST(Layouts, SeedModelChainsAllThreeConvolutions) {
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/seed.lenz");
    const std::vector<Layouts> l = plan_layouts(m);
    ASSERT_EQ(l.size(), 3u);
    EXPECT_TRUE(!is_nhwc(l[0].input) && is_nhwc(l[0].output));
    EXPECT_TRUE(is_nhwc(l[1].input) && is_nhwc(l[1].output));
    EXPECT_TRUE(is_nhwc(l[2].input) && !is_nhwc(l[2].output));
}

// The same network twice: activations fused into the convolutions (a channels-last chain, through
// both pools), and as standalone layers (which take only (N, C, H, W), so nothing is channels-last).
const char* kChained =
    "input 14x12x3\nconv 20 3x3 padding=same tanh\nmaxpool 2\nconv 24 3x3 stride=2 padding=same tanh\n"
    "avgpool 3 stride=1 padding=1 count-padding\nmaxpool 3 stride=2 padding=1\nconv 7 1x1 tanh\navgpool 2x2\n"
    "flatten\ndense 5 softmax\n";
const char* kPlain =
    "input 14x12x3\nconv 20 3x3 padding=same\ntanh\nmaxpool 2\nconv 24 3x3 stride=2 padding=same\ntanh\n"
    "avgpool 3 stride=1 padding=1 count-padding\nmaxpool 3 stride=2 padding=1\nconv 7 1x1\ntanh\navgpool "
    "2x2\n"
    "flatten\ndense 5 softmax\n";
// A ShuffleNet unit's channel slice, concat and shuffle, channels-last between its convolutions.
const char* kShuffleChained =
    "input 14x12x3\nconv 8 3x3 padding=same tanh name=a\nslice 0:4 name=s\nslice 4:8 from=a\n"
    "conv 4 3x3 padding=same tanh name=b\nconcat s b\nshuffle 2\nconv 5 3x3 stride=2 tanh\nflatten\n"
    "dense 5 softmax\n";
const char* kShufflePlain =
    "input 14x12x3\nconv 8 3x3 padding=same\ntanh name=a\nslice 0:4 name=s\nslice 4:8 from=a\n"
    "conv 4 3x3 padding=same\ntanh name=b\nconcat s b\nshuffle 2\nconv 5 3x3 stride=2\ntanh\nflatten\n"
    "dense 5 softmax\n";

// Same weights in both: the parameters come in the same order.
void copy_params(Model& from, Model& to) {
    auto a = from.named_params(), b = to.named_params();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].ref.value->size(), b[i].ref.value->size()) << a[i].name;
        std::copy(a[i].ref.value->data(), a[i].ref.value->data() + a[i].ref.value->size(),
                  b[i].ref.value->data());
    }
}

Buffer random_batch(int64_t floats) {
    Rng rng(11);
    Buffer x(floats);
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1, 1);
    return x;
}

// The engine's inference on `engine` gives, for N random images, the last output of layer_outputs
// on `plain`, which runs every layer on its own, in (N, C, H, W).
void expect_inference_matches_plain(Model& engine, Model& plain, int64_t N) {
    const int64_t image = engine.input_shape().elements(), K = engine.output_shape().elements();
    const Buffer x = random_batch(N * image);
    Inference inference(engine, N);
    const float* got = inference.run(x.data(), N);
    for (int64_t n = 0; n < N; ++n) {
        const std::vector<float> want = layer_outputs(plain, x.data() + n * image).back();
        ASSERT_EQ(static_cast<int64_t>(want.size()), K);
        for (int64_t k = 0; k < K; ++k) EXPECT_NEAR(got[n * K + k], want[static_cast<size_t>(k)], 1e-5) << n;
    }
}

TEST(Layouts, ShuffleUnitStaysChannelsLastAndMatchesThePlainPath) {
    Model chained = parse_model(kShuffleChained, "chained"), plain = parse_model(kShufflePlain, "plain");
    const std::vector<Layouts> layouts = plan_layouts(chained);
    for (size_t i : {1, 2, 4, 5})  // the slices, the concat and the shuffle
        EXPECT_TRUE(is_nhwc(layouts[i].input) && is_nhwc(layouts[i].output)) << i;
    chained.init_params(5);
    plain.init_params(5);
    copy_params(chained, plain);
    expect_inference_matches_plain(chained, plain, 2);
    const int64_t N = 2, image = 14 * 12 * 3;
    const Buffer x = random_batch(N * image);
    const int32_t labels[N] = {1, 4};
    TrainingStep a(chained, N), b(plain, N);
    const auto ra = a.run(x.data(), labels, N, 1), rb = b.run(x.data(), labels, N, 1);
    EXPECT_NEAR(ra.loss_sum, rb.loss_sum, 1e-5 * std::abs(rb.loss_sum));
    auto ga = chained.named_params(), gb = plain.named_params();
    for (size_t p = 0; p < ga.size(); ++p)
        for (int64_t i = 0; i < gb[p].ref.grad->size(); ++i)
            ASSERT_NEAR((*ga[p].ref.grad)[i], (*gb[p].ref.grad)[i], 1e-4) << ga[p].name << "[" << i << "]";
}

TEST(Layouts, ChainedInferenceMatchesThePlainPath) {
    Model chained = parse_model(kChained, "chained"), plain = parse_model(kPlain, "plain");
    chained.init_params(7);
    plain.init_params(7);
    copy_params(chained, plain);
    const std::vector<Layouts> layouts = plan_layouts(chained);
    for (size_t pool : {1, 3, 4})  // 2x2 max, average counting its padding, 3x3 max
        ASSERT_TRUE(is_nhwc(layouts[pool].input) && is_nhwc(layouts[pool].output)) << pool;
    expect_inference_matches_plain(chained, plain, 3);
}

// At inference a dense layer reads a feature map channels-last, through a flatten or not, with its
// weights permuted once to (H, W, C) order as they are packed; training keeps (C, H, W) order there.
TEST(Layouts, DenseReadsAFeatureMapChannelsLastAtInference) {
    for (const char* text : {"input 10x9x3\nconv 8 3x3 padding=same relu\nmaxpool 2\nflatten\ndense 6\n",
                             "input 10x9x3\nconv 8 3x3 padding=same relu\nmaxpool 2\ndense 6 softmax\n"}) {
        Model m = parse_model(text, "m");
        m.init_params(3);
        const std::vector<Layouts> at_inference = plan_layouts(m, true), training = plan_layouts(m);
        const size_t dense = static_cast<size_t>(m.size() - 1);
        EXPECT_TRUE(is_nhwc(at_inference[1].output) && is_nhwc(at_inference[dense].input)) << text;
        EXPECT_FALSE(is_nhwc(training[1].output) || is_nhwc(training[dense].input)) << text;
        SCOPED_TRACE(text);
        expect_inference_matches_plain(m, m, 6);
    }
}

TEST(Layouts, ChainedTrainingGradientsMatchThePlainPath) {
    for (int threads : {1, 2}) {
        set_threads(threads);
        Model chained = parse_model(kChained, "chained"), plain = parse_model(kPlain, "plain");
        chained.init_params(9);
        plain.init_params(9);
        copy_params(chained, plain);
        const int64_t N = 4;
        const Buffer x = random_batch(N * 14 * 12 * 3);
        const int32_t labels[N] = {0, 3, 1, 4};
        TrainingStep a(chained, N), b(plain, N);
        const auto ra = a.run(x.data(), labels, N, 1), rb = b.run(x.data(), labels, N, 1);
        EXPECT_NEAR(ra.loss_sum, rb.loss_sum, 1e-5 * std::abs(rb.loss_sum));
        auto ga = chained.named_params(), gb = plain.named_params();
        for (size_t p = 0; p < ga.size(); ++p) {
            const Buffer &da = *ga[p].ref.grad, &db = *gb[p].ref.grad;
            double norm = 0;
            for (int64_t i = 0; i < db.size(); ++i)
                norm = std::max(norm, std::abs(static_cast<double>(db[i])));
            ASSERT_GT(norm, 1e-6) << gb[p].name << ": no gradient reached it";
            for (int64_t i = 0; i < db.size(); ++i)
                ASSERT_NEAR(da[i], db[i], 1e-4 * norm) << ga[p].name << "[" << i << "], threads " << threads;
        }
    }
    set_threads(0);
}

}  // namespace
}  // namespace lenz
