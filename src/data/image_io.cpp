// Image decoding to 8-bit grey or RGB by content (PNG and JPEG here; BMP, TIFF and WebP in
// image_formats.cpp), headers alone for the image's size, and PNG and JPEG writing.
//
// Limits: an image file is at most 2^30 bytes, and an image at most 1<<15 pixels per side and 2^28
// pixels; both are checked from the header before the pixel buffer is allocated. A PNG header must
// also promise no more pixels than the file's compressed data can hold.
#include <cctype>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

// jpeglib.h needs <cstdio> first; jerror.h names the warning codes (to spot a premature end).
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "core/files.h"
#include "data/image_formats.h"
#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

constexpr uint64_t kMaxFileBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxSide = uint64_t{1} << 15;
using detail::check_image_size;

struct FileCloser {
    std::FILE* file;
    ~FileCloser() { std::fclose(file); }
};

std::vector<uint8_t> read_file(const std::string& path) {
    check_not_directory(path, "an image file");
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) throw IoError(path + ": cannot open: " + std::strerror(errno));
    FileCloser closer{file};
    std::vector<uint8_t> data;
    constexpr size_t kChunk = size_t{1} << 20;
    for (;;) {
        size_t used = data.size();
        data.resize(used + kChunk);
        size_t got = std::fread(data.data() + used, 1, kChunk, file);
        data.resize(used + got);
        if (got < kChunk && std::ferror(file)) throw IoError(path + ": read error: " + std::strerror(errno));
        if (data.size() > kMaxFileBytes) {
            throw FormatError(path + ": file is larger than the limit of " + std::to_string(kMaxFileBytes) +
                              " bytes for one image");
        }
        if (got < kChunk) return data;
    }
}

// The simplified libpng API reports errors through its return value (it does the setjmp itself) and
// converts every colour type and bit depth. begin_read reads the chunks before the image data only.
struct PngReader {
    png_image png{};
    PngReader(const std::string& path, const std::vector<uint8_t>& data) {
        png.version = PNG_IMAGE_VERSION;
        if (!png_image_begin_read_from_memory(&png, data.data(), data.size())) {
            throw FormatError(path + ": bad PNG: " + png.message);
        }
        check_image_size(path, png.height, png.width);
    }
    ~PngReader() { png_image_free(&png); }
    // Palette images report colour whenever the palette does.
    bool colour() const { return (png.format & PNG_FORMAT_FLAG_COLOR) != 0; }
};

ImageInfo png_info(const std::string& path, const std::vector<uint8_t>& data) {
    const PngReader reader(path, data);
    return {reader.png.height, reader.png.width, reader.colour() ? 3 : 1};
}

Image decode_png(const std::string& path, const std::vector<uint8_t>& data) {
    PngReader reader(path, data);
    png_image& png = reader.png;
    // Deflate packs at most 1032 bytes into one, and every row holds at least a filter byte and a
    // bit per pixel: a header promising more than the file can hold is refused before allocating.
    const uint64_t min_raw = uint64_t{png.height} * (1 + (uint64_t{png.width} + 7) / 8);
    if (min_raw > uint64_t{data.size()} * 1032) {
        throw FormatError(path + ": PNG header says " + std::to_string(png.width) + "x" +
                          std::to_string(png.height) + " pixels, more than the file's " +
                          std::to_string(data.size()) + " bytes can encode");
    }
    // Keep grey images grey. Alpha (an alpha channel or a palette's tRNS) is read and then dropped,
    // as PIL's convert("RGB") drops it, rather than composited onto a background.
    const bool colour = reader.colour();
    const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    png.format =
        colour ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    // Untagged 16-bit files are sRGB in practice; libpng would otherwise assume linear light and
    // brighten them when reducing to 8 bits (which it does as v * 255 / 65535, rounded).
    png.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;

    Image image;
    image.height = png.height;
    image.width = png.width;
    image.channels = colour ? 3 : 1;
    image.pixels.resize(PNG_IMAGE_SIZE(png));
    if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
        throw FormatError(path + ": bad PNG: " + png.message);
    }
    if (alpha) {
        const size_t pixels = static_cast<size_t>(image.height * image.width), c = image.channels;
        for (size_t i = 0; i < pixels; ++i)
            for (size_t k = 0; k < c; ++k) image.pixels[i * c + k] = image.pixels[i * (c + 1) + k];
        image.pixels.resize(pixels * c);
    }
    return image;
}

