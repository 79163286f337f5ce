// The contract every layer keeps. A layer file says, side by side: its output shape, parameter
// count, multiplication count, forward and backward. The analysis and the engine both call these.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lenz/buffer.h"
#include "lenz/layer_config.h"
#include "lenz/random.h"
#include "lenz/shape.h"

namespace lenz {

// One trainable (or running-statistics) tensor of a layer, named as in checkpoints.
struct ParamRef {
    std::string name;           // "weight", "bias", "running_mean", ...
    std::vector<int64_t> dims;  // PyTorch order, e.g. (OC, C, KH, KW)
    Buffer* value;
    Buffer* grad;  // nullptr for non-trainable tensors
    bool trainable;
};

// The engine's side of the contract, defined with the CPU engine (src/layers/pass.h): how a call
// is run (batch, layouts, workspace, what is folded in), and where an input's gradient goes.
struct Pass;
struct Absorption;
class InputGradient;
enum class ChannelsLast : unsigned char;

class Layer {
  public:
    virtual ~Layer() = default;

    // "conv", "maxpool", ... as in the model file.
    virtual std::string kind() const = 0;
    // The layer as one line of the model file; parsing it gives back the same layer.
    virtual std::string spec() const = 0;
    // Its settings as a value: what parse_layer_config(spec()) gives, with defaults filled in.
    virtual LayerConfig config() const = 0;

    // Infers and stores the output shape; throws ShapeError (without file position) if `in` does not fit.
    void connect(Shape in) { connect(std::vector<Shape>{in}); }
    // The same for every input of a layer that reads several values (add, concat, mul).
    void connect(const std::vector<Shape>& inputs) {
        output_ = infer_inputs(inputs);
        input_ = inputs.at(0);
        inputs_ = inputs;
    }
    // How many values the layer reads: 1, or for add, concat and mul, 2 or more.
    virtual bool reads_several() const { return false; }
    Shape input_shape() const { return input_; }  // the first input
    const std::vector<Shape>& input_shapes() const { return inputs_; }
    Shape output_shape() const { return output_; }

    virtual int64_t param_count() const { return 0; }  // trainable
    virtual int64_t state_count() const { return 0; }  // non-trainable (batch norm running statistics)
    virtual int64_t mult_count() const { return 0; }   // multiplications by weights, one image forward
    virtual int64_t input_grad_mults() const { return 0; }
    virtual int64_t weight_grad_mults() const { return 0; }
    // Other arithmetic (comparisons, additions, exponentials), one image forward; reported apart.
    virtual int64_t other_ops() const { return 0; }
    // The formula behind mult_count, e.g. "100·150·100 · (3·3·3)"; empty when it is zero.
    virtual std::string mult_formula() const { return ""; }
    virtual std::string param_formula() const { return ""; }

    // Flatten only renames dimensions: no memory, no work.
    virtual bool reshape_only() const { return false; }
    // May overwrite its input at inference, where nobody else reads it: standalone activations and
    // dropout; add and mul, one of their inputs of the output's shape (analyse() picks it).
    virtual bool in_place() const { return false; }
    // Scratch space one call (pass.batch, pass.training, ...) needs, in floats; the engine gives
    // each call one shared workspace. In training this includes room to build one image of dx per
    // thread (or the batch's, for dense); at inference, room for what the layer absorbed.
    virtual int64_t workspace_floats(const Pass& pass) const;
    // Inference: weights converted once when the runner is made (bf16 copies, in the layout the
    // kernel wants, with what the layer absorbed), instead of at every call: how many floats they
    // take, and writing them. The runner then hands them back in Pass::prepared; the weights must
    // not change meanwhile. scale and shift (one per output channel) are those of an absorbed affine
    // map, nullptr without one.
    virtual int64_t prepared_floats(const Pass& pass) const;
    virtual void prepare(float* prepared, const Pass& pass, const float* scale, const float* shift);
    // Inference: whether this layer can compute `absorbed` after its own output (a convolution
    // without an activation of its own can).
    virtual bool can_absorb(const Absorption& absorbed) const;
    // Inference: the layer is y = scale·x + shift per channel (batch norm, on its running
    // statistics), so the layer before it may absorb it; affine_map writes scale and shift.
    virtual bool per_channel_affine() const { return false; }
    virtual void affine_map(float* /*scale*/, float* /*shift*/) const {}
    // Inference, channels-last: this layer can read its input as the channels of several values, one
    // run of each at every pixel (Pass::input_runs), so that a concatenation before it need not be
    // written (a batch norm: DenseNet's concatenation, batch norm, relu, at every layer of a block).
    virtual bool reads_channel_runs() const { return false; }
    // Inference, channels-last: this layer can write its output as a run of channels inside longer
    // rows (Pass::output_stride), straight into its slice of the concatenation that reads it, which
    // then copies nothing of it (a max pool, a channel slice, an inner concatenation: Inception's and
    // ShuffleNet's). oneDNN's convolutions cannot: they write such a slice only with their reference
    // kernel, hundreds of times slower than the copy they would save.
    virtual bool writes_channel_slice() const { return false; }
    // Inference in int8 quantises this layer's input and its "weight" parameter, whose first
    // dimension is the output channel (convolutions and dense layers); the others run in float32.
    virtual bool runs_int8() const { return false; }
    // Which layouts forward and backward take (Pass::layouts); the default: (N, C, H, W) only.
    virtual ChannelsLast channels_last() const;
    // Reads its input flattened in (C, H, W) order (dense): at inference it can read channels-last
    // memory instead (Pass::flattened_from), with its weights permuted to match in prepare().
    virtual bool reads_flattened() const { return false; }
    // What training keeps for backward beyond the input and output (masks, batch statistics).
    virtual int64_t saved_floats(int64_t /*batch*/) const { return 0; }
    virtual void prepare_training(int64_t /*batch*/) {}

    virtual std::vector<ParamRef> params() { return {}; }
    virtual void init_params(Rng& /*rng*/) {}
    // Allocates one gradient per trainable parameter (zeroed); training only.
    virtual void allocate_gradients() {}

    // x: (N, C, H, W) of input_shape, y: (N, OC, OH, OW) of output_shape. Writes y, never allocates.
    virtual void forward(const float* x, float* y, const Pass& pass) = 0;
    // Accumulates parameter gradients and hands the input's gradient to dx, image by image (dx is
    // empty for the first layer). dy is the gradient before this layer's activation(): whoever hands
    // it over has folded that activation's derivative in already (the executor, for the last layer
    // the loss), so no layer applies its own. dy is scratch: a layer may overwrite it.
    virtual void backward(const float* x, const float* y, float* dy, const InputGradient& dx,
                          const Pass& pass) = 0;
    // The engine's calls: one pointer per input. A layer of one input gets it handed to the above;
    // layers that read several values override these. dxs[k] is empty where no gradient is wanted.
    virtual void forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass);
    virtual void backward_inputs(const std::vector<const float*>& xs, const float* y, float* dy,
                                 const std::vector<InputGradient>& dxs, const Pass& pass);

    // The activation applied last, whose derivative the engine folds into the gradient it stores
    // over this layer's output (none for one whose derivative needs the input).
    virtual ActivationSpec activation() const { return {}; }

  protected:
    virtual Shape infer(Shape in) const = 0;
    // Layers that read several values override this; the others take exactly one.
    virtual Shape infer_inputs(const std::vector<Shape>& inputs) const;

  private:
    Shape input_{};
    Shape output_{};
    std::vector<Shape> inputs_;
};

}  // namespace lenz
