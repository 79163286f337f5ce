// read_image and write_png: PNG round trips, the PNG colour types and bit depths, JPEG decoding, and
// truncated or mislabelled files.
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>
#include <unistd.h>

#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lenz/data.h"
#include "lenz/error.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::error_message;
using testing::read_bytes;
using testing::TempDir;
using testing::write_file;

namespace fs = std::filesystem;

// A pseudo-random image, so that compressed files are not trivially small.
Image noise_image(int64_t height, int64_t width, int64_t channels) {
    Image image{height, width, channels, std::vector<uint8_t>(height * width * channels)};
    uint32_t state = 12345;
    for (uint8_t& p : image.pixels) {
        state = state * 1664525u + 1013904223u;
        p = static_cast<uint8_t>(state >> 24);
    }
    return image;
}

// Writes a PNG with the classic libpng API, for the colour types and depths write_png does not make.
// `rows` holds the packed, big-endian row bytes one after another.
bool write_raw_png(const std::string& path, uint32_t width, uint32_t height, int color_type, int bit_depth,
                   const std::vector<uint8_t>& rows, const std::vector<png_color>& palette = {}) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (!file) return false;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    bool ok = false;
    if (setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, file);
        png_set_IHDR(png, info, width, height, bit_depth, color_type, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
        png_write_info(png, info);
        const size_t stride = rows.size() / height;
        for (uint32_t y = 0; y < height; ++y) png_write_row(png, rows.data() + y * stride);
        png_write_end(png, nullptr);
        ok = true;
    }
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    return ok;
}

// Compresses with libjpeg's default error handling (which exits): the inputs here are valid.
void write_jpeg(const std::string& path, const Image& image, J_COLOR_SPACE space, int components) {
    jpeg_compress_struct info{};
    jpeg_error_mgr error{};
    info.err = jpeg_std_error(&error);
    jpeg_create_compress(&info);
    std::FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    jpeg_stdio_dest(&info, file);
    info.image_width = static_cast<JDIMENSION>(image.width);
    info.image_height = static_cast<JDIMENSION>(image.height);
    info.input_components = components;
    info.in_color_space = space;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, 95, TRUE);
    jpeg_start_compress(&info, TRUE);
    std::vector<uint8_t> pixels = image.pixels;
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = pixels.data() + info.next_scanline * image.width * components;
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    std::fclose(file);
}

Image gradient(int64_t height, int64_t width, int64_t channels) {
    Image image{height, width, channels, std::vector<uint8_t>(height * width * channels)};
    for (int64_t y = 0; y < height; ++y) {
        for (int64_t x = 0; x < width; ++x) {
            for (int64_t c = 0; c < channels; ++c) {
                image.pixels[(y * width + x) * channels + c] = static_cast<uint8_t>(x * 8 + y * 4 + c * 20);
            }
        }
    }
    return image;
}

void expect_close(const Image& got, const Image& want, int tolerance) {
    ASSERT_EQ(got.height, want.height);
    ASSERT_EQ(got.width, want.width);
    ASSERT_EQ(got.channels, want.channels);
    ASSERT_EQ(got.pixels.size(), want.pixels.size());
    for (size_t i = 0; i < got.pixels.size(); ++i) {
        ASSERT_NEAR(got.pixels[i], want.pixels[i], tolerance) << "at element " << i;
    }
}

TEST(ImageIo, PngRoundTripGreyAndRgb) {
    TempDir dir;
    for (int64_t channels : {1, 3}) {
        Image image = noise_image(5, 7, channels);
        std::string path = dir.file("image" + std::to_string(channels) + ".png");
        write_png(path, image);
        Image back = read_image(path);
        EXPECT_EQ(back.height, 5);
        EXPECT_EQ(back.width, 7);
        EXPECT_EQ(back.channels, channels);
        EXPECT_EQ(back.pixels, image.pixels);
    }
}

// Alpha is dropped as PIL's convert("L") / convert("RGB") drops it (torchvision's ImageFolder), not
// composited onto black: the BMP, TIFF and WebP readers do the same.
TEST(ImageIo, PngGreyAlphaDropsAlpha) {
    TempDir dir;
    // (grey, alpha) pairs: opaque 200, half 90, transparent 200.
    ASSERT_TRUE(
        write_raw_png(dir.file("ga.png"), 3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {200, 255, 90, 128, 200, 0}));
    Image image = read_image(dir.file("ga.png"));
    EXPECT_EQ(image.channels, 1);
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{200, 90, 200}));
    EXPECT_EQ(read_image_info(dir.file("ga.png")).channels, 1);
}

TEST(ImageIo, PngRgbaDropsAlpha) {
    TempDir dir;
    ASSERT_TRUE(
        write_raw_png(dir.file("rgba.png"), 2, 1, PNG_COLOR_TYPE_RGBA, 8, {10, 20, 30, 255, 9, 9, 9, 0}));
    Image image = read_image(dir.file("rgba.png"));
    EXPECT_EQ(image.channels, 3);
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{10, 20, 30, 9, 9, 9}));
    const ImageInfo info = read_image_info(dir.file("rgba.png"));
    EXPECT_EQ(info.height, 1);
    EXPECT_EQ(info.width, 2);
    EXPECT_EQ(info.channels, 3);
}

TEST(ImageIo, PngPaletteExpandsToRgb) {
    TempDir dir;
    std::vector<png_color> palette = {{255, 0, 0}, {0, 128, 255}, {7, 8, 9}};
    ASSERT_TRUE(write_raw_png(dir.file("palette.png"), 3, 1, PNG_COLOR_TYPE_PALETTE, 8, {2, 0, 1}, palette));
    Image image = read_image(dir.file("palette.png"));
    EXPECT_EQ(image.channels, 3);
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{7, 8, 9, 255, 0, 0, 0, 128, 255}));
}

