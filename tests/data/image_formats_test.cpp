// read_image and read_image_info on BMP, TIFF and WebP as PIL's convert("RGB") / convert("L") reads
// them (alpha dropped, palettes expanded, 16 bits to 8 as the PNG reader does), PNG's alpha dropped
// too, and malformed files refused with one line naming the file.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/image_writers.h"
#include "lenz/data.h"
#include "lenz/error.h"
#include "support/files.h"

namespace lenz {
namespace image_formats_test {
namespace {

using testing::bmp_bytes;
using testing::error_message;
using testing::TempDir;
using testing::webp_bytes;
using testing::write_file;
using testing::write_tiff;

// Reads `bytes` as NAME and checks read_image_info agrees with the decoded image.
Image read_bytes_as(const TempDir& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
    write_file(dir.file(name), bytes);
    Image image = read_image(dir.file(name));
    const ImageInfo info = read_image_info(dir.file(name));
    EXPECT_EQ(info.height, image.height) << name;
    EXPECT_EQ(info.width, image.width) << name;
    EXPECT_EQ(info.channels, image.channels) << name;
    return image;
}

// The message of reading a malformed file, which must name it and its format in one line.
std::string refusal(const TempDir& dir, const std::string& name, const std::vector<uint8_t>& bytes,
                    const std::string& format) {
    SCOPED_TRACE(name);
    write_file(dir.file(name), bytes);
    const std::string message = error_message<FormatError>([&] { read_image(dir.file(name)); });
    EXPECT_EQ(message.find(dir.file(name) + ": "), 0u) << message;
    EXPECT_EQ(message.find(dir.file(name), 1), std::string::npos) << "named once: " << message;
    EXPECT_NE(message.find(format), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    // The header alone may look fine (a cut-off RLE or WebP stream); it must not fail otherwise.
    try {
        read_image_info(dir.file(name));
    } catch (const FormatError&) {
    }
    return message;
}

TEST(ImageFormats, Bmp24BitBottomUpAndTopDown) {
    TempDir dir;
    // 2x2, rows padded to 4 bytes, stored bottom row first, BGR.
    const std::vector<uint8_t> bottom_up = {9, 8, 7, 12, 11, 10, 0, 0, 3, 2, 1, 6, 5, 4, 0, 0};
    const std::vector<uint8_t> want = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    Image image = read_bytes_as(dir, "a.bmp", bmp_bytes(2, 2, 24, 0, bottom_up));
    EXPECT_EQ(image.height, 2);
    EXPECT_EQ(image.width, 2);
    EXPECT_EQ(image.channels, 3);
    EXPECT_EQ(image.pixels, want);
    const std::vector<uint8_t> top_down = {3, 2, 1, 6, 5, 4, 0, 0, 9, 8, 7, 12, 11, 10, 0, 0};
    EXPECT_EQ(read_bytes_as(dir, "b.bmp", bmp_bytes(2, -2, 24, 0, top_down)).pixels, want);
}

TEST(ImageFormats, Bmp32And16BitWithAndWithoutBitFields) {
    TempDir dir;
    // BI_RGB 32-bit is BGRx: the fourth byte (alpha, if any) is dropped.
    EXPECT_EQ(read_bytes_as(dir, "x.bmp", bmp_bytes(1, 1, 32, 0, {30, 20, 10, 77})).pixels,
              (std::vector<uint8_t>{10, 20, 30}));
    // BI_BITFIELDS with red in the top byte: 0x11223344 is R 0x11, G 0x22, B 0x33.
    std::vector<uint8_t> masks;
    for (uint32_t m : {0xff000000u, 0x00ff0000u, 0x0000ff00u}) testing::put_le(masks, m, 4);
    EXPECT_EQ(read_bytes_as(dir, "f.bmp", bmp_bytes(1, 1, 32, 3, {0x44, 0x33, 0x22, 0x11}, {}, masks)).pixels,
              (std::vector<uint8_t>{0x11, 0x22, 0x33}));
    // 16-bit default 5-5-5: 0x7c00 is red; 0x0010 is blue 16/31, 132 of 255. Row padded to 4 bytes.
    EXPECT_EQ(read_bytes_as(dir, "s.bmp", bmp_bytes(2, 1, 16, 0, {0x00, 0x7c, 0x10, 0x00})).pixels,
              (std::vector<uint8_t>{255, 0, 0, 0, 0, 132}));
    // 16-bit 5-6-5 bit fields: 0x07e0 is full green.
    std::vector<uint8_t> m565;
    for (uint32_t m : {0xf800u, 0x07e0u, 0x001fu}) testing::put_le(m565, m, 4);
    EXPECT_EQ(read_bytes_as(dir, "g.bmp", bmp_bytes(1, 1, 16, 3, {0xe0, 0x07, 0, 0}, {}, m565)).pixels,
              (std::vector<uint8_t>{0, 255, 0}));
}

TEST(ImageFormats, BmpPalettesGreyStaysGrey) {
    TempDir dir;
    const std::vector<uint8_t> greys = {0, 0, 0, 0, 100, 100, 100, 0, 255, 255, 255, 0};
    Image grey = read_bytes_as(dir, "grey.bmp", bmp_bytes(3, 1, 8, 0, {2, 1, 0, 0}, greys));
    EXPECT_EQ(grey.channels, 1);
    EXPECT_EQ(grey.pixels, (std::vector<uint8_t>{255, 100, 0}));
    const std::vector<uint8_t> colours = {255, 0, 0, 0, 0, 0, 255, 0};  // blue, red (BGRx)
    Image four = read_bytes_as(dir, "four.bmp", bmp_bytes(3, 1, 4, 0, {0x10, 0x10, 0, 0}, colours));
    EXPECT_EQ(four.channels, 3);
    EXPECT_EQ(four.pixels, (std::vector<uint8_t>{255, 0, 0, 0, 0, 255, 255, 0, 0}));
    // 1-bit, 9 pixels wide: two bytes of bits, padded to four.
    Image one = read_bytes_as(dir, "one.bmp", bmp_bytes(9, 1, 1, 0, {0b10100000, 0b10000000, 0, 0}, colours));
    EXPECT_EQ(one.pixels, (std::vector<uint8_t>{255, 0, 0, 0,   0, 255, 255, 0, 0, 0,   0,   255, 0, 0,
                                                255, 0, 0, 255, 0, 0,   255, 0, 0, 255, 255, 0,   0}));
}

TEST(ImageFormats, BmpRle8) {
    TempDir dir;
    const std::vector<uint8_t> palette = {0, 0, 0,  0, 0, 0, 10, 0,
                                          0, 0, 20, 0, 0, 0, 30, 0};  // reds 0..30 (BGRx)
    // Bottom row: two pixels of index 1, end of line. Top row: an absolute run 2, 3, 2 (padded),
    // then end of bitmap; the pixels the data skips stay index 0.
    const std::vector<uint8_t> rle = {2, 1, 0, 0, 0, 3, 2, 3, 2, 0, 0, 1};
    Image image = read_bytes_as(dir, "rle.bmp", bmp_bytes(4, 2, 8, 1, rle, palette));
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{20, 0, 0, 30, 0, 0, 20, 0, 0, 0, 0, 0,  //
                                                  10, 0, 0, 10, 0, 0, 0,  0, 0, 0, 0, 0}));
}

TEST(ImageFormats, MalformedBmpIsRefusedWithItsName) {
    TempDir dir;
    const std::vector<uint8_t> good = bmp_bytes(2, 2, 24, 0, std::vector<uint8_t>(16, 7));
    std::vector<uint8_t> cut(good.begin(), good.end() - 3);
    EXPECT_NE(refusal(dir, "cut.bmp", cut, "BMP").find("truncated"), std::string::npos);
    refusal(dir, "short.bmp", {'B', 'M', 1, 2}, "BMP");
    EXPECT_NE(refusal(dir, "bpp.bmp", bmp_bytes(1, 1, 7, 0, {0, 0, 0, 0}), "BMP").find("7 bits"),
              std::string::npos);
    refusal(dir, "zero.bmp", bmp_bytes(0, 1, 24, 0, {0, 0, 0, 0}), "BMP");
    EXPECT_NE(refusal(dir, "huge.bmp", bmp_bytes(1 << 20, 1 << 20, 24, 0, {}), "").find("limits"),
              std::string::npos);
    refusal(dir, "palette.bmp", bmp_bytes(1, 1, 1, 0, {0, 0, 0, 0}, std::vector<uint8_t>(12, 0)), "BMP");
    refusal(dir, "mask.bmp", bmp_bytes(1, 1, 32, 3, {0, 0, 0, 0}, {}, std::vector<uint8_t>(12, 0x55)), "BMP");
    refusal(dir, "rle.bmp", bmp_bytes(4, 2, 8, 1, {2, 1, 0, 0}, std::vector<uint8_t>(8, 0)), "BMP");
    std::vector<uint8_t> header = good;
    header[14] = 99;
    refusal(dir, "header.bmp", header, "BMP");
}

TEST(ImageFormats, TiffGreyRgbPaletteAndCompressed) {
    TempDir dir;
    ASSERT_TRUE(write_tiff(dir.file("g.tif"), 3, 1, 1, 8, PHOTOMETRIC_MINISBLACK, {0, 100, 255}));
    Image grey = read_image(dir.file("g.tif"));
    EXPECT_EQ(grey.channels, 1);
    EXPECT_EQ(grey.pixels, (std::vector<uint8_t>{0, 100, 255}));
    const std::vector<uint8_t> rgb = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    ASSERT_TRUE(
        write_tiff(dir.file("rgb.tiff"), 2, 2, 3, 8, PHOTOMETRIC_RGB, rgb, false, COMPRESSION_ADOBE_DEFLATE));
    Image colour = read_image(dir.file("rgb.tiff"));
    EXPECT_EQ(colour.height, 2);
    EXPECT_EQ(colour.channels, 3);
    EXPECT_EQ(colour.pixels, rgb);
    ASSERT_TRUE(write_tiff(dir.file("lzw.tif"), 2, 2, 3, 8, PHOTOMETRIC_RGB, rgb, false, COMPRESSION_LZW));
    EXPECT_EQ(read_image(dir.file("lzw.tif")).pixels, rgb);
    // A 1-bit palette: red and blue, 16-bit colour map entries.
    ASSERT_TRUE(write_tiff(dir.file("p.tif"), 2, 1, 1, 1, PHOTOMETRIC_PALETTE, {0b01000000}, false,
                           COMPRESSION_NONE, {0xffff, 0, 0, 0, 0, 0xffff}));
    EXPECT_EQ(read_image(dir.file("p.tif")).pixels, (std::vector<uint8_t>{255, 0, 0, 0, 0, 255}));
    for (const char* name : {"g.tif", "rgb.tiff", "p.tif"}) {
        const ImageInfo info = read_image_info(dir.file(name));
        const Image image = read_image(dir.file(name));
        EXPECT_EQ(info.channels, image.channels) << name;
        EXPECT_EQ(info.width, image.width) << name;
    }
}

// Alpha is dropped as PIL drops it, not multiplied in; 16-bit samples scale as the PNG reader's.
TEST(ImageFormats, TiffAlphaDroppedAnd16BitLikePng) {
    TempDir dir;
    ASSERT_TRUE(write_tiff(dir.file("rgba.tif"), 2, 1, 4, 8, PHOTOMETRIC_RGB,
                           {10, 20, 30, 0, 40, 50, 60, 128}, true));
    EXPECT_EQ(read_image(dir.file("rgba.tif")).pixels, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));
    ASSERT_TRUE(write_tiff(dir.file("ga.tif"), 1, 1, 2, 8, PHOTOMETRIC_MINISBLACK, {200, 0}, true));
    Image grey_alpha = read_image(dir.file("ga.tif"));
    EXPECT_EQ(grey_alpha.channels, 1);
    EXPECT_EQ(grey_alpha.pixels, (std::vector<uint8_t>{200}));
    // Native-endian 16-bit samples: 0x12ff, 0xff00, 0x00ff, 0x8080 are 19, 254, 1, 128 (libpng's rounding).
    std::vector<uint8_t> samples;
    for (uint16_t v : {0x12ff, 0xff00, 0x00ff, 0x8080}) {
        samples.push_back(static_cast<uint8_t>(v & 0xff));
        samples.push_back(static_cast<uint8_t>(v >> 8));
    }
    ASSERT_TRUE(write_tiff(dir.file("g16.tif"), 4, 1, 1, 16, PHOTOMETRIC_MINISBLACK, samples));
    EXPECT_EQ(read_image(dir.file("g16.tif")).pixels, (std::vector<uint8_t>{19, 254, 1, 128}));
}

TEST(ImageFormats, MalformedTiffIsRefusedWithItsName) {
    TempDir dir;
    std::vector<uint8_t> pixels(64 * 64 * 3, 9);
    ASSERT_TRUE(write_tiff(dir.file("whole.tif"), 64, 64, 3, 8, PHOTOMETRIC_RGB, pixels));
    const std::vector<uint8_t> whole = testing::read_bytes(dir.file("whole.tif"));
    refusal(dir, "cut.tif", {whole.begin(), whole.begin() + 5000}, "TIFF");
    refusal(dir, "header.tif", {'I', 'I', 42, 0, 0xff, 0xff, 0xff, 0x7f}, "TIFF");
    refusal(dir, "tiny.tif", {'M', 'M', 0, 42}, "TIFF");
}

TEST(ImageFormats, WebpRgbAndAlphaDropped) {
    TempDir dir;
    const std::vector<uint8_t> rgb = {1, 2, 3, 250, 251, 252, 7, 8, 9, 100, 0, 200};
    Image image = read_bytes_as(dir, "a.webp", webp_bytes(2, 2, 3, rgb));
    EXPECT_EQ(image.channels, 3);
    EXPECT_EQ(image.pixels, rgb);
    Image alpha = read_bytes_as(dir, "b.webp", webp_bytes(2, 1, 4, {10, 20, 30, 128, 40, 50, 60, 255}));
    EXPECT_EQ(alpha.pixels, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));
}

