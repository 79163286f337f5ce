// The `lenz` command as users and other tools call it: stable outputs, and one-line errors with a
// non-zero exit for every kind of bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_lenz.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::temp_path;

namespace fs = std::filesystem;

using testing::CommandResult;
using testing::run_lenz;

std::string temp_file(const std::string& name, const std::string& content) {
    const fs::path p = temp_path(name);
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
}

void expect_one_line_error(const CommandResult& r, const std::string& needle) {
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
}

TEST(Cli, SummaryOfTheWorkedExample) {
    const CommandResult r = run_lenz(LENZ_SOURCE_DIR "/models/seed.lenz --batch 50 --explain");
    // summary is the subcommand; the line above runs it without one and must fail
    EXPECT_NE(r.status, 0);
    const CommandResult s = run_lenz("summary " LENZ_SOURCE_DIR "/models/seed.lenz --batch 50 --explain");
    EXPECT_EQ(s.status, 0) << s.out;
    for (const char* piece :
         {"903,400", "3,613,600", "1,399,500,000", "100x150x100", "50x75x200", "25x38x400", "6,000,000",
          "3,000,000", "1,520,000", "12,613,600 bytes (12.6 MB)", "569,227,200"})
        EXPECT_NE(s.out.find(piece), std::string::npos) << piece;
}

TEST(Cli, SummaryJson) {
    const CommandResult r = run_lenz("summary " LENZ_SOURCE_DIR "/models/seed.lenz --batch 50 --json");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["params"], 903400);
    EXPECT_EQ(j["inference_bytes_textbook"], 12613600);
    EXPECT_EQ(j["training_bytes_textbook"], 569227200);
    EXPECT_EQ(j["batch"], 50);
}

// --winograd chooses which 3x3 layers inference runs by Winograd's algorithm, whose transformed
// weights the plan packs: ResNet-18's 256- and 512-channel layers by default, more with wide, none
// with off. It wins over LENZ_WINOGRAD, and anything else is a usage error.
TEST(Cli, WinogradOptionChoosesThePlan) {
    // With two threads, as the README's figures: the plan's workspace is per thread.
    const auto plan_bytes = [](const std::string& before, const std::string& after) -> int64_t {
        const CommandResult r = run_lenz(
            before + " summary " LENZ_SOURCE_DIR "/models/resnet18.lenz --json --threads 2 " + after);
        if (r.status != 0) return -r.status;
        return nlohmann::json::parse(r.out)["inference_bytes_plan"].get<int64_t>();
    };
    const int64_t by_default = plan_bytes("", ""), off = plan_bytes("", "--winograd off"),
                  wide = plan_bytes("", "--winograd wide");
    EXPECT_EQ(by_default, 145226912);
    EXPECT_EQ(plan_bytes("", "--winograd on"), by_default);
    EXPECT_EQ(off, 107025312);
    EXPECT_EQ(wide, 150994080);
    EXPECT_EQ(plan_bytes("--winograd off", ""), off) << "a global option, before the command too";
    ::setenv("LENZ_WINOGRAD", "1", 1);
    EXPECT_EQ(plan_bytes("", "--winograd off"), off);
    EXPECT_EQ(plan_bytes("", ""), wide);
    ::unsetenv("LENZ_WINOGRAD");
    const CommandResult bad = run_lenz("summary " LENZ_SOURCE_DIR "/models/resnet18.lenz --winograd yes");
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.out.find("--winograd: yes not in {off,on,wide}"), std::string::npos) << bad.out;
}

TEST(Cli, SummaryFit) {
    const CommandResult r = run_lenz("summary " LENZ_SOURCE_DIR "/models/seed.lenz --fit 8GB --json");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j["batch"].get<int64_t>(), 50);
    EXPECT_LE(j["training_bytes_plan"].get<int64_t>(), 8000000000);
    expect_one_line_error(run_lenz("summary " LENZ_SOURCE_DIR "/models/seed.lenz --fit 1MB"),
                          "not even a batch of 1");
}

