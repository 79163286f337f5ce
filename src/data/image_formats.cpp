// BMP (a reader of its own), TIFF (libtiff) and WebP (libwebp) decoding to 8-bit grey or RGB, as
// PIL's convert("RGB") / convert("L") gives them to torchvision's ImageFolder: alpha is dropped,
// palettes are expanded (a palette of greys gives a grey image), 16-bit samples become 8-bit.
//
// BMP has its own reader rather than stb_image's: stb_image says it is not meant for untrusted
// files, and the format is small enough to check every field before using it. It reads the Windows
// headers (core, INFO, V2-V5, and OS/2's 64-byte one), 1/4/8-bit palettes, 16/24/32-bit pixels with
// or without bit fields, and RLE8/RLE4; embedded JPEG/PNG BMPs are refused.
#include "data/image_formats.h"

#include <tiffio.h>
#include <webp/decode.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lenz/error.h"

namespace lenz::detail {

constexpr uint64_t kMaxSide = uint64_t{1} << 15;
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;
constexpr uint64_t kMaxPixelsPerByte = 4096;

void check_image_size(const std::string& path, uint64_t height, uint64_t width) {
    if (height == 0 || width == 0 || height > kMaxSide || width > kMaxSide || height * width > kMaxPixels) {
        throw FormatError(path + ": image size " + std::to_string(height) + "x" + std::to_string(width) +
                          " is outside the limits of 1.." + std::to_string(kMaxSide) + " per side and " +
                          std::to_string(kMaxPixels) + " pixels");
    }
}

void check_pixels_per_byte(const std::string& path, const char* format, uint64_t height, uint64_t width,
                           size_t file_bytes) {
    if (height * width > kMaxPixelsPerByte * file_bytes) {
        throw FormatError(path + ": bad " + format + ": header says " + std::to_string(width) + "x" +
                          std::to_string(height) + " pixels, more than the file's " +
                          std::to_string(file_bytes) + " bytes can encode");
    }
}

namespace {

// ---------------------------------------------------------------------------------------------- BMP

[[noreturn]] void bad_bmp(const std::string& path, const std::string& what) {
    throw FormatError(path + ": bad BMP: " + what);
}

uint32_t u16le(const std::vector<uint8_t>& d, size_t at) {
    return d[at] | (uint32_t{d[at + 1]} << 8);
}
uint32_t u32le(const std::vector<uint8_t>& d, size_t at) {
    return u16le(d, at) | (u16le(d, at + 2) << 16);
}

enum BmpCompression : uint32_t {
    kRgb = 0,
    kRle8 = 1,
    kRle4 = 2,
    kBitfields = 3,
    kJpeg = 4,
    kPng = 5,
    kAlphaBitfields = 6
};

struct BmpHeader {
    uint64_t width = 0, height = 0;
    bool top_down = false;
    uint32_t bpp = 0, compression = kRgb;
    uint64_t pixel_offset = 0;
    uint32_t masks[3] = {0, 0, 0};                // red, green, blue
    std::vector<std::array<uint8_t, 3>> palette;  // RGB, 256 entries (padded with black) for bpp <= 8
    bool grey = false;
};

// One channel of a bit-field pixel, scaled to 0..255.
uint8_t field(uint32_t pixel, uint32_t mask) {
    if (mask == 0) return 0;
    const int shift = std::countr_zero(mask);
    const int bits = std::popcount(mask);
    const uint32_t v = (pixel & mask) >> shift;
    if (bits >= 8) return static_cast<uint8_t>(v >> (bits - 8));
    const uint32_t max = (uint32_t{1} << bits) - 1;
    return static_cast<uint8_t>((v * 255 + max / 2) / max);
}

BmpHeader parse_bmp(const std::string& path, const std::vector<uint8_t>& d) {
    if (d.size() < 18) bad_bmp(path, "truncated file header (" + std::to_string(d.size()) + " bytes)");
    BmpHeader h;
    h.pixel_offset = u32le(d, 10);
    const uint32_t header_size = u32le(d, 14);
    if (header_size != 12 && header_size != 40 && header_size != 52 && header_size != 56 &&
        header_size != 64 && header_size != 108 && header_size != 124) {
        bad_bmp(path, "unknown header size " + std::to_string(header_size) +
                          " (expected 12, 40, 52, 56, 64, 108 or 124)");
    }
    if (14 + uint64_t{header_size} > d.size()) {
        bad_bmp(path, "truncated: the " + std::to_string(header_size) + "-byte header ends past the file's " +
                          std::to_string(d.size()) + " bytes");
    }
    uint32_t colours_used = 0;
    size_t palette_at = 14 + header_size, entry_bytes = 4;
    if (header_size == 12) {
        h.width = u16le(d, 18);
        h.height = u16le(d, 20);
        h.bpp = u16le(d, 24);
        entry_bytes = 3;
    } else {
        const auto width = static_cast<int32_t>(u32le(d, 18));
        const auto height = static_cast<int32_t>(u32le(d, 22));
        if (width <= 0 || height == 0 || height == INT32_MIN) {
            bad_bmp(path, "image size " + std::to_string(width) + "x" + std::to_string(height) +
                              " (expected width > 0 and height != 0)");
        }
        h.width = static_cast<uint64_t>(width);
        h.top_down = height < 0;
        h.height = static_cast<uint64_t>(height < 0 ? -int64_t{height} : int64_t{height});
        h.bpp = u16le(d, 28);
        h.compression = u32le(d, 30);
        colours_used = u32le(d, 46);
    }
    check_image_size(path, h.height, h.width);
    if (h.bpp != 1 && h.bpp != 4 && h.bpp != 8 && h.bpp != 16 && h.bpp != 24 && h.bpp != 32) {
        bad_bmp(path, std::to_string(h.bpp) + " bits per pixel (expected 1, 4, 8, 16, 24 or 32)");
    }
    const uint32_t c = h.compression;
    if (c == kJpeg || c == kPng) bad_bmp(path, "holds an embedded JPEG or PNG, which is not supported");
    if (header_size == 64 && c >= 3)
        bad_bmp(path, "OS/2 compression " + std::to_string(c) + " is not supported");
    if (c > kAlphaBitfields) bad_bmp(path, "unknown compression " + std::to_string(c));
    if ((c == kRle8 && h.bpp != 8) || (c == kRle4 && h.bpp != 4) ||
        ((c == kBitfields || c == kAlphaBitfields) && h.bpp != 16 && h.bpp != 32)) {
        bad_bmp(path, "compression " + std::to_string(c) + " does not go with " + std::to_string(h.bpp) +
                          " bits per pixel");
    }
    if ((c == kRle8 || c == kRle4) && h.top_down) bad_bmp(path, "a top-down image cannot be RLE-compressed");

    if (c == kBitfields || c == kAlphaBitfields) {
        // INFO headers keep the masks after themselves; V2 and later inside, at the same place.
        const size_t count = c == kAlphaBitfields ? 4 : 3;
        if (header_size == 40) palette_at += 4 * count;
        if (54 + 4 * count > d.size()) bad_bmp(path, "truncated: the bit-field masks end past the file");
        for (int i = 0; i < 3; ++i) h.masks[i] = u32le(d, 54 + 4 * i);
        for (uint32_t mask : h.masks) {
            const uint32_t shifted = mask == 0 ? 0 : mask >> std::countr_zero(mask);
            if (mask == 0 || (shifted & (shifted + 1)) != 0 || (h.bpp == 16 && mask > 0xffff)) {
                char hex[16];
                std::snprintf(hex, sizeof hex, "0x%08x", mask);
                bad_bmp(path, std::string("colour mask ") + hex + " is not one run of bits within the pixel");
            }
        }
    } else if (h.bpp == 16) {
        h.masks[0] = 0x7c00, h.masks[1] = 0x03e0, h.masks[2] = 0x001f;
    } else if (h.bpp == 32) {
        h.masks[0] = 0xff0000, h.masks[1] = 0xff00, h.masks[2] = 0xff;
    }

    if (h.bpp <= 8) {
        const uint32_t most = uint32_t{1} << h.bpp;
        const uint32_t count = colours_used == 0 ? most : colours_used;
        if (count > most) {
            bad_bmp(path, "palette of " + std::to_string(count) + " colours for " + std::to_string(h.bpp) +
                              "-bit pixels (at most " + std::to_string(most) + ")");
        }
        if (palette_at + uint64_t{count} * entry_bytes > d.size()) {
            bad_bmp(path,
                    "truncated: the palette of " + std::to_string(count) + " colours ends past the file");
        }
        h.palette.assign(256, {0, 0, 0});
        h.grey = true;
        for (uint32_t i = 0; i < count; ++i) {
            const size_t at = palette_at + i * entry_bytes;
            h.palette[i] = {d[at + 2], d[at + 1], d[at]};  // stored as BGR(x)
            h.grey = h.grey && d[at] == d[at + 1] && d[at + 1] == d[at + 2];
        }
    }
    if (h.pixel_offset >= d.size()) {
        bad_bmp(path, "pixel data offset " + std::to_string(h.pixel_offset) + " is past the file's " +
                          std::to_string(d.size()) + " bytes");
    }
    if (c == kRle8 || c == kRle4) {
        check_pixels_per_byte(path, "BMP", h.height, h.width, d.size());
    } else {
        const uint64_t stride = (h.width * h.bpp + 31) / 32 * 4;
        if (h.pixel_offset + stride * h.height > d.size()) {
            bad_bmp(path, "truncated: " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                              " pixels need " + std::to_string(stride * h.height) + " bytes from offset " +
                              std::to_string(h.pixel_offset) + ", the file has " + std::to_string(d.size()));
        }
    }
    return h;
}

// RLE8 and RLE4 into palette indices (bottom-up rows; pixels the data skips stay index 0).
std::vector<uint8_t> decode_rle(const std::string& path, const std::vector<uint8_t>& d, const BmpHeader& h) {
    const uint64_t w = h.width, height = h.height;
    std::vector<uint8_t> indices(w * height, 0);
    const bool rle8 = h.compression == kRle8;
    uint64_t x = 0, y = 0;  // y counts rows from the bottom
    size_t pos = h.pixel_offset;
    auto put = [&](uint8_t index) {
        if (x < w && y < height) indices[(height - 1 - y) * w + x] = index;
        ++x;
    };
    for (;;) {
        if (pos + 2 > d.size()) {
            if (y >= height) return indices;  // every row written; the end marker is missing only
            bad_bmp(path, "truncated: the RLE data ends at row " + std::to_string(y) + " of " +
                              std::to_string(height) + " without an end-of-bitmap marker");
        }
        const uint8_t n = d[pos], v = d[pos + 1];
        pos += 2;
        if (n > 0) {
            for (int k = 0; k < n; ++k) put(rle8 ? v : (k % 2 ? v & 0x0f : v >> 4));
        } else if (v == 0) {
            x = 0;
            ++y;
        } else if (v == 1) {
            return indices;
        } else if (v == 2) {
            if (pos + 2 > d.size()) bad_bmp(path, "truncated: an RLE delta ends past the file");
            x += d[pos];
            y += d[pos + 1];
            pos += 2;
        } else {
            const size_t bytes = rle8 ? v : (v + 1) / 2;
            if (pos + bytes > d.size()) bad_bmp(path, "truncated: an RLE run ends past the file");
            for (int k = 0; k < v; ++k)
                put(rle8 ? d[pos + k] : (k % 2 ? d[pos + k / 2] & 0x0f : d[pos + k / 2] >> 4));
            pos += (bytes + 1) & ~size_t{1};  // runs are padded to 16 bits
        }
        if (y > height + 1) return indices;  // rows past the top: nothing more can land
    }
}

}  // namespace

ImageInfo bmp_info(const std::string& path, const std::vector<uint8_t>& data) {
    const BmpHeader h = parse_bmp(path, data);
    return {static_cast<int64_t>(h.height), static_cast<int64_t>(h.width), h.grey ? 1 : 3};
}

Image decode_bmp(const std::string& path, const std::vector<uint8_t>& d) {
    const BmpHeader h = parse_bmp(path, d);
    Image image;
    image.height = static_cast<int64_t>(h.height);
    image.width = static_cast<int64_t>(h.width);
    image.channels = h.grey ? 1 : 3;
    image.pixels.resize(h.height * h.width * image.channels);
    uint8_t* out = image.pixels.data();
    auto put_index = [&](uint8_t index) {
        const std::array<uint8_t, 3>& rgb = h.palette[index];
        if (h.grey) {
            *out++ = rgb[0];
        } else {
            *out++ = rgb[0], *out++ = rgb[1], *out++ = rgb[2];
        }
    };
    if (h.compression == kRle8 || h.compression == kRle4) {
        for (uint8_t index : decode_rle(path, d, h)) put_index(index);
        return image;
    }
    const uint64_t stride = (h.width * h.bpp + 31) / 32 * 4;
    for (uint64_t y = 0; y < h.height; ++y) {
        const uint8_t* row = d.data() + h.pixel_offset + stride * (h.top_down ? y : h.height - 1 - y);
        for (uint64_t x = 0; x < h.width; ++x) {
            switch (h.bpp) {
                case 1:
                    put_index((row[x / 8] >> (7 - x % 8)) & 1);
                    break;
                case 4:
                    put_index(x % 2 ? row[x / 2] & 0x0f : row[x / 2] >> 4);
                    break;
                case 8:
                    put_index(row[x]);
                    break;
                case 24:
                    *out++ = row[3 * x + 2], *out++ = row[3 * x + 1], *out++ = row[3 * x];
                    break;
                default: {
                    const uint8_t* p = row + x * (h.bpp / 8);
                    const uint32_t pixel = h.bpp == 16 ? p[0] | (uint32_t{p[1]} << 8)
                                                       : p[0] | (uint32_t{p[1]} << 8) |
                                                             (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
                    for (uint32_t mask : h.masks) *out++ = field(pixel, mask);
                }
            }
        }
    }
    return image;
}

// --------------------------------------------------------------------------------------------- TIFF

namespace {

// libtiff reads the file from memory through these callbacks.
struct TiffMemory {
    const std::vector<uint8_t>* data;
    uint64_t pos = 0;
};

tmsize_t tiff_read(thandle_t handle, void* buffer, tmsize_t size) {
    auto* m = static_cast<TiffMemory*>(handle);
    if (size <= 0 || m->pos >= m->data->size()) return 0;
    const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(size), m->data->size() - m->pos);
    std::memcpy(buffer, m->data->data() + m->pos, n);
    m->pos += n;
    return static_cast<tmsize_t>(n);
}
tmsize_t tiff_write(thandle_t, void*, tmsize_t) {
    return 0;
}
toff_t tiff_seek(thandle_t handle, toff_t offset, int whence) {
    auto* m = static_cast<TiffMemory*>(handle);
    const uint64_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->data->size() : 0;
    if (offset > (uint64_t{1} << 62) || base + offset > (uint64_t{1} << 62)) return static_cast<toff_t>(-1);
    m->pos = base + offset;
    return m->pos;
}
int tiff_close(thandle_t) {
    return 0;
}
toff_t tiff_size(thandle_t handle) {
    return static_cast<TiffMemory*>(handle)->data->size();
}
int tiff_map(thandle_t, void**, toff_t*) {
    return 0;
}
void tiff_unmap(thandle_t, void*, toff_t) {}

// The first error libtiff reports, for the one-line message; warnings are dropped.
int tiff_error(TIFF*, void* user, const char*, const char* format, va_list args) {
    auto* message = static_cast<std::string*>(user);
    if (message->empty()) {
        char text[512];
        std::vsnprintf(text, sizeof text, format, args);
        *message = text;
    }
    return 1;
}
int tiff_warning(TIFF*, void*, const char*, const char*, va_list) {
    return 1;
}

struct TiffFile {
    TiffMemory memory;
    std::string message;
    TIFF* tif = nullptr;
    ~TiffFile() {
        if (tif) TIFFClose(tif);
    }
};

// libtiff's messages often start with the file's name, which ours already does.
[[noreturn]] void bad_tiff(const std::string& path, const std::string& what) {
    const std::string prefix = path + ": ";
    throw FormatError(prefix + "bad TIFF: " + (what.starts_with(prefix) ? what.substr(prefix.size()) : what));
}

void open_tiff(const std::string& path, const std::vector<uint8_t>& data, TiffFile& file) {
    file.memory.data = &data;
    std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> options(TIFFOpenOptionsAlloc(),
                                                                         TIFFOpenOptionsFree);
    if (!options) throw FormatError(path + ": bad TIFF: out of memory");
    TIFFOpenOptionsSetErrorHandlerExtR(options.get(), tiff_error, &file.message);
    TIFFOpenOptionsSetWarningHandlerExtR(options.get(), tiff_warning, nullptr);
    // No single allocation of libtiff's own above 256 MiB (a strip or tile buffer a header lies about).
    TIFFOpenOptionsSetMaxSingleMemAlloc(options.get(), tmsize_t{1} << 28);
    // "m": no memory mapping (the callbacks serve the bytes). Only the first directory is read.
    file.tif = TIFFClientOpenExt(path.c_str(), "rm", &file.memory, tiff_read, tiff_write, tiff_seek,
                                 tiff_close, tiff_size, tiff_map, tiff_unmap, options.get());
    if (!file.tif) bad_tiff(path, file.message.empty() ? "cannot read the header" : file.message);
}

ImageInfo tiff_header(const std::string& path, const std::vector<uint8_t>& data, TiffFile& file) {
    open_tiff(path, data, file);
    TIFF* tif = file.tif;
    uint32_t width = 0, height = 0;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height)) {
        bad_tiff(path, "no image width or length");
    }
    check_image_size(path, height, width);
    check_pixels_per_byte(path, "TIFF", height, width, data.size());
    char why[1024] = "";
    if (!TIFFRGBAImageOK(tif, why)) bad_tiff(path, why);
    uint16_t photometric = PHOTOMETRIC_RGB;
    TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);  // TIFFRGBAImageOK guessed it where absent
    bool grey = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE;
    if (photometric == PHOTOMETRIC_PALETTE) {
        uint16_t bits = 1;
        uint16_t *red = nullptr, *green = nullptr, *blue = nullptr;
        TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
        if (bits <= 16 && TIFFGetField(tif, TIFFTAG_COLORMAP, &red, &green, &blue)) {
            grey = true;
            for (uint32_t i = 0; i < (uint32_t{1} << bits) && grey; ++i)
                grey = red[i] == green[i] && green[i] == blue[i];
        }
    }
    return {height, width, grey ? 1 : 3};
}

