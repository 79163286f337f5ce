// PNG encoding to memory and base64, so that pictures can live inside one HTML file as data: URIs.
#include <png.h>

#include "lenz/error.h"
#include "lenz/report.h"

namespace lenz {

std::string encode_png(const Image& image) {
    if ((image.channels != 1 && image.channels != 3) || image.height <= 0 || image.width <= 0 ||
        image.pixels.size() != static_cast<size_t>(image.height * image.width * image.channels))
        throw ShapeError("cannot encode a PNG of " + std::to_string(image.height) + "x" + std::to_string(image.width) +
                         "x" + std::to_string(image.channels) + " from " + std::to_string(image.pixels.size()) +
                         " bytes (expected 1 or 3 channels, H*W*C bytes)");
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    png.height = static_cast<png_uint_32>(image.height);
    png.width = static_cast<png_uint_32>(image.width);
    png.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    png_alloc_size_t size = 0;
    if (!png_image_write_get_memory_size(png, size, 0, image.pixels.data(), 0, nullptr))
        throw FormatError(std::string("cannot encode PNG: ") + png.message);
    std::string encoded(size, '\0');
    if (!png_image_write_to_memory(&png, encoded.data(), &size, 0, image.pixels.data(), 0, nullptr))
        throw FormatError(std::string("cannot encode PNG: ") + png.message);
    encoded.resize(size);
    return encoded;
}

std::string base64(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                           static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 |
                           static_cast<uint8_t>(bytes[i + 2]);
        for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
    }
    if (i < bytes.size()) {  // one or two bytes left: pad the last group with '='
        const bool two = i + 1 < bytes.size();
        const uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << 16 |
                           (two ? static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8 : 0u);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += two ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string png_data_uri(const Image& image) { return "data:image/png;base64," + base64(encode_png(image)); }

}  // namespace lenz
