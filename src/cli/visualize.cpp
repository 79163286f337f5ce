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

// Stacks pictures vertically on white, left-aligned, so that one file shows everything.
Image stack(const std::vector<const Image*>& parts) {
    int64_t width = 0, height = 0;
    for (const Image* p : parts) {
        width = std::max(width, p->width);
        height += p->height;
    }
    Canvas canvas(width, height);
    int64_t y = 0;
    for (const Image* p : parts) {
        canvas.draw_image(*p, 0, y, 1);
        y += p->height;
    }
    return canvas.to_image();
}

int run_visualize(const VisualizeArgs& a) {
    LoadedModel loaded = load_trained_model(a.checkpoint);
    Model& model = loaded.model;
    const Image source = read_image(a.image);
    const ModelPictures pictures = picture_model(model, source, loaded.info.normalization);

    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(a.out, ec);
    if (ec) throw IoError(a.out + ": cannot create the output folder: " + ec.message());
    std::vector<std::string> written;
    auto save = [&](const std::string& name, const Image& image) {
        const std::string path = (fs::path(a.out) / name).string();
        write_png(path, image);
        written.push_back(path);
    };

    // The image as the model sees it (resized, cropped, channels converted), enlarged to be seen.
    const Shape in = model.input_shape();
    const Image fitted = fit_image(source, in.h, in.w, in.c);
    const std::string input_title =
        "input " + std::to_string(in.h) + " x " + std::to_string(in.w) + " x " + std::to_string(in.c);
    const int64_t scale = std::max<int64_t>(1, 112 / std::max(in.h, in.w));
    Canvas input_canvas(std::max(fitted.width * scale, text_width(input_title, 2)) + 20,
                        fitted.height * scale + kLineHeight * 2 + 26);
    input_canvas.draw_text(10, 10, input_title, {40, 40, 48}, 2);
    input_canvas.draw_image(fitted, 10, 16 + kLineHeight * 2, scale);
    const Image input_picture = input_canvas.to_image();
    save("input.png", input_picture);

    const Image probabilities =
        probability_chart(pictures.probabilities, loaded.info.class_names, "class probabilities");
    save("probabilities.png", probabilities);
    if (pictures.filters) save("filters.png", *pictures.filters);
    for (size_t i = 0; i < pictures.feature_maps.size(); ++i)
        save(pictures.feature_map_names[i] + ".png", pictures.feature_maps[i]);

    std::vector<const Image*> all = {&input_picture, &probabilities};
    if (pictures.filters) all.push_back(&*pictures.filters);
    for (const Image& m : pictures.feature_maps) all.push_back(&m);
    save("overview.png", stack(all));

    const auto& p = pictures.probabilities;
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
