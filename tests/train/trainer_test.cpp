// Training end to end on slices of Fashion-MNIST: it learns, it is deterministic, and a resumed
// run reaches the same weights as one that never stopped.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/evaluate.h"
#include "lenz/model_text.h"
#include "lenz/precision.h"
#include "lenz/threads.h"
#include "lenz/train.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;

const DataSplit& fashion() {
    static const DataSplit data = [] {
        if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) return DataSplit{};
        return load_dataset("fashion-mnist", {});
    }();
    return data;
}

#define REQUIRE_FASHION()                                                                      \
    if (fashion().train.size() == 0) GTEST_SKIP() << "dataset-fashion-mnist is not installed"; \
    static_assert(true)

const char* kSmallModel =
    "input 28x28x1\nconv 8 3x3 padding=same relu\nmaxpool 2\nconv 16 3x3 padding=same\nbatchnorm\nrelu\n"
    "maxpool 2\nflatten\ndropout 0.2\ndense 10 softmax\n";

std::string out_dir(const std::string& name) {
    return (fs::temp_directory_path() / ("lenz-train-" + std::to_string(::getpid()) + "-" + name)).string();
}

TrainConfig quick_config(const std::string& dir, int64_t epochs) {
    TrainConfig c;
    c.epochs = epochs;
    c.batch = 32;
    c.seed = 5;
    c.limit_train = 1024;
    c.limit_test = 256;
    c.out_dir = dir;
    c.schedule.base_lr = 2e-3;
    c.schedule.warmup_epochs = 0.5;
    c.augment.crop_padding = 2;
    c.augment.horizontal_flip = true;
    return c;
}

std::vector<float> weights_of(Model& m) {
    std::vector<float> out;
    for (auto& p : m.named_params())
        out.insert(out.end(), p.ref.value->data(), p.ref.value->data() + p.ref.value->size());
    return out;
}

TEST(Trainer, LearnsFashionMnist) {
    REQUIRE_FASHION();
    Model m = parse_model(kSmallModel, "m");
    m.init_params(5);
    TrainConfig c = quick_config(out_dir("learns"), 2);
    c.limit_train = 4096;
    c.limit_test = 1000;
    c.augment = {};
    const auto history = train(m, fashion(), c);
    ASSERT_EQ(history.size(), 2u);
    EXPECT_GT(history.back().test_accuracy, 0.70) << "chance is 0.10";
    EXPECT_LT(history.back().train_loss, history.front().train_loss);
    EXPECT_TRUE(fs::exists(c.out_dir + "/model.safetensors"));
    EXPECT_TRUE(fs::exists(c.out_dir + "/best.safetensors"));
    std::ifstream log(c.out_dir + "/metrics.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(log, line)) ++lines;
    EXPECT_EQ(lines, 2);
    // the checkpoint predicts what the trained model predicts
    LoadedModel loaded = load_model(c.out_dir + "/model.safetensors");
    EXPECT_NEAR(evaluate(loaded.model, fashion().test, loaded.info.normalization).accuracy,
                evaluate(m, fashion().test, loaded.info.normalization).accuracy, 1e-12);
    fs::remove_all(c.out_dir);
}

TEST(Trainer, SameSeedSameWeightsBitForBit) {
    REQUIRE_FASHION();
    std::vector<float> runs[2];
    for (int r = 0; r < 2; ++r) {
        Model m = parse_model(kSmallModel, "m");
        m.init_params(5);
        const TrainConfig c = quick_config(out_dir("det" + std::to_string(r)), 1);
        train(m, fashion(), c);
        runs[r] = weights_of(m);
        fs::remove_all(c.out_dir);
    }
    ASSERT_EQ(runs[0].size(), runs[1].size());
    EXPECT_EQ(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)), 0);
}

