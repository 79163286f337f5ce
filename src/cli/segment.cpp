// `lenz segment CHECKPOINT IMAGE... --out DIR`: the class of every pixel of each image, at the
// image's own size, as a mask PNG and as an overlay of the classes in colour with a legend.
//
// Each image is letterboxed into the model's input (its aspect kept, the rest filled with the
// normalisation's mean, which normalises to 0), and the scores of the part that holds the image
// are resampled bilinearly to the image's size before the top class is taken at each pixel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/onnx.h"
#include "lenz/report.h"

namespace lenz::cli {
namespace {

struct SegmentArgs {
    std::string checkpoint, out = ".";
    std::vector<std::string> images;
    bool json = false;
    std::string dtype;  // empty: the checkpoint's (int8 where quantised)
};

// The top class at every pixel of an image of height x width, from the scores (K, H, W) of the
// letterboxed input: each pixel's centre mapped into the box, the scores read bilinearly there.
Image classes_at_image_size(const float* scores, int64_t K, const Shape& in, const Letterboxed& box,
                            int64_t height, int64_t width) {
    const int64_t plane = in.h * in.w;
    // Source positions along one axis: the two taps and the weight of the second.
    struct Tap {
        int64_t a, b;
        float t;
    };
    const auto taps = [](int64_t size, int64_t offset, int64_t inner) {
        std::vector<Tap> out(static_cast<size_t>(size));
        for (int64_t i = 0; i < size; ++i) {
            const double at =
                (static_cast<double>(i) + 0.5) * static_cast<double>(inner) / static_cast<double>(size) - 0.5;
            const double clamped = std::clamp(at, 0.0, static_cast<double>(inner - 1));
            const auto a = static_cast<int64_t>(std::floor(clamped));
            const int64_t b = std::min(a + 1, inner - 1);
            out[static_cast<size_t>(i)] = {offset + a, offset + b,
                                           static_cast<float>(clamped - static_cast<double>(a))};
        }
        return out;
    };
    const std::vector<Tap> rows = taps(height, box.top, box.height), cols = taps(width, box.left, box.width);
    Image mask{height, width, 1, std::vector<uint8_t>(static_cast<size_t>(height * width))};
    for (int64_t y = 0; y < height; ++y) {
        const Tap& r = rows[static_cast<size_t>(y)];
        for (int64_t x = 0; x < width; ++x) {
            const Tap& c = cols[static_cast<size_t>(x)];
            int64_t best = 0;
            float top = -INFINITY;
            for (int64_t k = 0; k < K; ++k) {
                const float* s = scores + k * plane;
                const float upper = s[r.a * in.w + c.a] + c.t * (s[r.a * in.w + c.b] - s[r.a * in.w + c.a]);
                const float lower = s[r.b * in.w + c.a] + c.t * (s[r.b * in.w + c.b] - s[r.b * in.w + c.a]);
                const float v = upper + r.t * (lower - upper);
                if (v > top) top = v, best = k;
            }
            mask.pixels[static_cast<size_t>(y * width + x)] = static_cast<uint8_t>(best);
        }
    }
    return mask;
}

// The image with every class but the first (usually the background) blended in its colour at half
// strength, above a legend of the classes present: a colour box and the name, one a line.
Image overlay(const Image& image, const Image& mask, const std::vector<std::string>& names,
              const std::vector<int64_t>& counts) {
    const Image colours = colour_mask(mask);
    int64_t present = 0;
    for (int64_t c : counts) present += c > 0;
    const int64_t legend = present * (kLineHeight + 3) + 6;
    int64_t legend_width = 0;
    for (size_t k = 0; k < counts.size(); ++k)
        if (counts[k] > 0) legend_width = std::max(legend_width, 20 + text_width(names[k]) + 6);
    Canvas canvas(std::max(image.width, legend_width), image.height + legend);
    for (int64_t y = 0; y < image.height; ++y)
        for (int64_t x = 0; x < image.width; ++x) {
            const size_t p = static_cast<size_t>(y * image.width + x);
            const uint8_t* px = image.pixels.data() + p * static_cast<size_t>(image.channels);
            Rgb c{px[0], px[image.channels == 3 ? 1 : 0], px[image.channels == 3 ? 2 : 0]};
            if (mask.pixels[p] != 0) {
                const uint8_t* m = colours.pixels.data() + 3 * p;
                c = {static_cast<uint8_t>((c.r + m[0] + 1) / 2), static_cast<uint8_t>((c.g + m[1] + 1) / 2),
                     static_cast<uint8_t>((c.b + m[2] + 1) / 2)};
            }
            canvas.set(x, y, c);
        }
    int64_t y = image.height + 4;
    for (size_t k = 0; k < counts.size(); ++k) {
        if (counts[k] == 0) continue;
        const Image swatch = colour_mask(Image{1, 1, 1, {static_cast<uint8_t>(k)}});
        canvas.fill_rect(4, y, 12, kLineHeight - 1, {swatch.pixels[0], swatch.pixels[1], swatch.pixels[2]});
        canvas.draw_text(20, y, names[k], {31, 36, 48});
        y += kLineHeight + 3;
    }
    return canvas.to_image();
}

int run_segment(const SegmentArgs& a) {
    if (!a.dtype.empty()) precision_of(a.dtype);  // before loading anything
    LoadedModel loaded = load_trained_model(a.checkpoint);
    Model& model = loaded.model;
    const Precision precision = precision_for(a.dtype, model);
    const Shape in = model.input_shape();
    if (!segments(model))
        throw ShapeError("segment: " + a.checkpoint + ": the model's output is " +
                         model.output_shape().str() + ", not a map of its input's " + std::to_string(in.h) +
                         "x" + std::to_string(in.w) + " with a channel per class (lenz predict classifies)");
    const int64_t K = model.output_shape().c;
    if (K > 255)
        throw ShapeError("segment: " + a.checkpoint + ": " + std::to_string(K) +
                         " classes; a mask PNG holds 255");
    std::vector<std::string> names;
    for (int64_t k = 0; k < K; ++k)
        names.push_back(k < static_cast<int64_t>(loaded.info.class_names.size())
                            ? loaded.info.class_names[static_cast<size_t>(k)]
                            : "class " + std::to_string(k));
    const Normalization& norm = loaded.info.normalization;
    std::vector<uint8_t> fill(static_cast<size_t>(in.c), 0);
    for (int64_t c = 0; c < in.c && c < static_cast<int64_t>(norm.mean.size()); ++c)
        fill[static_cast<size_t>(c)] = static_cast<uint8_t>(
            std::clamp(std::lround(norm.mean[static_cast<size_t>(c)] * 255.0f), 0L, 255L));
    // NAME.mask.png for every image: two of one name would overwrite each other's files.
    std::map<std::string, std::string> by_stem;
    for (const std::string& path : a.images) {
        const std::string stem = std::filesystem::path(path).stem().string();
        if (const auto [it, added] = by_stem.emplace(stem, path); !added && it->second != path)
            throw UsageError("segment: " + it->second + " and " + path + " are both named " + stem +
                             ": their masks would overwrite each other in " + a.out +
                             "; segment them into different --out folders");
    }
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    if (ec) throw IoError(a.out + ": cannot create the output folder: " + ec.message());
    Inference inference(model, 1, precision);
    std::vector<uint8_t> planar(static_cast<size_t>(in.elements()));
    std::vector<float> input(static_cast<size_t>(in.elements()));
    nlohmann::json all = nlohmann::json::array();
    int failed = 0;
    for (const std::string& path : a.images) {
        // A bad image is reported and skipped, the others still segmented (as predict does).
        try {
            const Image image = read_image(path);
            const Letterboxed box = letterbox_image(image, in.h, in.w, in.c, fill);
            const int64_t plane = in.h * in.w;
            for (int64_t c = 0; c < in.c; ++c)
                for (int64_t p = 0; p < plane; ++p)
                    planar[static_cast<size_t>(c * plane + p)] =
                        box.image.pixels[static_cast<size_t>(p * in.c + c)];
            normalize_image(planar.data(), in.c, plane, norm, input.data());
            const float* scores = inference.run(input.data(), 1);
            const Image mask = classes_at_image_size(scores, K, in, box, image.height, image.width);
            std::vector<int64_t> counts(static_cast<size_t>(K), 0);
            for (uint8_t v : mask.pixels) ++counts[v];
            const std::string stem = std::filesystem::path(path).stem().string();
            const std::string mask_path = (std::filesystem::path(a.out) / (stem + ".mask.png")).string();
            const std::string overlay_path =
                (std::filesystem::path(a.out) / (stem + ".overlay.png")).string();
            write_png(mask_path, mask);
            write_png(overlay_path, overlay(image, mask, names, counts));
            const double pixels = static_cast<double>(image.height * image.width);
            nlohmann::json classes = nlohmann::json::array();
            std::string line;
            for (int64_t k = 0; k < K; ++k) {
                const int64_t n = counts[static_cast<size_t>(k)];
                if (n == 0) continue;
                classes.push_back({{"class", names[static_cast<size_t>(k)]},
                                   {"index", k},
                                   {"pixels", n},
                                   {"fraction", static_cast<double>(n) / pixels}});
                char share[32];
                std::snprintf(share, sizeof share, " %.1f%%", 100 * static_cast<double>(n) / pixels);
                line += (line.empty() ? "" : ",") + std::string(" ") + names[static_cast<size_t>(k)] + share;
            }
            if (a.json)
                all.push_back({{"image", path},
                               {"height", image.height},
                               {"width", image.width},
                               {"mask", mask_path},
                               {"overlay", overlay_path},
                               {"classes", classes}});
            else
                std::printf("%s: %lldx%lld ->%s (%s, %s)\n", path.c_str(),
                            static_cast<long long>(image.height), static_cast<long long>(image.width),
                            line.c_str(), mask_path.c_str(), overlay_path.c_str());
        } catch (const Error& e) {
            std::fflush(stdout);
            std::fprintf(stderr, "lenz: error: %s\n", e.what());
            if (a.json) all.push_back({{"image", path}, {"error", e.what()}});
            ++failed;
        }
    }
    if (a.json) std::cout << all.dump(2) << "\n";
    return failed ? 1 : 0;
}

}  // namespace

void add_segment(CLI::App& app, Runner& run) {
    auto a = std::make_shared<SegmentArgs>();
    CLI::App* cmd = app.add_subcommand(
        "segment", "The class of every pixel of images, as mask and overlay PNGs, with a segmentation model");
    cmd->add_option(
           "checkpoint", a->checkpoint,
           "checkpoint (.safetensors) written by lenz train, or an ONNX model (.onnx), whose output is "
           "a map of its input's size with a channel per class")
        ->required();
    cmd->add_option(
           "images", a->images,
           "image files: PNG, JPEG, BMP, TIFF or WebP, of any size (letterboxed into the model's input; "
           "the masks come out at each image's own size)")
        ->required();
    cmd->add_option(
        "--out", a->out,
        "folder for NAME.mask.png (the class of every pixel, 8-bit grey) and NAME.overlay.png (the "
        "classes in colour, with a legend); default: the current folder");
    cmd->add_flag("--json", a->json, "per image, its size, the files written and each class's pixels");
    add_dtype_option(cmd, a->dtype, true);
    cmd->callback([&run, a] { run = [a] { return run_segment(*a); }; });
}

}  // namespace lenz::cli
