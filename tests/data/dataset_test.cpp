// load_dataset: image folders (train/test and --val-split), IDX folders and their class names, the
// error cases, and the installed Fashion-MNIST.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image_writers.h"
#include "lenz/data.h"
#include "lenz/error.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::error_message;
using testing::put_be32;
using testing::TempDir;
using testing::write_file;

namespace fs = std::filesystem;

// A PNG filled with one colour; `pixel` has 1 or 3 values.
void write_solid_png(const std::string& path, int64_t height, int64_t width,
                     const std::vector<uint8_t>& pixel) {
    Image image{height, width, static_cast<int64_t>(pixel.size()), {}};
    for (int64_t i = 0; i < height * width; ++i) {
        image.pixels.insert(image.pixels.end(), pixel.begin(), pixel.end());
    }
    write_png(path, image);
}

DataOptions image_options(int64_t height, int64_t width, int64_t channels, double val_split = 0.0,
                          uint64_t seed = 1) {
    DataOptions options;
    options.height = height;
    options.width = width;
    options.channels = channels;
    options.val_split = val_split;
    options.seed = seed;
    return options;
}

// A train/test tree with classes cat (red, two sizes), dog (grey) and ant (blue).
void make_train_test_tree(const TempDir& dir) {
    for (const char* split : {"train", "test"}) {
        const std::string root = std::string(split) + "/";
        write_solid_png(dir.tree_file(root + "cat/a.png"), 10, 20, {255, 0, 0});
        write_solid_png(dir.tree_file(root + "cat/b.PNG"), 5, 5, {255, 0, 0});
        write_solid_png(dir.tree_file(root + "dog/a.png"), 8, 8, {128});
        write_solid_png(dir.tree_file(root + "ant/a.png"), 3, 9, {0, 0, 255});
    }
    write_solid_png(dir.tree_file("train/dog/b.png"), 8, 8, {128});
    write_file(dir.tree_file("train/dog/notes.txt"), {'h', 'i'});  // not an image: ignored
}

TEST(Dataset, TrainTestFolder) {
    TempDir dir;
    make_train_test_tree(dir);
    DataSplit split = load_dataset(dir.path(), image_options(4, 4, 3));
    const std::vector<std::string> names = {"ant", "cat", "dog"};
    EXPECT_EQ(split.train.class_names, names);
    EXPECT_EQ(split.test.class_names, names);
    EXPECT_EQ(split.train.labels, (std::vector<int32_t>{0, 1, 1, 2, 2}));
    EXPECT_EQ(split.test.labels, (std::vector<int32_t>{0, 1, 1, 2}));
    EXPECT_EQ(split.train.height, 4);
    EXPECT_EQ(split.train.width, 4);
    EXPECT_EQ(split.train.channels, 3);
    ASSERT_EQ(split.train.pixels.size(), 5u * 3 * 16);
    // Planar (N, C, H, W): the first cat image (index 1) is a red plane then two empty planes.
    const uint8_t* cat = &split.train.pixels[1 * 48];
    EXPECT_TRUE(std::all_of(cat, cat + 16, [](uint8_t v) { return v == 255; }));
    EXPECT_TRUE(std::all_of(cat + 16, cat + 48, [](uint8_t v) { return v == 0; }));
    // Grey replicated into all three planes.
    const uint8_t* dog = &split.test.pixels[3 * 48];
    EXPECT_TRUE(std::all_of(dog, dog + 48, [](uint8_t v) { return v == 128; }));
    EXPECT_NE(split.description.find(dir.path()), std::string::npos) << split.description;
}

