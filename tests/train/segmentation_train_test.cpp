// Segmentation end to end on a synthetic set made in memory: evaluation against a hand-computed
// case, masks that move with their images under augmentation, subsets that keep masks with their
// images, a small U-Net that learns, resumes bit for bit, and data that does not fit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lenz/error.h"
#include "lenz/evaluate.h"
#include "lenz/model_text.h"
#include "lenz/random.h"
#include "lenz/train.h"
#include "train/augment.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;

// 16x16 RGB images of three classes: background (grey noise), a red square of side 4-6 (class 1)
// and a green bar of 2 x 8-12 pixels (class 2), each somewhere in the image; the square's corners
// are ignored pixels.
ImageSet synthetic_set(int64_t count, uint64_t seed) {
    constexpr int64_t H = 16, W = 16, plane = H * W;
    ImageSet set;
    set.height = H, set.width = W, set.channels = 3;
    set.class_names = {"background", "square", "bar"};
    set.pixels.resize(static_cast<size_t>(count * 3 * plane));
    set.masks.resize(static_cast<size_t>(count * plane));
    Rng rng(seed);
    for (int64_t n = 0; n < count; ++n) {
        uint8_t* px = set.pixels.data() + n * 3 * plane;
        uint8_t* mask = set.masks.data() + n * plane;
        for (int64_t i = 0; i < 3 * plane; ++i) px[i] = static_cast<uint8_t>(100 + rng.below(60));
        const auto paint = [&](int64_t y, int64_t x, uint8_t cls, const uint8_t rgb[3]) {
            for (int64_t c = 0; c < 3; ++c) px[c * plane + y * W + x] = rgb[c];
            mask[y * W + x] = cls;
        };
        const uint8_t red[] = {220, 30, 30}, green[] = {30, 200, 40};
        const int64_t side = 4 + static_cast<int64_t>(rng.below(3)),
                      sy = static_cast<int64_t>(rng.below(H - side)),
                      sx = static_cast<int64_t>(rng.below(W - side));
        for (int64_t y = sy; y < sy + side; ++y)
            for (int64_t x = sx; x < sx + side; ++x) paint(y, x, 1, red);
        for (int64_t y : {sy, sy + side - 1})
            for (int64_t x : {sx, sx + side - 1}) mask[y * W + x] = kIgnorePixel;
        const int64_t length = 8 + static_cast<int64_t>(rng.below(5)),
                      by = static_cast<int64_t>(rng.below(H - 2)),
                      bx = static_cast<int64_t>(rng.below(W - length));
        for (int64_t y = by; y < by + 2; ++y)
            for (int64_t x = bx; x < bx + length; ++x) paint(y, x, 2, green);
    }
    return set;
}

const char* kUnet =
    "input 16x16x3\n"
    "conv 8 3x3 padding=same nobias\nbatchnorm\nrelu name=enc\n"
    "maxpool 2\n"
    "conv 16 3x3 padding=same relu\n"
    "convtranspose 8 2 stride=2 relu name=up\n"
    "concat up enc\n"
    "conv 8 3x3 padding=same relu\n"
    "conv 3 1x1\n";

std::string run_dir(const std::string& name) {
    return (fs::temp_directory_path() / ("lenz-seg-" + std::to_string(::getpid()) + "-" + name)).string();
}

TrainConfig seg_config(const std::string& dir, int64_t epochs) {
    TrainConfig c;
    c.epochs = epochs;
    c.batch = 16;
    c.seed = 3;
    c.out_dir = dir;
    c.schedule.base_lr = 5e-3;
    c.schedule.warmup_epochs = 0.5;
    return c;
}

std::vector<float> all_weights(Model& m) {
    std::vector<float> out;
    for (auto& p : m.named_params())
        out.insert(out.end(), p.ref.value->data(), p.ref.value->data() + p.ref.value->size());
    return out;
}

