// read_idx: round trips through plain and gzipped files, and every kind of malformed header or stream.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

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
using testing::put_be32;
using testing::read_bytes;
using testing::TempDir;
using testing::write_file;

namespace fs = std::filesystem;

std::vector<uint8_t> idx_images(uint32_t count, uint32_t height, uint32_t width,
                                const std::vector<uint8_t>& pixels, uint32_t magic = 0x00000803) {
    std::vector<uint8_t> out;
    put_be32(out, magic);
    put_be32(out, count);
    put_be32(out, height);
    put_be32(out, width);
    out.insert(out.end(), pixels.begin(), pixels.end());
    return out;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
    std::vector<uint8_t> out;
    put_be32(out, 0x00000801);
    put_be32(out, static_cast<uint32_t>(labels.size()));
    out.insert(out.end(), labels.begin(), labels.end());
    return out;
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes, const char* mode = "wb") {
    gzFile file = gzopen(path.c_str(), mode);
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    ASSERT_EQ(gzclose(file), Z_OK);
}

// Three 2x3 images whose bytes count up, so order and layout are both checked.
const std::vector<uint8_t> kPixels = {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25};
const std::vector<uint8_t> kLabels = {0, 5, 9};

void expect_small_set(const ImageSet& set) {
    EXPECT_EQ(set.height, 2);
    EXPECT_EQ(set.width, 3);
    EXPECT_EQ(set.channels, 1);
    EXPECT_EQ(set.size(), 3);
    EXPECT_EQ(set.pixels, kPixels);
    EXPECT_EQ(set.labels, (std::vector<int32_t>{0, 5, 9}));
    EXPECT_TRUE(set.class_names.empty());
}

TEST(Idx, RoundTripPlain) {
    TempDir dir;
    write_file(dir.file("images"), idx_images(3, 2, 3, kPixels));
    write_file(dir.file("labels"), idx_labels(kLabels));
    expect_small_set(read_idx(dir.file("images"), dir.file("labels")));
}

TEST(Idx, RoundTripGzipAndMixed) {
    TempDir dir;
    write_gzip(dir.file("images.gz"), idx_images(3, 2, 3, kPixels));
    write_gzip(dir.file("labels.gz"), idx_labels(kLabels));
    write_file(dir.file("labels"), idx_labels(kLabels));
    expect_small_set(read_idx(dir.file("images.gz"), dir.file("labels.gz")));
    expect_small_set(read_idx(dir.file("images.gz"), dir.file("labels")));
}

TEST(Idx, ConcatenatedGzipMembers) {
    TempDir dir;
    std::vector<uint8_t> images = idx_images(3, 2, 3, kPixels);
    write_gzip(dir.file("images.gz"), {images.begin(), images.begin() + 10});
    write_gzip(dir.file("images.gz"), {images.begin() + 10, images.end()}, "ab");
    write_file(dir.file("labels"), idx_labels(kLabels));
    expect_small_set(read_idx(dir.file("images.gz"), dir.file("labels")));
}

TEST(Idx, TruncatedDataNamesFileAndSizes) {
    TempDir dir;
    write_gzip(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(10000, 28, 28, std::vector<uint8_t>(512)));
    write_file(dir.file("labels"), idx_labels(kLabels));
    std::string message = error_message<FormatError>(
        [&] { read_idx(dir.file("t10k-images-idx3-ubyte.gz"), dir.file("labels")); });
    EXPECT_NE(message.find("t10k-images-idx3-ubyte.gz"), std::string::npos) << message;
    EXPECT_NE(message.find("10,000 images of 28x28 (7,840,000 bytes)"), std::string::npos) << message;
    EXPECT_NE(message.find("holds 512 bytes"), std::string::npos) << message;
}

TEST(Idx, TrailingDataIsAnError) {
    TempDir dir;
    std::vector<uint8_t> pixels = kPixels;
    pixels.push_back(99);
    write_file(dir.file("images"), idx_images(3, 2, 3, pixels));
    write_file(dir.file("labels"), idx_labels(kLabels));
    EXPECT_THROW(read_idx(dir.file("images"), dir.file("labels")), FormatError);
}