// libjpeg reports fatal errors by calling error_exit, which must not return: we longjmp back to
// decode_jpeg_into, keeping the message. Only C frames are skipped, so no destructor is bypassed.
struct JpegError {
    jpeg_error_mgr manager;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_fail(j_common_ptr info) {
    auto* error = reinterpret_cast<JpegError*>(info->err);
    (*info->err->format_message)(info, error->message);
    std::longjmp(error->jump, 1);
}

// Warnings are normally printed to stderr and decoding goes on. A premature end of data means a
// truncated file whose missing rows libjpeg would fill with grey, so that one becomes an error;
// others (stray bytes before a marker and the like) are harmless for typical camera files.
void jpeg_message(j_common_ptr info, int level) {
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
        auto* error = reinterpret_cast<JpegError*>(info->err);
        std::snprintf(error->message, sizeof error->message, "truncated (data ends before the image does)");
        std::longjmp(error->jump, 1);
    }
}

// Returns false with error->message set when libjpeg fails. With header_only, fills in the image's
// size and channels but no pixels. Everything this function touches after
// setjmp lives in the caller's frame and is reached through pointers that do not change, so its
// state is well defined after a longjmp. C++ exceptions leave normally; the caller cleans up.
bool decode_jpeg_into(jpeg_decompress_struct* info, JpegError* error, const std::string* path,
                      const std::vector<uint8_t>* data, Image* image, bool header_only) {
    if (setjmp(error->jump)) return false;
    jpeg_create_decompress(info);
    jpeg_mem_src(info, data->data(), static_cast<unsigned long>(data->size()));
    jpeg_read_header(info, TRUE);
    check_image_size(*path, info->image_height, info->image_width);
    if (info->jpeg_color_space == JCS_GRAYSCALE) {
        info->out_color_space = JCS_GRAYSCALE;
    } else if (info->jpeg_color_space == JCS_YCbCr || info->jpeg_color_space == JCS_RGB) {
        info->out_color_space = JCS_RGB;
    } else {
        throw FormatError(*path + ": JPEG colour space " + std::to_string(info->jpeg_color_space) +
                          " (CMYK/YCCK) is not supported; convert the file to RGB");
    }
    if (header_only) {
        image->height = info->image_height;
        image->width = info->image_width;
        image->channels = info->out_color_space == JCS_GRAYSCALE ? 1 : 3;
        return true;
    }
    jpeg_start_decompress(info);
    image->height = info->output_height;
    image->width = info->output_width;
    image->channels = info->output_components;
    image->pixels.resize(image->height * image->width * image->channels);
    const size_t row_bytes = image->width * image->channels;
    while (info->output_scanline < info->output_height) {
        JSAMPROW row = image->pixels.data() + info->output_scanline * row_bytes;
        jpeg_read_scanlines(info, &row, 1);
    }
    jpeg_finish_decompress(info);
    return true;
}

Image decode_jpeg(const std::string& path, const std::vector<uint8_t>& data, bool header_only = false) {
    jpeg_decompress_struct info{};
    JpegError error{};
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = jpeg_fail;
    error.manager.emit_message = jpeg_message;
    // jpeg_destroy_decompress is safe on a zeroed or half-created struct.
    struct Destroy {
        jpeg_decompress_struct* info;
        ~Destroy() { jpeg_destroy_decompress(info); }
    } destroy_on_exit{&info};
    Image image;
    if (!decode_jpeg_into(&info, &error, &path, &data, &image, header_only)) {
        throw FormatError(path + ": bad JPEG: " + error.message);
    }
    return image;
}

enum class Format { png, jpeg, bmp, tiff, webp };

bool starts_with(const std::vector<uint8_t>& data, size_t at, const char* bytes, size_t count) {
    return data.size() >= at + count && std::memcmp(data.data() + at, bytes, count) == 0;
}

// The format by the file's first bytes, whatever its name says.
Format sniff(const std::string& path, const std::vector<uint8_t>& data) {
    if (starts_with(data, 0, "\x89PNG\r\n\x1a\n", 8)) return Format::png;
    if (starts_with(data, 0, "\xff\xd8\xff", 3)) return Format::jpeg;
    if (starts_with(data, 0, "BM", 2)) return Format::bmp;
    // Classic TIFF (42) and BigTIFF (43), little- and big-endian.
    if (starts_with(data, 0, "II*\0", 4) || starts_with(data, 0, "MM\0*", 4) ||
        starts_with(data, 0, "II+\0", 4) || starts_with(data, 0, "MM\0+", 4))
        return Format::tiff;
    if (starts_with(data, 0, "RIFF", 4) && starts_with(data, 8, "WEBP", 4)) return Format::webp;
    std::string start;
    for (size_t i = 0; i < data.size() && i < 8; ++i) {
        char hex[4];
        std::snprintf(hex, sizeof hex, " %02x", data[i]);
        start += hex;
    }
    throw FormatError(path +
                      ": not a PNG, JPEG, BMP, TIFF or WebP file (expected 89 50 4e 47, ff d8 ff, 42 4d, "
                      "49 49 2a 00, 4d 4d 00 2a or RIFF....WEBP at byte 0, got" +
                      (data.empty() ? std::string(" an empty file") : start) + ")");
}

}  // namespace

