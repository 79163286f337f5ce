// Turns the outputs of a model's layers for one image (layer_outputs) into pictures.
#include <algorithm>

#include "lenz/buffer.h"
#include "lenz/error.h"
#include "lenz/report.h"

namespace lenz {

int64_t first_conv_layer(Model& model) {
    for (int64_t i = 0; i < model.size(); ++i)
        if (std::holds_alternative<Conv2dConfig>(model.layer(i).config())) return i;
    return -1;
}

namespace {

bool shows_feature_maps(const std::string& kind) {
    return kind == "conv" || kind == "maxpool" || kind == "avgpool" || kind == "globalavgpool" ||
           kind == "globalmaxpool";
}

std::string two_digits(int64_t n) {
    return (n < 10 ? "0" : "") + std::to_string(n);
}

}  // namespace

ModelPictures picture_model(Model& model, const Image& image, const Normalization& norm) {
    const Shape in = model.input_shape();
    const Image fitted = fit_image(image, in.h, in.w, in.c);
    // (H, W, C) interleaved -> (C, H, W) planar, then the training set's normalisation
    const int64_t plane = in.h * in.w;
    std::vector<uint8_t> planar(static_cast<size_t>(in.elements()));
    for (int64_t c = 0; c < in.c; ++c)
        for (int64_t p = 0; p < plane; ++p)
            planar[static_cast<size_t>(c * plane + p)] = fitted.pixels[static_cast<size_t>(p * in.c + c)];
    std::vector<float> input(planar.size());
    if (static_cast<int64_t>(norm.mean.size()) != in.c || static_cast<int64_t>(norm.stddev.size()) != in.c)
        throw ShapeError("the normalisation has " + std::to_string(norm.mean.size()) +
                         " channels but the model's input has " + std::to_string(in.c));
    normalize_image(planar.data(), in.c, plane, norm, input.data());

    ModelPictures pictures;
    const auto outputs = layer_outputs(model, input.data());
    // A classifier's output; a segmentation model's map of classes has no one answer to show.
    const Shape out = model.output_shape();
    if (!outputs.empty() && out.h * out.w == 1)
        pictures.probabilities =
            class_probabilities(model, outputs.back().data(), static_cast<int64_t>(outputs.back().size()));
    for (int64_t i = 0; i < model.size(); ++i) {
        Layer& layer = model.layer(i);
        if (!shows_feature_maps(layer.kind())) continue;
        const Shape s = layer.output_shape();
        const std::string size =
            std::to_string(s.h) + " x " + std::to_string(s.w) + " x " + std::to_string(s.c);
        pictures.feature_maps.push_back(
            feature_map_grid(outputs[static_cast<size_t>(i)].data(), s,
                             "layer " + std::to_string(i + 1) + ": " + layer.spec() + "  ->  " + size));
        pictures.feature_map_names.push_back(two_digits(i + 1) + "-" + layer.kind() + "-" + s.str());
    }
    const int64_t conv = first_conv_layer(model);
    if (conv >= 0) {
        Layer& layer = model.layer(conv);
        const ParamRef weight = layer.params().at(0);
        const auto& d = weight.dims;  // (OC, C, KH, KW)
        pictures.filters =
            filter_grid(weight.value->data(), d[0], d[1], d[2], d[3],
                        "layer " + std::to_string(conv + 1) + " filters: " + std::to_string(d[0]) + " x " +
                            std::to_string(d[2]) + "x" + std::to_string(d[3]) + "x" + std::to_string(d[1]) +
                            (d[1] == 3 ? " (RGB)" : " (blue < 0 < red)"));
    }
    return pictures;
}

}  // namespace lenz
