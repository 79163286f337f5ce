// `lenz predict CHECKPOINT IMAGE...`: the top classes of each PNG/JPEG, with probabilities;
// `lenz sample`: writes images of a data set as PNG files to try it on.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "cli/options.h"
#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/onnx.h"

namespace lenz::cli {
namespace {

struct PredictArgs {
    std::string checkpoint;
    std::vector<std::string> images;
    int64_t top = 3;
    bool json = false;
    std::string dtype;  // empty: the checkpoint's (int8 where quantised)
};

int run_predict(const PredictArgs& a) {
    if (!a.dtype.empty()) precision_of(a.dtype);  // before loading anything
    LoadedModel loaded = load_trained_model(a.checkpoint);
    Model& model = loaded.model;
    const Precision precision = precision_for(a.dtype, model);
    const Shape in = model.input_shape();
    const int64_t K = class_count(model, "predict: " + a.checkpoint);
    auto name = [&](int64_t k) {
        return k < static_cast<int64_t>(loaded.info.class_names.size())
                   ? loaded.info.class_names[static_cast<size_t>(k)]
                   : "class " + std::to_string(k);
    };
    Inference inference(model, 1, precision);
    std::vector<float> input(static_cast<size_t>(in.elements()));
    nlohmann::json all = nlohmann::json::array();
    int failed = 0;
    for (const std::string& path : a.images) {
        // A bad image is reported and skipped; the others are still classified, and the exit status
        // says something failed (as cp and ls do with several arguments).
        Image fitted;
        try {
            fitted = fit_image(read_image(path), in.h, in.w, in.c);
        } catch (const Error& e) {
            std::fflush(stdout);
            std::fprintf(stderr, "lenz: error: %s\n", e.what());
            if (a.json) all.push_back({{"image", path}, {"error", e.what()}});
            ++failed;
            continue;
        }
        // (H, W, C) interleaved -> (C, H, W) planar
        std::vector<uint8_t> planar(static_cast<size_t>(in.elements()));
        for (int64_t c = 0; c < in.c; ++c)
            for (int64_t p = 0; p < in.h * in.w; ++p)
                planar[static_cast<size_t>(c * in.h * in.w + p)] =
                    fitted.pixels[static_cast<size_t>(p * in.c + c)];
        normalize_image(planar.data(), in.c, in.h * in.w, loaded.info.normalization, input.data());
        const float* out = inference.run(input.data(), 1);
        const std::vector<double> prob = class_probabilities(model, out, K);
        std::vector<int64_t> order(static_cast<size_t>(K));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return prob[x] > prob[y]; });
        const int64_t shown = std::min(a.top, K);
        nlohmann::json list = nlohmann::json::array();
        for (int64_t i = 0; i < shown; ++i)
            list.push_back({{"class", name(order[static_cast<size_t>(i)])},
                            {"probability", prob[order[static_cast<size_t>(i)]]}});
        if (a.json) {
            all.push_back({{"image", path}, {"predictions", list}});
        } else {
            std::printf("%s:", path.c_str());
            for (int64_t i = 0; i < shown; ++i)
                std::printf("%s %s %.1f%%", i ? "," : "", name(order[static_cast<size_t>(i)]).c_str(),
                            100 * prob[order[static_cast<size_t>(i)]]);
            std::printf("\n");
        }
    }
    if (a.json) std::cout << all.dump(2) << "\n";
    return failed ? 1 : 0;
}

struct SampleArgs {
    std::string data = "fashion-mnist", out = "sample.png", split = "test";
    int64_t index = 0;
    double val_split = 0;
    uint64_t seed = 1;
};

