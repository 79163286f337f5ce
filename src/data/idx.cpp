// IDX files (the MNIST format), plain or gzip-compressed.
//
// Limits, so that a corrupt or hostile file fails with a message instead of exhausting memory:
//   - one IDX file decompresses to at most 2^31 bytes; decompression stops as soon as it would pass
//     that, so a gzip bomb costs at most that much memory;
//   - images are at most 1<<15 pixels per side and 2^28 pixels each;
//   - every count and dimension in a header must match the data actually present, checked before
//     the image set is allocated.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/files.h"
#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

constexpr uint64_t kMaxFileBytes = uint64_t{1} << 31;
constexpr uint32_t kMaxSide = 1u << 15;
constexpr uint64_t kMaxPixels = uint64_t{1} << 28;
constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension

// 7840000 -> "7,840,000": header sizes are easier to compare by eye.
std::string with_commas(uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08X", static_cast<unsigned>(v));
    return buf;
}

uint32_t read_be32(const std::vector<uint8_t>& data, size_t offset) {
    return (uint32_t{data[offset]} << 24) | (uint32_t{data[offset + 1]} << 16) |
           (uint32_t{data[offset + 2]} << 8) | uint32_t{data[offset + 3]};
}

// Closes the file on every path, including exceptions.
struct FileCloser {
    std::FILE* file;
    ~FileCloser() { std::fclose(file); }
};

// Reads a chunk; a read error (not end of file) is an IoError.
size_t read_chunk(std::FILE* file, const std::string& path, uint8_t* buffer, size_t size) {
    size_t got = std::fread(buffer, 1, size, file);
    if (got < size && std::ferror(file)) {
        throw IoError(path + ": read error: " + std::strerror(errno));
    }
    return got;
}

// Appends up to 1 MiB of room to `data` and returns its size. Capacity doubles, but jumps straight
// to the limit plus one byte (enough to detect an oversized file) rather than past it, so reading a
// file near the limit never holds two copies of it.
size_t grow(std::vector<uint8_t>& data) {
    constexpr uint64_t kChunk = uint64_t{1} << 20;
    const uint64_t used = data.size();
    const size_t room = static_cast<size_t>(std::min(kChunk, kMaxFileBytes + 1 - used));
    if (data.capacity() < used + room) {
        uint64_t capacity = std::max<uint64_t>(2 * data.capacity(), used + room);
        data.reserve(static_cast<size_t>(capacity >= kMaxFileBytes ? kMaxFileBytes + 1 : capacity));
    }
    data.resize(used + room);
    return room;
}

std::vector<uint8_t> read_plain(std::FILE* file, const std::string& path, std::vector<uint8_t> data) {
    for (;;) {
        const size_t used = data.size();
        const size_t room = grow(data);
        const size_t got = read_chunk(file, path, data.data() + used, room);
        data.resize(used + got);
        if (data.size() > kMaxFileBytes) {
            throw FormatError(path + ": file is larger than the limit of " + with_commas(kMaxFileBytes) +
                              " bytes for one IDX file");
        }
        if (got < room) return data;
    }
}

// Inflates a gzip stream (possibly several concatenated members, as `cat a.gz b.gz` makes) that
// starts with `head`, the bytes already read to detect the format.
std::vector<uint8_t> read_gzip(std::FILE* file, const std::string& path, const std::vector<uint8_t>& head) {
    z_stream stream{};
    if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
        throw IoError(path + ": cannot initialise zlib");
    }
    struct InflateEnd {
        z_stream* stream;
        ~InflateEnd() { inflateEnd(stream); }
    } inflate_end{&stream};

    constexpr size_t kInChunk = size_t{1} << 16;
    std::vector<uint8_t> input(head);
    std::vector<uint8_t> out;
    uint64_t consumed = 0;  // compressed bytes before `input`, for error offsets
    bool at_eof = false;
    bool member_done = false;
    stream.next_in = input.data();
    stream.avail_in = static_cast<uInt>(input.size());
    for (;;) {
        if (stream.avail_in == 0 && !at_eof) {
            consumed += input.size();
            input.resize(kInChunk);
            size_t got = read_chunk(file, path, input.data(), kInChunk);
            input.resize(got);
            at_eof = got < kInChunk;
            stream.next_in = input.data();
            stream.avail_in = static_cast<uInt>(got);
        }
        if (member_done) {
            if (stream.avail_in == 0) break;
            // Another member follows; anything else after a complete stream is corruption.
            uint64_t offset = consumed + (stream.next_in - input.data());
            if (stream.next_in[0] != 0x1f) {
                throw FormatError(path + ": unexpected data at compressed byte " + std::to_string(offset) +
                                  " after the end of the gzip stream");
            }
            inflateReset(&stream);
            member_done = false;
        }
        const size_t used = out.size();
        const size_t room = grow(out);
        stream.next_out = out.data() + used;
        stream.avail_out = static_cast<uInt>(room);
        int status = inflate(&stream, Z_NO_FLUSH);
        out.resize(used + room - stream.avail_out);
        if (out.size() > kMaxFileBytes) {
            throw FormatError(path + ": decompresses to more than " + with_commas(kMaxFileBytes) +
                              " bytes, the limit for one IDX file");
        }
        if (status == Z_STREAM_END) {
            member_done = true;
        } else if (status != Z_OK && status != Z_BUF_ERROR) {
            uint64_t offset = consumed + (stream.next_in - input.data());
            throw FormatError(path + ": corrupt gzip data near compressed byte " + std::to_string(offset) +
                              ": " + (stream.msg ? stream.msg : "zlib error " + std::to_string(status)));
        } else if (stream.avail_in == 0 && at_eof && stream.avail_out > 0) {
            // Room for output but no input left, and the stream has not ended.
            throw FormatError(path + ": gzip data ends early after " + with_commas(consumed + input.size()) +
                              " compressed bytes (truncated file?)");
        }
    }
    return out;
}

