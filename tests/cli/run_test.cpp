// `lenz run`: a model on a NumPy array, as a user checks Lenz's numbers against another framework's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_lenz.h"
#include "lenz/engine.h"
#include "lenz/model_text.h"
#include "lenz/npy.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::run_lenz;

const std::string kOnnxGoldens = LENZ_SOURCE_DIR "/tests/golden/onnx/";

struct Scratch {
    fs::path path = fs::temp_directory_path() / ("lenz-run-" + std::to_string(::getpid()));
    Scratch() { fs::create_directories(path); }
    ~Scratch() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// PyTorch's own export and PyTorch's own output (tools/make_onnx_goldens.py): equal within 1e-4 of
// the output's largest magnitude, the bar the ONNX issue sets.
TEST(Run, AnOnnxModelOnAnArrayComputesWhatPyTorchComputed) {
    int checked = 0;
    for (const auto& entry : fs::directory_iterator(kOnnxGoldens)) {
        if (entry.path().extension() != ".json") continue;
        const std::string name = entry.path().stem().string();
        ++checked;
        SCOPED_TRACE(name);
        std::ifstream in(kOnnxGoldens + name + ".json");
        const nlohmann::json g = nlohmann::json::parse(in);
        Scratch dir;
        NpyArray x{g["input_shape"].get<std::vector<int64_t>>(), g["input"].get<std::vector<float>>()};
        write_npy(dir.file("x.npy"), x);
        const CommandResult r = run_lenz("run " + kOnnxGoldens + name + ".onnx --input " + dir.file("x.npy") +
                                         " --output " + dir.file("y.npy"));
        ASSERT_EQ(r.status, 0) << r.out;
        const NpyArray y = read_npy(dir.file("y.npy"));
        EXPECT_EQ(y.shape, g["output_shape"].get<std::vector<int64_t>>());
        const std::vector<float> expected = g["output"].get<std::vector<float>>();
        ASSERT_EQ(y.data.size(), expected.size());
        float largest = 0;
        for (float v : expected) largest = std::max(largest, std::abs(v));
        for (size_t i = 0; i < expected.size(); ++i)
            EXPECT_NEAR(y.data[i], expected[i], 1e-4f * largest) << i;
    }
    EXPECT_GE(checked, 9);  // every PyTorch export among the fixtures, normalising graphs included
}

// A .lenz file runs with the weights --seed gives it, as Inference computes them in-process.
TEST(Run, AModelFileRunsWithTheWeightsOfItsSeed) {
    Scratch dir;
    NpyArray x{{3, 1, 28, 28}, std::vector<float>(3 * 28 * 28)};
    for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = static_cast<float>(i % 97) / 97.0f;
    write_npy(dir.file("x.npy"), x);
    const std::string model = LENZ_SOURCE_DIR "/models/fashion.lenz";
    const CommandResult r = run_lenz("run " + model + " --seed 7 --input input=" + dir.file("x.npy") +
                                     " --output " + dir.file("y.npy"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(r.out, "wrote " + dir.file("y.npy") + ": (3, 10) float32\n");
    Model m = load_model_file(model);
    m.init_params(7);
    Inference inference(m, 3);
    const float* expected = inference.run(x.data.data(), 3);
    const NpyArray y = read_npy(dir.file("y.npy"));
    ASSERT_EQ(y.data.size(), 30u);
    for (size_t i = 0; i < 30; ++i) EXPECT_FLOAT_EQ(y.data[i], expected[i]) << i;
    // Without --output: the shape and the first values of each image.
    const CommandResult shown = run_lenz("run " + model + " --seed 7 --input " + dir.file("x.npy"));
    ASSERT_EQ(shown.status, 0) << shown.out;
    EXPECT_EQ(shown.out.rfind("output (3, 10) float32\n  [0] ", 0), 0u) << shown.out;
}

// lenz bench MODEL times any model file as the named workloads do, with the same keys.
TEST(Run, BenchTimesAnyModelFile) {
    for (const std::string& model :
         {std::string(LENZ_SOURCE_DIR "/models/fashion.lenz"), kOnnxGoldens + "pytorch_view.onnx"}) {
        const CommandResult r = run_lenz("bench " + model + " --batch 3 --repeats 2 --json");
        ASSERT_EQ(r.status, 0) << r.out;
        const nlohmann::json j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["workload"], model);
        EXPECT_EQ(j["batch"], 3);
        EXPECT_EQ(j["runs"], 2);
        EXPECT_GT(j["latency_ms"].get<double>(), 0.0);
        EXPECT_NEAR(j["images_per_s"].get<double>(), 3000.0 / j["latency_ms"].get<double>(),
                    1e-6 * j["images_per_s"].get<double>());
    }
}

TEST(Run, ArraysThatDoNotFitAreOneLineErrors) {
    Scratch dir;
    write_npy(dir.file("wrong.npy"), NpyArray{{2, 3, 28, 28}, std::vector<float>(2 * 3 * 28 * 28)});
    const std::string model = LENZ_SOURCE_DIR "/models/fashion.lenz";
    CommandResult r = run_lenz("run " + model + " --input " + dir.file("wrong.npy"));
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "lenz: error: " + dir.file("wrong.npy") + ": the array is (2, 3, 28, 28); " + model +
                         " takes (N, 1, 28, 28)\n");
    r = run_lenz("run " + model + " --input " + dir.file("missing.npy"));
    EXPECT_EQ(r.status, 1) << r.out;
    r = run_lenz("run " + model + " --input image=" + dir.file("wrong.npy"));
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("the model has one input, named 'input'"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace lenz
