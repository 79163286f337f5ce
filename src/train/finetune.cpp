// Fine-tuning a trained model: a fresh last dense layer (or classifier convolution) sized for a new
// data set's classes, and the
// layer a --freeze names, by its name or its number in the summary.
#include "lenz/finetune.h"

#include <algorithm>
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

int64_t replace_head(Model& model, int64_t classes, uint64_t seed) {
    if (classes < 1) throw ShapeError("a new head needs at least one class, got " + std::to_string(classes));
    const int64_t L = model.size();
    // The head is the last layer with weights; the layers after it (an activation, a pool, flatten:
    // SqueezeNet's classifier is a convolution, relu, global average and flatten) stay, reading it.
    int64_t head = L - 1;
    while (head > 0 && model.layer(head).param_count() == 0 && !model.layer(head).reads_several() &&
           model.inputs(head)[0] == head)
        --head;
    const LayerConfig config = head >= 0 ? model.layer(head).config() : LayerConfig{};
    const auto* dense = std::get_if<DenseConfig>(&config);
    const auto* conv = std::get_if<Conv2dConfig>(&config);
    if (!dense && !(conv && conv->groups == 1))
        throw ShapeError(
            "the model does not end in a dense layer or a convolution (its last layer with weights "
            "is " +
            (head >= 0 ? "layer " + std::to_string(head + 1) + ", " + model.layer(head).spec() : "none") +
            "); a new head replaces the last one of those");
    if (dense) {
        DenseConfig resized = *dense;
        resized.units = classes;
        model.replace_layer(head, make_dense(resized));
    } else {
        Conv2dConfig resized = *conv;
        resized.filters = classes;
        model.replace_layer(head, make_conv2d(resized));
    }
    model.init_layer_params(head, seed);
    return head;
}

}  // namespace lenz
