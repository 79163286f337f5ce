// Fuzzes the checkpoint reader: the safetensors container (parse_checkpoint, which read_checkpoint
// uses), then load_model on what it accepted (the metadata's model text, class names and
// normalisation, and every tensor's name, shape and bytes). Anything but a lenz::Error is a bug.
#include <cstdint>
#include <string>

#include "lenz/checkpoint.h"
#include "lenz/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        const lenz::CheckpointFile file = lenz::parse_checkpoint(bytes, "fuzz.safetensors");
        lenz::LoadedModel loaded = lenz::load_model(file);
        (void)loaded;
    } catch (const lenz::Error&) {
    }
    return 0;
}