// 16-bit grey and RGB in strips are read here, so that they scale to 8 bits as the PNG reader's do
// (libtiff's RGBA interface keeps the high byte). Returns false for the others, which it reads.
bool read_16bit_tiff(const std::string& path, TiffFile& file, Image& image) {
    TIFF* tif = file.tif;
    uint16_t bits = 1, samples = 1, planar = PLANARCONFIG_CONTIG, photometric = PHOTOMETRIC_RGB;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &samples);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
    if (bits != 16 || planar != PLANARCONFIG_CONTIG || TIFFIsTiled(tif) ||
        (photometric != PHOTOMETRIC_MINISBLACK && photometric != PHOTOMETRIC_MINISWHITE &&
         photometric != PHOTOMETRIC_RGB))
        return false;
    const int64_t colours = photometric == PHOTOMETRIC_RGB ? 3 : 1;
    if (samples < colours || colours != image.channels) return false;
    const tmsize_t line = TIFFScanlineSize(tif);
    if (line < image.width * samples * 2) bad_tiff(path, "scanline shorter than its pixels");
    std::vector<uint16_t> row(static_cast<size_t>(line + 1) / 2);
    uint8_t* out = image.pixels.data();
    for (int64_t y = 0; y < image.height; ++y) {
        if (TIFFReadScanline(tif, row.data(), static_cast<uint32_t>(y), 0) < 0)
            bad_tiff(path, file.message.empty() ? "cannot decode row " + std::to_string(y) : file.message);
        for (int64_t x = 0; x < image.width; ++x)
            for (int64_t c = 0; c < colours; ++c) {
                const uint16_t v = row[static_cast<size_t>(x * samples + c)];
                *out++ = scale_16_to_8(photometric == PHOTOMETRIC_MINISWHITE ? 65535 - v : v);
            }
    }
    return true;
}

}  // namespace

