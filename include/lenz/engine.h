// Running a model: memory plans for inference and training (the figures `lenz summary` prints are
// these), the inference runner that lives in one arena, and one training step.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lenz/buffer.h"
#include "lenz/loss.h"
#include "lenz/model.h"
#include "lenz/precision.h"

namespace lenz {

struct InferenceSchedule;  // src/engine/schedule.h
struct Layouts;

// Inference's use of Winograd's algorithm for 3x3 convolutions of stride 1 in float32 (oneDNN's
// kernels; training always runs the direct kernel): `on`, F(2x2, 3x3) on layers of 256 channels or
// more on each side, where it pays and rounds as the direct kernel does (the default); `wide`,
// F(4x4, 3x3) too, and on smaller layers: faster again (VGG-16 1.8x) but rounding more; `off`, the
// direct kernel only. Without a call, the environment's LENZ_WINOGRAD decides (0: off, 1: wide).
// For the whole process: set it before making runners, whose plans and packed weights follow it.
enum class Winograd { off, on, wide };
void set_winograd(Winograd use);
Winograd parse_winograd(const std::string& text);  // "off", "on" or "wide"; anything else an Error

// Whether this CPU runs `precision` in hardware (bf16: AVX512-BF16 or AMX; int8: oneDNN's integer
// kernels, from SSE4.1 up, fastest with VNNI or AMX), as oneDNN sees it, DNNL_MAX_CPU_ISA included.
bool cpu_supports(Precision precision);
// Throws Error in one line, naming what the CPU has, unless cpu_supports(precision).
void require_precision(Precision precision);

// How many copies of the parameters an optimizer keeps: SGD 0, SGD with momentum 1, Adam/AdamW 2.
enum class OptimizerKind { sgd, momentum, adam, adamw };
int optimizer_state_copies(OptimizerKind kind);
const char* optimizer_name(OptimizerKind kind);

// Per value (0: the input, i + 1: layer i's output): whether training computes its gradient, that
// is, whether a layer that trains (Model::trains) wrote it or lies upstream of it. Backward stops
// where no value below needs one: at the image, and at layers that only frozen layers feed.
std::vector<char> gradient_needed(const Model& model);

struct InferencePlan {
    int64_t batch = 1;  // the largest batch a run takes
    // A run takes its batch through the layers `slice` images at a time, in `streams` streams at once
    // that share the batch's slices, each with an arena and a workspace of its own and one thread
    // (inference_split). The arena, workspace and prepared weights are planned for a slice
    // (arena_floats and workspace_floats are one stream's); a batch of several slices gathers its
    // output in a buffer of its own (output_floats; 0 when a batch is one slice).
    int64_t slice = 1;
    int64_t streams = 1;
    int64_t output_floats = 0;
    Precision precision = Precision::f32;
    // A chain: the largest pair of consecutive activations, input included; a graph: what the
    // planner packs the values into, each alive from its writer to its last reader.
    int64_t arena_floats = 0;
    int64_t workspace_floats = 0;  // the largest scratch any one layer needs
    int64_t param_floats = 0;      // trainable parameters plus running statistics
    // Weights converted once for the run (Layer::prepare: packed as the kernels read them, bf16
    // copies, with a folded batch norm).
    int64_t prepared_floats = 0;
    int64_t input_floats = 0;
    int64_t bytes() const;  // throws ShapeError if it overflows 64 bits
};
// A precision the CPU lacks is an Error (require_precision).
// How a batch runs. Float32 and int8 batches of at least two images a thread run in one stream per
// thread, each taking its own slices through every layer on its own: the layers of MobileNet-style
// networks are too small to share among threads without waiting on each other, and two streams ran
// MNASNet 1.0 at batch 16 in 58.5 ms where two threads on every layer took 61-79 ms. A slice is the
// stream's images as a whole where what one prediction holds at its peak (live_peak), for all of
// them, fits in the stream's share of inference_slice_bytes; otherwise equal slices that do, of at
// least two images (each layer then finds its input in cache; one thread alone ran MNASNet 1.0 at
// batch 16 in 118 ms so, against 140 ms whole). bf16 batches, smaller ones, and those of a model
// whose weights outweigh what the batch holds at its peak (AlexNet, VGG: each slice reads all the
// weights again) run whole, in one stream.
struct InferenceSplit {
    int64_t slice = 1, streams = 1;
};
InferenceSplit inference_split(const Model& model, int64_t batch, Precision precision = Precision::f32);
// What the images of the slices running at once may hold at their peak: half the last-level cache
// (Linux's sysfs says how large), 16 MB where that is unknown.
int64_t inference_slice_bytes();
InferencePlan plan_inference(const Model& model, int64_t batch, Precision precision = Precision::f32);

struct TrainingPlan {
    int64_t batch = 1;
    Precision precision = Precision::f32;
    int64_t param_floats = 0;       // trainable parameters and running statistics
    int64_t gradient_floats = 0;    // one per trainable parameter of the layers that are not frozen
    int64_t optimizer_floats = 0;   // momentum / Adam moments, for the same parameters
    int64_t input_floats = 0;       // the input batch
    int64_t activation_floats = 0;  // every layer's output for the batch, kept for backward
    int64_t saved_floats = 0;       // masks and batch statistics kept for backward (none if frozen)
    // Gradients of values that several layers read (or a layer of several inputs): they add up in a
    // buffer of their own. Every other gradient needs no buffer: it overwrites the activation it
    // belongs to once that activation has been used, so backward runs in the memory forward left behind.
    int64_t value_gradient_floats = 0;
    int64_t workspace_floats = 0;
    int64_t bytes() const;  // throws ShapeError if it overflows 64 bits
};
TrainingPlan plan_training(const Model& model, int64_t batch, OptimizerKind optimizer,
                           Precision precision = Precision::f32);

// Inference in one arena: outputs alternate between the arena's two ends, in-place layers
// overwrite their input, flatten only renames; a batch goes through in slices, in streams
// (inference_split).
// Allocates exactly plan_inference(model, batch).
// Layers prepare their weights when it is made (bf16 copies): change the model's weights, and make
// a new Inference to run them.
// What an inference run does with one layer, as a profile names it: what it computes on behalf of
// other layers, which then do not run.
struct LayerStep {
    int64_t reads_through = -1;  // the concatenation whose inputs it reads in that layer's place, or -1
    int64_t writes_slice_of =
        -1;  // the concatenation whose slice of channels it writes its output into, or -1
    std::vector<int64_t> absorbs;  // the layers folded into its call (batch norm, activation, add, means)
};

class Inference {
  public:
    Inference(Model& model, int64_t max_batch, Precision precision = Precision::f32);
    ~Inference();
    Inference(const Inference&) = delete;
    Inference& operator=(const Inference&) = delete;
    // input: (N, C, H, W), N <= max_batch. Returns (N, output) inside the engine's memory, valid until
    // the next run.
    // With layer_seconds (model.size() entries), adds each layer's wall time to its entry (where the
    // batch runs in several streams, each layer's mean over the streams, so that the entries still
    // add up to the run's time); layers that do not run (views, those folded into another) add nothing.
    // With observe, hands it every value the run holds in memory as it is written: (value, data, floats),
    // in the value's layout; values folded away (what a batch norm folded into a convolution reads,
    // a concatenation the layer after it reads through) are never held, so never observed.
    // Calibration reads the ranges of the values so.
    using ValueObserver = std::function<void(int64_t value, const float* data, int64_t floats)>;
    const float* run(const float* input, int64_t batch, std::vector<double>* layer_seconds = nullptr,
                     const ValueObserver* observe = nullptr);
    const InferencePlan& plan() const;
    std::vector<LayerStep> layer_steps() const;                       // per layer of the model
    const InferenceSchedule& schedule() const { return *schedule_; }  // the engine's own detail
    int64_t allocated_bytes() const { return arena_.bytes() + workspace_.bytes() + output_.bytes(); }