// BMP, TIFF and WebP load as PNG and JPEG do, whatever the case of their extension; the files that
// are not images are counted by extension in the description, not skipped without a word.
TEST(Dataset, ReadsBmpTiffAndWebpAndCountsWhatItSkips) {
    TempDir dir;
    for (const char* split : {"train", "test"}) {
        const std::string root = std::string(split) + "/";
        write_file(dir.tree_file(root + "bmp/a.bmp"), testing::bmp_bytes(1, 1, 24, 0, {0, 0, 200, 0}));
        ASSERT_TRUE(
            testing::write_tiff(dir.tree_file(root + "tif/a.TIF"), 1, 1, 3, 8, PHOTOMETRIC_RGB, {0, 200, 0}));
        ASSERT_TRUE(testing::write_tiff(dir.tree_file(root + "tif/b.tiff"), 1, 1, 3, 8, PHOTOMETRIC_RGB,
                                        {0, 200, 0}));
        write_file(dir.tree_file(root + "webp/a.webp"), testing::webp_bytes(1, 1, 3, {0, 0, 200}));
    }
    write_file(dir.tree_file("train/bmp/notes.txt"), {'h', 'i'});
    write_file(dir.tree_file("train/tif/readme.txt"), {'h', 'i'});
    write_file(dir.tree_file("test/webp/anim.gif"), {'G', 'I', 'F'});
    write_file(dir.tree_file("test/webp/LICENSE"), {'x'});
    const DataSplit split = load_dataset(dir.path(), image_options(2, 2, 3));
    EXPECT_EQ(split.train.class_names, (std::vector<std::string>{"bmp", "tif", "webp"}));
    EXPECT_EQ(split.train.labels, (std::vector<int32_t>{0, 1, 1, 2}));
    EXPECT_EQ(split.test.size(), 4);
    // Planar: image 0 (red) has 200 in its first plane, image 3 (blue) in its third.
    EXPECT_EQ(split.train.pixels[0], 200);
    EXPECT_EQ(split.train.pixels[1 * 12 + 4], 200);
    EXPECT_EQ(split.train.pixels[3 * 12 + 8], 200);
    EXPECT_NE(
        split.description.find("skipped 4 files that are not images: 2 .txt, 1 .gif, 1 without extension"),
        std::string::npos)
        << split.description;
    // A class folder of nothing but other files says what it holds.
    fs::remove(dir.file("test/webp/a.webp"));
    const std::string message =
        error_message<FormatError>([&] { load_dataset(dir.path(), image_options(2, 2, 3)); });
    EXPECT_NE(message.find("holds no .png, .jpg, .jpeg, .bmp, .tif, .tiff or .webp images (only 1 .gif, 1 "
                           "without extension)"),
              std::string::npos)
        << message;
}

TEST(Dataset, ImagesConvertedToGrey) {
    TempDir dir;
    make_train_test_tree(dir);
    DataSplit split = load_dataset(dir.path(), image_options(2, 3, 1));
    EXPECT_EQ(split.test.pixels.size(), 4u * 6);
    EXPECT_EQ(split.test.pixels[0], 29);  // blue ant: 0.114 * 255
}

TEST(Dataset, MismatchedClassesAreNamed) {
    TempDir dir;
    make_train_test_tree(dir);
    fs::remove_all(dir.tree_file("test/dog"));
    write_solid_png(dir.tree_file("test/emu/a.png"), 4, 4, {1});
    std::string message =
        error_message<FormatError>([&] { load_dataset(dir.path(), image_options(4, 4, 3)); });
    EXPECT_NE(message.find("only in train/: dog; only in test/: emu"), std::string::npos) << message;
}

TEST(Dataset, EmptyClassFolderIsAnError) {
    TempDir dir;
    make_train_test_tree(dir);
    fs::create_directories(dir.tree_file("test/bee"));
    std::string message =
        error_message<FormatError>([&] { load_dataset(dir.path(), image_options(4, 4, 3)); });
    EXPECT_NE(message.find("bee"), std::string::npos) << message;
    EXPECT_NE(message.find("no .png"), std::string::npos) << message;
}

TEST(Dataset, UnreadableImageIsNamed) {
    TempDir dir;
    make_train_test_tree(dir);
    write_file(dir.tree_file("test/dog/broken.png"), {1, 2, 3});
    std::string message =
        error_message<FormatError>([&] { load_dataset(dir.path(), image_options(4, 4, 3)); });
    EXPECT_NE(message.find("broken.png"), std::string::npos) << message;
}

TEST(Dataset, ImageFolderNeedsTheWholeInputShape) {
    TempDir dir;
    make_train_test_tree(dir);
    DataOptions half;
    half.height = 4;
    EXPECT_THROW(load_dataset(dir.path(), half), ShapeError);
}

