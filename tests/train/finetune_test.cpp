// Fine-tuning in the library: the layer a --freeze names, a new head in place of the last dense
// layer, and training with frozen layers (their weights and running statistics bit for bit as they
// were, no gradients or optimizer state for them, no backward into values only they lead to).
#include "lenz/finetune.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "lenz/buffer.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/train.h"

namespace lenz {
namespace {

// A residual backbone with batch norm and dropout in the part that gets frozen; `stem` is read by two
// layers, one of them after the freeze point.
const char* kBackbone =
    "input 6x6x3\n"
    "conv 4 3x3 padding=same name=stem\n"
    "batchnorm\n"
    "dropout 0.5\n"
    "conv 4 3x3 padding=same tanh name=feat\n"
    "conv 4 3x3 padding=same from=feat name=b\n"
    "add stem b tanh\n"
    "globalavgpool\n"
    "flatten\n"
    "dense 5 tanh name=hidden\n"
    "dense 2 softmax\n";

Model backbone() {
    Model m = parse_model(kBackbone, "backbone.lenz");
    m.init_params(7);
    // Running statistics that are not the initial 0 and 1, so that updating them would show.
    for (auto& p : m.named_params())
        if (p.ref.name == "running_mean" || p.ref.name == "running_var")
            for (int64_t i = 0; i < p.ref.value->size(); ++i) (*p.ref.value)[i] = 0.5f + 0.1f * i;
    return m;
}

std::vector<float> copy_of(const Buffer& b) {
    return std::vector<float>(b.data(), b.data() + b.size());
}

void random_batch(int64_t batch, const Model& m, std::vector<float>& x, std::vector<int32_t>& labels,
                  uint64_t seed) {
    Rng rng(seed);
    x.resize(static_cast<size_t>(batch * m.input_shape().elements()));
    for (float& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    labels.resize(static_cast<size_t>(batch));
    const int64_t K = m.output_shape().elements();
    for (int32_t& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(K)));
}

TEST(FineTune, FindLayerTakesANameOrTheSummarysNumber) {
    const Model m = parse_model(kBackbone, "backbone.lenz");
    EXPECT_EQ(find_layer(m, "stem"), 0);
    EXPECT_EQ(find_layer(m, "feat"), 3);
    EXPECT_EQ(find_layer(m, "hidden"), 8);
    EXPECT_EQ(find_layer(m, "1"), 0);   // the summary's table numbers layers from 1
    EXPECT_EQ(find_layer(m, "10"), 9);  // the last
    EXPECT_EQ(find_layer(m, "0"), -1);
    EXPECT_EQ(find_layer(m, "11"), -1);
    EXPECT_EQ(find_layer(m, "99999999999999999999999"), -1);
    EXPECT_EQ(find_layer(m, "input"), -1);  // a value, but no layer writes it
    EXPECT_EQ(find_layer(m, "nosuch"), -1);
    EXPECT_EQ(find_layer(m, ""), -1);
}

TEST(FineTune, NewHeadReplacesTheLastDenseAndKeepsEveryOtherWeight) {
    Model m = backbone();
    Model original = backbone();
    EXPECT_EQ(replace_head(m, 7, 3), std::vector<int64_t>{9});
    EXPECT_EQ(m.layer(9).spec(), "dense 7 softmax");  // the activation stays
    EXPECT_EQ(m.output_shape().elements(), 7);
    EXPECT_TRUE(m.ends_with_softmax());
    auto params = m.named_params();
    auto before = original.named_params();
    ASSERT_EQ(params.size(), before.size());
    for (size_t i = 0; i < params.size(); ++i) {
        SCOPED_TRACE(params[i].name);
        if (params[i].layer == 10) continue;
        EXPECT_EQ(copy_of(*params[i].ref.value), copy_of(*before[i].ref.value));
    }
    EXPECT_EQ(params.back().ref.dims, (std::vector<int64_t>{7}));  // the head's bias
    EXPECT_EQ(params[params.size() - 2].ref.dims, (std::vector<int64_t>{7, 5}));
    // The same weights a fresh model of that shape gets from the seed.
    Model fresh = parse_model(m.to_text(), "fresh.lenz");
    fresh.init_params(3);
    EXPECT_EQ(copy_of(*fresh.layer(9).params()[0].value), copy_of(*m.layer(9).params()[0].value));
}

TEST(FineTune, NewHeadKeepsAStandaloneSoftmaxAfterIt) {
    Model m = parse_model("input 4x4x1\nflatten\ndense 3\nsoftmax\n", "m");
    m.init_params(1);
    EXPECT_EQ(replace_head(m, 5, 1), std::vector<int64_t>{1});
    EXPECT_EQ(m.to_text(), "input 4x4x1\nflatten\ndense 5\nsoftmax\n");
    EXPECT_EQ(m.output_shape().elements(), 5);
}

// SqueezeNet's classifier is a 1x1 convolution, relu, global average and flatten: the convolution
// is the head, and the layers after it follow its new size.
TEST(FineTune, NewHeadReplacesAClassifierConvolution) {
    Model conv_head = parse_model("input 8x8x3\nconv 4 3x3\nconv 3 1x1 relu\nglobalavgpool\nflatten\n", "m");
    conv_head.init_params(1);
    const std::vector<float> backbone = copy_of(*conv_head.named_params()[0].ref.value);
    EXPECT_EQ(replace_head(conv_head, 5, 1), std::vector<int64_t>{1});
    EXPECT_EQ(conv_head.to_text(), "input 8x8x3\nconv 4 3x3\nconv 5 1x1 relu\nglobalavgpool\nflatten\n");
    EXPECT_EQ(conv_head.output_shape().elements(), 5);
    EXPECT_EQ(copy_of(*conv_head.named_params()[0].ref.value), backbone);
}

// LR-ASPP's head: two 1x1 convolutions, of a low-level and a high-level feature map, meet in an
// add, which an upsampling follows; both are the head, resized together.
TEST(FineTune, NewHeadReplacesConvolutionsThatAnAddJoins) {
    Model m = parse_model(
        "input 8x8x3\nconv 4 3x3 padding=same\nmaxpool 2 name=low\nconv 3 1x1 from=low name=a\n"
        "conv 8 3x3 padding=same from=low\nconv 3 1x1 name=b\nadd a b\nupsample 2\n",
        "m");
    m.init_params(1);
    const std::vector<float> middle = copy_of(*m.layer(3).params()[0].value);
    EXPECT_EQ(replace_head(m, 5, 2), (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(m.output_shape(), (Shape{8, 8, 5}));
    EXPECT_EQ(m.to_text(),
              "input 8x8x3\nconv 4 3x3 padding=same\nmaxpool 2x2 name=low\nconv 5 1x1 name=a\n"
              "conv 8 3x3 padding=same from=low\nconv 5 1x1 name=b\nadd a b\nupsample 2\n");
    EXPECT_EQ(copy_of(*m.layer(3).params()[0].value), middle);  // not the head: kept
    // A concatenation before the output changes the channels: no head to resize.
    Model joined =
        parse_model("input 8x8x3\nconv 2 1x1 name=x\nconv 2 1x1 from=input name=y\nconcat x y\n", "m");
    joined.init_params(1);
    EXPECT_THROW(replace_head(joined, 3, 1), ShapeError);
    EXPECT_EQ(joined.output_shape(), (Shape{8, 8, 4}));  // left as it was
}

TEST(FineTune, NewHeadNeedsADenseLayerOrAConvolutionLast) {
    // A batch norm is the last layer with weights: no head to resize.
    Model norm_last = parse_model("input 8x8x3\nconv 4 3x3\nbatchnorm\nglobalavgpool\n", "m");
    norm_last.init_params(1);
    try {
        replace_head(norm_last, 3, 1);
        FAIL() << "no error";
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("does not end in dense layers or convolutions"),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("layer 2, batchnorm"), std::string::npos) << e.what();
    }
    Model grouped = parse_model("input 8x8x4\nconv 4 1x1 groups=2\n", "m");
    grouped.init_params(1);
    EXPECT_THROW(replace_head(grouped, 3, 1), ShapeError);
}

TEST(FineTune, FrozenLayersKeepWeightsAndStatisticsBitForBit) {
    for (OptimizerKind kind : {OptimizerKind::adamw, OptimizerKind::adam, OptimizerKind::momentum}) {
        SCOPED_TRACE(optimizer_name(kind));
        Model m = backbone();
        m.freeze(find_layer(m, "feat") + 1);
        std::vector<std::vector<float>> before;
        for (auto& p : m.named_params()) before.push_back(copy_of(*p.ref.value));
        TrainingStep step(m, 4);
        // Weight decay would shrink frozen weights if the optimizer touched them.
        Optimizer optimizer(m, {.kind = kind, .weight_decay = 0.1});
        std::vector<float> x;
        std::vector<int32_t> labels;
        for (int s = 0; s < 3; ++s) {
            random_batch(4, m, x, labels, 10 + static_cast<uint64_t>(s));
            step.run(x.data(), labels.data(), 4, static_cast<uint64_t>(s));
            optimizer.step(0.05);
        }
        auto params = m.named_params();
        int changed = 0;
        for (size_t i = 0; i < params.size(); ++i) {
            SCOPED_TRACE(params[i].name);
            const bool frozen = params[i].layer <= 4;
            if (frozen) {
                EXPECT_EQ(copy_of(*params[i].ref.value), before[i]);  // running statistics too
                if (params[i].ref.grad) {
                    EXPECT_EQ(params[i].ref.grad->size(), 0);  // none allocated
                }
            }
            if (!frozen && copy_of(*params[i].ref.value) != before[i]) ++changed;
        }
        EXPECT_EQ(changed, 6);  // conv b, dense hidden, dense head: weight and bias each
        // No optimizer state for frozen layers: only the three trainable layers' parameters.
        const size_t copies = kind == OptimizerKind::momentum ? 1 : 2;
        EXPECT_EQ(optimizer.state().size(), 6 * copies);
        for (const Optimizer::State& s : optimizer.state())
            EXPECT_TRUE(s.name.rfind("1.", 0) != 0 && s.name.rfind("2.", 0) != 0 &&
                        s.name.rfind("4.", 0) != 0)
                << s.name;
    }
}

// Without batch norm or dropout in the frozen part, freezing changes nothing in the forward pass, so
// the trainable layers get exactly the gradients they get when nothing is frozen.
TEST(FineTune, TrainableLayersGetTheSameGradientsAsWithoutFreezing) {
    const char* text =
        "input 6x6x3\nconv 4 3x3 padding=same tanh name=stem\nconv 4 3x3 padding=same tanh name=feat\n"
        "conv 4 3x3 padding=same from=feat name=b\nadd stem b tanh\nglobalavgpool\nflatten\ndense 3\n";
    Model all = parse_model(text, "m");
    Model part = parse_model(text, "m");
    all.init_params(4);
    part.init_params(4);
    part.freeze(2);
    std::vector<float> x;
    std::vector<int32_t> labels;
    random_batch(5, all, x, labels, 3);
    TrainingStep step_all(all, 5), step_part(part, 5);
    const TrainingStep::Result ra = step_all.run(x.data(), labels.data(), 5, 1);
    const TrainingStep::Result rp = step_part.run(x.data(), labels.data(), 5, 1);
    EXPECT_NEAR(ra.loss_sum, rp.loss_sum, 1e-5);
    for (int64_t i = 2; i < all.size(); ++i)
        for (size_t k = 0; k < all.layer(i).params().size(); ++k) {
            SCOPED_TRACE("layer " + std::to_string(i + 1));
            const std::vector<float> ga = copy_of(*all.layer(i).params()[k].grad);
            const std::vector<float> gp = copy_of(*part.layer(i).params()[k].grad);
            ASSERT_EQ(ga.size(), gp.size());
            for (size_t j = 0; j < ga.size(); ++j) EXPECT_NEAR(ga[j], gp[j], 1e-6f) << j;
        }
}

TEST(FineTune, FrozenValuesGetNoGradientAndTheEngineAllocatesThePlan) {
    Model m = backbone();
    const std::vector<char> unfrozen = gradient_needed(m);
    EXPECT_EQ(unfrozen, std::vector<char>({0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}));
    const TrainingPlan full = plan_training(m, 4, OptimizerKind::adam);
    m.freeze(4);  // through feat
    // stem and feat lead only to frozen layers; b and everything after trains.
    EXPECT_EQ(gradient_needed(m), std::vector<char>({0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
    const TrainingPlan plan = plan_training(m, 4, OptimizerKind::adam);
    const int64_t trainable = (4 * 4 * 9 + 4) + (5 * 4 + 5) + (2 * 5 + 2);  // conv b, hidden, head
    EXPECT_EQ(plan.gradient_floats, trainable);
    EXPECT_EQ(plan.optimizer_floats, 2 * trainable);
    EXPECT_EQ(full.saved_floats - plan.saved_floats, 2 * 4 + 4 * 6 * 6 * 4);  // batch norm, dropout
    // stem is read by batchnorm and add: its shared gradient buffer goes (b's stays).
    EXPECT_GT(plan.value_gradient_floats, 0);
    EXPECT_EQ(full.value_gradient_floats - plan.value_gradient_floats, 4 * 6 * 6 * 4);
    const int64_t before = buffer_bytes_live();
    {
        TrainingStep step(m, 4);
        Optimizer optimizer(m, {.kind = OptimizerKind::adam});
        EXPECT_EQ(buffer_bytes_live() - before, plan.bytes() - 4 * plan.param_floats);
    }
}

TEST(FineTune, FreezingTakesALayerCountWithinTheModel) {
    Model m = backbone();
    EXPECT_THROW(m.freeze(-1), Error);
    EXPECT_THROW(m.freeze(11), Error);
    m.freeze(10);
    EXPECT_EQ(m.frozen_layers(), 10);
    EXPECT_FALSE(m.trains(9));
    m.freeze(0);
    EXPECT_TRUE(m.trains(9));
    EXPECT_FALSE(m.trains(2));  // dropout has no weights
}

}  // namespace
}  // namespace lenz
