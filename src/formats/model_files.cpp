// Any model file by its extension: .onnx, a .safetensors checkpoint, or .lenz text.
#include <filesystem>

#include "lenz/checkpoint.h"
#include "lenz/onnx.h"

namespace lenz {

LoadedModel load_trained_model(const std::string& path) {
    if (std::filesystem::path(path).extension() == ".onnx") return read_onnx(path);
    return load_model(path);
}

LoadedModel load_with_weights(const std::string& path, uint64_t seed) {
    const std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".onnx" || ext == ".safetensors") return load_trained_model(path);
    LoadedModel loaded{load_model_file(path), {}};
    loaded.model.init_params(seed);
    return loaded;
}

Model load_any_model(const std::string& path) {
    const std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".onnx") return read_onnx(path).model;
    if (ext == ".safetensors") return load_model(path).model;
    return load_model_file(path);
}

}  // namespace lenz