namespace {

// libpng's full API, for what the simplified one cannot give: a palette image's indices as they
// are stored. Errors longjmp back to decode_mask_png, which turns them into a FormatError.
struct PngMemory {
    const std::vector<uint8_t>* data;
    size_t offset;
};
void read_png_memory(png_structp png, png_bytep out, png_size_t count) {
    auto* in = static_cast<PngMemory*>(png_get_io_ptr(png));
    if (count > in->data->size() - in->offset) png_error(png, "the file ends inside the image");
    std::memcpy(out, in->data->data() + in->offset, count);
    in->offset += count;
}
void png_error_message(png_structp png, png_const_charp message) {
    auto* text = static_cast<std::string*>(png_get_error_ptr(png));
    *text = message;
    png_longjmp(png, 1);
}
void png_ignore_warning(png_structp, png_const_charp) {}

// What decode_mask_png keeps across libpng's longjmp: allocated before setjmp and only reached
// through a pointer that does not change after it, so nothing is left indeterminate.
struct MaskRead {
    std::string message, refusal;
    Image mask;
    std::vector<png_bytep> rows;
};

Image decode_mask_png(const std::string& path, const std::vector<uint8_t>& data) {
    const auto read = std::make_unique<MaskRead>();
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &read->message, png_error_message, png_ignore_warning);
    if (!png) throw IoError(path + ": out of memory for libpng");
    png_infop info = png_create_info_struct(png);
    PngMemory in{&data, 0};
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        throw FormatError(path + ": bad PNG mask: " + read->message);
    }
    png_set_read_fn(png, &in, read_png_memory);
    png_read_info(png, info);
    const png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    const int colour = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (colour != PNG_COLOR_TYPE_PALETTE && colour != PNG_COLOR_TYPE_GRAY)
        read->refusal = "a mask must be a grey or palette PNG holding each pixel's class (this one is " +
                        std::string(colour & PNG_COLOR_MASK_COLOR ? "RGB" : "grey with alpha") + ")";
    else if (depth > 8)
        read->refusal = "a mask must be 8-bit (this one is " + std::to_string(depth) + "-bit)";
    if (read->refusal.empty()) {
        if (depth < 8) png_set_packing(png);  // a byte a pixel; grey values and indices stay unscaled
        png_read_update_info(png, info);
        read->mask.height = height;
        read->mask.width = width;
        read->mask.channels = 1;
        read->mask.pixels.resize(size_t{height} * width);
        read->rows.resize(height);
        for (png_uint_32 r = 0; r < height; ++r) read->rows[r] = read->mask.pixels.data() + size_t{r} * width;
        png_read_image(png, read->rows.data());
    }
    png_destroy_read_struct(&png, &info, nullptr);
    if (!read->refusal.empty()) throw FormatError(path + ": " + read->refusal);
    return std::move(read->mask);
}

}  // namespace

Image read_mask(const std::string& path) {
    const std::vector<uint8_t> data = read_file(path);
    if (sniff(path, data) != Format::png)
        throw FormatError(path + ": a mask must be a PNG (lossless), holding each pixel's class");
    png_info(path, data);  // the size limits, checked from the header before decoding
    return decode_mask_png(path, data);
}

Image read_image(const std::string& path) {
    const std::vector<uint8_t> data = read_file(path);
    switch (sniff(path, data)) {
        case Format::png:
            return decode_png(path, data);
        case Format::jpeg:
            return decode_jpeg(path, data);
        case Format::bmp:
            return detail::decode_bmp(path, data);
        case Format::tiff:
            return detail::decode_tiff(path, data);
        case Format::webp:
            return detail::decode_webp(path, data);
    }
    __builtin_unreachable();
}

ImageInfo read_image_info(const std::string& path) {
    const std::vector<uint8_t> data = read_file(path);
    switch (sniff(path, data)) {
        case Format::png:
            return png_info(path, data);
        case Format::jpeg: {
            const Image header = decode_jpeg(path, data, true);
            return {header.height, header.width, header.channels};
        }
        case Format::bmp:
            return detail::bmp_info(path, data);
        case Format::tiff:
            return detail::tiff_info(path, data);
        case Format::webp:
            return detail::webp_info(path, data);
    }
    __builtin_unreachable();
}