TEST(Cli, BadModelFilesGiveOneLineNamingFileLineColumn) {
    const std::string path = temp_file("bad.lenz", "input 28x28x1\nconv 32 3x3\nconv 8 40x40\n");
    expect_one_line_error(run_lenz("summary " + path),
                          "bad.lenz:3:1: conv: kernel 40x40 is larger than its padded input");
    const std::string unknown = temp_file("unknown.lenz", "input 28x28x1\nfoo 3\n");
    expect_one_line_error(run_lenz("summary " + unknown), "unknown.lenz:2:1: unknown layer 'foo'");
    const std::string binary = temp_file("binary.lenz", std::string("\x7f"
                                                                    "ELF\0\0\0",
                                                                    7));
    expect_one_line_error(run_lenz("summary " + binary), "binary.lenz");
    expect_one_line_error(run_lenz("summary /nonexistent.lenz"), "cannot open");
    fs::remove(path);
    fs::remove(unknown);
    fs::remove(binary);
}

TEST(Cli, BadCheckpointsAndImagesGiveOneLine) {
    const std::string ckpt = temp_file("bad.safetensors", "\x10\0\0\0\0\0\0\0{\"a\":");
    expect_one_line_error(run_lenz("predict " + ckpt + " x.png"), "bad.safetensors");
    expect_one_line_error(run_lenz("eval " + ckpt), "bad.safetensors");
    fs::remove(ckpt);
}

TEST(Cli, TrainRefusesDataThatDoesNotFit) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const std::string model = temp_file("rgb.lenz", "input 32x32x3\nconv 4 3x3\nflatten\ndense 10 softmax\n");
    expect_one_line_error(run_lenz("train " + model + " --data fashion-mnist --out /tmp/lenz-cli-never"),
                          "28x28x1 but the model's input is 32x32x3");
    EXPECT_FALSE(fs::exists("/tmp/lenz-cli-never/model.safetensors"));
    fs::remove(model);
}

TEST(Cli, TrainEvalPredictRoundTrip) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const fs::path dir = temp_path("run");
    const CommandResult t = run_lenz("train " LENZ_SOURCE_DIR
                                     "/models/fashion.lenz --epochs 1 --limit-train 2048 --limit-test 500 "
                                     "--out " +
                                     dir.string());
    ASSERT_EQ(t.status, 0) << t.out;
    EXPECT_NE(t.out.find("epoch 1/1"), std::string::npos) << t.out;
    const CommandResult e = run_lenz("eval " + (dir / "model.safetensors").string() + " --json");
    ASSERT_EQ(e.status, 0) << e.out;
    const auto j = nlohmann::json::parse(e.out);
    EXPECT_GT(j["accuracy"].get<double>(), 0.5);
    EXPECT_EQ(j["confusion"].size(), 10u);
    const std::string png = (dir / "sample.png").string();
    ASSERT_EQ(run_lenz("sample --index 1 --out " + png).status, 0);
    const CommandResult p =
        run_lenz("predict " + (dir / "model.safetensors").string() + " " + png + " --top 2 --json");
    ASSERT_EQ(p.status, 0) << p.out;
    const auto pj = nlohmann::json::parse(p.out);
    ASSERT_EQ(pj[0]["predictions"].size(), 2u);
    EXPECT_GE(pj[0]["predictions"][0]["probability"].get<double>(),
              pj[0]["predictions"][1]["probability"].get<double>());
    const CommandResult bad_image =
        run_lenz("predict " + (dir / "model.safetensors").string() + " " + (dir / "metrics.jsonl").string());
    expect_one_line_error(bad_image, "metrics.jsonl");
    fs::remove_all(dir);
}

// A resumed run takes up the options it was started with, unless the command line gives them anew.
TEST(Cli, ResumeTakesUpTheRunsOwnOptions) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const fs::path dir = temp_path("resume");
    const std::string model = LENZ_SOURCE_DIR "/models/fashion.lenz";
    const CommandResult first =
        run_lenz("train " + model +
                 " --epochs 1 --batch 32 --limit-train 640 --limit-test 100 --optimizer momentum --lr 0.01 "
                 "--augment-flip --no-report --out " +
                 dir.string());
    ASSERT_EQ(first.status, 0) << first.out;
    // Only --epochs given: batch 32 (not the default 64), momentum and lr 0.01 come from the checkpoint.
    const CommandResult resumed =
        run_lenz("train " + model + " --resume " + dir.string() + " --epochs 2 --no-report");
    ASSERT_EQ(resumed.status, 0) << resumed.out;
    EXPECT_NE(
        resumed.out.find("sgd+momentum, lr 0.01 (cosine schedule, 0.5 warm-up epochs), batch 32, 2 epochs"),
        std::string::npos)
        << resumed.out;
    EXPECT_NE(resumed.out.find("epoch 2/2"), std::string::npos) << resumed.out;
    // Given anew, an option wins: another learning rate for a third epoch.
    const CommandResult again =
        run_lenz("train " + model + " --resume " + dir.string() + " --epochs 3 --lr 0.005 --no-report");
    ASSERT_EQ(again.status, 0) << again.out;
    EXPECT_NE(again.out.find("sgd+momentum, lr 0.005"), std::string::npos) << again.out;
    EXPECT_NE(again.out.find("batch 32, 3 epochs"), std::string::npos) << again.out;
    fs::remove_all(dir);
}

