// --dtype on the command line: bf16 through train, resume, eval, predict, run and bench where the
// CPU has it, and one line saying what the CPU has where it has not (DNNL_MAX_CPU_ISA plays a CPU
// without it on any machine).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/run_lenz.h"
#include "lenz/checkpoint.h"
#include "lenz/engine.h"
#include "lenz/precision.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::temp_path;

namespace fs = std::filesystem;

using testing::CommandResult;
using testing::kFashion;
using testing::run_command;
using testing::run_lenz;

TEST(PrecisionCli, Bf16TrainsResumesEvaluatesPredictsRunsAndBenches) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    if (!cpu_supports(Precision::bf16)) GTEST_SKIP() << "this CPU has no bf16 (the refusal is tested below)";
    const fs::path dir = temp_path("run");
    const std::string checkpoint = (dir / "model.safetensors").string();
    const CommandResult t = run_lenz("train " + kFashion + " --dtype bf16 --epochs 1 --limit-train 2048 " +
                                     "--limit-test 500 --no-report --out " + dir.string());
    ASSERT_EQ(t.status, 0) << t.out;
    EXPECT_NE(t.out.find("bf16 convolutions and dense layers"), std::string::npos) << t.out;
    const auto settings = nlohmann::json::parse(load_model(checkpoint).info.training_json);
    EXPECT_EQ(settings["dtype"], "bf16");
    EXPECT_EQ(settings["options"]["--dtype"], "bf16");

    // --resume takes the precision up from the checkpoint.
    const CommandResult resumed =
        run_lenz("train " + kFashion + " --resume " + dir.string() + " --epochs 2 --no-report");
    ASSERT_EQ(resumed.status, 0) << resumed.out;
    EXPECT_NE(resumed.out.find("bf16 convolutions and dense layers"), std::string::npos) << resumed.out;

    const CommandResult e16 = run_lenz("eval " + checkpoint + " --dtype bf16 --json");
    const CommandResult e32 = run_lenz("eval " + checkpoint + " --json");
    ASSERT_EQ(e16.status, 0) << e16.out;
    ASSERT_EQ(e32.status, 0) << e32.out;
    const double a16 = nlohmann::json::parse(e16.out)["accuracy"],
                 a32 = nlohmann::json::parse(e32.out)["accuracy"];
    EXPECT_GT(a16, 0.7);
    EXPECT_NEAR(a16, a32, 0.01) << "the same weights, multiplied in bf16 and in float32";

    const std::string png = (dir / "sample.png").string();
    ASSERT_EQ(run_lenz("sample --index 3 --out " + png).status, 0);
    const CommandResult p = run_lenz("predict " + checkpoint + " " + png + " --dtype bf16 --json");
    ASSERT_EQ(p.status, 0) << p.out;
    EXPECT_EQ(nlohmann::json::parse(p.out)[0]["predictions"].size(), 3u);

    const CommandResult b = run_lenz("bench fmnist-latency --dtype bf16 --repeats 5 --json");
    ASSERT_EQ(b.status, 0) << b.out;
    const auto bj = nlohmann::json::parse(b.out);
    EXPECT_EQ(bj["dtype"], "bf16");
    EXPECT_GT(bj["latency_ms"].get<double>(), 0);
    fs::remove_all(dir);
}

// Every command that takes --dtype refuses bf16 in one line, exit 1, before any work, where oneDNN
// may not go up to AVX512-BF16; and a precision Lenz has no kernels for is a usage error.
TEST(PrecisionCli, Bf16WithoutTheInstructionsIsOneLineSayingWhatTheCpuHas) {
    const fs::path dir = temp_path("refused");
    for (const std::string& args :
         {"train " + kFashion + " --dtype bf16 --epochs 1 --limit-train 64 --out " + dir.string(),
          std::string("bench fmnist-latency --dtype bf16 --repeats 1"),
          "eval " + dir.string() + "/none.safetensors --dtype bf16",
          "predict " + dir.string() + "/none.safetensors x.png --dtype bf16",
          "run " + kFashion + " --input x.npy --dtype bf16"}) {
        SCOPED_TRACE(args);
        const CommandResult r = run_command("DNNL_MAX_CPU_ISA=AVX2 " + std::string(LENZ_BINARY) + " " + args);
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
        EXPECT_NE(r.out.find("bf16 needs a CPU with AVX512-BF16 or AMX; this one goes up to AVX2"),
                  std::string::npos)
            << r.out;
    }
    EXPECT_FALSE(fs::exists(dir)) << "train stopped before making its output folder";
    const CommandResult r = run_lenz("bench fmnist-latency --dtype float16");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("--dtype"), std::string::npos) << r.out;
}

