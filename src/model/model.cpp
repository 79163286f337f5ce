#include "lenz/model.h"

#include "lenz/error.h"

namespace lenz {

Model::Model(Shape input) : input_(input) {
    if (input.h <= 0 || input.w <= 0 || input.c <= 0)
        throw ShapeError("input " + input.str() + ": every size must be positive");
    input.elements();
}

Model& Model::add(std::unique_ptr<Layer> layer) {
    const Shape in = output_shape();
    try {
        layer->connect(in);
        layer->output_shape().elements();
    } catch (const ShapeError& e) {
        throw ShapeError("layer " + std::to_string(layers_.size() + 1) + " (" + layer->spec() +
                         ") on input " + in.str() + ": " + e.what());
    }
    layers_.push_back(std::move(layer));
    return *this;
}

void Model::init_params(uint64_t seed) {
    for (size_t i = 0; i < layers_.size(); ++i) {
        Rng rng = Rng::derive(seed, 0x1417, i + 1);
        layers_[i]->init_params(rng);
    }
}

void Model::allocate_gradients() {
    for (auto& layer : layers_) layer->allocate_gradients();
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
    for (const auto& layer : layers_) s += layer->spec() + "\n";
    return s;
}

bool Model::ends_with_softmax() const {
    return !layers_.empty() && layers_.back()->activation().kind == Activation::softmax;
}

}  // namespace lenz
