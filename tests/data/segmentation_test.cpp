// Segmentation data: masks read as the classes they store (a palette's indices, never its colours),
// fitted by nearest neighbour through the image's own window, and the folder layouts (classes.txt
// with images/ and masks/, Pascal VOC's) with a one-line error for each way a folder can be wrong.
#include <gtest/gtest.h>
#include <png.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "cli/run_lenz.h"
#include "lenz/checkpoint.h"
#include "lenz/data.h"
#include "lenz/error.h"
#include "lenz/evaluate.h"
#include "lenz/model_text.h"
#include "support/files.h"

namespace lenz {
namespace segmentation_test {
namespace {

using testing::TempDir;

// A palette PNG of `bits` per index (1, 2, 4 or 8), written with libpng's full API, so that the
// reader is checked on the indices as stored. The palette is Pascal VOC's kind: colour k unlike k.
void write_palette_png(const std::string& path, int width, int height, const std::vector<uint8_t>& indices,
                       int bits = 8) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr) << path;
    // Made before setjmp, which a libpng error longjmps back to.
    std::vector<png_color> palette(static_cast<size_t>(1 << bits));
    for (size_t k = 0; k < palette.size(); ++k)
        palette[k] = {static_cast<png_byte>(255 - k), static_cast<png_byte>(k * 37),
                      static_cast<png_byte>(k * 91)};
    std::vector<uint8_t> row(static_cast<size_t>(width));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        std::fclose(file);
        FAIL() << "libpng could not write " << path;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), bits,
                 PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
    png_write_info(png, info);
    if (bits < 8) png_set_packing(png);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x)
            row[static_cast<size_t>(x)] = indices[static_cast<size_t>(y * width + x)];
        png_write_row(png, row.data());
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
}

void write_grey_mask(const std::string& path, int64_t height, int64_t width,
                     const std::vector<uint8_t>& values) {
    write_png(path, Image{height, width, 1, values});
}

