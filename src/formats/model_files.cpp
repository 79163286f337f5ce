// Any model file by its extension: .onnx, a .safetensors checkpoint, or .lenz text.
#include <filesystem>

#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/onnx.h"

namespace lenz {

LoadedModel load_trained_model(const std::string& path) {
    const std::filesystem::path file(path);
    if (file.extension() == ".onnx") return read_onnx(path);
    // A model file read as a checkpoint would be blamed on its bytes; say what is missing instead.
    if (file.extension() == ".lenz")
        throw FormatError(path +
                          ": a model file describes a network but holds no trained weights; train it "
                          "first (lenz train " +
                          path + " --data DATASET) and use the run's model.safetensors (runs/" +
                          file.stem().string() + "/model.safetensors by default), or an .onnx file");
    return load_model(path);
}

LoadedModel load_with_weights(const std::string& path, uint64_t seed) {
    const std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".onnx" || ext == ".safetensors") return load_trained_model(path);
    LoadedModel loaded{load_model_file(path), {}, {}};
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
