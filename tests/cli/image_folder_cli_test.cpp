// Image folders on the command line: --skip-bad-images on train, eval and sample (bad files listed
// on stderr and counted in the header), and lenz sample taking the most common size, not the
// first image's.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/run_lenz.h"
#include "lenz/data.h"
#include "support/files.h"

namespace lenz {
namespace image_folder_cli_test {
namespace {

using testing::CommandResult;
using testing::run_lenz;
using testing::TempDir;
namespace fs = std::filesystem;

// train/ and test/ with classes dark and light of 6x6 RGB images; the first training image is a
// 4x4 grey one, and each split holds one corrupt file.
void write_folder(const TempDir& dir) {
    for (const char* split : {"train", "test"}) {
        for (int label = 0; label < 2; ++label) {
            for (int i = 0; i < 3; ++i) {
                Image image{6, 6, 3,
                            std::vector<uint8_t>(6 * 6 * 3, static_cast<uint8_t>(label ? 200 : 30 + i))};
                write_png(dir.tree_file(std::string("data/") + split + (label ? "/light/" : "/dark/") +
                                        "img" + std::to_string(i) + ".png"),
                          image);
            }
        }
    }
    write_png(dir.tree_file("data/train/dark/a-grey.png"), Image{4, 4, 1, std::vector<uint8_t>(16, 20)});
    testing::write_file(dir.tree_file("data/train/light/broken.jpg"), {0xff, 0xd8, 0xff, 0xe0, 0, 16});
    testing::write_file(dir.tree_file("data/test/dark/broken.webp"),
                        {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'});
}

TEST(ImageFolderCli, SampleTakesTheMostCommonSizeAndSkipsBadImages) {
    const TempDir dir;
    write_folder(dir);
    const std::string data = dir.file("data");
    const CommandResult stop = run_lenz("sample --data " + data + " --out " + dir.file("s.png"));
    EXPECT_EQ(stop.status, 1) << stop.out;
    EXPECT_NE(stop.out.find("broken.jpg: bad JPEG"), std::string::npos) << stop.out;

    const CommandResult r =
        run_lenz("sample --skip-bad-images --data " + data + " --out " + dir.file("s.png"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("lenz: warning: skipped a bad image: " + dir.file("data/train/light/broken.jpg")),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("lenz: warning: skipped a bad image: " + dir.file("data/test/dark/broken.webp")),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("6x6x3, the most common size (6 of 7 training images) and channel count (6 of 7 "
                         "training images); skipped 2 unreadable images"),
              std::string::npos)
        << r.out;
    const Image sample = read_image(dir.file("s.png"));
    EXPECT_EQ(sample.height, 6);
    EXPECT_EQ(sample.channels, 3);
}

TEST(ImageFolderCli, TrainAndEvalSkipBadImagesAndCountThem) {
    const TempDir dir;
    write_folder(dir);
    std::ofstream(dir.file("tiny.lenz")) << "input 6x6x3\nflatten\ndense 2 softmax\n";
    const std::string data = " --data " + dir.file("data");
    const std::string train = "train " + dir.file("tiny.lenz") + data +
                              " --epochs 1 --batch 4 --no-report --threads 1 --out " + dir.file("run");
    const CommandResult stop = run_lenz(train);
    EXPECT_EQ(stop.status, 1) << stop.out;
    EXPECT_NE(stop.out.find("broken.webp: bad WebP"), std::string::npos) << stop.out;  // dark comes first

    const CommandResult t = run_lenz(train + " --skip-bad-images");
    ASSERT_EQ(t.status, 0) << t.out;
    EXPECT_NE(t.out.find("; skipped 2 unreadable images): 7 training images and 6 test images"),
              std::string::npos)
        << t.out;
    EXPECT_NE(t.out.find("skipped a bad image: " + dir.file("data/train/light/broken.jpg")),
              std::string::npos)
        << t.out;

    const std::string eval = "eval " + dir.file("run/model.safetensors") + data;
    EXPECT_EQ(run_lenz(eval).status, 1);
    const CommandResult e = run_lenz(eval + " --skip-bad-images");
    ASSERT_EQ(e.status, 0) << e.out;
    EXPECT_NE(e.out.find("skipped 2 unreadable images"), std::string::npos) << e.out;
}

}  // namespace
}  // namespace image_folder_cli_test
}  // namespace lenz