TEST(Trainer, ResumeReachesTheSameWeights) {
    REQUIRE_FASHION();
    Model straight = parse_model(kSmallModel, "m");
    straight.init_params(5);
    const TrainConfig c2 = quick_config(out_dir("straight"), 2);
    train(straight, fashion(), c2);

    TrainConfig first = quick_config(out_dir("stopped"), 2);
    first.on_epoch = [](const EpochMetrics& m, const EvalResult&) {
        return m.epoch < 1;
    };  // stops after epoch 1, as if killed
    Model stopped = parse_model(kSmallModel, "m");
    stopped.init_params(5);
    EXPECT_EQ(train(stopped, fashion(), first).size(), 1u);
    Model resumed = parse_model(kSmallModel, "m");
    resumed.init_params(999);  // whatever it starts with, resume must overwrite it
    TrainConfig second = quick_config(first.out_dir, 2);
    second.resume = true;
    const auto history = train(resumed, fashion(), second);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0].epoch, 2);
    const auto a = weights_of(straight), b = weights_of(resumed);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    fs::remove_all(c2.out_dir);
    fs::remove_all(first.out_dir);
}

// A graph (a residual block with batch norm, a concatenation, dropout) stopped mid-epoch and resumed
// reaches the uninterrupted run's weights bit for bit, as a chain does.
TEST(Trainer, AGraphResumedMidEpochReachesTheSameWeights) {
    REQUIRE_FASHION();
    const char* graph =
        "input 28x28x1\nconv 8 3x3 padding=same relu name=stem\nconv 8 3x3 padding=same nobias\nbatchnorm\n"
        "relu\nconv 8 3x3 padding=same name=b\nadd stem b relu name=r\nmaxpool 2 name=p\n"
        "conv 4 1x1 from=p name=side\nconcat p side\ndropout 0.2\nglobalavgpool\ndense 10 softmax\n";
    Model straight = parse_model(graph, "g");
    straight.init_params(5);
    const TrainConfig c2 = quick_config(out_dir("graph-straight"), 2);
    train(straight, fashion(), c2);
    TrainConfig first = quick_config(out_dir("graph-stopped"), 2);
    first.on_step = [](const StepProgress& p) { return p.step != 45; };
    Model stopped = parse_model(graph, "g");
    stopped.init_params(5);
    EXPECT_THROW(train(stopped, fashion(), first), Interrupted);
    Model resumed = parse_model(graph, "g");
    resumed.init_params(999);
    TrainConfig second = quick_config(first.out_dir, 2);
    second.resume = true;
    train(resumed, fashion(), second);
    const auto a = weights_of(straight), b = weights_of(resumed);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    fs::remove_all(c2.out_dir);
    fs::remove_all(first.out_dir);
}