// A 1x1 convolution whose class-1 score is the pixel itself and class-0 score its negative: pixels
// above 0 are class 1. On a 2x3 image (-1, 2, 3 / -4, 5, -6) against the mask (0, 1, 0 / 1, 1, 255):
// predictions 0 1 1 / 0 1 (ignored), so the confusion is [[1, 1], [1, 2]] over 5 pixels: pixel
// accuracy 3/5, IoU 1/(2 + 2 - 1) for class 0 (1 pixel in both of its 2 true and 2 predicted ones)
// and 2/(3 + 3 - 2) for class 1.
TEST(Segmentation, EvaluationMatchesAHandComputedCase) {
    Model m = parse_model("input 2x3x1\nconv 2 1x1\n", "probe");
    m.init_params(1);
    for (Model::NamedParam& p : m.named_params()) {
        Buffer& v = *p.ref.value;
        if (v.size() == 2 && p.name.find("bias") != std::string::npos) v[0] = v[1] = 0;
        if (v.size() == 2 && p.name.find("weight") != std::string::npos) v[0] = -1, v[1] = 1;
    }
    ImageSet set;
    set.height = 2, set.width = 3, set.channels = 1;
    set.class_names = {"low", "high"};
    // Pixels as bytes; with mean 127.5/255 and stddev 1/255 they normalise to byte - 127.5, whose sign
    // is what the probe reads.
    set.pixels = {126, 129, 130, 123, 132, 121};
    set.masks = {0, 1, 0, 1, 1, kIgnorePixel};
    Normalization norm;
    norm.mean = {127.5f / 255.0f};
    norm.stddev = {1.0f / 255.0f};
    const EvalResult r = evaluate(m, set, norm);
    ASSERT_TRUE(r.segmentation);
    EXPECT_EQ(r.pixels, 5);
    EXPECT_EQ(r.count, 1);
    EXPECT_EQ(r.confusion, (std::vector<std::vector<int64_t>>{{1, 1}, {1, 2}}));
    EXPECT_NEAR(r.accuracy, 3.0 / 5, 1e-12);
    ASSERT_EQ(r.per_class_iou.size(), 2u);
    EXPECT_NEAR(r.per_class_iou[0], 1.0 / 3, 1e-12);
    EXPECT_NEAR(r.per_class_iou[1], 2.0 / 4, 1e-12);
    EXPECT_NEAR(r.mean_iou, (1.0 / 3 + 0.5) / 2, 1e-12);
    // The loss: the mean over the 5 pixels of -log softmax, with scores ±(byte - 127.5).
    double loss = 0;
    const double z[] = {-1.5, 1.5, 2.5, -4.5, 4.5};
    const int t[] = {0, 1, 0, 1, 1};
    for (int i = 0; i < 5; ++i) {
        // Scores (-z, z): the target's is s, the other's -s, and -log p = log(1 + exp(-2s)).
        const double s = t[i] == 1 ? z[i] : -z[i];
        loss += std::log(1 + std::exp(-2 * s));
    }
    EXPECT_NEAR(r.loss, loss / 5, 1e-6);
}

TEST(Segmentation, ClassIouLeavesOutClassesInNeitherTruthNorPrediction) {
    const std::vector<std::vector<int64_t>> confusion{{3, 1, 0}, {2, 4, 0}, {0, 0, 0}};
    const std::vector<double> iou = class_iou(confusion);
    EXPECT_DOUBLE_EQ(iou[0], 3.0 / (4 + 5 - 3));
    EXPECT_DOUBLE_EQ(iou[1], 4.0 / (6 + 5 - 4));
    EXPECT_TRUE(std::isnan(iou[2]));
    EXPECT_DOUBLE_EQ(mean_present(iou), (0.5 + 4.0 / 7) / 2);
    EXPECT_TRUE(std::isnan(mean_present({std::nan(""), std::nan("")})));
}

