// Writers of BMP (by hand), TIFF (libtiff) and WebP (libwebp) test images, made on the fly: the
// tests of the readers and of image folders share them (one copy, as the unity build needs).
#pragma once
#include <tiffio.h>
#include <webp/encode.h>

#include <cstdint>
#include <string>
#include <vector>

#include "support/files.h"

namespace lenz::testing {

inline void put_le(std::vector<uint8_t>& out, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A BMP file: 14-byte file header, a 40-byte INFO header, then `masks` (raw, for BI_BITFIELDS),
// `palette` (BGRx entries), and the pixel data as given (rows padded by the caller).
inline std::vector<uint8_t> bmp_bytes(int32_t width, int32_t height, uint16_t bpp, uint32_t compression,
                                      const std::vector<uint8_t>& pixels,
                                      const std::vector<uint8_t>& palette = {},
                                      const std::vector<uint8_t>& masks = {}) {
    const uint32_t offset = static_cast<uint32_t>(14 + 40 + masks.size() + palette.size());
    std::vector<uint8_t> out = {'B', 'M'};
    put_le(out, offset + static_cast<uint32_t>(pixels.size()), 4);
    put_le(out, 0, 4);
    put_le(out, offset, 4);
    put_le(out, 40, 4);
    put_le(out, static_cast<uint32_t>(width), 4);
    put_le(out, static_cast<uint32_t>(height), 4);
    put_le(out, 1, 2);
    put_le(out, bpp, 2);
    put_le(out, compression, 4);
    put_le(out, static_cast<uint32_t>(pixels.size()), 4);
    put_le(out, 2835, 4);
    put_le(out, 2835, 4);
    put_le(out, static_cast<uint32_t>(palette.size() / 4), 4);
    put_le(out, 0, 4);
    out.insert(out.end(), masks.begin(), masks.end());
    out.insert(out.end(), palette.begin(), palette.end());
    out.insert(out.end(), pixels.begin(), pixels.end());
    return out;
}

// A one-strip TIFF of interleaved samples; `alpha` marks the last sample as unassociated alpha.
inline bool write_tiff(const std::string& path, uint32_t width, uint32_t height, uint16_t samples,
                       uint16_t bits, uint16_t photometric, const std::vector<uint8_t>& data,
                       bool alpha = false, uint16_t compression = COMPRESSION_NONE,
                       const std::vector<uint16_t>& colormap = {}) {
    TIFF* tif = TIFFOpen(path.c_str(), "w");
    if (!tif) return false;
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, samples);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, bits);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, photometric);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, height);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, compression);
    if (alpha) {
        const uint16_t type = EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &type);
    }
    if (!colormap.empty()) {  // red, green and blue, 1 << bits entries each
        const size_t n = colormap.size() / 3;
        TIFFSetField(tif, TIFFTAG_COLORMAP, colormap.data(), colormap.data() + n, colormap.data() + 2 * n);
    }
    const bool ok = TIFFWriteEncodedStrip(tif, 0, const_cast<uint8_t*>(data.data()),
                                          static_cast<tmsize_t>(data.size())) >= 0;
    TIFFClose(tif);
    return ok;
}

// A lossless WebP of RGB (channels 3) or RGBA (4) pixels.
inline std::vector<uint8_t> webp_bytes(int width, int height, int channels,
                                       const std::vector<uint8_t>& pixels) {
    uint8_t* out = nullptr;
    const size_t size = channels == 4 ? WebPEncodeLosslessRGBA(pixels.data(), width, height, width * 4, &out)
                                      : WebPEncodeLosslessRGB(pixels.data(), width, height, width * 3, &out);
    std::vector<uint8_t> bytes(out, out + size);
    WebPFree(out);
    return bytes;
}

}  // namespace lenz::testing