// The whole file, decompressed if it starts with the gzip magic bytes 1f 8b.
std::vector<uint8_t> read_maybe_gzipped(const std::string& path) {
    check_not_directory(path, "an IDX file");
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) throw IoError(path + ": cannot open: " + std::strerror(errno));
    FileCloser closer{file};
    std::vector<uint8_t> head(2);
    head.resize(read_chunk(file, path, head.data(), head.size()));
    if (head.size() == 2 && head[0] == 0x1f && head[1] == 0x8b) return read_gzip(file, path, head);
    return read_plain(file, path, std::move(head));
}

// Checks the magic number (first, as a wrong kind of file explains a short one too), naming what the
// file looks like when it is the other IDX kind; then that the whole header is present.
void check_header(const std::vector<uint8_t>& data, const std::string& path, uint32_t expected,
                  size_t header_bytes, const char* what) {
    if (data.size() >= 4 && read_be32(data, 0) != expected) {
        uint32_t magic = read_be32(data, 0);
        std::string got = hex32(magic);
        if (magic == kImagesMagic) got += " (an IDX image file)";
        if (magic == kLabelsMagic) got += " (an IDX label file)";
        throw FormatError(path + ": bad IDX magic at byte 0: expected " + hex32(expected) + " (" + what +
                          " file), got " + got);
    }
    if (data.size() < header_bytes) {
        throw FormatError(path + ": file holds " + std::to_string(data.size()) +
                          " bytes, too short for the " + std::to_string(header_bytes) + "-byte IDX " + what +
                          " header");
    }
}

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
    std::vector<uint8_t> images = read_maybe_gzipped(images_path);
    check_header(images, images_path, kImagesMagic, 16, "image");
    uint32_t count = read_be32(images, 4);
    uint32_t height = read_be32(images, 8);
    uint32_t width = read_be32(images, 12);
    if (height == 0 || width == 0 || height > kMaxSide || width > kMaxSide ||
        uint64_t{height} * width > kMaxPixels) {
        throw FormatError(images_path + ": IDX header at byte 8 gives image size " + std::to_string(height) +
                          "x" + std::to_string(width) + ", expected 1.." + std::to_string(kMaxSide) +
                          " per side and at most " + with_commas(kMaxPixels) + " pixels");
    }
    // Cannot overflow: count < 2^32 and height * width <= 2^28.
    uint64_t expected_bytes = uint64_t{count} * height * width;
    if (images.size() - 16 != expected_bytes) {
        throw FormatError(images_path + ": IDX header says " + with_commas(count) + " images of " +
                          std::to_string(height) + "x" + std::to_string(width) + " (" +
                          with_commas(expected_bytes) + " bytes) but the file holds " +
                          with_commas(images.size() - 16) + " bytes after the 16-byte header");
    }

    std::vector<uint8_t> labels = read_maybe_gzipped(labels_path);
    check_header(labels, labels_path, kLabelsMagic, 8, "label");
    uint32_t label_count = read_be32(labels, 4);
    if (labels.size() - 8 != label_count) {
        throw FormatError(labels_path + ": IDX header says " + with_commas(label_count) +
                          " labels but the file holds " + with_commas(labels.size() - 8) +
                          " bytes after the 8-byte header");
    }
    if (label_count != count) {
        throw FormatError(labels_path + ": holds " + with_commas(label_count) + " labels but " + images_path +
                          " holds " + with_commas(count) + " images");
    }

    ImageSet set;
    set.height = height;
    set.width = width;
    set.channels = 1;
    // With one channel, IDX's (N, H, W) bytes are already planar (N, C, H, W): reuse the buffer.
    images.erase(images.begin(), images.begin() + 16);
    set.pixels = std::move(images);
    set.labels.assign(labels.begin() + 8, labels.end());
    return set;
}

}  // namespace lenz
