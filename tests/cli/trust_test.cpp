// Answers that used to be plausible and wrong (issue 29): each test here failed before its fix.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "cli/run_lenz.h"
#include "lenz/data.h"
#include "lenz/ranks.h"
#include "support/files.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::run_lenz;
using testing::TempDir;

// DIR/circle/*.png (90 of them) and DIR/noise/*.png (10): a folder read class by class, whose
// first 100 images are nearly all circles.
std::string skewed_folder(const TempDir& dir, int circles = 90, int noise = 10) {
    Image image{.height = 8, .width = 8, .channels = 1, .pixels = std::vector<uint8_t>(64)};
    for (int i = 0; i < circles + noise; ++i) {
        for (size_t p = 0; p < image.pixels.size(); ++p)
            image.pixels[p] =
                static_cast<uint8_t>(i < circles ? (p % 9 == 0) * 255 : (p * 37 + i * 11) % 256);
        write_png(dir.tree_file((i < circles ? "data/circle/" : "data/noise/") + std::to_string(i) + ".png"),
                  image);
    }
    std::ofstream(dir.file("m.lenz")) << "input 8x8x1\nconv 2 3x3 relu\nflatten\ndense 2 softmax\n";
    return (dir.path() / "data").string();
}

TEST(Trust, LimitTrainTakesAStratifiedSampleAndSaysSo) {
    TempDir dir;
    const std::string data = skewed_folder(dir);
    const CommandResult r =
        run_lenz("train " + dir.file("m.lenz") + " --data " + data +
                 " --val-split 0.2 --limit-train 40 --limit-test 10 --epochs 1 --no-report "
                 "--quiet --out " +
                 dir.file("run"));
    ASSERT_EQ(r.status, 0) << r.out;
    const CommandResult loud = run_lenz("train " + dir.file("m.lenz") + " --data " + data +
                                        " --val-split 0.2 --limit-train 40 --limit-test 10 --epochs 1 "
                                        "--no-report --out " +
                                        dir.file("run2"));
    ASSERT_EQ(loud.status, 0) << loud.out;
    // 72 circles and 8 noise images train; 40 of them keep the 9:1 proportion.
    EXPECT_NE(loud.out.find("40 of 80 training images (a stratified sample: 36 circle, 4 noise)"),
              std::string::npos)
        << loud.out;
    EXPECT_NE(loud.out.find("10 of 20 test images (a stratified sample: 9 circle, 1 noise)"),
              std::string::npos)
        << loud.out;
}

TEST(Trust, ALimitBelowTheClassCountIsAUsageError) {
    TempDir dir;
    const std::string data = skewed_folder(dir, 6, 4);
    const CommandResult r = run_lenz("train " + dir.file("m.lenz") + " --data " + data +
                                     " --val-split 0.5 --limit-train 1 --no-report --out " + dir.file("run"));
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_NE(r.out.find("--limit-train 1 is below the data set's 2 classes"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir.file("run")));
}

TEST(Trust, ResumeKeepsNoReport) {
    TempDir dir;
    const std::string data = skewed_folder(dir, 12, 8);
    const std::string run = dir.file("run");
    ASSERT_EQ(run_lenz("train " + dir.file("m.lenz") + " --data " + data +
                       " --val-split 0.5 --epochs 1 --no-report --quiet --out " + run)
                  .status,
              0);
    const CommandResult resumed =
        run_lenz("train " + dir.file("m.lenz") + " --resume " + run + " --epochs 2");
    ASSERT_EQ(resumed.status, 0) << resumed.out;
    EXPECT_NE(resumed.out.find("epoch 2/2"), std::string::npos) << resumed.out;
    EXPECT_FALSE(fs::exists(run + "/report.html")) << resumed.out;
}

TEST(Trust, ResumeKeepsSkipBadImages) {
    TempDir dir;
    const std::string data = skewed_folder(dir, 12, 8);
    std::ofstream(data + "/noise/broken.png") << "not a png";
    const std::string run = dir.file("run");
    const CommandResult first =
        run_lenz("train " + dir.file("m.lenz") + " --data " + data +
                 " --val-split 0.5 --epochs 1 --skip-bad-images --no-report --quiet --out " + run);
    ASSERT_EQ(first.status, 0) << first.out;
    const CommandResult resumed =
        run_lenz("train " + dir.file("m.lenz") + " --resume " + run + " --epochs 2");
    EXPECT_EQ(resumed.status, 0) << resumed.out;
    EXPECT_NE(resumed.out.find("skipped 1 unreadable image"), std::string::npos) << resumed.out;
}

TEST(Trust, ResumeFromNothingSaysSoBeforeMakingAFolder) {
    TempDir dir;
    const std::string data = skewed_folder(dir, 6, 6);
    const std::string nope = dir.file("nope");
    // The model's input is not the data's: the folder is checked first, and is the error.
    const CommandResult r = run_lenz("train " LENZ_SOURCE_DIR "/models/fashion.lenz --data " + data +
                                     " --val-split 0.5 --resume " + nope);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("--resume " + nope + ": nothing to resume"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(nope));
}

TEST(Trust, JsonAndCsvTogetherIsAUsageError) {
    const CommandResult r = run_lenz("summary " LENZ_SOURCE_DIR "/models/seed.lenz --json --csv");
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_EQ(r.out.find('{'), std::string::npos) << r.out;
}