// An RGB image of one colour per row, so that a fitted image can be told from another.
void write_rgb(const std::string& path, int64_t height, int64_t width) {
    Image image{height, width, 3, {}};
    for (int64_t y = 0; y < height; ++y)
        for (int64_t x = 0; x < width; ++x)
            image.pixels.insert(image.pixels.end(),
                                {static_cast<uint8_t>(10 * y), static_cast<uint8_t>(x), 200});
    write_image(path, image);
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

DataOptions fixed(int64_t height, int64_t width, double val_split = 0) {
    DataOptions o;
    o.height = height, o.width = width, o.channels = 3, o.val_split = val_split;
    return o;
}

TEST(ReadMask, GreyValuesAndPaletteIndicesAreTheClasses) {
    TempDir dir;
    write_grey_mask(dir.file("grey.png"), 2, 3, {0, 1, 2, 255, 7, 0});
    EXPECT_EQ(read_mask(dir.file("grey.png")).pixels, (std::vector<uint8_t>{0, 1, 2, 255, 7, 0}));
    const std::vector<uint8_t> indices{0, 15, 255, 3, 1, 0};
    write_palette_png(dir.file("palette.png"), 3, 2, indices);
    const Image mask = read_mask(dir.file("palette.png"));
    EXPECT_EQ(mask.height, 2);
    EXPECT_EQ(mask.width, 3);
    EXPECT_EQ(mask.channels, 1);
    EXPECT_EQ(mask.pixels, indices);  // read_image would give the palette's colours
    EXPECT_EQ(read_image(dir.file("palette.png")).channels, 3);
    const std::vector<uint8_t> small{0, 1, 2, 3, 15, 14, 13, 12, 5};
    write_palette_png(dir.file("4bit.png"), 3, 3, small, 4);
    EXPECT_EQ(read_mask(dir.file("4bit.png")).pixels, small);
}

TEST(ReadMask, AnythingButAGreyOrPalettePngIsRefusedByName) {
    TempDir dir;
    write_rgb(dir.file("rgb.png"), 2, 2);
    EXPECT_NE(
        message_of([&] {
            read_mask(dir.file("rgb.png"));
        }).find("rgb.png: a mask must be a grey or palette PNG holding each pixel's class (this one is RGB)"),
        std::string::npos);
    write_rgb(dir.file("photo.jpg"), 4, 4);
    EXPECT_NE(message_of([&] { read_mask(dir.file("photo.jpg")); }).find("photo.jpg: a mask must be a PNG"),
              std::string::npos);
    // Cut short inside the pixel data: libpng's error, as one line naming the file.
    write_palette_png(dir.file("whole.png"), 64, 64, std::vector<uint8_t>(64 * 64, 3));
    const std::vector<uint8_t> whole = testing::read_bytes(dir.file("whole.png"));
    ASSERT_GT(whole.size(), 100u);
    const std::vector<uint8_t> bytes(whole.begin(),
                                     whole.begin() + static_cast<std::ptrdiff_t>(whole.size() / 2));
    testing::write_file(dir.file("cut.png"), bytes);
    const std::string cut = message_of([&] { read_mask(dir.file("cut.png")); });
    EXPECT_NE(cut.find("cut.png: "), std::string::npos) << cut;
    EXPECT_EQ(cut.find('\n'), std::string::npos) << cut;
}

TEST(FitMask, NearestNeighbourThroughTheImagesWindow) {
    // 2x2 to 4x4: each class becomes a 2x2 block, never a blend.
    const Image up = fit_mask(Image{2, 2, 1, {1, 2, 3, 4}}, 4, 4);
    EXPECT_EQ(up.pixels, (std::vector<uint8_t>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}));
    // 2x6 to 2x2: the centred 2x2 window of columns 2-3, as fit_image crops its image.
    const Image crop = fit_mask(Image{2, 6, 1, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}}, 2, 2);
    EXPECT_EQ(crop.pixels, (std::vector<uint8_t>{2, 3, 12, 13}));
    // 4x4 to 2x2: the pixel under each output's centre, (2i + 1) rounded down: rows and columns 1, 3.
    std::vector<uint8_t> m(16);
    for (uint8_t i = 0; i < 16; ++i) m[i] = i;
    EXPECT_EQ(fit_mask(Image{4, 4, 1, m}, 2, 2).pixels, (std::vector<uint8_t>{5, 7, 13, 15}));
    EXPECT_THROW(fit_mask(Image{2, 2, 3, std::vector<uint8_t>(12)}, 2, 2), ShapeError);
}

// classes.txt naming 3 classes, and two training and one test image with masks.
void make_folder(const TempDir& dir) {
    testing::write_file(dir.tree_file("classes.txt"),
                        {'s', 'k', 'y', '\n', 'c', 'a', 't', '\n', 'd', 'o', 'g', '\n'});
    write_rgb(dir.tree_file("images/train/a.png"), 4, 4);
    write_grey_mask(dir.tree_file("masks/train/a.png"), 4, 4,
                    {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 255, 255, 2, 2, 255, 255});
    write_rgb(dir.tree_file("images/train/b.jpg"), 4, 4);
    write_palette_png(dir.tree_file("masks/train/b.png"), 4, 4, std::vector<uint8_t>(16, 1));
    write_rgb(dir.tree_file("images/test/c.png"), 8, 8);
    write_grey_mask(dir.tree_file("masks/test/c.png"), 8, 8, std::vector<uint8_t>(64, 2));
}

