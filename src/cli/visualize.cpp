// `lenz visualize CHECKPOINT IMAGE --out DIR`: PNG pictures of what the model does with one image:
// a feature-map grid per conv and pooling layer, the first layer's filters, and the class probabilities.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/onnx.h"
#include "lenz/report.h"

namespace lenz::cli {
namespace {

struct VisualizeArgs {
    std::string checkpoint, image, out = "visualize";
};

int run_visualize(const VisualizeArgs& a) {
    LoadedModel loaded = load_trained_model(a.checkpoint);
    const Visualization v =
        visualize(loaded.model, read_image(a.image), loaded.info.normalization, loaded.info.class_names);

    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(a.out, ec);
    if (ec) throw IoError(a.out + ": cannot create the output folder: " + ec.message());
    std::vector<std::string> written;
    for (const NamedPicture& picture : v.pictures) {
        const std::string path = (fs::path(a.out) / (picture.name + ".png")).string();
        write_png(path, picture.image);
        written.push_back(path);
    }

    const auto& p = v.probabilities;
    const size_t best = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
    const std::string best_name = best < loaded.info.class_names.size() ? loaded.info.class_names[best]
                                                                        : "class " + std::to_string(best);
    std::printf("%s: %s %.1f%%\n", a.image.c_str(), best_name.c_str(), 100 * p[best]);
    for (const std::string& path : written) std::printf("wrote %s\n", path.c_str());
    return 0;
}

}  // namespace

void add_visualize(CLI::App& app, Runner& run) {
    auto a = std::make_shared<VisualizeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "visualize",
        "PNG pictures of one image's feature maps, the first layer's filters and the class probabilities");
    cmd->add_option("checkpoint", a->checkpoint,
                    "checkpoint (.safetensors) written by lenz train, or an ONNX model (.onnx)")
        ->required();
    cmd->add_option("image", a->image, "PNG or JPEG file (resized and centre-cropped to the model's input)")
        ->required();
    cmd->add_option("--out", a->out, "folder for the PNG files (default visualize/)");
    cmd->callback([&run, a] { run = [a] { return run_visualize(*a); }; });
}

}  // namespace lenz::cli