// int8: lenz quantize writes a checkpoint of one byte per weight that keeps the accuracy, and the
// inference commands run it in int8 by themselves; a model never quantised is refused in one line.
TEST(PrecisionCli, QuantizeThenEvalPredictAndBenchInInt8) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const fs::path dir = temp_path("int8");
    const std::string checkpoint = (dir / "model.safetensors").string(),
                      quantised = (dir / "q.safetensors").string();
    const CommandResult t =
        run_lenz("train " + kFashion + " --epochs 1 --limit-train 4096 --limit-test 500 " +
                 "--no-report --out " + dir.string());
    ASSERT_EQ(t.status, 0) << t.out;

    const CommandResult q = run_lenz("quantize " + checkpoint + " --data fashion-mnist --images 256 --out " +
                                     quantised + " --json");
    ASSERT_EQ(q.status, 0) << q.out;
    const auto report = nlohmann::json::parse(q.out);
    EXPECT_EQ(report["int8_layers"], 4);
    EXPECT_EQ(report["calibration_images"], 256);
    const double f32 = report["float32_accuracy"], i8 = report["int8_accuracy"];
    EXPECT_GT(f32, 0.7);
    EXPECT_NEAR(i8, f32, 0.01) << "int8 keeps the accuracy";
    EXPECT_LT(fs::file_size(quantised), fs::file_size(checkpoint) / 3) << "one byte per weight";

    const CommandResult e = run_lenz("eval " + quantised + " --data fashion-mnist --json");
    ASSERT_EQ(e.status, 0) << e.out;
    EXPECT_DOUBLE_EQ(nlohmann::json::parse(e.out)["accuracy"].get<double>(), i8)
        << "eval runs it in int8 by itself";
    const CommandResult e32 = run_lenz("eval " + quantised + " --data fashion-mnist --dtype float32 --json");
    ASSERT_EQ(e32.status, 0) << e32.out;
    EXPECT_NEAR(nlohmann::json::parse(e32.out)["accuracy"].get<double>(), i8, 0.01);

    const std::string png = (dir / "sample.png").string();
    ASSERT_EQ(run_lenz("sample --index 3 --out " + png).status, 0);
    const CommandResult p = run_lenz("predict " + quantised + " " + png + " --json");
    ASSERT_EQ(p.status, 0) << p.out;
    EXPECT_EQ(nlohmann::json::parse(p.out)[0]["predictions"].size(), 3u);

    const CommandResult b = run_lenz("bench " + quantised + " --batch 8 --repeats 3 --json");
    ASSERT_EQ(b.status, 0) << b.out;
    EXPECT_EQ(nlohmann::json::parse(b.out)["dtype"], "int8");
    const CommandResult named = run_lenz("bench fmnist-latency --dtype int8 --repeats 3 --json");
    ASSERT_EQ(named.status, 0) << named.out;
    EXPECT_EQ(nlohmann::json::parse(named.out)["dtype"], "int8");

    const CommandResult refused = run_lenz("eval " + checkpoint + " --data fashion-mnist --dtype int8");
    EXPECT_EQ(refused.status, 1) << refused.out;
    EXPECT_EQ(std::count(refused.out.begin(), refused.out.end(), '\n'), 1) << refused.out;
    EXPECT_NE(refused.out.find("lenz quantize"), std::string::npos) << refused.out;
    EXPECT_EQ(run_lenz("bench fmnist-train --dtype int8").status, 2) << "int8 is for inference";
    EXPECT_EQ(run_lenz("train " + kFashion + " --dtype int8 --epochs 1 --out " + dir.string()).status, 2);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace lenz