  private:
    // One slice (at most plan().slice images) through every layer, in a stream's arena and workspace;
    // returns its output there.
    const float* run_slice(const float* input, int64_t batch, int64_t stream,
                           std::vector<double>* layer_seconds, const ValueObserver* observe);

    Model& model_;
    std::unique_ptr<const InferenceSchedule> schedule_;  // the engine's plan of the run
    Buffer arena_, workspace_, prepared_, output_;
    std::vector<char> views_;  // per layer: reshape-only and skipped (ValueGraph::view)
};

// The class probabilities of one image from a classifier's `count` scores: the scores themselves
// where the model ends with a softmax, else their softmax, computed in double (stably, from the
// largest score). Prediction, evaluation and the report all read the output through this. A map's
// pixel has its scores `stride` apart (its plane, in (N, K, H, W)).
std::vector<double> class_probabilities(const Model& model, const float* scores, int64_t count,
                                        int64_t stride = 1);

// Every layer's output for one image (C, H, W), in inference mode and float32, each in a buffer of
// its own: the report's feature maps. Nothing is folded, so every layer's own output is there. It
// runs Layer::forward alone, leaving the layers' training state (dropout masks, gradients) alone,
// so it is safe in the middle of training.
std::vector<std::vector<float>> layer_outputs(Model& model, const float* input);

// Layers `layers` of `model` timed alone at `batch` images of random input, forward and backward
// (a training step's calls, in the layouts the engine gives them: channels-last between two
// convolutions), each the fastest of `reps` runs after one untimed (on a shared machine other work
// only ever slows a run): `lenz bench layers`. Backward includes the input's gradient except for
// the first layer, which has none. Allocates the layers' gradients.
struct LayerTiming {
    int64_t layer = 0;
    double forward = 0, backward = 0;  // seconds
};
std::vector<LayerTiming> time_layers(Model& model, const std::vector<int64_t>& layers, int64_t batch,
                                     Precision precision, int reps);

// Forward, softmax cross-entropy and backward for one mini-batch; gradients land in the layers.
class TrainingStep {
  public:
    TrainingStep(Model& model, int64_t max_batch, Precision precision = Precision::f32);
    ~TrainingStep();
    TrainingStep(const TrainingStep&) = delete;
    TrainingStep& operator=(const TrainingStep&) = delete;
    using Result = LossValue;
    // The loss the step trains with (default: plain cross-entropy); its targets come with run().
    void set_loss(LossConfig config) { loss_ = std::move(config); }
    // input: (N, C, H, W); targets: labels in [0, classes), or masks at the output's height and
    // width (its channels the classes). Zeroes, then fills every parameter gradient.
    Result run(const float* input, const Targets& targets, int64_t batch, uint64_t step_seed);
    Result run(const float* input, const int32_t* labels, int64_t batch, uint64_t step_seed) {
        return run(input, Targets{labels, nullptr}, batch, step_seed);
    }
    // Called during run()'s backward with layer i once backward has finished layer i and every
    // layer after it (their parameter gradients are final), and with 0 at the end: where the
    // gradients' sums across ranks start (GradientSync).
    void set_backward_progress(std::function<void(int64_t layer)> progress) {
        progress_ = std::move(progress);
    }
    // Synchronised batch norm (MPI): `sum` adds per-channel statistics up across the processes, whose
    // shares of each batch set_share() gives; batch norm then normalises over the whole batch.
    void set_statistics_sum(std::function<void(double* values, int64_t count)> sum) {
        statistics_sum_ = std::move(sum);
    }
    void set_share(double share) { share_ = share; }
    // Profiling (`lenz bench MODEL --train --profile`): with `times` set (resized to model.size()),
    // run() adds to layer i's entry the wall time of its forward and of its backward, the backward
    // split in two. A layer with trainable weights whose input needs a gradient runs its backward
    // once more first, for the weight gradient alone (without an input gradient; what it wrote is
    // put back afterwards, so the step computes what it would have), and the real call's time less
    // that is the input gradient's. A layer without weights is all input gradient; one whose input
    // needs none (the first with weights) all weight gradient. Views add nothing. So forward plus
    // both gradients add up to the step's time less the loss, the zeroing and the clock reads.
    // forward() adds its forward times too. nullptr (the default): no clock is read, no extra call.
    struct LayerTimes {
        double forward = 0, input_gradient = 0, weight_gradient = 0;  // seconds, summed over runs
    };
    void set_layer_times(std::vector<LayerTimes>* times) { layer_times_ = times; }
    // Forward only, in training mode or not; returns the final activation (probabilities if the model ends in
    // softmax).
    const float* forward(const float* input, int64_t batch, bool training, uint64_t step_seed);

