// `lenz bench MODEL --train`: training steps of any model file timed on synthetic data, with the
// keys of the training workloads, and --profile's forward, input-gradient and weight-gradient times.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/run_lenz.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::CommandResult;
using testing::kFashion;
using testing::run_lenz;
using testing::TempDir;

size_t bench_train_lines(const std::string& text) {
    size_t lines = 0;
    for (char c : text) lines += c == '\n';
    return lines;
}

// A one-line error with the given exit status that says `needle`.
void expect_bench_train_error(const std::string& args, int status, const std::string& needle) {
    SCOPED_TRACE("lenz " + args);
    const CommandResult r = run_lenz(args);
    EXPECT_EQ(r.status, status) << r.out;
    EXPECT_EQ(bench_train_lines(r.out), 1u) << r.out;
    EXPECT_EQ(r.out.rfind("lenz: error: ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
}

nlohmann::json bench_train_json(const std::string& args) {
    const CommandResult r = run_lenz("--threads 1 bench " + args + " --json");
    EXPECT_EQ(r.status, 0) << r.out;
    if (r.status != 0) return nlohmann::json::object();
    return nlohmann::json::parse(r.out);
}

TEST(BenchTrain, GivesTheTrainingWorkloadsKeys) {
    const nlohmann::json j = bench_train_json(kFashion + " --train --batch 8 --batches 2");
    ASSERT_FALSE(j.empty());
    EXPECT_EQ(j["workload"], kFashion);
    EXPECT_EQ(j["train"], true);
    EXPECT_EQ(j["batch"], 8);
    EXPECT_EQ(j["steps"], 2);
    EXPECT_EQ(j["dtype"], "float32");
    EXPECT_EQ(j["optimizer"], "sgd+momentum");
    EXPECT_EQ(j["threads"], 1);
    const double step_ms = j["step_ms_median"].get<double>();
    EXPECT_GT(step_ms, 0.0);
    EXPECT_LT(step_ms, 60'000.0);
    EXPECT_NEAR(j["images_per_s"].get<double>(), 8000.0 / step_ms, 1e-6 * j["images_per_s"].get<double>());
    EXPECT_GT(j["images_per_s_mean"].get<double>(), 0.0);
    EXPECT_EQ(j["gradient_bytes"], 4 * 421'642) << "fashion.lenz's parameters, one gradient each";
    // The plan holds at least the weights, their gradients and the momentum: 3 copies.
    EXPECT_GE(j["training_bytes_plan"].get<int64_t>(), 3 * 4 * 421'642);
    EXPECT_GT(j["peak_rss_above_start_bytes"].get<int64_t>(), 0);
    EXPECT_LT(j["peak_rss_above_start_bytes"].get<int64_t>(), int64_t{1} << 30);
    EXPECT_TRUE(j.contains("anon_rss_above_start_bytes"));
    EXPECT_TRUE(j.contains("file_rss_above_start_bytes"));
    EXPECT_FALSE(j.contains("layers")) << "only with --profile";
}

TEST(BenchTrain, DefaultsToBatch32AndTakesAnOptimizer) {
    const nlohmann::json sgd = bench_train_json(kFashion + " --train --batches 1");
    ASSERT_FALSE(sgd.empty());
    EXPECT_EQ(sgd["batch"], 32);
    const nlohmann::json adam = bench_train_json(kFashion + " --train --batches 1 --optimizer adam");
    ASSERT_FALSE(adam.empty());
    EXPECT_EQ(adam["optimizer"], "adam");
    // Adam keeps two moments where momentum keeps one.
    EXPECT_EQ(adam["training_bytes_plan"].get<int64_t>() - sgd["training_bytes_plan"].get<int64_t>(),
              4 * 421'642);
}

TEST(BenchTrain, TakesAnOnnxFile) {
    const std::string onnx = LENZ_SOURCE_DIR "/tests/golden/onnx/pytorch_fresh_batchnorm.onnx";
    const nlohmann::json j = bench_train_json(onnx + " --train --batch 4 --batches 1");
    ASSERT_FALSE(j.empty());
    EXPECT_EQ(j["batch"], 4);
    EXPECT_GT(j["step_ms_median"].get<double>(), 0.0);
}

// Every layer with weights, with its three times; the first convolution's input is the image,
// which needs no gradient.
TEST(BenchTrain, ProfileGivesEachLayersForwardInputAndWeightGradient) {
    const nlohmann::json j = bench_train_json(kFashion + " --train --batch 8 --batches 3 --profile");
    ASSERT_FALSE(j.empty());
    const nlohmann::json& layers = j["layers"];
    double sum = 0;
    int with_weights = 0;
    for (const auto& row : layers) {
        SCOPED_TRACE(row.dump());
        const double f = row["forward_ms"].get<double>(), dx = row["input_gradient_ms"].get<double>(),
                     dw = row["weight_gradient_ms"].get<double>();
        EXPECT_NEAR(row["ms"].get<double>(), f + dx + dw, 1e-9 + 1e-9 * row["ms"].get<double>());
        sum += row["ms"].get<double>();
        EXPECT_GT(f, 0.0);
        EXPECT_GE(dx, 0.0);
        if (!row["weights"].get<bool>()) {
            EXPECT_EQ(dw, 0.0);
            continue;
        }
        ++with_weights;
        EXPECT_GT(dw, 0.0);
        // The input gradient's time is the backward's less the weight gradient's alone, which on a
        // small layer can come out at 0 (clamped); the second convolution's is large enough.
        if (row["layer"] == 1) {
            EXPECT_EQ(dx, 0.0);
        } else if (row["layer"] == 3) {
            EXPECT_GT(dx, 0.0);
        }
    }
    EXPECT_EQ(with_weights, 4) << "two convolutions, two dense layers: " << layers.dump();
    ASSERT_FALSE(layers.empty());
    EXPECT_EQ(layers[0]["layer"], 1);
    EXPECT_EQ(layers[0]["spec"], "conv 32 3x3 padding=same relu");
    // The layers' sums are the step less the loss and the update: roughly the step (loosely, on a
    // shared machine).
    EXPECT_GT(sum, 0.1 * j["step_ms_median"].get<double>());
    EXPECT_LT(sum, 10 * j["step_ms_median"].get<double>());

    const CommandResult text =
        run_lenz("--threads 1 bench " + kFashion + " --train --batch 8 --batches 2 --profile");
    ASSERT_EQ(text.status, 0) << text.out;
    EXPECT_NE(text.out.find("input grad"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("weight grad"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("dense 128 relu"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("step "), std::string::npos) << text.out;
}

TEST(BenchTrain, AModelWithoutAClassOutputIsAOneLineError) {
    const TempDir dir;
    std::ofstream(dir.file("map.lenz")) << "input 8x8x3\nconv 4 3x3 stride=2 padding=same relu\n";
    expect_bench_train_error("bench " + dir.file("map.lenz") + " --train --batch 2 --batches 1", 1,
                             "one score per class");
}

// A map of the input's size is a segmentation model: it trains per pixel, on synthetic masks.
TEST(BenchTrain, ASegmentationModelTrainsPerPixel) {
    const nlohmann::json j =
        bench_train_json(std::string(LENZ_SOURCE_DIR) + "/models/unet.lenz --train --batch 2 --batches 1");
    ASSERT_FALSE(j.empty());
    EXPECT_EQ(j["batch"], 2);
    EXPECT_GT(j["step_ms_median"].get<double>(), 0.0);
}

TEST(BenchTrain, BadOptionsAreOneLineErrors) {
    expect_bench_train_error("bench " + kFashion + " --train --optimizer bogus", 2, "--optimizer");
    expect_bench_train_error("bench " + kFashion + " --train --batch 0", 2, "--batch");
    expect_bench_train_error("bench " + kFashion + " --train --batches 0", 2, "--batches");
    expect_bench_train_error("bench " + kFashion + " --train --dtype int8", 2, "inference only");
    expect_bench_train_error("bench fmnist-train --train", 2, "--train times a model file");
    expect_bench_train_error("bench " + kFashion + " --optimizer adam", 2, "--optimizer needs --train");
    expect_bench_train_error("bench /no/such/model.lenz --train", 2, "unknown workload");
}

TEST(BenchTrain, HelpSaysWhatTrainDoes) {
    const CommandResult help = run_lenz("help bench");
    ASSERT_EQ(help.status, 0) << help.out;
    for (const char* needle : {"--train", "--optimizer", "input-gradient", "default 32"})
        EXPECT_NE(help.out.find(needle), std::string::npos) << needle << "\n" << help.out;
}

}  // namespace
}  // namespace lenz
