// Data augmentation as a training step sees each image: random erasing blanks one rectangle of the
// size and shape the paper draws, with the asked probability; crops and flips move pixels.
#include "train/augment.h"

#include <gtest/gtest.h>

#include <vector>

namespace lenz {
namespace {

// One 28x28 grey image: pixel (y, x) = 100 + x, so every pixel normalises to a non-zero value.
ImageSet gradient_image() {
    ImageSet set;
    set.height = set.width = 28;
    set.channels = 1;
    for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) set.pixels.push_back(static_cast<uint8_t>(100 + x));
    set.labels = {0};
    return set;
}

const Normalization kNorm{{0.1f}, {0.5f}};

float normalised(int x) {
    return ((100.0f + x) / 255.0f - 0.1f) / 0.5f;
}

struct Erased {
    int64_t top = 28, left = 28, bottom = -1, right = -1, count = 0;
};

// Where the zeros are; every other pixel must be the normalised image's own.
Erased erased_region(const std::vector<float>& out) {
    Erased e;
    for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) {
            const float v = out[static_cast<size_t>(y * 28 + x)];
            if (v == 0.0f) {
                ++e.count;
                e.top = std::min<int64_t>(e.top, y), e.bottom = std::max<int64_t>(e.bottom, y);
                e.left = std::min<int64_t>(e.left, x), e.right = std::max<int64_t>(e.right, x);
            } else {
                EXPECT_FLOAT_EQ(v, normalised(x)) << "(" << y << ", " << x << ")";
            }
        }
    return e;
}

TEST(Augment, ErasingBlanksOneRectangleOfTwoToFortyPercent) {
    const ImageSet set = gradient_image();
    AugmentConfig aug;
    aug.erase_probability = 1.0;
    double total_fraction = 0;
    for (uint64_t step = 0; step < 300; ++step) {
        Rng rng = Rng::derive(1, 0xA06, step);
        std::vector<float> out(28 * 28);
        load_example(set, 0, kNorm, aug, rng, out.data());
        const Erased e = erased_region(out);
        const int64_t h = e.bottom - e.top + 1, w = e.right - e.left + 1;
        ASSERT_EQ(e.count, h * w) << "the zeros form one filled rectangle (step " << step << ")";
        const double fraction = e.count / 784.0;
        // Rounding each side to whole pixels moves the area a little beyond 2-40 %.
        EXPECT_GE(fraction, 0.012) << step;
        EXPECT_LE(fraction, 0.45) << step;
        const double aspect = static_cast<double>(h) / static_cast<double>(w);
        EXPECT_GE(aspect, 0.2) << step;
        EXPECT_LE(aspect, 5.0) << step;
        total_fraction += fraction;
    }
    // The area is uniform on 2-40 %, so about 21 % on average.
    EXPECT_NEAR(total_fraction / 300, 0.21, 0.03);
}

TEST(Augment, ErasingHappensWithItsProbabilityAndNeverWhenOff) {
    const ImageSet set = gradient_image();
    for (double p : {0.0, 0.5}) {
        AugmentConfig aug;
        aug.erase_probability = p;
        int erased = 0;
        for (uint64_t step = 0; step < 400; ++step) {
            Rng rng = Rng::derive(2, 0xA06, step);
            std::vector<float> out(28 * 28);
            load_example(set, 0, kNorm, aug, rng, out.data());
            erased += erased_region(out).count > 0;
        }
        if (p == 0.0)
            EXPECT_EQ(erased, 0);
        else
            EXPECT_NEAR(erased, 200, 40);  // binomial(400, 0.5): 5 standard deviations
    }
}

TEST(Augment, FlipsMirrorAndCropsShiftWithTheMeanAtTheBorder) {
    const ImageSet set = gradient_image();
    AugmentConfig flip;
    flip.horizontal_flip = true;
    int mirrored = 0;
    for (uint64_t step = 0; step < 100; ++step) {
        Rng rng = Rng::derive(3, 0xA06, step);
        std::vector<float> out(28 * 28);
        load_example(set, 0, kNorm, flip, rng, out.data());
        const bool is_mirrored = out[0] == normalised(27);
        EXPECT_EQ(out[5], is_mirrored ? normalised(22) : normalised(5));
        mirrored += is_mirrored;
    }
    EXPECT_GT(mirrored, 25);
    EXPECT_LT(mirrored, 75);
    AugmentConfig crop;
    crop.crop_padding = 2;
    bool shifted = false;
    for (uint64_t step = 0; step < 50; ++step) {
        Rng rng = Rng::derive(4, 0xA06, step);
        std::vector<float> out(28 * 28);
        load_example(set, 0, kNorm, crop, rng, out.data());
        // A row is the gradient moved by dx in -2..2, with zeros (the mean) where it left the image.
        const float first = out[14 * 28 + 10];
        int dx = 0;
        while (dx >= -2 && dx <= 2 && first != normalised(10 + dx)) dx = dx >= 0 ? -dx - 1 : -dx;
        ASSERT_LE(std::abs(dx), 2) << step;
        shifted = shifted || dx != 0;
    }
    EXPECT_TRUE(shifted);
}

}  // namespace
}  // namespace lenz
