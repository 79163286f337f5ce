// The engine allocates what the plan says: no more, no less.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "lenz/buffer.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

TEST(Memory, SeedInferenceAllocatesExactlyThePlan) {
    const int64_t before = buffer_bytes_live();
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/seed.lenz");
    m.init_params(1);
    Inference inference(m, 1);
    EXPECT_EQ(buffer_bytes_live() - before, plan_inference(m, 1).bytes());
    EXPECT_EQ(4 * inference.plan().arena_floats, 9000000);

    buffer_reset_peak();
    const int64_t peak_before = buffer_bytes_peak();
    Buffer image(200 * 300 * 3);  // the caller's own input, not the engine's
    for (int64_t i = 0; i < image.size(); ++i) image[i] = static_cast<float>(i % 17) / 17.0f;
    const int64_t shortfalls_before = cpu::workspace_shortfalls();
    const float* out = inference.run(image.data(), 1);
    EXPECT_EQ(buffer_bytes_peak() - peak_before, image.bytes()) << "running allocated memory";
    EXPECT_EQ(cpu::workspace_shortfalls(), shortfalls_before)
        << "a convolution outgrew its planned workspace";
    double sum = 0;
    for (int64_t i = 0; i < 25 * 38 * 400; ++i) sum += out[i];
    EXPECT_GT(sum, 0.0);
}

TEST(Memory, InferenceArenaMatchesStepByStepTraining) {
    // The arena's alternating placement must not clobber anything: compare with the training path,
    // which keeps every activation apart.
    Model m = parse_model(
        "input 12x10x3\nconv 6 3x3 padding=same relu\nmaxpool 2\nbatchnorm\nconv 8 3x3 stride=2 "
        "padding=same\n"
        "relu\ndropout 0.3\nflatten\ndense 16 tanh\ndense 5 softmax\n",
        "m");
    m.init_params(3);
    Rng rng(5);
    Buffer x(3 * 12 * 10 * 3);
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1, 1);
    Inference inference(m, 3);
    const float* a = inference.run(x.data(), 3);
    TrainingStep step(m, 3);
    const float* b = step.forward(x.data(), 3, false, 0);
    for (int64_t i = 0; i < 15; ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << i;
}

TEST(Memory, TrainingStepAllocatesThePlanLessOptimizerState) {
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/fashion.lenz");
    const int64_t before = buffer_bytes_live();
    m.init_params(1);
    TrainingStep step(m, 32);
    EXPECT_EQ(buffer_bytes_live() - before, plan_training(m, 32, OptimizerKind::sgd).bytes());
}

// In bf16 the plans grow by the bf16 copies in the workspace, and the engine still allocates
// exactly them, at inference and in training, for the seed model and the default model (whose
// dense layers multiply in bf16 too); running allocates nothing more.
TEST(Memory, Bf16AllocatesExactlyItsPlan) {
    if (!cpu_supports(Precision::bf16)) GTEST_SKIP() << "this CPU has no bf16";
    for (const char* path : {LENZ_SOURCE_DIR "/models/seed.lenz", LENZ_SOURCE_DIR "/models/fashion.lenz"}) {
        SCOPED_TRACE(path);
        Model m = load_model_file(path);
        m.init_params(1);
        int64_t before = buffer_bytes_live();
        {
            Inference inference(m, 2, Precision::bf16);
            const InferencePlan& plan = inference.plan();  // the weights were there already:
            EXPECT_EQ(buffer_bytes_live() - before, plan.bytes() - 4 * plan.param_floats);
            EXPECT_NE(plan_inference(m, 2, Precision::bf16).workspace_floats,
                      plan_inference(m, 2).workspace_floats);
            Buffer x(2 * m.input_shape().elements());
            buffer_reset_peak();
            const int64_t peak_before = buffer_bytes_peak();
            inference.run(x.data(), 2);
            EXPECT_EQ(buffer_bytes_peak(), peak_before) << "running allocated memory";
        }
        Model fresh = load_model_file(path);
        before = buffer_bytes_live();
        fresh.init_params(1);
        TrainingStep step(fresh, 4, Precision::bf16);
        EXPECT_EQ(buffer_bytes_live() - before,
                  plan_training(fresh, 4, OptimizerKind::sgd, Precision::bf16).bytes());
    }
}

// Inference in bf16 converts the weights once, when it is made (Layer::prepare), where training
// converts them at every call: both must compute the same bits, at the planned batch and at a
// smaller one (whose primitives may want the weights laid out otherwise, and then convert them as
// training does), on a chain with dense layers and on a residual graph.
TEST(Memory, Bf16InferenceWithPreparedWeightsComputesWhatTrainingDoes) {
    if (!cpu_supports(Precision::bf16)) GTEST_SKIP() << "this CPU has no bf16";
    for (const char* path :
         {LENZ_SOURCE_DIR "/models/fashion.lenz", LENZ_SOURCE_DIR "/models/residual-block.lenz",
          LENZ_SOURCE_DIR "/models/seed.lenz"}) {
        SCOPED_TRACE(path);
        Model m = load_model_file(path);
        m.init_params(2);
        Inference inference(m, 3, Precision::bf16);
        EXPECT_GT(inference.plan().prepared_floats, 0);
        TrainingStep step(m, 3, Precision::bf16);
        Rng rng(8);
        Buffer x(3 * m.input_shape().elements());
        for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1, 1);
        const int64_t out = m.output_shape().elements();
        for (int64_t batch : {3, 1}) {
            const float* a = inference.run(x.data(), batch);
            const std::vector<float> prepared(a, a + batch * out);
            const float* b = step.forward(x.data(), batch, false, 0);
            EXPECT_EQ(std::memcmp(prepared.data(), b, sizeof(float) * prepared.size()), 0)
                << "batch " << batch;
        }
    }
}

