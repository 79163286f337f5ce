// What the executor tells a layer for one forward or backward call, and where the layer hands the
// gradient of its input over. These are the CPU engine's terms (layouts, folding, workspace): the
// public Layer interface only names them.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/layout.h"
#include "lenz/activation.h"
#include "lenz/error.h"
#include "lenz/precision.h"
#include "lenz/shape.h"

namespace lenz {

// What a layer's forward and backward take: (N, C, H, W) only; either layout on either side
// (convolutions, which oneDNN reads and writes both ways); or either layout, the same for the output
// and every input of the output's height and width (element-wise layers, batch norm, concat).
enum class ChannelsLast : unsigned char { no, converts, keeps };

// Inference only: what a layer computes on behalf of layers that read only its output, which the
// engine folds into it and then does not run: a per-channel affine map (a batch norm on its
// running statistics), which goes into the prepared weights and bias; then the add of a residual
// connection, whose other input the layer's output buffer holds when it runs; then an activation.
// Besides, a global average pool of that output, whose means the layer writes in the same pass as
// the activation (a squeeze-and-excitation block's squeeze), into the pool's own output.
struct Absorption {
    bool affine = false;
    bool residual = false;
    ActivationSpec activation;
    bool channel_means = false;
    bool any() const { return affine || residual || activation.kind != Activation::none || channel_means; }
};

// What one forward or backward call may use. Memory is planned by the caller; layers never allocate.
struct Pass {
    int64_t batch = 1;
    bool training = false;
    float* workspace = nullptr;            // at least workspace_floats(*this) floats
    int64_t workspace_capacity = 0;        // how many floats there are at workspace
    Layouts layouts;                       // of x and dx, y and dy; nchw unless the layer takes channels-last
    Precision precision = Precision::f32;  // of convolutions and matrix products
    // Inference in int8: how the layer's input is quantised, from the model's calibrated ranges;
    // whether it is held so already (int8 bytes where x points); and whether the layer writes its
    // output in int8, with what scale (see InferenceSchedule::int8_values).
    Int8Quant int8_input;
    bool int8_input_stored = false;
    std::optional<Int8Quant> int8_output;
    Int8Io int8_io() const { return {int8_input, int8_input_stored, int8_output}; }
    // Inference only: what prepare() wrote for this layer, for batch prepared_batch (or nullptr).
    const float* prepared = nullptr;
    int64_t prepared_batch = 0;
    // What prepare() wrote, for a layer that cannot run without it (int8 weights exist only there).
    const float* required_prepared() const {
        if (!prepared) throw Error("internal: int8 runs only on weights the runner prepared");
        return prepared;
    }
    // Inference only, a layer that reads flattened (dense) from channels-last memory: that
    // memory's shape, (H, W, C) in the order it is held (Shape{} otherwise).
    Shape flattened_from{};
    // Inference only: the layers after this one that it computes too (prepared for in prepare()),
    // and with absorbed.channel_means, where the pool's means go (the runner sets it each run).
    Absorption absorbed;
    float* channel_means = nullptr;
    // Inference, a layer that reads a concatenation's inputs in its place (Layer::reads_channel_runs):
    // the channels of each of them, one pointer each in forward_inputs' xs (nullptr: as usual).
    const std::vector<int64_t>* input_runs = nullptr;
    // Inference, channels-last, a layer that writes its output straight into its slice of a
    // concatenation's output (Layer::writes_channel_slice): floats from one pixel's channels to the
    // next's there (0: its own channels, as usual).
    int64_t output_stride = 0;
    uint64_t seed = 0;  // dropout masks: derived from this per step
    // Training under MPI with synchronised batch norm: adds `count` values up across the processes
    // that share the batch, in place (nullptr: this process's images are the batch). Every process
    // calls it at the same points, so a layer calls it unconditionally when it is set.
    const std::function<void(double* values, int64_t count)>* sum_across = nullptr;
    // This process's share of the batch's images, by which its parameter gradients are weighted
    // when they are summed across processes.
    double share = 1;

    // Forward: the executor's choice of the activation a layer applies to its output last, where it
    // is not the layer's own: none where the loss reads the logits (it computes the softmax itself,
    // stably), or the activation of a layer folded into this one.
    std::optional<ActivationSpec> activation;
    // What a layer whose own activation is `own` applies last. Layers that fuse an activation call
    // this rather than applying their setting.
    ActivationSpec final_activation(const ActivationSpec& own) const { return activation.value_or(own); }
};

// Where a layer's backward hands over the gradient of one of its inputs. The executor decides what
// that means, so that no layer has to:
// - overwriting: the input has one reader, so its gradient is stored over the input's activation,
//   times the derivative of the activation that wrote it (computed from that activation itself,
//   read just before it is overwritten);
// - accumulating: the input has several readers (or feeds a layer of several inputs), and each adds
//   its share to a buffer of the input's own.
// Because of the first, a layer finishes reading image n of its input before it stores image n.
class InputGradient {
  public:
    InputGradient() = default;  // no gradient wanted: the image's, or a value only frozen layers lead to
    static InputGradient overwriting(float* activation, Shape shape,
                                     const ActivationSpec* derivative = nullptr) {
        return InputGradient(activation, shape, derivative, false);
    }
    static InputGradient accumulating(float* sum, Shape shape) {
        return InputGradient(sum, shape, nullptr, true);
    }

    explicit operator bool() const { return data_ != nullptr; }

    // image_dx: the gradient for image n, (C, H, W) of the input in the pass's input layout.
    void store(int64_t n, const float* image_dx) const;
    // Layers of several inputs (add, concat, mul), whose inputs' gradients always accumulate: the
    // whole (N, C, H, W) buffer they add their shares to, element by element.
    float* sum() const {
        if (!accumulate_) throw Error("internal: the gradient of a merged input must accumulate");
        return data_;
    }

  private:
    InputGradient(float* data, Shape shape, const ActivationSpec* derivative, bool accumulate)
        : data_(data), shape_(shape), derivative_(derivative), accumulate_(accumulate) {}

    float* data_ = nullptr;
    Shape shape_{};
    const ActivationSpec* derivative_ = nullptr;
    bool accumulate_ = false;
};

}  // namespace lenz
