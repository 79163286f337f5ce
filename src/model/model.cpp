#include "lenz/model.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "lenz/error.h"

namespace lenz {

bool is_value_name(const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
    });
}

Model::Model(Shape input) : input_(input), names_{"input"}, referenced_{0}, name_index_{{"input", 0}} {
    if (input.h <= 0 || input.w <= 0 || input.c <= 0)
        throw ShapeError("input " + input.str() + ": every size must be positive");
    input.elements();
}

Model& Model::add(std::unique_ptr<Layer> layer) {
    return add(std::move(layer), {size()});
}

Model& Model::add(std::unique_ptr<Layer> layer, std::vector<int64_t> inputs, const std::string& name) {
    const int64_t index = size();
    ranges_.clear();
    const std::string where = "layer " + std::to_string(index + 1) + " (" + layer->spec() + ")";
    if (inputs.empty()) inputs.push_back(index);
    std::vector<Shape> shapes;
    for (int64_t v : inputs) {
        if (v < 0 || v > index)
            throw Error(where + ": reads value " + std::to_string(v) + ", not written before it");
        shapes.push_back(value_shape(v));
    }
    if (!name.empty()) {
        if (!is_value_name(name))
            throw Error(where + ": '" + name + "' is not a name (letters, digits, '_', '-' and '.')");
        if (find_value(name) >= 0) throw Error(where + ": the name '" + name + "' is given twice");
    }
    try {
        layer->connect(shapes);
        layer->output_shape().elements();
    } catch (const ShapeError& e) {
        std::string on;
        for (const Shape& s : shapes) on += (on.empty() ? "" : " and ") + s.str();
        throw ShapeError(where + " on input " + on + ": " + e.what());
    }
    const bool next_in_chain = !layer->reads_several() && inputs.size() == 1 && inputs[0] == index;
    for (int64_t v : inputs)
        if (!next_in_chain) referenced_[static_cast<size_t>(v)] = 1;
    layers_.push_back(std::move(layer));
    inputs_.push_back(std::move(inputs));
    names_.push_back(name);
    referenced_.push_back(0);
    if (!name.empty()) name_index_.emplace(name, size());
    return *this;
}

Shape Model::value_shape(int64_t value) const {
    return value == 0 ? input_ : layers_[static_cast<size_t>(value - 1)]->output_shape();
}

int64_t Model::find_value(const std::string& name) const {
    const auto it = name_index_.find(name);
    return it == name_index_.end() ? -1 : it->second;
}

bool Model::is_chain() const {
    for (int64_t i = 0; i < size(); ++i)
        if (inputs(i).size() != 1 || inputs(i)[0] != i) return false;
    return true;
}

std::string Model::reference(int64_t value) const {
    const std::string& own = value_name(value);
    if (!own.empty()) return own;
    std::string name = "_" + std::to_string(value);
    while (find_value(name) >= 0) name += "_";  // never one of the file's own names
    return name;
}

std::string Model::layer_text(int64_t i) const {
    const Layer& layer = *layers_[static_cast<size_t>(i)];
    std::string text = layer.spec();
    if (layer.reads_several()) {
        std::string refs;
        for (int64_t v : inputs(i)) refs += " " + reference(v);
        text.insert(layer.kind().size(), refs);
    } else if (inputs(i)[0] != i) {
        text += " from=" + reference(inputs(i)[0]);
    }
    if (referenced_[static_cast<size_t>(i + 1)] || !value_name(i + 1).empty())
        text += " name=" + reference(i + 1);
    return text;
}

void Model::set_value_ranges(std::vector<ValueRange> ranges) {
    if (!ranges.empty() && static_cast<int64_t>(ranges.size()) != size() + 1)
        throw ShapeError(std::to_string(ranges.size()) + " calibrated ranges for a model of " +
                         std::to_string(size() + 1) + " values");
    for (const ValueRange& r : ranges)
        if (!(r.min <= r.max) || !std::isfinite(r.min) || !std::isfinite(r.max))
            throw ShapeError("calibrated range [" + std::to_string(r.min) + ", " + std::to_string(r.max) +
                             "] is not an interval of finite numbers");
    ranges_ = std::move(ranges);
}

void Model::replace_layer(int64_t i, std::unique_ptr<Layer> layer) {
    std::vector<std::pair<int64_t, std::unique_ptr<Layer>>> one;
    one.emplace_back(i, std::move(layer));
    replace_layers(std::move(one));
}