TEST(ImageIo, Png16BitAndOneBitBecome8Bit) {
    TempDir dir;
    // Untagged 16-bit values are taken as sRGB, so 0x8080 is 128, not brightened as linear light.
    ASSERT_TRUE(
        write_raw_png(dir.file("g16.png"), 3, 1, PNG_COLOR_TYPE_GRAY, 16, {0, 0, 0x80, 0x80, 0xff, 0xff}));
    Image grey = read_image(dir.file("g16.png"));
    EXPECT_EQ(grey.channels, 1);
    expect_close(grey, Image{1, 3, 1, {0, 128, 255}}, 1);

    ASSERT_TRUE(
        write_raw_png(dir.file("rgb16.png"), 1, 1, PNG_COLOR_TYPE_RGB, 16, {0x40, 0x40, 0, 0, 0xff, 0xff}));
    expect_close(read_image(dir.file("rgb16.png")), Image{1, 1, 3, {64, 0, 255}}, 1);

    ASSERT_TRUE(write_raw_png(dir.file("g1.png"), 8, 1, PNG_COLOR_TYPE_GRAY, 1, {0b10100000}));
    Image bits = read_image(dir.file("g1.png"));
    EXPECT_EQ(bits.pixels, (std::vector<uint8_t>{255, 0, 255, 0, 0, 0, 0, 0}));
}

TEST(ImageIo, TruncatedPngIsFormatError) {
    TempDir dir;
    write_png(dir.file("whole.png"), noise_image(32, 32, 3));
    std::vector<uint8_t> bytes = read_bytes(dir.file("whole.png"));
    for (size_t keep : {bytes.size() / 2, size_t{20}, size_t{8}}) {
        write_file(dir.file("cut.png"), {bytes.begin(), bytes.begin() + keep});
        std::string message = error_message<FormatError>([&] { read_image(dir.file("cut.png")); });
        EXPECT_NE(message.find("cut.png"), std::string::npos) << message;
    }
}

TEST(ImageIo, GarbageOrEmptyFileIsFormatError) {
    TempDir dir;
    write_file(dir.file("garbage.png"), {'h', 'e', 'l', 'l', 'o', '\n'});
    std::string message = error_message<FormatError>([&] { read_image(dir.file("garbage.png")); });
    EXPECT_NE(message.find("garbage.png: not a PNG, JPEG, BMP, TIFF or WebP"), std::string::npos) << message;
    write_file(dir.file("empty.jpg"), {});
    EXPECT_THROW(read_image(dir.file("empty.jpg")), FormatError);
}

TEST(ImageIo, MissingFileIsIoError) {
    TempDir dir;
    std::string message = error_message<IoError>([&] { read_image(dir.file("absent.png")); });
    EXPECT_NE(message.find("absent.png"), std::string::npos) << message;
}

TEST(ImageIo, JpegRgbAndGreyDecodeWithinTolerance) {
    TempDir dir;
    Image rgb = gradient(16, 16, 3);
    write_jpeg(dir.file("rgb.jpg"), rgb, JCS_RGB, 3);
    expect_close(read_image(dir.file("rgb.jpg")), rgb, 12);

    Image grey = gradient(16, 16, 1);
    // Content decides the format, not the name.
    write_jpeg(dir.file("grey.png"), grey, JCS_GRAYSCALE, 1);
    expect_close(read_image(dir.file("grey.png")), grey, 6);
}

TEST(ImageIo, TruncatedJpegIsFormatError) {
    TempDir dir;
    write_jpeg(dir.file("whole.jpg"), noise_image(64, 64, 3), JCS_RGB, 3);
    std::vector<uint8_t> bytes = read_bytes(dir.file("whole.jpg"));
    write_file(dir.file("cut.jpg"), {bytes.begin(), bytes.begin() + bytes.size() * 2 / 3});
    std::string message = error_message<FormatError>([&] { read_image(dir.file("cut.jpg")); });
    EXPECT_NE(message.find("cut.jpg: bad JPEG: truncated"), std::string::npos) << message;
    // Cut inside the headers: libjpeg's own error, still a FormatError.
    write_file(dir.file("head.jpg"), {bytes.begin(), bytes.begin() + 40});
    EXPECT_THROW(read_image(dir.file("head.jpg")), FormatError);
}

TEST(ImageIo, CmykJpegIsRefused) {
    TempDir dir;
    write_jpeg(dir.file("cmyk.jpg"), noise_image(8, 8, 4), JCS_CMYK, 4);
    std::string message = error_message<FormatError>([&] { read_image(dir.file("cmyk.jpg")); });
    EXPECT_NE(message.find("CMYK"), std::string::npos) << message;
}

TEST(ImageIo, WritePngErrors) {
    TempDir dir;
    std::string message =
        error_message<IoError>([&] { write_png(dir.file("no-such-dir/x.png"), noise_image(2, 2, 1)); });
    EXPECT_NE(message.find("no-such-dir/x.png"), std::string::npos) << message;
    Image bad = noise_image(2, 2, 3);
    bad.pixels.pop_back();
    EXPECT_THROW(write_png(dir.file("bad.png"), bad), ShapeError);
    EXPECT_THROW(write_png(dir.file("two.png"), noise_image(2, 2, 2)), ShapeError);
}

}  // namespace
}  // namespace lenz