TEST(SegmentationFolder, ImagesWithTheirMasksAndTheClassesOfClassesTxt) {
    TempDir dir;
    make_folder(dir);
    const DataSplit split = load_dataset(dir.path().string(), fixed(4, 4));
    EXPECT_EQ(split.train.class_names, (std::vector<std::string>{"sky", "cat", "dog"}));
    ASSERT_TRUE(split.train.segmentation());
    EXPECT_EQ(split.train.size(), 2);
    EXPECT_EQ(split.test.size(), 1);
    EXPECT_TRUE(split.train.labels.empty());
    const std::vector<uint8_t> a{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 255, 255, 2, 2, 255, 255};
    EXPECT_EQ(std::vector<uint8_t>(split.train.masks.begin(), split.train.masks.begin() + 16), a);
    EXPECT_EQ(std::vector<uint8_t>(split.train.masks.begin() + 16, split.train.masks.end()),
              std::vector<uint8_t>(16, 1));
    // The test image is 8x8, fitted to 4x4 with its mask alike.
    EXPECT_EQ(split.test.masks, std::vector<uint8_t>(16, 2));
    EXPECT_EQ(split.train.pixels.size(), 2u * 3 * 16);
    EXPECT_EQ(split.train.pixels[1 * 4 + 0], 10);  // red plane, row 1: 10 · row
    EXPECT_NE(split.description.find("segmentation images in"), std::string::npos) << split.description;
    EXPECT_NE(split.description.find("3 classes"), std::string::npos) << split.description;
    // Without a size to fit to, the training images' own (all 4x4).
    DataOptions free_size;
    const DataSplit own = load_dataset(dir.path().string(), free_size);
    EXPECT_EQ(own.train.height, 4);
    EXPECT_EQ(own.test.masks.size(), 16u);
}

TEST(SegmentationFolder, ValSplitHoldsOutPairsBySeed) {
    TempDir dir;
    testing::write_file(dir.tree_file("classes.txt"), {'a', '\n', 'b', '\n'});
    for (int i = 0; i < 5; ++i) {
        const std::string name = "p" + std::to_string(i) + ".png";
        write_rgb(dir.tree_file("images/" + name), 3, 3);
        write_grey_mask(dir.tree_file("masks/" + name), 3, 3,
                        std::vector<uint8_t>(9, static_cast<uint8_t>(i % 2)));
    }
    const DataSplit split = load_dataset(dir.path().string(), fixed(3, 3, 0.4));
    EXPECT_EQ(split.train.size(), 3);
    EXPECT_EQ(split.test.size(), 2);
    EXPECT_EQ(load_dataset(dir.path().string(), fixed(3, 3, 0.4)).test.masks, split.test.masks);
    EXPECT_NE(message_of([&] { load_dataset(dir.path().string(), fixed(3, 3)); }).find("--val-split"),
              std::string::npos);
}

TEST(SegmentationFolder, EachMistakeIsOneLineNamingTheFile) {
    const auto expect_error = [](const std::function<void(const TempDir&)>& spoil, const std::string& want) {
        TempDir dir;
        make_folder(dir);
        spoil(dir);
        const std::string got = message_of([&] { load_dataset(dir.path().string(), fixed(4, 4)); });
        EXPECT_NE(got.find(want), std::string::npos) << got;
        EXPECT_EQ(got.find('\n'), std::string::npos) << got;
    };
    expect_error([](const TempDir& d) { std::filesystem::remove(d.file("masks/train/a.png")); },
                 "images/train/a.png: no mask (expected ");
    expect_error(
        [](const TempDir& d) {
            write_grey_mask(d.tree_file("masks/train/z.png"), 4, 4, std::vector<uint8_t>(16));
        },
        "masks/train/z.png: a mask without an image");
    expect_error(
        [](const TempDir& d) {
            write_grey_mask(d.file("masks/train/a.png"), 4, 5, std::vector<uint8_t>(20));
        },
        "masks/train/a.png: the mask is 4x5 but its image a.png is 4x4");
    expect_error(
        [](const TempDir& d) {
            std::vector<uint8_t> m(16, 0);
            m[6] = 3;
            write_grey_mask(d.file("masks/train/a.png"), 4, 4, m);
        },
        "masks/train/a.png: pixel (row 1, column 2) is 3, neither a class (0-2) nor 255 (ignored)");
    expect_error(
        [](const TempDir& d) {
            testing::write_file(d.file("classes.txt"), {'a', '\n', 'a', '\n'});
        },
        "classes.txt:2: class 'a' is named twice");
    expect_error(
        [](const TempDir& d) {
            testing::write_file(d.file("classes.txt"), {'a', '\n', '\n', 'b', '\n'});
        },
        "classes.txt:3: a class name after a blank line");
    expect_error([](const TempDir& d) { write_rgb(d.tree_file("masks/test/c.png"), 8, 8); },
                 "masks/test/c.png: a mask must be a grey or palette PNG");
    expect_error([](const TempDir& d) { std::filesystem::remove_all(d.path() / "masks/test"); },
                 "images/test: no masks beside it");
}

