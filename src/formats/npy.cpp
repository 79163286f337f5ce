// The .npy format (numpy.lib.format): a magic string, a version, a little-endian header length, a
// Python dict literal with 'descr', 'fortran_order' and 'shape', then the raw values. Every size is
// checked against the file before anything is allocated, as for every other reader.
#include "lenz/npy.h"

#include <cstring>

#include "core/files.h"
#include "lenz/error.h"
#include "lenz/shape.h"

namespace lenz {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
constexpr int64_t kMaxNpyBytes = int64_t{4} << 30;
constexpr size_t kMaxHeaderBytes = 1 << 16;
constexpr size_t kMaxDims = 8;

// The text after `key`: in the dict of the header; throws if the key is missing.
size_t value_of(const std::string& header, const std::string& key, const std::string& name) {
    const size_t at = header.find("'" + key + "'");
    if (at == std::string::npos) throw FormatError(name + ": the .npy header has no '" + key + "'");
    size_t colon = header.find(':', at);
    if (colon == std::string::npos) throw FormatError(name + ": the .npy header is not a dict");
    ++colon;
    while (colon < header.size() && header[colon] == ' ') ++colon;
    return colon;
}

std::vector<int64_t> parse_shape(const std::string& header, const std::string& name) {
    size_t i = value_of(header, "shape", name);
    const size_t close = header.find(')', i);
    if (i >= header.size() || header[i] != '(' || close == std::string::npos)
        throw FormatError(name + ": the .npy shape is not a tuple");
    std::vector<int64_t> shape;
    const std::string inside = header.substr(i + 1, close - i - 1);
    size_t p = 0;
    while (p < inside.size()) {
        while (p < inside.size() && (inside[p] == ' ' || inside[p] == ',')) ++p;
        if (p == inside.size()) break;
        size_t end = p;
        while (end < inside.size() && inside[end] >= '0' && inside[end] <= '9') ++end;
        if (end == p || end - p > 12)
            throw FormatError(name + ": the .npy shape (" + inside + ") holds something other than sizes");
        shape.push_back(std::stoll(inside.substr(p, end - p)));
        p = end;
        if (shape.size() > kMaxDims)
            throw FormatError(name + ": the .npy array has more than " + std::to_string(kMaxDims) +
                              " dimensions");
    }
    return shape;
}

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& name) {
    if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, kMagicBytes) != 0)
        throw FormatError(name + ": not a .npy file (it does not start with \\x93NUMPY)");
    const auto byte = [&](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(bytes[i])); };
    const size_t major = byte(6);
    if (major < 1 || major > 3)
        throw FormatError(name + ": .npy format version " + std::to_string(major) + " is not 1, 2 or 3");
    size_t header_bytes = 0, start = 0;
    if (major == 1) {
        header_bytes = byte(8) | byte(9) << 8;
        start = 10;
    } else {
        if (bytes.size() < 12) throw FormatError(name + ": the .npy file ends inside its preamble");
        header_bytes = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
        start = 12;
    }
    if (header_bytes > kMaxHeaderBytes || start + header_bytes > bytes.size())
        throw FormatError(name + ": the .npy header length " + std::to_string(header_bytes) +
                          " runs past the end of the file");
    const std::string header = bytes.substr(start, header_bytes);

    const size_t d = value_of(header, "descr", name);
    const size_t d_end = header.find('\'', d + 1);
    if (d >= header.size() || header[d] != '\'' || d_end == std::string::npos)
        throw FormatError(name + ": the .npy 'descr' is not a string");
    const std::string descr = header.substr(d + 1, d_end - d - 1);
    if (descr != "<f4")
        throw FormatError(name + ": the array's dtype is '" + descr +
                          "', not float32 ('<f4'); save it with x.astype(numpy.float32)");
    const size_t f = value_of(header, "fortran_order", name);
    if (header.compare(f, 5, "False") != 0)
        throw FormatError(name + ": the array is in Fortran order; save it with numpy.ascontiguousarray(x)");

    NpyArray array;
    array.shape = parse_shape(header, name);
    int64_t count = 1;
    try {
        for (int64_t n : array.shape) count = checked_mul(count, n, "array size");
        checked_mul(count, static_cast<int64_t>(sizeof(float)), "array size");
    } catch (const ShapeError&) {
        throw FormatError(name + ": the .npy shape holds more values than any file could");
    }
    const size_t data_bytes = bytes.size() - start - header_bytes;
    if (static_cast<uint64_t>(count) * sizeof(float) != data_bytes)
        throw FormatError(name + ": the .npy shape holds " + std::to_string(count) + " values (" +
                          std::to_string(count * 4) + " bytes) but the file has " +
                          std::to_string(data_bytes) + " bytes of data");
    array.data.resize(static_cast<size_t>(count));
    if (data_bytes > 0)  // an empty array's data() may be null, which memcpy may not be given
        std::memcpy(array.data.data(), bytes.data() + start + header_bytes,
                    data_bytes);  // little-endian host
    return array;
}

NpyArray read_npy(const std::string& path) {
    check_not_directory(path, "a .npy array");
    return parse_npy(read_whole_file(path, kMaxNpyBytes, "the .npy file", "4 GB"), path);
}

std::string encode_npy(const NpyArray& array) {
    std::string shape;
    for (int64_t n : array.shape) shape += std::to_string(n) + ", ";
    if (array.shape.size() > 1)
        shape.resize(shape.size() - 2);  // (5,) keeps its comma
    else if (array.shape.size() == 1)
        shape.resize(shape.size() - 1);
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    const size_t unpadded = kMagicBytes + 4 + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';
    std::string out(kMagic, kMagicBytes);
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    out += header;
    if (!array.data.empty())
        out.append(reinterpret_cast<const char*>(array.data.data()), array.data.size() * sizeof(float));
    return out;
}

void write_npy(const std::string& path, const NpyArray& array) {
    const std::string bytes = encode_npy(array);
    write_atomically(path, "the .npy file",
                     [&](int fd, const std::string& tmp) { write_all(fd, bytes.data(), bytes.size(), tmp); });
}

}  // namespace lenz
