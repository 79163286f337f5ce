// The commands behind the pictures: `lenz train` writes report.html after each epoch (and says so),
// `lenz eval --report FILE` writes the evaluation report, `lenz visualize` writes the PNG grids.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/run_lenz.h"
#include "lenz/data.h"
#include "report/html_check.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;

using testing::CommandResult;
using testing::run_lenz;

std::string slurp(const fs::path& p) {
    std::stringstream s;
    s << std::ifstream(p).rdbuf();
    return s.str();
}

TEST(ReportCli, TrainEvalAndVisualize) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist"))
        GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    const fs::path dir = fs::temp_directory_path() / ("lenz-report-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path model = dir / "tiny.lenz";
    std::ofstream(model) << "input 28x28x1\nconv 4 3 relu\nmaxpool 2\nflatten\ndense 10 softmax\n";
    const fs::path run_dir = dir / "run";

    const CommandResult t =
        run_lenz("train " + model.string() +
                 " --epochs 2 --limit-train 512 --limit-test 200 --batch 64 --out " + run_dir.string());
    ASSERT_EQ(t.status, 0) << t.out;
    EXPECT_NE(t.out.find("report: " + run_dir.string() + "/report.html"), std::string::npos) << t.out;
    const std::string report = slurp(run_dir / "report.html");
    EXPECT_EQ(testing::markup_problem(report), "");
    EXPECT_NE(report.find("after epoch 2 of 2"), std::string::npos);
    EXPECT_NE(report.find("test, epoch 2: "), std::string::npos);
    EXPECT_NE(report.find("200 test images"), std::string::npos);
    EXPECT_NE(report.find("Ankle boot"), std::string::npos);

    const CommandResult none = run_lenz("train " + model.string() +
                                        " --epochs 1 --limit-train 256 --limit-test 100 --no-report --out " +
                                        (dir / "quiet").string());
    ASSERT_EQ(none.status, 0) << none.out;
    EXPECT_FALSE(fs::exists(dir / "quiet" / "report.html"));

    const fs::path eval_report = dir / "eval.html";
    const CommandResult e =
        run_lenz("eval " + (run_dir / "model.safetensors").string() + " --report " + eval_report.string());
    ASSERT_EQ(e.status, 0) << e.out;
    const std::string er = slurp(eval_report);
    EXPECT_EQ(testing::markup_problem(er), "");
    EXPECT_NE(er.find("10000 test images"), std::string::npos);
    EXPECT_NE(er.find("id=\"training\""), std::string::npos);  // metrics.jsonl sits beside the checkpoint

    const fs::path sample = dir / "sample.png";
    ASSERT_EQ(run_lenz("sample --index 0 --out " + sample.string()).status, 0);
    const fs::path pictures = dir / "pictures";
    const CommandResult v = run_lenz("visualize " + (run_dir / "model.safetensors").string() + " " +
                                     sample.string() + " --out " + pictures.string());
    ASSERT_EQ(v.status, 0) << v.out;
    for (const char* name : {"input.png", "probabilities.png", "filters.png", "01-conv-26x26x4.png",
                             "02-maxpool-13x13x4.png", "overview.png"}) {
        ASSERT_TRUE(fs::exists(pictures / name)) << name << "\n" << v.out;
        const Image image = read_image((pictures / name).string());
        EXPECT_GT(image.width, 40) << name;
    }
    fs::remove_all(dir);
}

}  // namespace
}  // namespace lenz
