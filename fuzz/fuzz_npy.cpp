// Fuzzes the .npy reader. Any input must give an array or a lenz::Error, never a crash, a hang or a
// sanitizer report; an array that parses must encode and parse back to the same shape and bits.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lenz/error.h"
#include "lenz/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    lenz::NpyArray array;
    try {
        array = lenz::parse_npy(std::string(reinterpret_cast<const char*>(data), size), "fuzz.npy");
    } catch (const lenz::Error&) {
        return 0;
    }
    try {
        const lenz::NpyArray again = lenz::parse_npy(lenz::encode_npy(array), "again.npy");
        if (again.shape != array.shape || again.data.size() != array.data.size() ||
            (!array.data.empty() &&  // an empty vector's data() may be null, which memcmp may not be given
             std::memcmp(again.data.data(), array.data.data(), array.data.size() * sizeof(float)) != 0))
            std::abort();
    } catch (const lenz::Error&) {
        std::abort();  // encode_npy wrote something parse_npy refuses
    }
    return 0;
}