TEST(ImageFormats, MalformedWebpIsRefusedWithItsName) {
    TempDir dir;
    std::vector<uint8_t> noise(48 * 48 * 3);
    uint32_t state = 7;
    for (uint8_t& v : noise) v = static_cast<uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
    const std::vector<uint8_t> whole = webp_bytes(48, 48, 3, noise);
    refusal(dir, "cut.webp", {whole.begin(), whole.begin() + static_cast<long>(whole.size() / 2)}, "WebP");
    std::vector<uint8_t> garbled = whole;
    for (size_t i = 40; i < garbled.size(); i += 7) garbled[i] ^= 0x5a;
    refusal(dir, "garbled.webp", garbled, "WebP");
    refusal(dir, "riff.webp", {'R', 'I', 'F', 'F', 4, 0, 0, 0, 'W', 'E', 'B', 'P'}, "WebP");
}

TEST(ImageFormats, UnknownContentNamesTheFormatsRead) {
    TempDir dir;
    const std::string message =
        refusal(dir, "x.gif", {'G', 'I', 'F', '8', '9', 'a'}, "not a PNG, JPEG, BMP, TIFF or WebP");
    EXPECT_NE(message.find("47 49 46 38 39 61"), std::string::npos) << message;
}

}  // namespace
}  // namespace image_formats_test
}  // namespace lenz