// A batch whose images hold more at their peak than the cache budget runs in slices of at least two
// images; with two threads and at least two images a thread, in two streams that share the slices;
// unless its weights outweigh the batch's values, since every slice reads them again.
// The arenas are one slice's each, the output is gathered in a buffer the plan counts, and every
// image comes out as when it runs alone, for the largest batch and for one that ends in a short
// slice or runs in one stream.
TEST(Memory, ABatchRunsInSlicesAndStreamsAndComputesTheSame) {
    // Each image's input and first output (4 channels each) hold more than half the budget.
    const auto side = static_cast<int64_t>(std::sqrt(static_cast<double>(inference_slice_bytes()) / 64)) + 1;
    const std::string size = std::to_string(side);
    Model m = parse_model("input " + size + "x" + size +
                              "x4\nconv 4 3x3 padding=same relu\nconv 4 3x3 stride=2 padding=same\n"
                              "globalavgpool\nflatten\ndense 3 softmax\n",
                          "m");
    m.init_params(4);
    Rng rng(6);
    Buffer x(5 * m.input_shape().elements());
    for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(-1, 1);
    for (int team : {1, 2}) {
        SCOPED_TRACE("threads " + std::to_string(team));
        set_threads(team);
        const auto split = [&](int64_t batch) {
            const InferenceSplit s = inference_split(m, batch);
            return std::vector<int64_t>{s.slice, s.streams};
        };
        EXPECT_EQ(split(1), (std::vector<int64_t>{1, 1}));
        EXPECT_EQ(split(5), (std::vector<int64_t>{2, team}));  // 2 + 2 + 1
        EXPECT_EQ(split(3), (std::vector<int64_t>{team == 1 ? 2 : 3, 1}));
        EXPECT_EQ(inference_split(m, 5, Precision::bf16).streams, 1);
        // Weights that outweigh what the batch holds (1 MB against 16 images of 17 kB): read once.
        const Model dense_heavy = parse_model("input 64x64x1\nflatten\ndense 64 relu\ndense 10\n", "d");
        EXPECT_EQ(inference_split(dense_heavy, 16).slice, 16);
        EXPECT_EQ(inference_split(dense_heavy, 16).streams, 1);

        Inference one(m, 1);
        std::vector<float> alone;
        for (int64_t n = 0; n < 5; ++n) {
            const float* y = one.run(x.data() + n * m.input_shape().elements(), 1);
            alone.insert(alone.end(), y, y + 3);
        }
        const int64_t before = buffer_bytes_live();
        Inference sliced(m, 5);
        const InferencePlan& plan = sliced.plan();
        EXPECT_EQ(plan.slice, 2);
        EXPECT_EQ(plan.streams, team);
        EXPECT_EQ(plan.output_floats, 5 * 3);
        EXPECT_EQ(plan.arena_floats, plan_inference(m, 2).arena_floats);
        EXPECT_EQ(buffer_bytes_live() - before, plan.bytes() - 4 * plan.param_floats);
        buffer_reset_peak();
        const int64_t peak_before = buffer_bytes_peak();
        for (int64_t batch : {5, 3, 1}) {
            const float* y = sliced.run(x.data(), batch);
            for (int64_t i = 0; i < batch * 3; ++i)
                EXPECT_NEAR(y[i], alone[static_cast<size_t>(i)], 1e-5)
                    << "batch " << batch << ", output " << i;
        }
        EXPECT_EQ(buffer_bytes_peak(), peak_before) << "running allocated memory";
        EXPECT_EQ(omp_get_max_threads(), team) << "the streams left the thread count changed";
    }
    set_threads(0);
}

// Buffers are planned for a largest batch; every way in checks the batch against it. TrainingStep::run
// once did not, and batch 8 on a step planned for 2 wrote past its buffers.
TEST(Memory, EveryEntryPointChecksTheBatch) {
    Model m = parse_model("input 4x4x1\nconv 2 3x3 padding=same relu\nflatten\ndense 3 softmax\n", "m");
    m.init_params(1);
    EXPECT_THROW(plan_inference(m, 0), ShapeError);
    EXPECT_THROW(plan_training(m, -1, OptimizerKind::adam), ShapeError);
    EXPECT_THROW(Inference(m, 0), ShapeError);
    EXPECT_THROW(TrainingStep(m, 0), ShapeError);

    Buffer x(8 * 16);
    std::vector<int32_t> labels(8, 1);
    Inference inference(m, 2);
    EXPECT_THROW(inference.run(x.data(), 3), ShapeError);
    EXPECT_THROW(inference.run(x.data(), 0), ShapeError);
    TrainingStep step(m, 2);
    EXPECT_THROW(step.forward(x.data(), 8, true, 0), ShapeError);
    try {
        step.run(x.data(), labels.data(), 8, 0);
        FAIL() << "a training step planned for 2 ran a batch of 8";
    } catch (const ShapeError& e) {
        EXPECT_STREQ(e.what(), "training batch 8 is outside 1..2");
    }
    EXPECT_THROW(step.run(x.data(), labels.data(), 0, 0), ShapeError);
    EXPECT_NO_THROW(step.run(x.data(), labels.data(), 2, 0));
}

TEST(Memory, RefusesImpossibleAllocationsWithAClearMessage) {
    try {
        Buffer b(int64_t{1} << 40);
        FAIL() << "allocated 4 TB";
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("TB"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace lenz