// In bf16 (with random erasing too), the same seed and threads give the same weights, and a run
// stopped mid-epoch and resumed reaches them bit for bit. The weights differ from float32's (bf16
// really ran).
TEST(Trainer, Bf16IsDeterministicAndResumesBitForBit) {
    REQUIRE_FASHION();
    if (!cpu_supports(Precision::bf16)) GTEST_SKIP() << "this CPU has no bf16";
    const char* graph =
        "input 28x28x1\nconv 8 3x3 padding=same nobias\nbatchnorm\nrelu name=stem\nconv 8 3x3 padding=same "
        "name=b\nadd stem b relu\nmaxpool 2\nconv 16 3x3 padding=same relu\nflatten\ndense 32 relu\n"
        "dense 10 softmax\n";
    auto config = [](const std::string& name, Precision precision) {
        TrainConfig c = quick_config(out_dir(name), 2);
        c.precision = precision;
        c.augment.erase_probability = 0.5;
        return c;
    };
    auto run = [&](TrainConfig c, int64_t init_seed) {
        Model m = parse_model(graph, "g");
        m.init_params(init_seed);
        const auto history = train(m, fashion(), c);
        fs::remove_all(c.out_dir);
        return std::pair{weights_of(m), history.back().test_accuracy};
    };
    const auto [straight, bf16_accuracy] = run(config("bf16-a", Precision::bf16), 5);
    const auto [again, again_accuracy] = run(config("bf16-b", Precision::bf16), 5);
    ASSERT_EQ(straight.size(), again.size());
    EXPECT_EQ(std::memcmp(straight.data(), again.data(), straight.size() * sizeof(float)), 0);
    EXPECT_EQ(bf16_accuracy, again_accuracy);

    TrainConfig first = config("bf16-stopped", Precision::bf16);
    first.on_step = [](const StepProgress& p) { return p.step != 45; };
    Model stopped = parse_model(graph, "g");
    stopped.init_params(5);
    EXPECT_THROW(train(stopped, fashion(), first), Interrupted);
    const std::string stored = load_model(first.out_dir + "/model.safetensors").info.training_json;
    EXPECT_NE(stored.find("\"dtype\":\"bf16\""), std::string::npos) << stored;
    Model resumed = parse_model(graph, "g");
    resumed.init_params(999);
    TrainConfig second = config("bf16-stopped", Precision::bf16);
    second.resume = true;
    train(resumed, fashion(), second);
    const auto resumed_weights = weights_of(resumed);
    EXPECT_EQ(std::memcmp(straight.data(), resumed_weights.data(), straight.size() * sizeof(float)), 0);
    fs::remove_all(first.out_dir);

    const auto [f32, f32_accuracy] = run(config("f32", Precision::f32), 5);
    EXPECT_NE(std::memcmp(straight.data(), f32.data(), straight.size() * sizeof(float)), 0);
    // It learns (10 classes: chance is 10 %); 256 test images after 64 steps are too few to compare
    // the two precisions' accuracy closely: the README's 5-epoch runs do that.
    EXPECT_GT(bf16_accuracy, 0.5);
    EXPECT_GT(f32_accuracy, 0.5);
}

// Stops mid-epoch (at `stop_step`, through `how`), resumes, and expects the straight run's weights
// and last-epoch metrics, bit for bit. 1024 images at batch 32: 32 steps per epoch.
void expect_mid_epoch_resume_matches(int64_t stop_step, bool by_sigint) {
    Model straight = parse_model(kSmallModel, "m");
    straight.init_params(5);
    const TrainConfig c2 = quick_config(out_dir("straight-mid"), 2);
    const auto straight_history = train(straight, fashion(), c2);

    TrainConfig first = quick_config(out_dir("stopped-mid"), 2);
    if (by_sigint) {
        first.catch_sigint = true;  // the real handler: the hook only raises the signal
        first.on_step = [stop_step](const StepProgress& p) {
            const int64_t step = p.step;
            if (step == stop_step) std::raise(SIGINT);
            return true;
        };
    } else {
        first.on_step = [stop_step](const StepProgress& p) {
            const int64_t step = p.step;
            return step != stop_step;
        };
    }
    Model stopped = parse_model(kSmallModel, "m");
    stopped.init_params(5);
    try {
        train(stopped, fashion(), first);
        FAIL() << "training did not stop";
    } catch (const Interrupted& e) {
        EXPECT_NE(std::string(e.what()).find("(step " + std::to_string(stop_step) + ")"), std::string::npos)
            << e.what();
        EXPECT_EQ(e.checkpoint, first.out_dir + "/model.safetensors");
    }
    const LoadedModel at_stop = load_model(first.out_dir + "/model.safetensors");
    EXPECT_EQ(at_stop.info.step, stop_step);
    EXPECT_EQ(at_stop.info.epoch, (stop_step - 1) / 32);

    Model resumed = parse_model(kSmallModel, "m");
    resumed.init_params(999);
    TrainConfig second = quick_config(first.out_dir, 2);
    second.resume = true;
    const auto history = train(resumed, fashion(), second);
    ASSERT_FALSE(history.empty());
    EXPECT_EQ(history.back().epoch, 2);
    EXPECT_EQ(history.back().train_loss, straight_history.back().train_loss);
    EXPECT_EQ(history.back().test_accuracy, straight_history.back().test_accuracy);
    // The resumed epoch's speed counts only the images trained after the resume.
    const int64_t trained_here = ((stop_step / 32 + 1) * 32 - stop_step) * 32;
    EXPECT_NEAR(history.front().images_per_second * history.front().seconds, trained_here,
                1e-6 * trained_here);
    const auto a = weights_of(straight), b = weights_of(resumed);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    fs::remove_all(c2.out_dir);
    fs::remove_all(first.out_dir);
}