ImageInfo tiff_info(const std::string& path, const std::vector<uint8_t>& data) {
    TiffFile file;
    return tiff_header(path, data, file);
}

Image decode_tiff(const std::string& path, const std::vector<uint8_t>& data) {
    TiffFile file;
    const ImageInfo info = tiff_header(path, data, file);
    Image image{info.height, info.width, info.channels, {}};
    image.pixels.resize(static_cast<size_t>(info.height * info.width * info.channels));
    if (read_16bit_tiff(path, file, image)) return image;
    // Alpha is dropped, not multiplied in: libtiff premultiplies unassociated alpha, so the extra
    // samples are relabelled as unspecified, which it skips.
    uint16_t extra_count = 0;
    uint16_t* extra_types = nullptr;
    if (TIFFGetField(file.tif, TIFFTAG_EXTRASAMPLES, &extra_count, &extra_types) && extra_count > 0) {
        std::vector<uint16_t> unspecified(extra_count, EXTRASAMPLE_UNSPECIFIED);
        TIFFSetField(file.tif, TIFFTAG_EXTRASAMPLES, extra_count, unspecified.data());
    }
    std::vector<uint32_t> raster(static_cast<size_t>(info.height * info.width));
    if (!TIFFReadRGBAImageOriented(file.tif, static_cast<uint32_t>(info.width),
                                   static_cast<uint32_t>(info.height), raster.data(), ORIENTATION_TOPLEFT,
                                   1)) {
        bad_tiff(path, file.message.empty() ? "cannot decode the pixels" : file.message);
    }
    uint8_t* out = image.pixels.data();
    for (uint32_t abgr : raster) {
        *out++ = static_cast<uint8_t>(TIFFGetR(abgr));
        if (info.channels == 3) {
            *out++ = static_cast<uint8_t>(TIFFGetG(abgr));
            *out++ = static_cast<uint8_t>(TIFFGetB(abgr));
        }
    }
    return image;
}

