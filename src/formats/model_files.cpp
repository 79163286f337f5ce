// Any model file by its extension: .onnx, a .safetensors checkpoint, or .lenz text.
#include <filesystem>

#include "lenz/checkpoint.h"
#include "lenz/onnx.h"

namespace lenz {

LoadedModel load_trained_model(const std::string& path) {
    if (std::filesystem::path(path).extension() == ".onnx") return read_onnx(path);
    return load_model(path);
}

Model load_any_model(const std::string& path) {
    const std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".onnx") return read_onnx(path).model;
    if (ext == ".safetensors") return load_model(path).model;
    return load_model_file(path);
}

}  // namespace lenz