// PyTorch's export in, Lenz's summary and checkpoint out, and back out as ONNX.
TEST(Cli, OnnxImportSummaryAndExport) {
    const std::string onnx = LENZ_SOURCE_DIR "/tests/golden/onnx/pytorch_classifier.onnx";
    const CommandResult s = run_lenz("summary " + onnx);
    ASSERT_EQ(s.status, 0) << s.out;
    EXPECT_NE(s.out.find("conv 8 3x3 stride=2 padding=1 relu"), std::string::npos) << s.out;
    EXPECT_NE(s.out.find("1,549 trainable"), std::string::npos) << s.out;
    const fs::path dir = temp_path("onnx");
    fs::create_directories(dir);
    const std::string ckpt = (dir / "imported.safetensors").string(), out = (dir / "again.onnx").string();
    const CommandResult i = run_lenz("import " + onnx + " " + ckpt);
    ASSERT_EQ(i.status, 0) << i.out;
    EXPECT_NE(i.out.find("Lenz checkpoint with 10 layers"), std::string::npos) << i.out;
    const CommandResult e = run_lenz("export " + ckpt + " " + out);
    ASSERT_EQ(e.status, 0) << e.out;
    EXPECT_NE(e.out.find("ONNX (opset 13)"), std::string::npos) << e.out;
    const CommandResult again = run_lenz("summary " + out);
    ASSERT_EQ(again.status, 0) << again.out;
    EXPECT_NE(again.out.find("1,549 trainable"), std::string::npos) << again.out;
    // predict (and eval, visualize) take the .onnx file itself as they take the checkpoint.
    if (fs::exists("/usr/share/datasets/fashion-mnist")) {
        const std::string png = (dir / "sample.png").string();
        ASSERT_EQ(run_lenz("sample --index 2 --out " + png).status, 0);
        const CommandResult from_onnx = run_lenz("predict " + onnx + " " + png + " --top 2");
        ASSERT_EQ(from_onnx.status, 0) << from_onnx.out;
        EXPECT_EQ(from_onnx.out, run_lenz("predict " + ckpt + " " + png + " --top 2").out);
    }
    const std::string garbage = temp_file("garbage.onnx", "not a protobuf");
    expect_one_line_error(run_lenz("import " + garbage + " " + ckpt), "garbage.onnx");
    fs::remove(garbage);
    fs::remove_all(dir);
}

// `lenz train` starts from a trained model's weights when given one (.onnx or a checkpoint).
TEST(Cli, TrainFineTunesFromAnOnnxModel) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const fs::path dir = temp_path("finetune");
    const std::string first = (dir / "first").string(), onnx = (dir / "first.onnx").string();
    ASSERT_EQ(run_lenz("train " LENZ_SOURCE_DIR "/models/fashion.lenz --epochs 1 --limit-train 1024 "
                       "--limit-test 300 --no-report --quiet --out " +
                       first)
                  .status,
              0);
    ASSERT_EQ(run_lenz("export " + first + "/model.safetensors " + onnx + " --quiet").status, 0);
    const CommandResult trained = run_lenz("eval " + onnx + " --json");
    ASSERT_EQ(trained.status, 0) << trained.out;
    // With a learning rate of nearly nothing, the fine-tuned model is the exported one.
    const CommandResult tuned =
        run_lenz("train " + onnx + " --epochs 1 --lr 1e-12 --limit-train 256 --no-report --quiet --out " +
                 (dir / "tuned").string());
    ASSERT_EQ(tuned.status, 0) << tuned.out;
    const CommandResult after =
        run_lenz("eval " + (dir / "tuned" / "model.safetensors").string() + " --json");
    ASSERT_EQ(after.status, 0) << after.out;
    const double before_acc = nlohmann::json::parse(trained.out)["accuracy"].get<double>();
    const double after_acc = nlohmann::json::parse(after.out)["accuracy"].get<double>();
    EXPECT_GT(before_acc, 0.5);  // a trained model, not fresh weights (about 0.1)
    EXPECT_NEAR(after_acc, before_acc, 1e-3);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace lenz