// --------------------------------------------------------------------------------------------- WebP

namespace {

const char* webp_status(VP8StatusCode status) {
    switch (status) {
        case VP8_STATUS_OUT_OF_MEMORY:
            return "out of memory";
        case VP8_STATUS_INVALID_PARAM:
            return "invalid parameter";
        case VP8_STATUS_BITSTREAM_ERROR:
            return "corrupt bitstream";
        case VP8_STATUS_UNSUPPORTED_FEATURE:
            return "unsupported feature";
        case VP8_STATUS_SUSPENDED:
            return "decoding suspended";
        case VP8_STATUS_USER_ABORT:
            return "decoding aborted";
        case VP8_STATUS_NOT_ENOUGH_DATA:
            return "truncated (data ends before the image does)";
        default:
            return "unknown error";
    }
}

WebPBitstreamFeatures webp_features(const std::string& path, const std::vector<uint8_t>& data) {
    WebPBitstreamFeatures features;
    const VP8StatusCode status = WebPGetFeatures(data.data(), data.size(), &features);
    if (status != VP8_STATUS_OK) throw FormatError(path + ": bad WebP: " + webp_status(status));
    if (features.has_animation) {
        throw FormatError(path + ": animated WebP is not supported; save one frame as a still image");
    }
    check_image_size(path, static_cast<uint64_t>(features.height), static_cast<uint64_t>(features.width));
    check_pixels_per_byte(path, "WebP", static_cast<uint64_t>(features.height),
                          static_cast<uint64_t>(features.width), data.size());
    return features;
}

}  // namespace

ImageInfo webp_info(const std::string& path, const std::vector<uint8_t>& data) {
    const WebPBitstreamFeatures f = webp_features(path, data);
    return {f.height, f.width, 3};  // WebP has no grey images
}

Image decode_webp(const std::string& path, const std::vector<uint8_t>& data) {
    const WebPBitstreamFeatures f = webp_features(path, data);
    Image image{f.height, f.width, 3, {}};
    image.pixels.resize(static_cast<size_t>(image.height * image.width * 3));
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) throw FormatError(path + ": bad WebP: libwebp version mismatch");
    // RGB output leaves alpha out, as PIL's convert("RGB") does: colours are not premultiplied.
    config.output.colorspace = MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = image.pixels.data();
    config.output.u.RGBA.stride = static_cast<int>(image.width * 3);
    config.output.u.RGBA.size = image.pixels.size();
    const VP8StatusCode status = WebPDecode(data.data(), data.size(), &config);
    WebPFreeDecBuffer(&config.output);
    if (status != VP8_STATUS_OK) throw FormatError(path + ": bad WebP: " + webp_status(status));
    return image;
}

}  // namespace lenz::detail