// With no shape at all (lenz sample, lenz.datasets.load: no model to fit to), images take the most
// common size and channel count of the training images: 8x8 (the two dogs), and RGB (3 of 5).
TEST(Dataset, ImageFolderWithoutAShapeTakesTheMostCommonSize) {
    TempDir dir;
    make_train_test_tree(dir);
    const DataSplit split = load_dataset(dir.path(), DataOptions{});
    EXPECT_EQ(split.train.height, 8);
    EXPECT_EQ(split.train.width, 8);
    EXPECT_EQ(split.train.channels, 3);
    EXPECT_EQ(split.train.size(), 5);
    EXPECT_EQ(split.test.height, 8);
    EXPECT_NE(split.description.find("8x8x3, the most common size (2 of 5 training images) and channel count "
                                     "(3 of 5 training images)"),
              std::string::npos)
        << split.description;
}

// One grey image first in file order no longer makes an RGB data set grey (it took the first one's).
TEST(Dataset, OneGreyImageFirstDoesNotMakeTheSetGrey) {
    TempDir dir;
    write_solid_png(dir.tree_file("train/a/0.png"), 4, 4, {9});
    write_solid_png(dir.tree_file("test/a/0.png"), 6, 6, {1, 2, 3});
    for (const char* name :
         {"train/b/0.png", "train/b/1.png", "train/c/0.png", "test/b/0.png", "test/c/0.png"})
        write_solid_png(dir.tree_file(name), 6, 6, {1, 2, 3});
    const DataSplit split = load_dataset(dir.path(), DataOptions{});
    EXPECT_EQ(split.train.height, 6);
    EXPECT_EQ(split.train.channels, 3);
    EXPECT_NE(split.description.find("6x6x3, the most common size (3 of 4 training images) and channel count "
                                     "(3 of 4 training images)"),
              std::string::npos)
        << split.description;
    // Ties go to the larger size; an explicit channel count is kept, the size still chosen.
    write_solid_png(dir.tree_file("train/a/1.png"), 4, 4, {9});
    write_solid_png(dir.tree_file("train/a/2.png"), 4, 4, {9});
    DataOptions grey;
    grey.channels = 1;
    const DataSplit tie = load_dataset(dir.path(), grey);
    EXPECT_EQ(tie.train.height, 6);
    EXPECT_EQ(tie.train.channels, 1);
    EXPECT_NE(tie.description.find("6x6x1, the most common size (3 of 6 training images)"), std::string::npos)
        << tie.description;
    // All alike: said so.
    fs::remove_all(dir.path() / "train/a");
    fs::remove_all(dir.path() / "test/a");
    EXPECT_NE(
        load_dataset(dir.path(), DataOptions{}).description.find("6x6x3, the size of all 3 training images"),
        std::string::npos);
}

// --skip-bad-images: unreadable files are left out, listed on stderr (at most 10, then how many
// more) and in bad_images, and counted in the description; without it the first one stops the load.
TEST(Dataset, SkipBadImagesListsAndCountsThem) {
    TempDir dir;
    make_train_test_tree(dir);
    write_file(dir.tree_file("test/dog/broken.png"), {1, 2, 3});
    write_file(dir.tree_file("train/cat/c.jpg"), {0xff, 0xd8, 0xff, 0});
    EXPECT_THROW(load_dataset(dir.path(), image_options(4, 4, 3)), FormatError);
    DataOptions skip = image_options(4, 4, 3);
    skip.skip_bad_images = true;
    ::testing::internal::CaptureStderr();
    const DataSplit split = load_dataset(dir.path(), skip);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(split.train.size(), 5);
    EXPECT_EQ(split.test.size(), 4);
    ASSERT_EQ(split.bad_images.size(), 2u);
    EXPECT_NE(split.bad_images[0].find("c.jpg: bad JPEG"), std::string::npos) << split.bad_images[0];
    EXPECT_NE(split.bad_images[1].find("broken.png: not a PNG"), std::string::npos) << split.bad_images[1];
    EXPECT_NE(err.find("lenz: warning: skipped a bad image: " + dir.file("train/cat/c.jpg")),
              std::string::npos)
        << err;
    EXPECT_EQ(testing::line_count(err), 2u) << err;
    EXPECT_NE(split.description.find("; skipped 2 unreadable images)"), std::string::npos)
        << split.description;

    // Without a shape, the headers are read once to choose it; a bad one is listed once.
    for (int i = 0; i < 11; ++i)
        write_file(dir.tree_file("train/ant/bad" + std::to_string(i) + ".bmp"), {'B', 'M'});
    DataOptions native;
    native.skip_bad_images = true;
    ::testing::internal::CaptureStderr();
    const DataSplit many = load_dataset(dir.path(), native);
    const std::string lines = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(many.bad_images.size(), 13u);
    EXPECT_EQ(testing::line_count(lines), 11u) << lines;
    EXPECT_NE(lines.find("lenz: warning: and 3 more bad images\n"), std::string::npos) << lines;
    EXPECT_NE(many.description.find("skipped 13 unreadable images"), std::string::npos) << many.description;
}