TEST(Trust, PredictOnAModelFileSaysItHasNoWeights) {
    for (const char* command : {"predict", "visualize"}) {
        const CommandResult r =
            run_lenz(std::string(command) + " " LENZ_SOURCE_DIR "/models/fashion.lenz x.png");
        EXPECT_EQ(r.status, 1) << r.out;
        EXPECT_NE(r.out.find("holds no trained weights; train it first"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find("header length"), std::string::npos) << r.out;
    }
}

TEST(Trust, PredictAndTrainRefuseAMapOutput) {
    TempDir dir;
    const std::string data = skewed_folder(dir, 6, 6);
    std::ofstream(dir.file("map.lenz")) << "input 8x8x1\nconv 2 3x3 padding=same\n";
    ASSERT_EQ(run_lenz("export " + dir.file("map.lenz") + " " + dir.file("map.onnx")).status, 0);
    const CommandResult p = run_lenz("predict " + dir.file("map.onnx") + " " + data + "/circle/0.png");
    EXPECT_EQ(p.status, 1) << p.out;
    EXPECT_NE(p.out.find("output is a 8x8x2 map"), std::string::npos) << p.out;
    EXPECT_EQ(p.out.find("class 127"), std::string::npos) << p.out;
    const CommandResult t = run_lenz("train " + dir.file("map.lenz") + " --data " + data +
                                     " --val-split 0.5 --no-report --out " + dir.file("run"));
    EXPECT_EQ(t.status, 1) << t.out;
    EXPECT_NE(t.out.find("output is a 8x8x2 map"), std::string::npos) << t.out;
}

TEST(Trust, RunRefusesNonFiniteInputs) {
    TempDir dir;
    std::ofstream(dir.file("m.lenz")) << "input 2x2x1\nconv 1 1x1\n";
    // A (2, 1, 2, 2) float32 array whose element [1, 0, 1, 0] is infinite.
    std::string npy = "\x93NUMPY\x01";
    npy += '\0';
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2, 2), }";
    header.resize(118 - 1, ' ');
    header += '\n';
    npy += static_cast<char>(header.size() & 0xff);
    npy += static_cast<char>(header.size() >> 8);
    npy += header;
    std::vector<float> values(8, 0.5f);
    values[6] = std::numeric_limits<float>::infinity();
    npy.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    std::ofstream(dir.file("x.npy"), std::ios::binary) << npy;
    const CommandResult r = run_lenz("run " + dir.file("m.lenz") + " --input " + dir.file("x.npy"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("element [1, 0, 1, 0] is infinite"), std::string::npos) << r.out;
}

// A build without MPI refuses to be one of several ranks; which processes are one of several.
TEST(Trust, LaunchedRanksFromTheLaunchersEnvironment) {
    const char* names[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK",   "PMI_RANK", "PMI_SIZE", "PMIX_SIZE",
                           "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"};
    for (const char* name : names) ::unsetenv(name);
    EXPECT_EQ(Ranks::launched_ranks(), 1);
    ::setenv("SLURM_NTASKS", "4", 1);  // an sbatch -n 4 script around one process
    EXPECT_EQ(Ranks::launched_ranks(), 1);
    ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    EXPECT_EQ(Ranks::launched_ranks(), 2);
    ::unsetenv("OMPI_COMM_WORLD_SIZE");
    ::setenv("PMIX_RANK", "3", 1);  // srun --mpi=pmix, rank 3: at least four
    EXPECT_EQ(Ranks::launched_ranks(), 4);
    ::setenv("SLURM_STEP_NUM_TASKS", "8", 1);
    EXPECT_EQ(Ranks::launched_ranks(), 8);
    for (const char* name : names) ::unsetenv(name);
}

TEST(Trust, TyposGetTheNearestName) {
    const CommandResult option = run_lenz("train m.lenz --epoch 3");
    EXPECT_EQ(option.status, 2);
    EXPECT_NE(option.out.find("unknown option '--epoch' (did you mean --epochs?)"), std::string::npos)
        << option.out;
    const CommandResult command = run_lenz("trian m.lenz");
    EXPECT_EQ(command.status, 2);
    EXPECT_NE(command.out.find("unknown command 'trian' (did you mean train?)"), std::string::npos)
        << command.out;
    EXPECT_NE(run_lenz("help sumary").out.find("did you mean summary?"), std::string::npos);
    // Nothing near: no guess.
    const CommandResult far = run_lenz("train m.lenz --colour");
    EXPECT_EQ(far.out.find("did you mean"), std::string::npos) << far.out;
}

TEST(Trust, AValueThatIsNotANumberSaysSo) {
    for (const char* args :
         {"summary m.lenz --batch=abc", "train m.lenz --seed abc", "train m.lenz --warmup x"}) {
        const CommandResult r = run_lenz(args);
        EXPECT_EQ(r.status, 2) << args;
        EXPECT_NE(r.out.find("is not a number"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find("not in range"), std::string::npos) << r.out;
    }
}

TEST(Trust, HelpPagesSayWhatEachOptionDoes) {
    const std::string train = run_lenz("help train").out;
    EXPECT_EQ(train.find("{false}"), std::string::npos) << train;
    EXPECT_NE(train.find("--no-report"), std::string::npos) << train;
    EXPECT_NE(train.find("or a convolution as SqueezeNet's"), std::string::npos) << train;
    for (const char* command : {"export", "import"})
        EXPECT_EQ(run_lenz(std::string("help ") + command).out.find("--winograd"), std::string::npos)
            << command;
    EXPECT_NE(run_lenz("help run").out.find("--winograd"), std::string::npos);
}

}  // namespace
}  // namespace lenz
