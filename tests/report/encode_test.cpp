// PNG encoding to memory (read back with the project's own decoder) and base64.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "lenz/error.h"
#include "lenz/report.h"

namespace lenz {
namespace {

Image read_back(const std::string& bytes, const std::string& name) {
    const auto path =
        std::filesystem::temp_directory_path() / ("lenz-report-" + std::to_string(::getpid()) + name);
    std::ofstream(path, std::ios::binary) << bytes;
    Image image = read_image(path.string());
    std::filesystem::remove(path);
    return image;
}

TEST(EncodePng, RgbRoundTrip) {
    Image rgb{3, 5, 3, {}};
    for (int i = 0; i < 3 * 5 * 3; ++i) rgb.pixels.push_back(static_cast<uint8_t>(i * 17));
    const std::string bytes = encode_png(rgb);
    ASSERT_GE(bytes.size(), 8u);
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    const Image back = read_back(bytes, "rgb.png");
    EXPECT_EQ(back.height, 3);
    EXPECT_EQ(back.width, 5);
    EXPECT_EQ(back.channels, 3);
    EXPECT_EQ(back.pixels, rgb.pixels);
}

TEST(EncodePng, GreyRoundTrip) {
    Image grey{4, 2, 1, {0, 255, 10, 20, 30, 40, 128, 7}};
    const Image back = read_back(encode_png(grey), "grey.png");
    EXPECT_EQ(back.channels, 1);
    EXPECT_EQ(back.pixels, grey.pixels);
}

TEST(EncodePng, CanvasPictureRoundTrip) {
    Canvas canvas(40, 20, {10, 20, 30});
    canvas.fill_rect(5, 5, 10, 10, {200, 100, 50});
    const Image back = read_back(encode_png(canvas.to_image()), "canvas.png");
    ASSERT_EQ(back.width, 40);
    ASSERT_EQ(back.height, 20);
    EXPECT_EQ(back.pixels[0], 10);
    const size_t inside = (7 * 40 + 7) * 3;
    EXPECT_EQ(back.pixels[inside], 200);
    EXPECT_EQ(back.pixels[inside + 1], 100);
    EXPECT_EQ(back.pixels[inside + 2], 50);
}

TEST(EncodePng, RejectsBadImages) {
    EXPECT_THROW(encode_png(Image{2, 2, 3, {1, 2, 3}}), ShapeError);
    EXPECT_THROW(encode_png(Image{2, 2, 2, std::vector<uint8_t>(8)}), ShapeError);
    EXPECT_THROW(encode_png(Image{}), ShapeError);
}

TEST(Base64, KnownVectors) {  // RFC 4648, section 10
    EXPECT_EQ(base64(""), "");
    EXPECT_EQ(base64("f"), "Zg==");
    EXPECT_EQ(base64("fo"), "Zm8=");
    EXPECT_EQ(base64("foo"), "Zm9v");
    EXPECT_EQ(base64("foob"), "Zm9vYg==");
    EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64, DataUri) {
    const std::string uri = png_data_uri(Image{1, 1, 1, {42}});
    EXPECT_EQ(uri.rfind("data:image/png;base64,iVBORw0KGgo", 0), 0u) << uri;
}

}  // namespace
}  // namespace lenz
