// Fine-tuning a trained model: a fresh head (the last dense layers or convolutions) sized for a new
// data set's classes, and the layer a --freeze names, by its name or its number in the summary.
#include "lenz/finetune.h"

#include <algorithm>
#include <memory>
#include <variant>

#include "lenz/error.h"

namespace lenz {

int64_t find_layer(const Model& model, const std::string& name_or_number) {
    const int64_t value = model.find_value(name_or_number);
    if (value > 0) return value - 1;  // value 0 is the input, which no layer writes
    if (value == 0 || name_or_number.empty() || name_or_number.size() > 18 ||
        !std::all_of(name_or_number.begin(), name_or_number.end(),
                     [](char c) { return c >= '0' && c <= '9'; }))
        return -1;
    const int64_t number = std::stoll(name_or_number);
    return number >= 1 && number <= model.size() ? number - 1 : -1;
}

std::vector<int64_t> replace_head(Model& model, int64_t classes, uint64_t seed) {
    if (classes < 1) throw ShapeError("a new head needs at least one class, got " + std::to_string(classes));
    // The head: the layers with weights that reach the output through layers without weights which
    // keep the channels (an activation, a pool, flatten, an upsampling, an add: SqueezeNet's
    // classifier is a convolution, relu, global average and flatten; LR-ASPP's two convolutions
    // meet in an add).
    std::vector<int64_t> heads;
    std::vector<char> seen(static_cast<size_t>(model.size()), 0);
    const auto refuse = [&](int64_t layer) {
        throw ShapeError(
            "the model does not end in dense layers or convolutions that only layers without weights "
            "follow (layer " +
            std::to_string(layer + 1) + ", " + model.layer(layer).spec() +
            "); a new head replaces the last ones of those");
    };
    std::vector<int64_t> pending{model.size()};  // values to walk back from
    while (!pending.empty()) {
        const int64_t value = pending.back();
        pending.pop_back();
        if (value == 0) refuse(0);  // the input, reached without a layer with weights
        const int64_t layer = value - 1;
        if (seen[static_cast<size_t>(layer)]) continue;
        seen[static_cast<size_t>(layer)] = 1;
        const Layer& l = model.layer(layer);
        if (l.param_count() > 0 || l.state_count() > 0) {
            const LayerConfig config = l.config();
            const auto* conv = std::get_if<Conv2dConfig>(&config);
            if (!std::holds_alternative<DenseConfig>(config) && !(conv && conv->groups == 1)) refuse(layer);
            heads.push_back(layer);
            continue;
        }
        for (int64_t v : model.inputs(layer)) {
            if (model.value_shape(v).c != l.output_shape().c) refuse(layer);  // a concatenation, a reshape
            pending.push_back(v);
        }
    }
    std::sort(heads.begin(), heads.end());
    std::vector<std::pair<int64_t, std::unique_ptr<Layer>>> fresh;
    for (int64_t head : heads) {
        const LayerConfig config = model.layer(head).config();
        if (const auto* dense = std::get_if<DenseConfig>(&config)) {
            DenseConfig resized = *dense;
            resized.units = classes;
            fresh.emplace_back(head, make_dense(resized));
        } else {
            Conv2dConfig resized = std::get<Conv2dConfig>(config);
            resized.filters = classes;
            fresh.emplace_back(head, make_conv2d(resized));
        }
    }
    model.replace_layers(std::move(fresh));
    for (int64_t head : heads) model.init_layer_params(head, seed);
    return heads;
}

}  // namespace lenz