TEST(SegmentationFolder, PascalVocsOwnLayout) {
    TempDir dir;
    const std::string root = "VOCdevkit/VOC2012/";
    for (const char* id : {"2007_000032", "2007_000039", "2007_000063"}) {
        write_rgb(dir.tree_file(root + "JPEGImages/" + id + ".jpg"), 6, 6);
        std::vector<uint8_t> mask(36, 0);
        mask[7] = 15;   // person
        mask[8] = 255;  // a border
        write_palette_png(dir.tree_file(root + "SegmentationClass/" + id + ".png"), 6, 6, mask);
    }
    std::vector<uint8_t> train{'2', '0', '0', '7', '_', '0', '0', '0', '0', '3', '2', '\n'};
    const std::string second = "2007_000039\n";
    train.insert(train.end(), second.begin(), second.end());
    testing::write_file(dir.tree_file(root + "ImageSets/Segmentation/train.txt"), train);
    const std::string val = "2007_000063\n";
    testing::write_file(dir.tree_file(root + "ImageSets/Segmentation/val.txt"), {val.begin(), val.end()});
    const DataSplit split = load_dataset(dir.path().string(), fixed(6, 6));
    ASSERT_EQ(split.train.class_names.size(), 21u);
    EXPECT_EQ(split.train.class_names[15], "person");
    EXPECT_EQ(split.train.size(), 2);
    EXPECT_EQ(split.test.size(), 1);
    EXPECT_EQ(split.test.masks[7], 15);
    EXPECT_EQ(split.test.masks[8], kIgnorePixel);
    EXPECT_NE(split.description.find("Pascal VOC"), std::string::npos) << split.description;
    testing::write_file(dir.file(root + "ImageSets/Segmentation/val.txt"), {'n', 'o', '\n'});
    EXPECT_NE(
        message_of([&] { load_dataset(dir.path().string(), fixed(6, 6)); }).find("val.txt: lists no, but "),
        std::string::npos);
}

TEST(SegmentationFolder, MasksFitAModelThatEndsInAMapOfTheirSize) {
    TempDir dir;
    make_folder(dir);
    const DataSplit split = load_dataset(dir.path().string(), fixed(4, 4));
    const Model segmenter = parse_model("input 4x4x3\nconv 3 3x3 padding=same\n", "segmentation.lenz");
    EXPECT_NO_THROW(check_data_fits(segmenter, split.train, "training"));
    const Model classifier = parse_model("input 4x4x3\nflatten\ndense 3\n", "classifier.lenz");
    EXPECT_EQ(message_of([&] { check_data_fits(classifier, split.train, "training"); }),
              "the training set has a mask per image (4x4) but the model's output is 1x1x3: a segmentation "
              "model ends in a map at its input's size with a channel per class");
}