bool is_image_extension(const std::string& extension) {
    for (const char* known : {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
        if (extension == known) return true;
    return false;
}

namespace {

// Both encoders take 8-bit grey or RGB of a size their formats can hold.
void check_encodable(const Image& image, const char* format, uint64_t max_side) {
    if ((image.channels != 1 && image.channels != 3) || image.height <= 0 || image.width <= 0 ||
        static_cast<uint64_t>(image.height) > max_side || static_cast<uint64_t>(image.width) > max_side ||
        image.pixels.size() != static_cast<size_t>(image.height * image.width * image.channels)) {
        throw ShapeError(std::string("cannot encode a ") + format + " of " + std::to_string(image.height) +
                         "x" + std::to_string(image.width) + "x" + std::to_string(image.channels) + " from " +
                         std::to_string(image.pixels.size()) +
                         " bytes (expected 1 or 3 channels, H*W*C bytes)");
    }
}

// Everything the encoder touches after setjmp lives in the caller, as for decoding.
bool encode_jpeg_into(jpeg_compress_struct* info, JpegError* error, const Image* image, int quality,
                      unsigned char** buffer, unsigned long* size) {
    if (setjmp(error->jump)) return false;
    jpeg_create_compress(info);
    jpeg_mem_dest(info, buffer, size);
    info->image_width = static_cast<JDIMENSION>(image->width);
    info->image_height = static_cast<JDIMENSION>(image->height);
    info->input_components = static_cast<int>(image->channels);
    info->in_color_space = image->channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(info);
    jpeg_set_quality(info, quality, TRUE);
    jpeg_start_compress(info, TRUE);
    const size_t row_bytes = static_cast<size_t>(image->width * image->channels);
    while (info->next_scanline < info->image_height) {
        // libjpeg's API takes non-const rows but only reads them.
        JSAMPROW row = const_cast<uint8_t*>(image->pixels.data()) + info->next_scanline * row_bytes;
        jpeg_write_scanlines(info, &row, 1);
    }
    jpeg_finish_compress(info);
    return true;
}

void write_bytes(const std::string& path, const std::string& encoded) {
    const size_t size = encoded.size();
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (!file) throw IoError(path + ": cannot create: " + std::strerror(errno));
    bool written = std::fwrite(encoded.data(), 1, size, file) == size;
    int saved_errno = errno;
    if (std::fclose(file) != 0 && written) {
        written = false;
        saved_errno = errno;
    }
    if (!written) throw IoError(path + ": write failed: " + std::strerror(saved_errno));
}

}  // namespace

std::string encode_jpeg(const Image& image, int quality) {
    check_encodable(image, "JPEG", JPEG_MAX_DIMENSION);
    jpeg_compress_struct info{};
    JpegError error{};
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = jpeg_fail;
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    struct Release {
        jpeg_compress_struct* info;
        unsigned char** buffer;
        ~Release() {
            jpeg_destroy_compress(info);
            std::free(*buffer);  // jpeg_mem_dest's buffer outlives the compressor
        }
    } release_on_exit{&info, &buffer};
    if (!encode_jpeg_into(&info, &error, &image, quality, &buffer, &size))
        throw FormatError(std::string("cannot encode JPEG: ") + error.message);
    return std::string(reinterpret_cast<const char*>(buffer), size);
}

std::string encode_png(const Image& image) {
    check_encodable(image, "PNG", kMaxSide);
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

void write_png(const std::string& path, const Image& image) {
    std::string encoded;
    try {  // encoded in memory first, so that file errors carry the system's reason, not libpng's
        encoded = encode_png(image);
    } catch (const Error& e) {
        throw ShapeError(path + ": " + e.what());
    }
    write_bytes(path, encoded);
}

void write_image(const std::string& path, const Image& image) {
    std::string ext = std::filesystem::path(path).extension().string();
    for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (ext == ".png") return write_png(path, image);
    if (ext != ".jpg" && ext != ".jpeg")
        throw IoError(path + ": cannot tell the image format from the name (expected .png, .jpg or .jpeg)");
    std::string encoded;
    try {
        encoded = encode_jpeg(image, 95);
    } catch (const Error& e) {
        throw ShapeError(path + ": " + e.what());
    }
    write_bytes(path, encoded);
}

}  // namespace lenz