// Image values and mask values are one and the same pattern (class = value % 3), so after any crop
// and flip, every pixel's class must still be its value's, and the padding ignored where the
// image is the mean.
TEST(Segmentation, MasksMoveWithTheirImages) {
    ImageSet set;
    set.height = 5, set.width = 7, set.channels = 1;
    for (int i = 0; i < 35; ++i) {
        set.pixels.push_back(static_cast<uint8_t>(10 + 7 * i));
        set.masks.push_back(static_cast<uint8_t>((10 + 7 * i) % 3));
    }
    Normalization norm;
    norm.mean = {0.0f};
    norm.stddev = {1.0f};
    AugmentConfig aug;
    aug.crop_padding = 2;
    aug.horizontal_flip = true;
    aug.erase_probability = 0.5;
    int moved = 0;
    for (uint64_t s = 0; s < 40; ++s) {
        Rng rng(s);
        float image[35];
        uint8_t mask[35];
        load_example(set, 0, norm, aug, rng, image, mask);
        for (int i = 0; i < 35; ++i) {
            const long value = std::lround(image[i] * 255.0f);
            if (mask[i] == kIgnorePixel) {
                EXPECT_EQ(value, 0) << s << " " << i;  // padding
                continue;
            }
            if (value == 0) continue;  // erased: its class stays, the pixels are gone
            EXPECT_EQ(mask[i], value % 3) << s << " " << i;
            moved += value != 10 + 7 * i;
        }
    }
    EXPECT_GT(moved, 100);  // the augmentation really moved pixels
}

// 4x4 blocks of one colour each, whose class is the colour's: under a random scale (0.5x to 2x),
// shift and flip, a pixel away from the blocks' edges keeps its block's colour and class together,
// and the frame around a shrunk image is the mean and ignored.
TEST(Segmentation, MasksFollowAScaledImage) {
    ImageSet set;
    set.height = set.width = 16, set.channels = 1;
    for (int64_t y = 0; y < 16; ++y)
        for (int64_t x = 0; x < 16; ++x) {
            const auto cls = static_cast<uint8_t>((y / 4 + x / 4) % 3);
            set.pixels.push_back(static_cast<uint8_t>(60 * (cls + 1)));
            set.masks.push_back(cls);
        }
    Normalization norm;
    norm.mean = {0.0f};
    norm.stddev = {1.0f};
    AugmentConfig aug;
    aug.max_scale = 2;
    aug.crop_padding = 1;
    aug.horizontal_flip = true;
    int64_t agree = 0, scored = 0, padded = 0, shrunk = 0;
    for (uint64_t seed = 0; seed < 60; ++seed) {
        Rng rng(seed);
        float image[256];
        uint8_t mask[256];
        load_example(set, 0, norm, aug, rng, image, mask);
        bool any_padding = false;
        for (int i = 0; i < 256; ++i) {
            const long value = std::lround(image[i] * 255.0f);
            if (mask[i] == kIgnorePixel) {
                any_padding = true;
                ++padded;
                EXPECT_EQ(value, 0) << seed << " " << i;
                continue;
            }
            ++scored;
            agree += value == 60 * (mask[i] + 1);
        }
        shrunk += any_padding;
    }
    // Blended values occur only along the blocks' edges.
    EXPECT_GT(agree, scored * 6 / 10);
    EXPECT_GT(shrunk, 10);  // some draws shrank the image (or shifted it) into its frame
    EXPECT_GT(padded, 0);
}

TEST(Segmentation, ASubsetKeepsEachMaskWithItsImage) {
    const ImageSet set = synthetic_set(40, 9);
    const ImageSet subset = limit_images(set, 10, 1, kTrainLimitStream);
    ASSERT_EQ(subset.size(), 10);
    ASSERT_EQ(subset.masks.size(), 10u * 256);
    EXPECT_TRUE(subset.labels.empty());
    int matched = 0;
    for (int64_t i = 0; i < 10; ++i)
        for (int64_t j = 0; j < 40; ++j)
            if (std::memcmp(subset.pixels.data() + i * 768, set.pixels.data() + j * 768, 768) == 0) {
                EXPECT_EQ(std::memcmp(subset.masks.data() + i * 256, set.masks.data() + j * 256, 256), 0);
                ++matched;
            }
    EXPECT_EQ(matched, 10);
}