TEST(Dataset, NoTestFolderSuggestsValSplit) {
    TempDir dir;
    write_solid_png(dir.tree_file("a/1.png"), 4, 4, {1});
    write_solid_png(dir.tree_file("b/1.png"), 4, 4, {2});
    std::string message = error_message<Error>([&] { load_dataset(dir.path(), image_options(4, 4, 1)); });
    EXPECT_NE(message.find("--val-split"), std::string::npos) << message;
}

TEST(Dataset, FolderWithoutClassesIsAnError) {
    TempDir dir;
    write_solid_png(dir.tree_file("loose.png"), 4, 4, {1});
    EXPECT_THROW(load_dataset(dir.path(), image_options(4, 4, 1, 0.5)), FormatError);
}

// Ten images per class whose grey value is 10 * index + class, so each one can be recognised.
void make_flat_tree(const TempDir& dir) {
    for (int c = 0; c < 2; ++c) {
        for (int i = 0; i < 10; ++i) {
            write_solid_png(
                dir.tree_file(std::string(1, static_cast<char>('a' + c)) + "/" + std::to_string(i) + ".png"),
                3, 3, {static_cast<uint8_t>(10 * i + c)});
        }
    }
}

// The identifying grey value of each image of a set.
std::vector<int> image_ids(const ImageSet& set) {
    std::vector<int> ids;
    for (int64_t n = 0; n < set.size(); ++n) ids.push_back(set.pixels[n * set.image_elements()]);
    return ids;
}