TEST(Idx, FileShorterThanHeader) {
    TempDir dir;
    write_file(dir.file("images"), {0, 0, 8, 3, 0, 0});
    write_file(dir.file("labels"), idx_labels(kLabels));
    std::string message =
        error_message<FormatError>([&] { read_idx(dir.file("images"), dir.file("labels")); });
    EXPECT_NE(message.find("too short"), std::string::npos) << message;
}

TEST(Idx, BadMagicSaysWhatTheFileLooksLike) {
    TempDir dir;
    write_file(dir.file("labels"), idx_labels(kLabels));
    // Arguments swapped: a label file where images are expected.
    std::string message =
        error_message<FormatError>([&] { read_idx(dir.file("labels"), dir.file("labels")); });
    EXPECT_NE(message.find("magic"), std::string::npos) << message;
    EXPECT_NE(message.find("label file"), std::string::npos) << message;

    write_file(dir.file("images"), idx_images(3, 2, 3, kPixels, 0x12345678));
    message = error_message<FormatError>([&] { read_idx(dir.file("images"), dir.file("labels")); });
    EXPECT_NE(message.find("0x12345678"), std::string::npos) << message;
}

TEST(Idx, LabelCountDiffersFromImageCount) {
    TempDir dir;
    write_file(dir.file("images"), idx_images(3, 2, 3, kPixels));
    write_file(dir.file("labels"), idx_labels({1, 2}));
    std::string message =
        error_message<FormatError>([&] { read_idx(dir.file("images"), dir.file("labels")); });
    EXPECT_NE(message.find("2 labels"), std::string::npos) << message;
    EXPECT_NE(message.find("3 images"), std::string::npos) << message;
}

TEST(Idx, AbsurdCountsAndSizesFailWithoutAllocating) {
    TempDir dir;
    write_file(dir.file("labels"), idx_labels(kLabels));
    // 2^31 images of 28x28 would be 1.7 TB; the header must be refused from the file length alone.
    write_file(dir.file("many"), idx_images(0x80000000u, 28, 28, kPixels));
    EXPECT_THROW(read_idx(dir.file("many"), dir.file("labels")), FormatError);
    write_file(dir.file("wide"), idx_images(1, 1, 0xFFFFFFFFu, kPixels));
    std::string message = error_message<FormatError>([&] { read_idx(dir.file("wide"), dir.file("labels")); });
    EXPECT_NE(message.find("image size 1x4294967295"), std::string::npos) << message;
    write_file(dir.file("empty"), idx_images(1, 0, 3, kPixels));
    EXPECT_THROW(read_idx(dir.file("empty"), dir.file("labels")), FormatError);
}

TEST(Idx, CorruptGzip) {
    TempDir dir;
    write_file(dir.file("labels"), idx_labels(kLabels));
    // A valid gzip header followed by a deflate block of the reserved type 3.
    write_file(dir.file("corrupt.gz"), {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff});
    std::string message =
        error_message<FormatError>([&] { read_idx(dir.file("corrupt.gz"), dir.file("labels")); });
    EXPECT_NE(message.find("corrupt.gz: corrupt gzip data"), std::string::npos) << message;

    write_gzip(dir.file("whole.gz"), idx_images(3, 2, 3, kPixels));
    std::vector<uint8_t> bytes = read_bytes(dir.file("whole.gz"));
    ASSERT_GT(bytes.size(), 30u);
    bytes.erase(bytes.end() - 12, bytes.end());  // into the deflate data, before the trailer
    write_file(dir.file("cut.gz"), bytes);
    message = error_message<FormatError>([&] { read_idx(dir.file("cut.gz"), dir.file("labels")); });
    EXPECT_NE(message.find("ends early"), std::string::npos) << message;

    write_file(dir.file("magic-only.gz"), {0x1f, 0x8b});
    EXPECT_THROW(read_idx(dir.file("magic-only.gz"), dir.file("labels")), FormatError);
}

TEST(Idx, MissingFileIsIoError) {
    TempDir dir;
    std::string message = error_message<IoError>([&] { read_idx(dir.file("nope"), dir.file("labels")); });
    EXPECT_NE(message.find("nope"), std::string::npos) << message;
}

}  // namespace
}  // namespace lenz