  private:
    void check_batch(
        int64_t batch) const;  // 1..max_batch, else ShapeError: buffers are planned for max_batch
    // Runs layers 0..last at `batch`; logits_last leaves out the last layer's fused softmax.
    void forward_layers(int64_t last, int64_t batch, bool training, uint64_t step_seed, bool logits_last);

    Model& model_;
    int64_t max_batch_;
    Precision precision_;
    Buffer input_;
    std::vector<Buffer> activations_;             // one per layer that is not a view
    std::vector<Buffer> value_gradients_;         // one per value with a gradient of its own
    std::vector<float*> values_;                  // per value: its memory (views share their input's)
    std::vector<float*> gradients_;               // per value: its own gradient buffer, or nullptr
    std::vector<char> views_;                     // per layer: reshape-only, sharing its input's memory
    std::vector<ActivationSpec> activations_of_;  // per layer, for the backward pass
    std::vector<Layouts> layouts_;                // per layer (the engine's own, src/engine/schedule.h)
    std::vector<char> needs_gradient_;            // per value, from gradient_needed
    Buffer workspace_;
    std::function<void(int64_t)> progress_;
    std::function<void(double*, int64_t)> statistics_sum_;
    double share_ = 1;
    std::vector<LayerTimes>* layer_times_ = nullptr;
    LossConfig loss_;
};

}  // namespace lenz