TEST(Dataset, ValSplitIsDeterministicPerSeed) {
    TempDir dir;
    make_flat_tree(dir);
    DataSplit split = load_dataset(dir.path(), image_options(3, 3, 1, 0.2, 7));
    EXPECT_EQ(split.train.class_names, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(split.train.size(), 16);
    EXPECT_EQ(split.test.size(), 4);
    EXPECT_EQ(std::count(split.test.labels.begin(), split.test.labels.end(), 0), 2);
    EXPECT_EQ(std::count(split.test.labels.begin(), split.test.labels.end(), 1), 2);
    // Every image lands on exactly one side, with its own class's label.
    std::vector<int> all = image_ids(split.train);
    std::vector<int> test = image_ids(split.test);
    all.insert(all.end(), test.begin(), test.end());
    std::sort(all.begin(), all.end());
    for (int i = 0; i < 20; ++i) EXPECT_EQ(all[i], i / 2 * 10 + i % 2);
    for (int64_t n = 0; n < split.test.size(); ++n) EXPECT_EQ(test[n] % 10, split.test.labels[n]);

    EXPECT_EQ(image_ids(load_dataset(dir.path(), image_options(3, 3, 1, 0.2, 7)).test), test);
    EXPECT_NE(image_ids(load_dataset(dir.path(), image_options(3, 3, 1, 0.2, 8)).test), test);
}

TEST(Dataset, ValSplitHoldsOutAtLeastOneAndNeverAll) {
    TempDir dir;
    make_flat_tree(dir);
    EXPECT_EQ(load_dataset(dir.path(), image_options(3, 3, 1, 0.01)).test.size(), 2);
    EXPECT_EQ(load_dataset(dir.path(), image_options(3, 3, 1, 0.99)).train.size(), 2);
    EXPECT_THROW(load_dataset(dir.path(), image_options(3, 3, 1, 1.0)), Error);
    EXPECT_THROW(load_dataset(dir.path(), image_options(3, 3, 1, -0.1)), Error);
}

TEST(Dataset, ValSplitOfTrainFolderWithoutTest) {
    TempDir dir;
    make_train_test_tree(dir);
    fs::remove_all(dir.tree_file("test"));
    fs::remove(dir.tree_file("train/ant/a.png"));
    write_solid_png(dir.tree_file("train/ant/b.png"), 3, 3, {7});
    write_solid_png(dir.tree_file("train/ant/c.png"), 3, 3, {7});
    DataSplit split = load_dataset(dir.path(), image_options(3, 3, 1, 0.5));
    EXPECT_EQ(split.train.size(), 3);
    EXPECT_EQ(split.test.size(), 3);
}

// Writes the four IDX files of a set of 2x2 images with the given labels (train and test alike).
void write_idx_set(const TempDir& dir, const std::string& folder, const std::vector<uint8_t>& labels) {
    std::vector<uint8_t> images, label_file;
    put_be32(images, 0x803);
    put_be32(images, static_cast<uint32_t>(labels.size()));
    put_be32(images, 2);
    put_be32(images, 2);
    for (uint8_t label : labels) images.insert(images.end(), 4, label);
    put_be32(label_file, 0x801);
    put_be32(label_file, static_cast<uint32_t>(labels.size()));
    label_file.insert(label_file.end(), labels.begin(), labels.end());
    for (const char* prefix : {"train", "t10k"}) {
        write_file(dir.tree_file(folder + "/" + prefix + "-images-idx3-ubyte"), images);
        write_file(dir.tree_file(folder + "/" + prefix + "-labels-idx1-ubyte"), label_file);
    }
}

TEST(Dataset, IdxFolderClassNames) {
    TempDir dir;
    write_idx_set(dir, "my-fashion", {0, 9, 3});
    DataSplit fashion = load_dataset(dir.path().string() + "/my-fashion", DataOptions{});
    EXPECT_EQ(fashion.train.size(), 3);
    EXPECT_EQ(fashion.test.height, 2);
    EXPECT_EQ(fashion.train.pixels[4], 9);
    ASSERT_EQ(fashion.train.class_names.size(), 10u);
    EXPECT_EQ(fashion.test.class_names[9], "Ankle boot");

    write_idx_set(dir, "digits", {0, 9, 3});
    EXPECT_EQ(load_dataset(dir.path().string() + "/digits", DataOptions{}).train.class_names[7], "7");

    write_idx_set(dir, "three", {0, 2, 1});
    EXPECT_EQ(load_dataset(dir.path().string() + "/three", DataOptions{}).train.class_names,
              (std::vector<std::string>{"class 0", "class 1", "class 2"}));
}

TEST(Dataset, IncompleteIdxFolderListsMissingFiles) {
    TempDir dir;
    write_idx_set(dir, "set", {0, 1});
    fs::remove(dir.tree_file("set/t10k-labels-idx1-ubyte"));
    std::string message =
        error_message<IoError>([&] { load_dataset(dir.path().string() + "/set", DataOptions{}); });
    EXPECT_NE(message.find("missing t10k-labels-idx1-ubyte"), std::string::npos) << message;
}

TEST(Dataset, UnknownSpecIsIoError) {
    TempDir dir;
    std::string message =
        error_message<IoError>([&] { load_dataset(dir.path().string() + "/nope", DataOptions{}); });
    EXPECT_NE(message.find("nope"), std::string::npos) << message;
}

TEST(Dataset, MnistAbsentSaysWhere) {
    if (fs::exists("/usr/share/datasets/mnist")) GTEST_SKIP() << "MNIST is installed";
    std::string message = error_message<IoError>([] { load_dataset("mnist", DataOptions{}); });
    EXPECT_NE(message.find("/usr/share/datasets/mnist"), std::string::npos) << message;
}

TEST(Dataset, InstalledFashionMnist) {
    if (!fs::exists("/usr/share/datasets/fashion-mnist")) {
        GTEST_SKIP() << "apt-get install dataset-fashion-mnist to run this test";
    }
    DataSplit split = load_dataset("fashion-mnist", DataOptions{});
    EXPECT_EQ(split.train.size(), 60000);
    EXPECT_EQ(split.test.size(), 10000);
    for (const ImageSet* set : {&split.train, &split.test}) {
        EXPECT_EQ(set->height, 28);
        EXPECT_EQ(set->width, 28);
        EXPECT_EQ(set->channels, 1);
        EXPECT_EQ(set->pixels.size(), static_cast<size_t>(set->size() * 784));
        ASSERT_EQ(set->class_names.size(), 10u);
        EXPECT_EQ(set->class_names[0], "T-shirt/top");
        EXPECT_EQ(*std::max_element(set->labels.begin(), set->labels.end()), 9);
    }
    EXPECT_EQ(split.description, "Fashion-MNIST (/usr/share/datasets/fashion-mnist)");
}

}  // namespace
}  // namespace lenz
