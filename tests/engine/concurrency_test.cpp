// Programs may run separate models on separate threads at once (a server answering requests); each
// Inference then brings its own memory, and the kernels' shared caches must hold up.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "engine/schedule.h"
#include "lenz/engine.h"
#include "lenz/model_text.h"
#include "lenz/quantize.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

// Every thread's model has its own image size, so the threads build new kernels at the same time.
std::string model_text(int t) {
    const int side = 24 + 2 * t;
    return "input " + std::to_string(side) + "x" + std::to_string(side + 4) +
           "x3\nconv 20 3x3 stride=2 padding=same relu\nconv 24 3x3 padding=same relu\nmaxpool 2\n"
           "conv 8 3x3 relu\nflatten\ndense 6 softmax\n";
}

TEST(Concurrency, SeparateInferencesOnSeparateThreadsGiveTheSequentialResults) {
    constexpr int kThreads = 8, kRuns = 3;
    constexpr int64_t kClasses = 6;
    std::vector<Model> models;
    std::vector<Buffer> inputs;
    for (int t = 0; t < kThreads; ++t) {
        models.push_back(parse_model(model_text(t), "m" + std::to_string(t)));
        models.back().init_params(static_cast<uint64_t>(t + 1));
        Rng rng(static_cast<uint64_t>(100 + t));
        inputs.emplace_back(2 * models.back().input_shape().elements());
        for (int64_t i = 0; i < inputs.back().size(); ++i) inputs.back()[i] = rng.uniform(-1, 1);
    }
    // All at once, each thread with its own Inference, built concurrently too.
    std::vector<std::vector<float>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            Inference inference(models[static_cast<size_t>(t)], 2);
            for (int r = 0; r < kRuns; ++r) {
                const float* out = inference.run(inputs[static_cast<size_t>(t)].data(), 2);
                got[static_cast<size_t>(t)].assign(out, out + 2 * kClasses);
            }
        });
    for (std::thread& th : threads) th.join();
    // Then one after another.
    for (int t = 0; t < kThreads; ++t) {
        Inference inference(models[static_cast<size_t>(t)], 2);
        const float* want = inference.run(inputs[static_cast<size_t>(t)].data(), 2);
        for (int64_t k = 0; k < 2 * kClasses; ++k)
            EXPECT_NEAR(got[static_cast<size_t>(t)][static_cast<size_t>(k)], want[k], 1e-6f)
                << "thread " << t;
    }
}

// One Inference's streams run the layers of one model at once, each stream with its own arena and
// workspace and the model's one set of packed weights: a graph with depthwise convolutions,
// squeeze-and-excitation gates and a residual add, and a chain in float32 and in int8, give every
// image what it gives run alone. (test.sh runs this under ThreadSanitizer.)
TEST(Concurrency, StreamsOfOneInferenceGiveTheResultsOfImagesRunAlone) {
    set_threads(2);
    struct Case {
        const char* path;
        Precision precision;
    };
    for (const Case c : {Case{LENZ_SOURCE_DIR "/models/fashion-mobile.lenz", Precision::f32},
                         Case{LENZ_SOURCE_DIR "/models/fashion.lenz", Precision::f32},
                         Case{LENZ_SOURCE_DIR "/models/fashion.lenz", Precision::int8}}) {
        SCOPED_TRACE(std::string(c.path) + (c.precision == Precision::int8 ? " in int8" : ""));
        Model m = load_model_file(c.path);
        m.init_params(5);
        constexpr int64_t kBatch = 40;  // enough images that the weights do not outweigh them
        const int64_t image = m.input_shape().elements(), classes = m.output_shape().elements();
        Rng rng(11);
        Buffer x(kBatch * image);
        for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(0, 1);
        if (c.precision == Precision::int8) m.set_value_ranges(calibrate(m, x.data(), kBatch));
        Inference streamed(m, kBatch, c.precision);
        ASSERT_EQ(streamed.plan().streams, 2);
        const float* got = streamed.run(x.data(), kBatch);
        const std::vector<float> all(got, got + kBatch * classes);
        Inference alone(m, 1, c.precision);
        for (int64_t n = 0; n < kBatch; ++n) {
            const float* want = alone.run(x.data() + n * image, 1);
            for (int64_t k = 0; k < classes; ++k)
                EXPECT_NEAR(all[static_cast<size_t>(n * classes + k)], want[k], 1e-5f) << "image " << n;
        }
        // Called from inside a parallel region, the streams get one thread, which must take every
        // slice (a run of other images first, so that stale outputs would show).
        const Buffer zeros(kBatch * image);
        streamed.run(zeros.data(), kBatch);
        std::vector<float> inside;
#pragma omp parallel num_threads(2)
#pragma omp single
        {
            const float* y = streamed.run(x.data(), kBatch);
            inside.assign(y, y + kBatch * classes);
        }
        for (size_t i = 0; i < all.size(); ++i) EXPECT_NEAR(inside[i], all[i], 1e-5f) << "from inside, " << i;
        // Timed layer by layer (lenz bench --profile), the streams still run, each timing its own
        // layers: the same outputs, and a time for each convolution that runs, none for those folded.
        std::vector<double> seconds(static_cast<size_t>(m.size()), 0.0);
        const float* timed = streamed.run(x.data(), kBatch, &seconds);
        for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(timed[i], all[i]) << "timed, " << i;
        const InferenceSchedule& schedule = streamed.schedule();
        for (int64_t i = 0; i < m.size(); ++i) {
            const double t = seconds[static_cast<size_t>(i)];
            if (schedule.absorbed_by[static_cast<size_t>(i)] >= 0) {
                EXPECT_EQ(t, 0.0) << "layer " << i;
            } else if (m.layer(i).kind() == "conv") {
                EXPECT_GT(t, 0.0) << "layer " << i;
            }
        }
    }
    set_threads(0);
}

}  // namespace
}  // namespace lenz
