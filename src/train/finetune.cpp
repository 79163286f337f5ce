// Fine-tuning a trained model: a fresh last dense layer sized for a new data set's classes, and the
// layer a --freeze names, by its name or its number in the summary.
#include <algorithm>
#include <variant>

#include "lenz/error.h"
#include "lenz/train.h"

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
    int64_t head = L - 1;
    // A standalone activation (softmax) after the dense layer stays, reading the new one.
    if (head > 0 && std::holds_alternative<ActivationConfig>(model.layer(head).config()) &&
        model.inputs(head)[0] == head)
        --head;
    if (head < 0 || !std::holds_alternative<DenseConfig>(model.layer(head).config()))
        throw ShapeError("the model does not end in a dense layer (its last layer is " +
                         (L ? "layer " + std::to_string(L) + ", " + model.layer(L - 1).spec() : "none") +
                         "); a new head replaces a final dense layer");
    DenseConfig config = std::get<DenseConfig>(model.layer(head).config());
    config.units = classes;
    model.replace_layer(head, make_dense(config));
    model.init_layer_params(head, seed);
    return head;
}

}  // namespace lenz