TEST(Segmentation, ASmallUnetLearnsAndTheBestCheckpointHasTheBestMeanIou) {
    DataSplit data;
    data.train = synthetic_set(384, 1);
    data.test = synthetic_set(64, 2);
    data.description = "synthetic squares and bars";
    Model m = parse_model(kUnet, "unet");
    m.init_params(3);
    TrainConfig c = seg_config(run_dir("learns"), 6);
    c.augment.horizontal_flip = true;
    const std::vector<EpochMetrics> history = train(m, data, c);
    ASSERT_EQ(history.size(), 6u);
    EXPECT_GT(history.back().test_mean_iou, 0.8);
    EXPECT_GT(history.back().test_accuracy, 0.95);
    EXPECT_LT(history.back().train_loss, history.front().train_loss);
    double best = -1;
    for (const EpochMetrics& e : history) {
        EXPECT_EQ(e.best, e.test_mean_iou > best) << e.epoch;
        best = std::max(best, e.test_mean_iou);
    }
    std::ifstream log(c.out_dir + "/metrics.jsonl");
    std::string line;
    std::getline(log, line);
    const nlohmann::json first = nlohmann::json::parse(line);
    EXPECT_NEAR(first.at("test_mean_iou").get<double>(), history.front().test_mean_iou, 1e-12);
    fs::remove_all(c.out_dir);
}

// With Dice added, crops and flips, stopped mid-epoch and resumed: the same weights bit for bit.
TEST(Segmentation, AStoppedRunResumesBitForBit) {
    DataSplit data;
    data.train = synthetic_set(80, 4);
    data.test = synthetic_set(16, 5);
    TrainConfig straight = seg_config(run_dir("straight"), 2);
    straight.loss.kind = LossKind::cross_entropy_dice;
    straight.augment.crop_padding = 2;
    straight.augment.horizontal_flip = true;
    Model a = parse_model(kUnet, "unet");
    a.init_params(3);
    train(a, data, straight);
    TrainConfig first = straight;
    first.out_dir = run_dir("stopped");
    first.on_step = [](const StepProgress& p) { return p.step != 7; };  // epoch 2, batch 2
    Model b = parse_model(kUnet, "unet");
    b.init_params(3);
    EXPECT_THROW(train(b, data, first), Interrupted);
    TrainConfig second = first;
    second.on_step = nullptr;
    second.resume = true;
    Model resumed = parse_model(kUnet, "unet");
    resumed.init_params(99);
    const std::vector<EpochMetrics> history = train(resumed, data, second);
    const auto wa = all_weights(a), wb = all_weights(resumed);
    ASSERT_EQ(wa.size(), wb.size());
    EXPECT_EQ(std::memcmp(wa.data(), wb.data(), wa.size() * sizeof(float)), 0);
    ASSERT_FALSE(history.empty());
    fs::remove_all(straight.out_dir);
    fs::remove_all(first.out_dir);
}

TEST(Segmentation, DataThatDoesNotFitSaysWhat) {
    const ImageSet set = synthetic_set(4, 1);
    const auto message = [&](const std::string& text) {
        Model m = parse_model(text, "m");
        try {
            check_data_fits(m, set, "training");
        } catch (const ShapeError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(message("input 16x16x3\nconv 3 3x3 stride=2 padding=same\n"),
              "the training set has a mask per image (16x16) but the model's output is 8x8x3: a segmentation "
              "model ends in a map at its input's size with a channel per class");
    EXPECT_EQ(message("input 16x16x3\nconv 5 3x3 padding=same\n"),
              "the data set has 3 classes but the model's output map has 5 channels (--new-head sizes it for "
              "the data)");
    ImageSet bad = set;
    bad.class_names.clear();
    bad.masks[300] = 7;
    Model m = parse_model("input 16x16x3\nconv 3 3x3 padding=same\n", "m");
    try {
        check_data_fits(m, bad, "test");
        FAIL();
    } catch (const ShapeError& e) {
        EXPECT_STREQ(e.what(), "the test set's mask 1 has class 7, outside the model's 3 output channels");
    }
    TrainConfig c = seg_config(run_dir("dice-labels"), 1);
    c.loss.kind = LossKind::dice;
    DataSplit labelled;
    labelled.train.height = labelled.train.width = 16, labelled.train.channels = 3;
    labelled.train.pixels.assign(768 * 2, 0);
    labelled.train.labels = {0, 1};
    Model classifier = parse_model("input 16x16x3\nflatten\ndense 2\n", "c");
    classifier.init_params(1);
    try {
        train(classifier, labelled, c);
        FAIL();
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("--loss dice scores a class for every pixel"), std::string::npos)
            << e.what();
    }
    fs::remove_all(c.out_dir);
}

}  // namespace
}  // namespace lenz
