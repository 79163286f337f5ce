// fit_image: identity, channel conversion, resampling values and centre cropping.
#include <gtest/gtest.h>

#include <vector>

#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

Image filled(int64_t height, int64_t width, std::vector<uint8_t> pixel) {
    const int64_t channels = static_cast<int64_t>(pixel.size());
    Image image{height, width, channels, {}};
    for (int64_t i = 0; i < height * width; ++i) {
        image.pixels.insert(image.pixels.end(), pixel.begin(), pixel.end());
    }
    return image;
}

Image numbered(int64_t height, int64_t width, int64_t channels) {
    Image image{height, width, channels, std::vector<uint8_t>(height * width * channels)};
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 7);
    return image;
}

TEST(ImageFit, SameSizeIsAnExactCopy) {
    for (int64_t channels : {1, 3}) {
        Image image = numbered(5, 7, channels);
        Image out = fit_image(image, 5, 7, channels);
        EXPECT_EQ(out.height, 5);
        EXPECT_EQ(out.width, 7);
        EXPECT_EQ(out.channels, channels);
        EXPECT_EQ(out.pixels, image.pixels);
    }
}

TEST(ImageFit, GreyToRgbReplicates) {
    Image out = fit_image(Image{1, 2, 1, {10, 200}}, 1, 2, 3);
    EXPECT_EQ(out.channels, 3);
    EXPECT_EQ(out.pixels, (std::vector<uint8_t>{10, 10, 10, 200, 200, 200}));
}

TEST(ImageFit, RgbToGreyUsesRoundedLuminance) {
    Image rgb{1, 4, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}};
    Image out = fit_image(rgb, 1, 4, 1);
    EXPECT_EQ(out.channels, 1);
    // 76.245, 149.685, 29.07, 18.15
    EXPECT_EQ(out.pixels, (std::vector<uint8_t>{76, 150, 29, 18}));
}

TEST(ImageFit, ConstantImageStaysConstant) {
    Image down = fit_image(filled(100, 80, {77, 0, 255}), 13, 9, 3);
    EXPECT_EQ(down.pixels, filled(13, 9, {77, 0, 255}).pixels);
    Image up = fit_image(filled(3, 5, {201}), 31, 17, 1);
    EXPECT_EQ(up.pixels, filled(31, 17, {201}).pixels);
    Image grey = fit_image(filled(40, 40, {50, 100, 150}), 28, 28, 1);
    EXPECT_EQ(grey.pixels, filled(28, 28, {91}).pixels);  // 14.95 + 58.7 + 17.1 = 90.75
}

TEST(ImageFit, UpscaleInterpolatesBetweenPixelCentres) {
    Image out = fit_image(Image{1, 2, 1, {0, 200}}, 2, 4, 1);
    EXPECT_EQ(out.pixels, (std::vector<uint8_t>{0, 50, 150, 200, 0, 50, 150, 200}));
}

TEST(ImageFit, HalvingAveragesEachBlock) {
    Image out = fit_image(Image{2, 2, 1, {0, 100, 100, 200}}, 1, 1, 1);
    EXPECT_EQ(out.pixels, (std::vector<uint8_t>{100}));
}

TEST(ImageFit, WideImageIsCroppedToItsMiddle) {
    // Thirds of 0, 100 and 200 across; a square target keeps exactly the middle third.
    Image wide{4, 12, 1, {}};
    for (int y = 0; y < 4; ++y) {
        for (int x = 0; x < 12; ++x) wide.pixels.push_back(static_cast<uint8_t>(x / 4 * 100));
    }
    EXPECT_EQ(fit_image(wide, 4, 4, 1).pixels, filled(4, 4, {100}).pixels);
    EXPECT_EQ(fit_image(wide, 2, 2, 1).pixels, filled(2, 2, {100}).pixels);
}

TEST(ImageFit, TallImageIsCroppedToItsMiddle) {
    Image tall{12, 4, 3, {}};
    for (int y = 0; y < 12; ++y) {
        for (int x = 0; x < 4; ++x) {
            tall.pixels.insert(tall.pixels.end(), 3, static_cast<uint8_t>(y / 4 * 100));
        }
    }
    EXPECT_EQ(fit_image(tall, 4, 4, 3).pixels, filled(4, 4, {100, 100, 100}).pixels);
}

TEST(ImageFit, InvalidShapesAreShapeErrors) {
    EXPECT_THROW(fit_image(numbered(2, 2, 1), 2, 2, 2), ShapeError);
    EXPECT_THROW(fit_image(numbered(2, 2, 1), 0, 2, 1), ShapeError);
    EXPECT_THROW(fit_image(numbered(2, 2, 1), 1 << 16, 2, 1), ShapeError);
    Image broken = numbered(2, 2, 3);
    broken.pixels.pop_back();
    EXPECT_THROW(fit_image(broken, 2, 2, 3), ShapeError);
    EXPECT_THROW(fit_image(numbered(2, 2, 4), 2, 2, 3), ShapeError);
}

// A wide image keeps its aspect: 2x4 into 4x4 is itself, one row of fill above and below; 3x6
// shrinks to 2x4 the way fit_image shrinks it; a tall one is padded left and right.
TEST(ImageFit, LetterboxKeepsTheAspectAndFillsTheRest) {
    Image wide{2, 4, 1, {1, 2, 3, 4, 5, 6, 7, 8}};
    const Letterboxed a = letterbox_image(wide, 4, 4, 1, {9});
    EXPECT_EQ(a.top, 1);
    EXPECT_EQ(a.left, 0);
    EXPECT_EQ(a.height, 2);
    EXPECT_EQ(a.width, 4);
    EXPECT_EQ(a.image.pixels, (std::vector<uint8_t>{9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9}));
    Image bigger{3, 6, 3, std::vector<uint8_t>(54)};
    for (size_t i = 0; i < bigger.pixels.size(); ++i) bigger.pixels[i] = static_cast<uint8_t>(i * 4);
    const Letterboxed b = letterbox_image(bigger, 4, 4, 3, {1, 2, 3});
    EXPECT_EQ(b.height, 2);
    EXPECT_EQ(b.width, 4);
    const Image inner = fit_image(bigger, 2, 4, 3);  // the same aspect: fit_image crops nothing
    for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 4; ++x)
            for (int64_t c = 0; c < 3; ++c) {
                const uint8_t got = b.image.pixels[static_cast<size_t>((y * 4 + x) * 3 + c)];
                if (y >= 1 && y < 3)
                    EXPECT_EQ(got, inner.pixels[static_cast<size_t>(((y - 1) * 4 + x) * 3 + c)]);
                else
                    EXPECT_EQ(got, c + 1);
            }
    const Letterboxed tall = letterbox_image(Image{4, 2, 1, std::vector<uint8_t>(8, 50)}, 4, 8, 3, {0, 0, 0});
    EXPECT_EQ(tall.image.channels, 3);
    EXPECT_EQ(tall.left, 3);
    EXPECT_EQ(tall.width, 2);
    EXPECT_EQ(tall.image.pixels[static_cast<size_t>((0 * 8 + 3) * 3)], 50);
    EXPECT_EQ(tall.image.pixels[static_cast<size_t>((0 * 8 + 2) * 3)], 0);
    EXPECT_THROW(letterbox_image(wide, 4, 4, 1, {1, 2}), ShapeError);
}

}  // namespace
}  // namespace lenz
