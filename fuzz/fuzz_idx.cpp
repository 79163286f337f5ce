// Fuzzes read_idx. One input holds both files: a 4-byte little-endian length N, then N bytes of the
// image file, then the label file (N is clamped to what is there). Either part may be gzipped.
#include <cstdint>
#include <string>

#include "lenz/data.h"
#include "lenz/error.h"
#include "temp_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static lenz::fuzz::TempFile images_file("images"), labels_file("labels");
    if (size < 4) return 0;
    uint32_t n =
        uint32_t{data[0]} | uint32_t{data[1]} << 8 | uint32_t{data[2]} << 16 | uint32_t{data[3]} << 24;
    data += 4;
    size -= 4;
    if (n > size) n = static_cast<uint32_t>(size);
    const std::string& images = images_file.write(data, n);
    const std::string& labels = labels_file.write(data + n, size - n);
    try {
        const lenz::ImageSet set = lenz::read_idx(images, labels);
        if (set.pixels.size() != static_cast<size_t>(set.size() * set.image_elements())) __builtin_trap();
    } catch (const lenz::Error&) {
    }
    return 0;
}
