// Headers that lie about sizes are refused before the reader allocates what they claim.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;

void be32(std::string& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>(v >> s);
}

std::string chunk(const std::string& kind, const std::string& data) {
    std::string out;
    be32(out, static_cast<uint32_t>(data.size()));
    out += kind + data;
    const std::string crc_input = kind + data;
    be32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(crc_input.data()),
                                          static_cast<uInt>(crc_input.size()))));
    return out;
}

// A PNG whose header says 16384 x 16384 RGB (805 MB decoded) but whose data is one compressed row.
TEST(Limits, PngHeaderPromisingMoreThanTheFileHoldsIsRefused) {
    std::string ihdr;
    be32(ihdr, 16384);
    be32(ihdr, 16384);
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);
    std::string row(1 + 3 * 16384, '\0');
    uLongf size = compressBound(static_cast<uLong>(row.size()));
    std::string idat(size, '\0');
    compress(reinterpret_cast<Bytef*>(idat.data()), &size, reinterpret_cast<const Bytef*>(row.data()),
             static_cast<uLong>(row.size()));
    idat.resize(size);
    const std::string png =
        std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", "");
    const std::string path =
        (fs::temp_directory_path() / ("lenz-limits-" + std::to_string(::getpid()) + ".png")).string();
    std::ofstream(path, std::ios::binary) << png;
    try {
        read_image(path);
        FAIL() << "decoded";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("more than the file's"), std::string::npos) << e.what();
    }
    fs::remove(path);
}

}  // namespace
}  // namespace lenz
