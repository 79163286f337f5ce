// The command line as people expect it of a Unix tool: one-line errors, usage errors exit 2 and
// other errors 1, --version and help, global options anywhere, and commands that go on past one bad
// argument. Each test is a finding of a new user's trial of Lenz.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_lenz.h"
#include "lenz/checkpoint.h"
#include "lenz/data.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::line_count;
using testing::TempDir;

namespace fs = std::filesystem;

using testing::CommandResult;
using testing::kFashion;
using testing::run_lenz;

const std::string kSeed = LENZ_SOURCE_DIR "/models/seed.lenz";
const std::string kOnnxClassifier = LENZ_SOURCE_DIR "/tests/golden/onnx/pytorch_classifier.onnx";

void expect_usage_error(const std::string& args, const std::string& needle) {
    SCOPED_TRACE("lenz " + args);
    const CommandResult r = run_lenz(args);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_EQ(line_count(r.out), 1u) << r.out;
    EXPECT_EQ(r.out.rfind("lenz: error: ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
    EXPECT_LT(r.out.size(), 200u) << "a message a person can read";
}

// Two classes of 8x8 RGB images, told apart by colour: DIR/train/{dark,light} and DIR/test/...
void write_image_folder(const fs::path& dir, int per_class_train, int per_class_test) {
    for (const char* split : {"train", "test"})
        for (int label = 0; label < 2; ++label) {
            const fs::path folder = dir / split / (label ? "light" : "dark");
            fs::create_directories(folder);
            const int count = std::string(split) == "train" ? per_class_train : per_class_test;
            for (int i = 0; i < count; ++i) {
                Image image{8, 8, 3, std::vector<uint8_t>(8 * 8 * 3)};
                for (size_t p = 0; p < image.pixels.size(); ++p)
                    image.pixels[p] =
                        static_cast<uint8_t>((label ? 180 : 40) + (p * 7 + static_cast<size_t>(i) * 13) % 50);
                write_png((folder / ("img" + std::to_string(i) + ".png")).string(), image);
            }
        }
}

const char* kTinyModel = "input 8x8x3\nconv 4 3x3 padding=same relu\nmaxpool 2\nflatten\ndense 2 softmax\n";

TEST(CommandLine, UsageErrorsAreOneLineAndExitTwo) {
    expect_usage_error("frobnicate", "unknown command 'frobnicate'");
    expect_usage_error("bench nonesuch", "unknown workload 'nonesuch'");
    expect_usage_error("train " + kFashion + " --bogus", "unknown option '--bogus'");
    expect_usage_error("train " + kFashion + " --epochs 0", "--epochs");
    expect_usage_error("train " + kFashion + " --batch -1", "--batch");
    expect_usage_error("train", "model is required");
    expect_usage_error("train " + kFashion + " --epochs", "--epochs");
    // CLI11's own check printed the largest double, 300 digits, as the bound.
    expect_usage_error("train " + kFashion + " --lr 0", "--lr: must be greater than 0, got 0");
    expect_usage_error("help frobnicate", "unknown command 'frobnicate'");
}

TEST(CommandLine, ErrorsWhileRunningExitOne) {
    const CommandResult r = run_lenz("summary /no/such/model.lenz");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(line_count(r.out), 1u) << r.out;
    EXPECT_EQ(r.out.rfind("lenz: error: ", 0), 0u) << r.out;
}

TEST(CommandLine, VersionHelpAndNoArguments) {
    const CommandResult version = run_lenz("--version");
    EXPECT_EQ(version.status, 0);
    EXPECT_EQ(version.out, "lenz " LENZ_VERSION "\n");

    const CommandResult bare = run_lenz("");
    EXPECT_EQ(bare.status, 2) << "no command is a usage error";
    EXPECT_NE(bare.out.find("Usage: lenz"), std::string::npos) << bare.out;
    EXPECT_NE(bare.out.find("train"), std::string::npos) << bare.out;

    const CommandResult help = run_lenz("help");
    EXPECT_EQ(help.status, 0);
    for (const char* command : {"summary", "train", "eval", "predict", "sample", "bench", "export", "import"})
        EXPECT_NE(help.out.find(command), std::string::npos) << command;

    const CommandResult train = run_lenz("help train");
    EXPECT_EQ(train.status, 0);
    for (const char* option : {"--limit-test", "--limit-train", "--quiet", "--step-every", "--gamma",
                               "--threads", "--warmup", "--val-split", "--resume"})
        EXPECT_NE(train.out.find(option), std::string::npos) << option;
    EXPECT_EQ(run_lenz("train --help").out, train.out);

    const CommandResult eval = run_lenz("help eval");
    for (const char* option : {"--val-split", "--seed", "--batch", "--report", "--data"})
        EXPECT_NE(eval.out.find(option), std::string::npos) << option;
    EXPECT_NE(run_lenz("help summary").out.find(".onnx"), std::string::npos);
}

TEST(CommandLine, GlobalOptionsWorkAfterTheCommand) {
    const CommandResult after = run_lenz("summary " + kSeed + " --threads 1 --json");
    ASSERT_EQ(after.status, 0) << after.out;
    EXPECT_EQ(nlohmann::json::parse(after.out)["threads"], 1);
    const CommandResult before = run_lenz("--threads 1 summary " + kSeed + " --json");
    ASSERT_EQ(before.status, 0) << before.out;
    EXPECT_EQ(nlohmann::json::parse(before.out)["threads"], 1);
}

TEST(CommandLine, ADirectoryWhereAFileIsExpectedSaysSo) {
    const TempDir dir;
    for (const std::string& args : {"summary " + dir.path().string(), "eval " + dir.path().string() + "/",
                                    "predict " + kOnnxClassifier + " " + dir.path().string()}) {
        SCOPED_TRACE(args);
        const CommandResult r = run_lenz(args);
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_NE(r.out.find("is a directory, not a file"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find("empty model"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find("larger than"), std::string::npos) << r.out;
    }
}

TEST(CommandLine, AFileWhereAFolderIsExpectedSaysSo) {
    const TempDir dir;
    std::ofstream(dir.file("plain.txt")) << "not a folder";
    for (const std::string& args :
         {"train " + kFashion + " --data " + dir.file("plain.txt"),
          "eval " + kOnnxClassifier + " --data " + dir.file("plain.txt"),
          "train " + kFashion + " --limit-train 64 --limit-test 64 --epochs 1 --out " +
              dir.file("plain.txt")}) {
        SCOPED_TRACE(args);
        const CommandResult r = run_lenz(args);
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_NE(r.out.find(dir.file("plain.txt") + ": is a file, not a folder"), std::string::npos)
            << r.out;
    }
}

TEST(CommandLine, PredictGoesOnPastABadImage) {
    const TempDir dir;
    Image grey{28, 28, 1, std::vector<uint8_t>(28 * 28, 90)};
    write_png(dir.file("good.png"), grey);
    std::ofstream(dir.file("bad.png")) << "not an image";
    const CommandResult r = run_lenz("predict " + kOnnxClassifier + " " + dir.file("good.png") + " " +
                                     dir.file("bad.png") + " " + dir.file("good.png") + " --top 1");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '%'), 2) << "both good images classified:\n" << r.out;
    EXPECT_NE(r.out.find("lenz: error: " + dir.file("bad.png") + ": not a PNG, JPEG, BMP, TIFF or WebP file"),
              std::string::npos)
        << r.out;

    const CommandResult json = run_lenz("predict " + kOnnxClassifier + " " + dir.file("bad.png") + " " +
                                        dir.file("good.png") + " --json");
    EXPECT_EQ(json.status, 1);
    // The error line comes first, on stderr; the JSON follows on stdout.
    ASSERT_NE(json.out.find('['), std::string::npos) << json.out;
    const auto list = nlohmann::json::parse(json.out.substr(json.out.find('[')));
    ASSERT_EQ(list.size(), 2u);
    EXPECT_TRUE(list[0].contains("error"));
    EXPECT_TRUE(list[1].contains("predictions"));
}

TEST(CommandLine, SampleWorksOnImageFoldersAndWritesTheFormatItsNameSays) {
    const TempDir dir;
    write_image_folder(dir.path() / "data", 3, 2);
    const CommandResult jpeg =
        run_lenz("sample --data " + dir.file("data") + " --index 3 --out " + dir.file("s.jpg"));
    ASSERT_EQ(jpeg.status, 0) << jpeg.out;
    EXPECT_NE(jpeg.out.find("class 1 (light)"), std::string::npos) << jpeg.out;
    std::ifstream in(dir.file("s.jpg"), std::ios::binary);
    unsigned char magic[3] = {};
    in.read(reinterpret_cast<char*>(magic), 3);
    EXPECT_TRUE(magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) << "a JPEG file";
    const Image back = read_image(dir.file("s.jpg"));
    EXPECT_EQ(back.height, 8);
    EXPECT_EQ(back.channels, 3);

    const CommandResult png = run_lenz("sample --data " + dir.file("data") + " --out " + dir.file("s.png"));
    ASSERT_EQ(png.status, 0) << png.out;
    EXPECT_EQ(read_image(dir.file("s.png")).width, 8);

    const CommandResult bmp = run_lenz("sample --data " + dir.file("data") + " --out " + dir.file("s.bmp"));
    EXPECT_EQ(bmp.status, 1) << bmp.out;
    EXPECT_NE(bmp.out.find("expected .png, .jpg or .jpeg"), std::string::npos) << bmp.out;
    EXPECT_FALSE(fs::exists(dir.file("s.bmp")));
}

TEST(CommandLine, ExportTakesAnUntrainedModelFile) {
    const TempDir dir;
    const CommandResult r = run_lenz("export " + kFashion + " " + dir.file("fresh.onnx") + " --seed 3");
    ASSERT_EQ(r.status, 0) << r.out;
    const CommandResult s = run_lenz("summary " + dir.file("fresh.onnx") + " --json");
    ASSERT_EQ(s.status, 0) << s.out;
    EXPECT_EQ(nlohmann::json::parse(s.out)["params"], 421642);
}

// A run on an image folder: the header counts what the limits leave, names Nesterov and says "1 epoch";
// eval without --data then evaluates on that same folder, not on Fashion-MNIST.
TEST(CommandLine, TrainingHeaderAndEvalOnTheRecordedDataSet) {
    const TempDir dir;
    write_image_folder(dir.path() / "data", 6, 3);
    std::ofstream(dir.file("tiny.lenz")) << kTinyModel;
    const CommandResult t =
        run_lenz("train " + dir.file("tiny.lenz") + " --data " + dir.file("data") +
                 " --epochs 1 --batch 4 --limit-train 10 --limit-test 5 --optimizer nesterov "
                 "--no-report --threads 1 --out " +
                 dir.file("run"));
    ASSERT_EQ(t.status, 0) << t.out;
    EXPECT_NE(t.out.find(": 10 of 12 training images (a stratified sample: 5 dark, 5 light) and 5 of 6 test "
                         "images (a stratified sample: 3 dark, 2 light), 2 classes"),
              std::string::npos)
        << t.out;
    EXPECT_NE(t.out.find("sgd+nesterov"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find(", 1 epoch,"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("1 thread"), std::string::npos) << t.out;
    // 10 images at batch 4: two full steps and one of the 2 left over.
    EXPECT_EQ(load_model(dir.file("run/model.safetensors")).info.step, 3);

    const CommandResult e = run_lenz("eval " + dir.file("run/model.safetensors") + " --json");
    ASSERT_EQ(e.status, 0) << e.out;
    const auto j = nlohmann::json::parse(e.out);
    EXPECT_NE(j["data"].get<std::string>().find(dir.file("data")), std::string::npos) << j["data"];
    EXPECT_EQ(j["images"], 6);

    const CommandResult fashion =
        run_lenz("eval " + dir.file("run/model.safetensors") + " --data fashion-mnist");
    EXPECT_EQ(fashion.status, 1) << "28x28 grey images do not fit an 8x8 RGB model";
}

// Above 100 % of the peak only happens when the peak is wrong; bench says so. Two tiny models
// stand in for fashion.lenz and seed.lenz, and --peak sets an impossibly low peak.
TEST(CommandLine, BenchLayersWarnsAboveThePeak) {
    const TempDir dir;
    std::ofstream(dir.file("fashion.lenz")) << "input 8x8x1\nconv 4 3x3 padding=same relu\nconv 4 3x3\n";
    std::ofstream(dir.file("seed.lenz")) << "input 6x6x3\nconv 2 3x3 stride=2 padding=same\n";
    const CommandResult low =
        run_lenz("bench layers --models " + dir.path().string() + " --peak 0.000001 --threads 1");
    EXPECT_EQ(low.status, 0) << low.out;
    EXPECT_NE(low.out.find("lenz: warning: a layer ran above the --peak given"), std::string::npos)
        << low.out;
    const CommandResult high =
        run_lenz("bench layers --models " + dir.path().string() + " --peak 1e9 --json");
    ASSERT_EQ(high.status, 0) << high.out;
    EXPECT_EQ(high.out.find("warning"), std::string::npos) << high.out;
    EXPECT_EQ(nlohmann::json::parse(high.out)["peak_gflops"], 1e9);
}

// --profile times each layer that runs and names the layers folded into it.
TEST(CommandLine, BenchProfileTimesEachLayerThatRuns) {
    const TempDir dir;
    std::ofstream(dir.file("m.lenz")) << "input 16x16x3\nconv 8 3x3 padding=same nobias\nbatchnorm\nrelu\n"
                                         "maxpool 2\nflatten\ndense 4\n";
    const CommandResult r = run_lenz("bench " + dir.file("m.lenz") + " --profile --repeats 3 --json");
    ASSERT_EQ(r.status, 0) << r.out;
    const nlohmann::json layers = nlohmann::json::parse(r.out)["layers"];
    ASSERT_EQ(layers.size(), 3u) << layers.dump();  // conv (with batchnorm and relu), maxpool, dense
    EXPECT_EQ(layers[0]["layer"], 1);
    EXPECT_EQ(layers[0]["folded"], "batchnorm, relu");
    EXPECT_EQ(layers[1]["spec"], "maxpool 2x2");
    for (const auto& row : layers) EXPECT_GT(row["ms"].get<double>(), 0.0) << row.dump();
    const CommandResult text = run_lenz("bench " + dir.file("m.lenz") + " --profile --repeats 3");
    EXPECT_NE(text.out.find("conv 8 3x3 padding=same nobias  + batchnorm, relu"), std::string::npos)
        << text.out;
}

TEST(CommandLine, EvalWithoutDataOnAModelThatRecordsNoneSaysWhatItTried) {
    // An ONNX model records no data set: Fashion-MNIST is tried, and the message says so when it fails.
    const TempDir dir;
    const std::string tiny = dir.file("tiny.onnx");
    std::ofstream(dir.file("tiny.lenz")) << kTinyModel;
    ASSERT_EQ(run_lenz("export " + dir.file("tiny.lenz") + " " + tiny).status, 0);
    const CommandResult e = run_lenz("eval " + tiny);
    EXPECT_EQ(e.status, 1) << e.out;
    EXPECT_NE(e.out.find("records no data set, so Fashion-MNIST was tried"), std::string::npos) << e.out;
}

}  // namespace
}  // namespace lenz
