// The decoders read_image and read_image_info dispatch to, by content: each takes the whole file
// in memory and either returns 8-bit grey or RGB (alpha dropped, palettes expanded, 16 bits per
// sample scaled to 8 as libpng does) or throws FormatError "PATH: bad FORMAT: what is wrong".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lenz/data.h"

namespace lenz::detail {

// Every image: at most 1<<15 pixels per side and 2^28 pixels, checked before the pixels are allocated.
void check_image_size(const std::string& path, uint64_t height, uint64_t width);
// Compressed formats must not promise more pixels than their bytes could encode: at most 4096 per
// byte of file (deflate, LZW and RLE stay far below), so a 100-byte file cannot claim 10^8 pixels.
void check_pixels_per_byte(const std::string& path, const char* format, uint64_t height, uint64_t width,
                           size_t file_bytes);
// 16 bits per sample to 8, rounding as libpng's png_set_scale_16 does (the PNG reader's conversion).
inline uint8_t scale_16_to_8(uint32_t v) {
    return static_cast<uint8_t>((v * 255 + 32895) >> 16);
}

Image decode_bmp(const std::string& path, const std::vector<uint8_t>& data);
ImageInfo bmp_info(const std::string& path, const std::vector<uint8_t>& data);
Image decode_tiff(const std::string& path, const std::vector<uint8_t>& data);
ImageInfo tiff_info(const std::string& path, const std::vector<uint8_t>& data);
Image decode_webp(const std::string& path, const std::vector<uint8_t>& data);
ImageInfo webp_info(const std::string& path, const std::vector<uint8_t>& data);

}  // namespace lenz::detail