TEST(SegmentationCli, SampleWritesTheImageAndItsMaskAndTrainAndEvalRunOnIt) {
    TempDir dir;
    make_folder(dir);
    const std::string out = dir.file("sample.png");
    const testing::CommandResult r =
        testing::run_lenz("sample --data " + dir.path().string() + " --split train --index 0 --out " + out);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("and its mask " + dir.file("sample.mask.png") +
                         ": train image 0 (sky, cat, dog, ignored pixels)"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(read_mask(dir.file("sample.mask.png")).pixels,
              (std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 255, 255, 2, 2, 255, 255}));
    EXPECT_EQ(read_image(out).height, 4);
    const std::string model = "input 4x4x3\nconv 3 3x3 padding=same\n";
    testing::write_file(dir.file("m.lenz"), {model.begin(), model.end()});
    const testing::CommandResult train =
        testing::run_lenz("train " + dir.file("m.lenz") + " --data " + dir.path().string() +
                          " --epochs 2 --out " + dir.file("run"));
    ASSERT_EQ(train.status, 0) << train.out;
    EXPECT_NE(train.out.find("segmentation: a class for every pixel of 4x4 masks, loss ce"),
              std::string::npos)
        << train.out;
    EXPECT_NE(train.out.find("mIoU"), std::string::npos) << train.out;
    EXPECT_TRUE(std::filesystem::exists(dir.file("run") + "/report.html"));
    const testing::CommandResult eval = testing::run_lenz(
        "eval " + dir.file("run") + "/model.safetensors --data " + dir.path().string() + " --json");
    ASSERT_EQ(eval.status, 0) << eval.out;
    for (const char* key : {"\"pixel_accuracy\"", "\"mean_iou\"", "\"per_class_iou\"", "\"pixels\""})
        EXPECT_NE(eval.out.find(key), std::string::npos) << key << eval.out;
    // lenz segment: masks at each image's own size (a wide one too), overlays, and a bad image
    // reported while the others go on.
    write_rgb(dir.file("wide.png"), 6, 10);
    testing::write_file(dir.file("broken.png"), {'n', 'o'});
    const testing::CommandResult seg =
        testing::run_lenz("segment " + dir.file("run") + "/model.safetensors " + dir.file("wide.png") + " " +
                          dir.file("broken.png") + " " + dir.path().string() + "/images/train/a.png --out " +
                          dir.file("masks-out") + " --json");
    EXPECT_EQ(seg.status, 1) << seg.out;
    EXPECT_NE(seg.out.find("lenz: error: " + dir.file("broken.png")), std::string::npos) << seg.out;
    const Image wide_mask = read_mask(dir.file("masks-out") + "/wide.mask.png");
    EXPECT_EQ(wide_mask.height, 6);
    EXPECT_EQ(wide_mask.width, 10);
    for (uint8_t v : wide_mask.pixels) EXPECT_LT(v, 3);
    const Image overlay = read_image(dir.file("masks-out") + "/wide.overlay.png");
    EXPECT_EQ(overlay.width, std::max<int64_t>(10, overlay.width));
    EXPECT_GT(overlay.height, 6);  // the legend below
    EXPECT_EQ(read_mask(dir.file("masks-out") + "/a.mask.png").height, 4);
    EXPECT_NE(seg.out.find("\"fraction\""), std::string::npos) << seg.out;
    Model classifier_model = parse_model("input 4x4x3\nflatten\ndense 3\n", "c.lenz");
    classifier_model.init_params(1);
    CheckpointInfo info;
    info.normalization.mean = {0.5f, 0.5f, 0.5f};
    info.normalization.stddev = {0.25f, 0.25f, 0.25f};
    write_checkpoint(dir.file("c.safetensors"), classifier_model, info);
    const testing::CommandResult classifier =
        testing::run_lenz("segment " + dir.file("c.safetensors") + " " + dir.file("wide.png") + " --out " +
                          dir.file("masks-out"));
    EXPECT_EQ(classifier.status, 1) << classifier.out;
    EXPECT_NE(classifier.out.find("the model's output is 1x1x3, not a map of its input's 4x4"),
              std::string::npos)
        << classifier.out;
    write_rgb(dir.file("a.png"), 4, 4);
    const testing::CommandResult twins =
        testing::run_lenz("segment " + dir.file("run") + "/model.safetensors " + dir.path().string() +
                          "/images/train/a.png " + dir.file("a.png"));
    EXPECT_EQ(twins.status, 2) << twins.out;
    EXPECT_NE(twins.out.find("are both named a: their masks would overwrite each other"), std::string::npos)
        << twins.out;
}

}  // namespace
}  // namespace segmentation_test
}  // namespace lenz
