// A model: an input shape and layers in order, each reading values written before it, so the order
// is a topological order of the graph and cycles cannot be written. Value 0 is the model's input;
// value i + 1 is the output of layer i. A chain is the common case: each layer reads the value
// just before it. The model's output is the last layer's.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "lenz/layer.h"
#include "lenz/layers.h"

namespace lenz {

// The smallest and largest element calibration saw of one value (int8 inference).
struct ValueRange {
    float min = 0, max = 0;
};

class Model {
  public:
    explicit Model(Shape input);
    Model(Model&&) = default;
    Model& operator=(Model&&) = default;

    // Connects the layer to the latest value (or to `inputs`, value ids written before it) and names
    // its output (names: letters, digits, '_', '-', '.'). Throws ShapeError "layer 3 (conv 64 3x3):
    // ..." if it does not fit, and Error for an unknown value or a name given twice.
    Model& add(std::unique_ptr<Layer> layer);
    Model& add(std::unique_ptr<Layer> layer, std::vector<int64_t> inputs, const std::string& name = "");

    // The values layer i reads.
    const std::vector<int64_t>& inputs(int64_t i) const { return inputs_[static_cast<size_t>(i)]; }
    Shape value_shape(int64_t value) const;
    // The value's name ("" if it has none; value 0 is "input") and the value of a name (-1 if none).
    const std::string& value_name(int64_t value) const { return names_[static_cast<size_t>(value)]; }
    int64_t find_value(const std::string& name) const;
    // Each layer reads only the value just before it.
    bool is_chain() const;
    // Layer i as its line of the model file, with what it reads: "conv 64 3x3 from=stem name=b1",
    // "add stem b2 relu".
    std::string layer_text(int64_t i) const;

    Shape input_shape() const { return input_; }
    Shape output_shape() const { return layers_.empty() ? input_ : layers_.back()->output_shape(); }
    int64_t size() const { return static_cast<int64_t>(layers_.size()); }
    Layer& layer(int64_t i) { return *layers_[static_cast<size_t>(i)]; }
    const Layer& layer(int64_t i) const { return *layers_[static_cast<size_t>(i)]; }

    // Puts `layer` in place of layer i, reading the same values, and connects the layers after it
    // again (their output shapes may change). The layers after it must have no parameters, as the
    // activation after a classifier's last dense layer. The new layer's parameters are not allocated.
    void replace_layer(int64_t i, std::unique_ptr<Layer> layer);
    // Several at once (a segmentation head's convolutions that an add joins): the layers after the
    // first replaced one that have parameters must be replaced too.
    void replace_layers(std::vector<std::pair<int64_t, std::unique_ptr<Layer>>> replacements);

    // Fine-tuning: the first `layers` layers keep their weights. Training runs them as inference
    // does (batch norm with its running statistics, no dropout), gives them no gradients and no
    // optimizer state, and runs no backward through layers that only frozen layers feed.
    void freeze(int64_t layers);
    int64_t frozen_layers() const { return frozen_; }
    bool frozen(int64_t i) const { return i < frozen_; }
    // Layer i has trainable parameters and is not frozen.
    bool trains(int64_t i) const;

    // Allocates and initialises every parameter from `seed` (the same seed gives the same weights).
    void init_params(uint64_t seed);
    // Layer i's parameters only, with the weights init_params(seed) would give it.
    void init_layer_params(int64_t i, uint64_t seed);
    // One gradient per trainable parameter of the layers that are not frozen, zeroed, all in one
    // flat store, layer after layer in file order (each layer's gradient Buffers are views into
    // it): one buffer to zero, and to sum across processes (MPI) in a few large pieces.
    void allocate_gradients();
    float* gradient_store() { return gradients_.data(); }
    int64_t gradient_floats() const { return gradients_.size(); }
    // Where layer i's gradients start in the store; layer i's end where layer i + 1's start, and
    // gradient_offset(size()) is gradient_floats().
    int64_t gradient_offset(int64_t layer) const { return gradient_offset_[static_cast<size_t>(layer)]; }

    // Parameters named "<layer number>.<kind>.<name>", numbered from 1 as in the summary: "1.conv.weight".
    struct NamedParam {
        std::string name;
        int64_t layer;
        ParamRef ref;
    };
    std::vector<NamedParam> named_params();

    // The model in the text format; parse_model(to_text()) gives back the same model.
    std::string to_text() const;

    // Softmax or log-softmax ends the model (fused into the last layer or standalone): training fuses
    // it with the loss, which reads the logits before it.
    bool ends_with_softmax() const;

    // int8 inference quantises each convolution's and dense layer's input by the range calibration
    // saw (lenz quantize): one per value, value_ranges()[v] for value v; empty if never calibrated.
    // Adding or replacing a layer forgets them.
    const std::vector<ValueRange>& value_ranges() const { return ranges_; }
    void set_value_ranges(std::vector<ValueRange> ranges);
    bool calibrated() const { return !ranges_.empty(); }

  private:
    // A name for layer_text to refer to the value by: its own, or "_N" for value N.
    std::string reference(int64_t value) const;

    Shape input_;
    std::vector<std::unique_ptr<Layer>> layers_;
    std::vector<std::vector<int64_t>> inputs_;  // per layer
    std::vector<std::string> names_;            // per value
    std::vector<char> referenced_;              // per value: read other than by the next layer alone
    std::unordered_map<std::string, int64_t> name_index_;
    int64_t frozen_ = 0;
    Buffer gradients_;                      // the flat gradient store (allocate_gradients)
    std::vector<int64_t> gradient_offset_;  // per layer, and one past the last
    std::vector<ValueRange> ranges_;        // per value, from calibration
};

// Names of values in the model file and the builder API: letters, digits, '_', '-' and '.'.
bool is_value_name(const std::string& name);

// The number of classes of a classifier: its output must be one score per class (1x1xK). A map, a
// fully convolutional network's HxWxK, is refused (ShapeError, starting with `what`) rather than
// read as H·W·K classes.
int64_t class_count(const Model& model, const std::string& what);
// Whether the model segments: its output a map of its input's height and width (more than one
// pixel), a channel per class.
bool segments(const Model& model);

}  // namespace lenz