TEST(Trainer, StopMidEpochByHookThenResumeReachesTheSameWeights) {
    REQUIRE_FASHION();
    expect_mid_epoch_resume_matches(45, false);  // epoch 2, batch 13
}

TEST(Trainer, CtrlCMidEpochCheckpointsAndResumeReachesTheSameWeights) {
    REQUIRE_FASHION();
    expect_mid_epoch_resume_matches(7, true);  // epoch 1, batch 7
    // The handler is reset by the first signal and the previous one restored after train().
    struct sigaction now {};
    ::sigaction(SIGINT, nullptr, &now);
    EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(Trainer, StopAtAnEpochsLastStepFinishesTheEpochFirst) {
    REQUIRE_FASHION();
    Model m = parse_model(kSmallModel, "m");
    m.init_params(5);
    TrainConfig c = quick_config(out_dir("stop-at-end"), 2);
    c.on_step = [](const StepProgress& p) { return p.step != 32; };
    EXPECT_THROW(train(m, fashion(), c), Interrupted);
    const LoadedModel loaded = load_model(c.out_dir + "/model.safetensors");
    EXPECT_EQ(loaded.info.epoch, 1);
    EXPECT_EQ(loaded.info.step, 32);
    EXPECT_TRUE(fs::exists(c.out_dir + "/best.safetensors"));  // the epoch was evaluated
    fs::remove_all(c.out_dir);
}

// 1000 images at batch 32: 31 full steps and one of the 8 images left over, every epoch.
TEST(Trainer, TheLastPartialBatchTrainsToo) {
    REQUIRE_FASHION();
    Model m = parse_model(kSmallModel, "m");
    m.init_params(5);
    TrainConfig c = quick_config(out_dir("partial"), 2);
    c.limit_train = 1000;
    const auto history = train(m, fashion(), c);
    ASSERT_EQ(history.size(), 2u);
    EXPECT_EQ(load_model(c.out_dir + "/model.safetensors").info.step, 64);
    EXPECT_NEAR(history[1].images_per_second * history[1].seconds, 1000, 1e-6 * 1000);
    fs::remove_all(c.out_dir);
}

// The library prints nothing: it reports each step, epoch and resumption, and the caller shows them.
TEST(Trainer, ReportsStepsEpochsAndResumptionAndPrintsNothing) {
    REQUIRE_FASHION();
    Model m = parse_model(kSmallModel, "m");
    m.init_params(5);
    TrainConfig c = quick_config(out_dir("events"), 2);
    std::vector<StepProgress> steps;
    std::vector<EpochMetrics> epochs;
    c.on_step = [&](const StepProgress& p) {
        steps.push_back(p);
        return p.step != 40;  // stop in epoch 2, after its 8th batch
    };
    c.on_epoch = [&](const EpochMetrics& e, const EvalResult&) {
        epochs.push_back(e);
        return true;
    };
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    EXPECT_THROW(train(m, fashion(), c), Interrupted);
    EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    ASSERT_EQ(steps.size(), 40u);
    EXPECT_EQ(steps[31].epoch, 1);
    EXPECT_EQ(steps[31].batch, 32);
    EXPECT_EQ(steps[31].batches, 32);
    EXPECT_EQ(steps[32].epoch, 2);
    EXPECT_EQ(steps[32].batch, 1);
    EXPECT_EQ(steps[39].epochs, 2);
    for (const StepProgress& p : steps) {
        EXPECT_GT(p.loss, 0.0);
        EXPECT_GE(p.accuracy, 0.0);
        EXPECT_LE(p.accuracy, 1.0);
        EXPECT_GT(p.images_per_second, 0.0);
        EXPECT_GE(p.seconds_left, 0.0);
    }
    ASSERT_EQ(epochs.size(), 1u);
    EXPECT_TRUE(epochs[0].best);  // the first epoch is the best so far

    TrainConfig again = quick_config(c.out_dir, 2);
    again.resume = true;
    std::vector<ResumePoint> resumed;
    again.on_resume = [&](const ResumePoint& r) { resumed.push_back(r); };
    EXPECT_EQ(train(m, fashion(), again).size(), 1u);
    ASSERT_EQ(resumed.size(), 1u);
    EXPECT_EQ(resumed[0].epoch, 1);
    EXPECT_EQ(resumed[0].batch, 8);
    EXPECT_EQ(resumed[0].batches, 32);
    EXPECT_EQ(resumed[0].step, 40);
    EXPECT_EQ(resumed[0].checkpoint, c.out_dir + "/model.safetensors");
    fs::remove_all(c.out_dir);
}

TEST(Trainer, ResumeWithAnotherBatchSizeIsRefused) {
    REQUIRE_FASHION();
    Model m = parse_model(kSmallModel, "m");
    m.init_params(5);
    TrainConfig c = quick_config(out_dir("other-batch"), 2);
    c.on_step = [](const StepProgress& p) { return p.step != 40; };
    EXPECT_THROW(train(m, fashion(), c), Interrupted);
    TrainConfig again = quick_config(c.out_dir, 2);
    again.resume = true;
    again.batch = 256;  // 4 steps per epoch: step 40 cannot lie in epoch 2
    try {
        train(m, fashion(), again);
        FAIL();
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("--batch"), std::string::npos) << e.what();
    }
    fs::remove_all(c.out_dir);
}

