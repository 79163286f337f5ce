// Fuzzes the ONNX importer: the protobuf, then the graph walk (operators, attributes, shapes and
// tensor bytes) and the weights it loads. Anything but a lenz::Error is a bug.
#include <cstdint>
#include <string>

#include "lenz/error.h"
#include "lenz/onnx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        lenz::LoadedModel loaded = lenz::parse_onnx(bytes, "fuzz.onnx");
        (void)loaded;
    } catch (const lenz::Error&) {
    }
    return 0;
}
