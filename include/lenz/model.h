// A model: an input shape and an ordered list of layers whose shapes are inferred as they are added.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lenz/layer.h"
#include "lenz/layers.h"

namespace lenz {

class Model {
  public:
    explicit Model(Shape input);
    Model(Model&&) = default;
    Model& operator=(Model&&) = default;

    // Connects the layer to the current output; throws ShapeError "layer 3 (conv 64 3x3): ..." if it does not
    // fit.
    Model& add(std::unique_ptr<Layer> layer);

    Shape input_shape() const { return input_; }
    Shape output_shape() const { return layers_.empty() ? input_ : layers_.back()->output_shape(); }
    int64_t size() const { return static_cast<int64_t>(layers_.size()); }
    Layer& layer(int64_t i) { return *layers_[static_cast<size_t>(i)]; }
    const Layer& layer(int64_t i) const { return *layers_[static_cast<size_t>(i)]; }

    // Allocates and initialises every parameter from `seed` (the same seed gives the same weights).
    void init_params(uint64_t seed);
    void allocate_gradients();

    // Parameters named "<layer number>.<kind>.<name>", numbered from 1 as in the summary: "1.conv.weight".
    struct NamedParam {
        std::string name;
        int64_t layer;
        ParamRef ref;
    };
    std::vector<NamedParam> named_params();

    // The model in the text format; parse_model(to_text()) gives back the same model.
    std::string to_text() const;

    // Softmax ends the model (fused into the last layer or standalone): training fuses it with the loss.
    bool ends_with_softmax() const;

  private:
    Shape input_;
    std::vector<std::unique_ptr<Layer>> layers_;
};

// The `.lenz` text format (see README). Errors: ParseError "file:line:col: what (expected ...)".
Model parse_model(const std::string& text, const std::string& filename);
Model load_model_file(const std::string& path);

}  // namespace lenz