TEST(Trainer, AFreshRunIntoTheSameFolderStartsItsOwnMetricsLog) {
    REQUIRE_FASHION();
    const TrainConfig c = quick_config(out_dir("fresh"), 1);
    for (int run = 0; run < 2; ++run) {
        Model m = parse_model(kSmallModel, "m");
        m.init_params(5);
        train(m, fashion(), c);
    }
    std::ifstream log(c.out_dir + "/metrics.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(log, line)) ++lines;
    EXPECT_EQ(lines, 1) << "the second run appended to the first run's log";
    fs::remove_all(c.out_dir);
}

TEST(Trainer, DataThatDoesNotFitTheModelIsAnErrorBeforeTraining) {
    REQUIRE_FASHION();
    Model rgb = parse_model("input 28x28x3\nflatten\ndense 10 softmax\n", "m");
    rgb.init_params(1);
    EXPECT_THROW(train(rgb, fashion(), quick_config(out_dir("rgb"), 1)), ShapeError);
    Model five = parse_model("input 28x28x1\nflatten\ndense 5 softmax\n", "m");
    five.init_params(1);
    try {
        train(five, fashion(), quick_config(out_dir("five"), 1));
        FAIL();
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("10 classes"), std::string::npos) << e.what();
    }
}

TEST(Trainer, DivergenceStopsWithAClearMessageAndKeepsTheCheckpoint) {
    REQUIRE_FASHION();
    Model m = parse_model("input 28x28x1\nflatten\ndense 10 softmax\n", "m");
    m.init_params(1);
    TrainConfig c = quick_config(out_dir("nan"), 1);
    train(m, fashion(), c);
    const std::string path = c.out_dir + "/model.safetensors";
    std::ifstream f(path, std::ios::binary);
    const std::string before{std::istreambuf_iterator<char>(f), {}};
    c.resume = false;
    c.epochs = 2;
    c.optimizer.kind = OptimizerKind::sgd;
    c.schedule.base_lr = 1e38;
    c.schedule.warmup_epochs = 0;
    try {
        train(m, fashion(), c);
        FAIL() << "a learning rate of 1e30 did not diverge";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("epoch 1, batch"), std::string::npos) << msg;
        EXPECT_NE(msg.find("lower learning rate"), std::string::npos) << msg;
    }
    std::ifstream g(path, std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(g), {}), before);
    fs::remove_all(c.out_dir);
}

}  // namespace
}  // namespace lenz