int run_sample(const SampleArgs& a) {
    // No model says what to fit an image folder to: its images take their most common size and
    // channel count (the data set's description says which).
    const DataSplit data = load_dataset(a.data, {.val_split = a.val_split, .seed = a.seed});
    const ImageSet& set = a.split == "train" ? data.train : data.test;
    if (a.index < 0 || a.index >= set.size())
        throw ShapeError("--index " + std::to_string(a.index) + " is outside the " + a.split + " set's 0.." +
                         std::to_string(set.size() - 1));
    Image img{set.height, set.width, set.channels, {}};
    img.pixels.resize(static_cast<size_t>(set.image_elements()));
    const int64_t plane = set.height * set.width;
    for (int64_t c = 0; c < set.channels; ++c)
        for (int64_t p = 0; p < plane; ++p)
            img.pixels[static_cast<size_t>(p * set.channels + c)] =
                set.pixels[static_cast<size_t>(a.index * set.image_elements() + c * plane + p)];
    write_image(a.out, img);
    if (set.segmentation()) {
        // Its mask beside it, as lenz segment will write one: NAME.mask.png, the class of each pixel.
        const std::filesystem::path out(a.out);
        const std::string mask_path = (out.parent_path() / (out.stem().string() + ".mask.png")).string();
        const auto first = set.masks.begin() + a.index * plane;
        write_png(mask_path, Image{set.height, set.width, 1, std::vector<uint8_t>(first, first + plane)});
        std::vector<int64_t> count(256, 0);
        for (auto p = first; p != first + plane; ++p) ++count[*p];
        std::string present;
        for (size_t k = 0; k < set.class_names.size(); ++k)
            if (count[k] > 0) present += (present.empty() ? "" : ", ") + set.class_names[k];
        if (count[kIgnorePixel] > 0) present += (present.empty() ? "" : ", ") + std::string("ignored pixels");
        std::printf("wrote %s and its mask %s: %s image %lld (%s), of %s\n", a.out.c_str(), mask_path.c_str(),
                    a.split.c_str(), static_cast<long long>(a.index), present.c_str(),
                    data.description.c_str());
        return 0;
    }
    const int32_t label = set.labels[static_cast<size_t>(a.index)];
    std::printf("wrote %s: %s image %lld, class %d (%s), of %s\n", a.out.c_str(), a.split.c_str(),
                static_cast<long long>(a.index), label,
                label < static_cast<int32_t>(set.class_names.size())
                    ? set.class_names[static_cast<size_t>(label)].c_str()
                    : "?",
                data.description.c_str());
    return 0;
}

}  // namespace

void add_predict(CLI::App& app, Runner& run) {
    auto a = std::make_shared<PredictArgs>();
    CLI::App* cmd = app.add_subcommand(
        "predict", "Classify images (PNG, JPEG, BMP, TIFF, WebP) with a trained checkpoint");
    cmd->add_option("checkpoint", a->checkpoint,
                    "checkpoint (.safetensors) written by lenz train, or an ONNX model (.onnx)")
        ->required();
    cmd->add_option(
           "images", a->images,
           "image files: PNG, JPEG, BMP, TIFF or WebP (resized and centre-cropped to the model's input)")
        ->required();
    cmd->add_option("--top", a->top, "how many classes to show (default 3)")->check(CLI::Range(1, 1 << 20));
    cmd->add_flag("--json", a->json, "per image, a list of {class, probability}");
    add_dtype_option(cmd, a->dtype, true);
    cmd->callback([&run, a] { run = [a] { return run_predict(*a); }; });

    auto s = std::make_shared<SampleArgs>();
    CLI::App* sample =
        app.add_subcommand("sample", "Write one image of a data set as PNG or JPEG, to try predict on");
    add_data_option(sample, s->data);
    sample->add_option("--split", s->split, "test (default) or train")
        ->check(CLI::IsMember({"test", "train"}));
    sample->add_option("--index", s->index, "which image (default 0)");
    sample->add_option("--val-split", s->val_split, "image folders without test/: the fraction held out")
        ->check(CLI::Range(0.0, 0.9));
    sample->add_option("--seed", s->seed, "seed of the --val-split (as in training)");
    sample->add_option("--out", s->out, "image file to write: .png (default sample.png) or .jpg");
    sample->callback([&run, s] { run = [s] { return run_sample(*s); }; });
}

}  // namespace lenz::cli