void Model::replace_layers(std::vector<std::pair<int64_t, std::unique_ptr<Layer>>> replacements) {
    if (replacements.empty()) return;
    std::sort(replacements.begin(), replacements.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::unique_ptr<Layer>> by_index(static_cast<size_t>(size()));
    for (auto& [i, layer] : replacements) {
        if (i < 0 || i >= size()) throw Error("replace_layer: no layer " + std::to_string(i + 1));
        by_index[static_cast<size_t>(i)] = std::move(layer);
    }
    const int64_t first = replacements.front().first;
    // A layer with parameters that reads what a replaced layer computes (through any layers) must be
    // replaced too: its parameters are sized by it.
    std::vector<char> affected(static_cast<size_t>(size() + 1), 0);
    for (int64_t j = first; j < size(); ++j) {
        bool reads_affected = false;
        for (int64_t v : inputs(j)) reads_affected = reads_affected || affected[static_cast<size_t>(v)];
        const bool replaced = by_index[static_cast<size_t>(j)] != nullptr;
        if (reads_affected && !replaced &&
            (this->layer(j).param_count() > 0 || this->layer(j).state_count() > 0))
            throw Error("layer " + std::to_string(first + 1) + " cannot be replaced: layer " +
                        std::to_string(j + 1) + " (" + this->layer(j).spec() +
                        ") after it has parameters sized by it");
        affected[static_cast<size_t>(j + 1)] = replaced || reads_affected;
    }
    ranges_.clear();
    auto shapes_of = [&](int64_t j) {
        std::vector<Shape> shapes;
        for (int64_t v : inputs(j)) shapes.push_back(value_shape(v));
        return shapes;
    };
    // Connected in order, each replacement before it takes its place; a layer that does not fit
    // names itself, and every layer is put back as it was.
    std::vector<std::unique_ptr<Layer>> replaced(static_cast<size_t>(size()));
    try {
        for (int64_t j = first; j < size(); ++j) {
            std::unique_ptr<Layer>& fresh = by_index[static_cast<size_t>(j)];
            Layer& target = fresh ? *fresh : layer(j);
            try {
                target.connect(shapes_of(j));
                target.output_shape().elements();
            } catch (const ShapeError& e) {
                throw ShapeError("layer " + std::to_string(j + 1) + " (" + target.spec() + "): " + e.what());
            }
            if (fresh) {
                replaced[static_cast<size_t>(j)] = std::move(layers_[static_cast<size_t>(j)]);
                layers_[static_cast<size_t>(j)] = std::move(fresh);
            }
        }
    } catch (...) {  // put back what was replaced, and connect the layers after it as before
        for (int64_t j = first; j < size(); ++j)
            if (replaced[static_cast<size_t>(j)])
                layers_[static_cast<size_t>(j)] = std::move(replaced[static_cast<size_t>(j)]);
        for (int64_t j = first; j < size(); ++j) layers_[static_cast<size_t>(j)]->connect(shapes_of(j));
        throw;
    }
}

void Model::freeze(int64_t layers) {
    if (layers < 0 || layers > size())
        throw Error("cannot freeze " + std::to_string(layers) + " layers of a model of " +
                    std::to_string(size()));
    frozen_ = layers;
}

bool Model::trains(int64_t i) const {
    return !frozen(i) && layer(i).param_count() > 0;
}

void Model::init_params(uint64_t seed) {
    for (int64_t i = 0; i < size(); ++i) init_layer_params(i, seed);
}

void Model::init_layer_params(int64_t i, uint64_t seed) {
    Rng rng = Rng::derive(seed, 0x1417, static_cast<uint64_t>(i + 1));
    layers_[static_cast<size_t>(i)]->init_params(rng);
}

void Model::allocate_gradients() {
    gradient_offset_.assign(static_cast<size_t>(size() + 1), 0);
    int64_t floats = 0;
    for (int64_t i = 0; i < size(); ++i) {
        gradient_offset_[static_cast<size_t>(i)] = floats;
        if (frozen(i)) continue;
        for (const ParamRef& p : layers_[static_cast<size_t>(i)]->params())
            if (p.grad) floats = checked_add(floats, p.value->size(), "gradients");
    }
    gradient_offset_.back() = floats;
    gradients_ = Buffer(floats);
    for (int64_t i = frozen_; i < size(); ++i) {
        int64_t at = gradient_offset_[static_cast<size_t>(i)];
        for (ParamRef& p : layers_[static_cast<size_t>(i)]->params()) {
            if (!p.grad) continue;
            *p.grad = Buffer::view(gradients_.data() + at, p.value->size());
            at += p.value->size();
        }
    }
}

std::vector<Model::NamedParam> Model::named_params() {
    std::vector<NamedParam> out;
    for (size_t i = 0; i < layers_.size(); ++i)
        for (ParamRef& p : layers_[i]->params())
            out.push_back({std::to_string(i + 1) + "." + layers_[i]->kind() + "." + p.name,
                           static_cast<int64_t>(i + 1), p});
    return out;
}

std::string Model::to_text() const {
    std::string s = "input " + input_.str() + "\n";
    for (int64_t i = 0; i < size(); ++i) s += layer_text(i) + "\n";
    return s;
}

bool Model::ends_with_softmax() const {
    return !layers_.empty() && over_channels(layers_.back()->activation().kind);
}

int64_t class_count(const Model& model, const std::string& what) {
    const Shape out = model.output_shape();
    if (out.h * out.w != 1)
        throw ShapeError(
            what + ": the model's output is a " + out.str() + " map (" + std::to_string(out.c) +
            " channels at each of " + std::to_string(out.h * out.w) +
            " positions: a fully convolutional network), where classifying needs one score per class; lenz "
            "run computes such outputs");
    return out.c;
}

bool segments(const Model& model) {
    const Shape in = model.input_shape(), out = model.output_shape();
    return out.h * out.w > 1 && out.h == in.h && out.w == in.w;
}

}  // namespace lenz
