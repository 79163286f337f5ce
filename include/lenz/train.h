// Training: optimizers, learning-rate schedules and the loop that runs epochs over a data set.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lenz/checkpoint.h"
#include "lenz/data.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/model.h"

namespace lenz {

struct OptimizerConfig {
    OptimizerKind kind = OptimizerKind::adam;
    double momentum = 0.9;  // SGD
    bool nesterov = false;
    double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // Adam, AdamW
    double weight_decay = 0.0;  // L2 added to the gradient (SGD, Adam); decoupled for AdamW
};
// "adam", "sgd+momentum", "sgd+nesterov", ...: as runs print and record it.
const char* optimizer_name(const OptimizerConfig& config);
// "sgd", "momentum", "nesterov", "adam" or "adamw", as the command line spells them, with the other
// settings at their defaults. Throws ParseError naming the choices.
OptimizerConfig parse_optimizer(const std::string& name);
// The peak learning rate a run takes when none is given: 0.002 for Adam and AdamW, 0.05 for SGD.
double default_learning_rate(OptimizerKind kind);

// Updates the trainable parameters of a model from their gradients, except those of frozen layers
// (Model::freeze), which it leaves bit for bit as they are. State (momentum, moments) lives here,
// one Buffer per parameter it updates, so it can be checkpointed.
class Optimizer {
  public:
    Optimizer(Model& model, const OptimizerConfig& config);
    void step(double learning_rate);
    int64_t steps_taken() const { return steps_; }
    void set_steps_taken(int64_t steps) { steps_ = steps; }
    // Named state tensors ("<param>.momentum", "<param>.m", "<param>.v") for checkpoints.
    struct State {
        std::string name;
        Buffer* value;
    };
    std::vector<State> state();

  private:
    struct Slot {
        std::string name;
        Buffer* value;
        Buffer* grad;
        Buffer first, second;  // momentum or Adam's m; Adam's v
    };
    OptimizerConfig config_;
    std::vector<Slot> slots_;
    int64_t steps_ = 0;
};

// The optimizer's state as checkpoint tensors ("optimizer.<param>.m", in the parameter's shape),
// for write_checkpoint; and read back from a checkpoint (FormatError where one is missing: the run
// was trained with another optimizer).
std::vector<ExtraTensor> optimizer_tensors(Optimizer& optimizer, Model& model);
void load_optimizer_state(const CheckpointFile& file, Optimizer& optimizer);

// PATH (a run's model.safetensors) as rank 0 reads it, handed to every rank, so that under MPI the
// output folder need only be on rank 0's disk; nullopt where there is none. A file rank 0 cannot
// read or parse is the same error on every rank.
std::optional<CheckpointFile> read_run_checkpoint(const std::string& path);

enum class ScheduleKind { constant, step, cosine };

struct ScheduleConfig {
    ScheduleKind kind = ScheduleKind::cosine;
    // The defaults are lenz train's (lenz/train_options.h): Adam's 0.002, half an epoch of warm-up.
    double base_lr = 2e-3;
    double warmup_epochs = 0.5;  // linear from 0 to base_lr over these (fractional) epochs
    int64_t step_every = 10;     // step: multiply by step_gamma every this many epochs
    double step_gamma = 0.1;
    double final_fraction = 0.0;  // cosine: the learning rate at the end, as a fraction of base_lr
};

// "cosine", "step" or "constant". Throws ParseError naming the choices.
ScheduleKind parse_schedule(const std::string& name);

// The learning rate for step `step` (0-based) of `total_steps`, with `steps_per_epoch`.
double learning_rate_at(const ScheduleConfig& config, int64_t step, int64_t steps_per_epoch,
                        int64_t total_steps);

struct AugmentConfig {
    int64_t crop_padding = 0;  // random crop after zero-padding this many pixels on each side
    bool horizontal_flip = false;
    // Random erasing (Zhong et al., 2017): with this probability, a rectangle of 2-40 % of the image,
    // of aspect ratio 0.3-3.3, is set to the data set's mean (0 after normalisation). 0: off.
    double erase_probability = 0;
};

struct EpochMetrics {
    int64_t epoch = 0;  // 1-based
    double train_loss = 0, train_accuracy = 0;
    double test_loss = 0, test_accuracy = 0;
    double learning_rate = 0;
    double seconds = 0, images_per_second = 0;
    bool best = false;  // the best test accuracy of the run so far (written to best.safetensors)
};

// An epoch's figures by name, in the order metrics.jsonl and Python's fit history give them: epoch,
// train_loss, train_accuracy, test_loss, test_accuracy and best (only with a test set),
// learning_rate, seconds, images_per_second. Both are written from this list alone.
struct MetricValue {
    enum class Kind { count, real, flag };  // as JSON and Python show it: an integer, a float, a bool
    const char* name;
    double value;
    Kind kind = Kind::real;
};
std::vector<MetricValue> epoch_values(const EpochMetrics& m);

// One line on an epoch, as lenz train prints it: "epoch 1/5  train loss 0.5123  acc 81.20%  |  test
// loss ...". Without a test set (NaN test figures) the test part is left out.
std::string epoch_line(const EpochMetrics& m, int64_t epochs);
// "42s", "3m05s", "1h02m".
std::string duration_text(double seconds);

// Where a step leaves the run: what a progress line shows.
struct StepProgress {
    int64_t epoch = 0, epochs = 0;   // 1-based
    int64_t batch = 0, batches = 0;  // the batch just done, 1-based, of the epoch's
    int64_t step = 0;                // optimizer steps taken so far in the whole run
    double loss = 0, accuracy = 0;   // the epoch's running means
    double images_per_second = 0;    // in this epoch, in this process
    double seconds_left = 0;         // at this pace, to the end of the run
};

// Where a resumed run takes up: after `epoch` completed epochs, at `step`; mid-epoch when batch > 0.
struct ResumePoint {
    std::string checkpoint;
    int64_t epoch = 0, batch = 0, batches = 0, step = 0;
};

struct EvalResult {
    double loss = 0, accuracy = 0;
    std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
    std::vector<double> per_class_accuracy;
    int64_t count = 0;
};

struct TrainConfig {
    int64_t epochs = 5;
    int64_t batch = 64;
    uint64_t seed = 1;
    OptimizerConfig optimizer;
    ScheduleConfig schedule;
    AugmentConfig augment;
    std::string out_dir = "runs/latest";
    bool resume = false;
    int64_t limit_train = 0;  // use only the first N training images (0: all), for quick runs
    int64_t limit_test = 0;
    // Of convolutions and dense layers (mixed precision: float32 weights, optimizer and the rest).
    Precision precision = Precision::f32;
    // Training targets (1 - e) onehot + e / classes; the test loss stays the plain cross-entropy.
    double label_smoothing = 0;
    // The caller's options as a JSON object, recorded in checkpoints ("options" in the run's
    // settings) so that a resuming caller can take them up again.
    std::string options_json = "{}";
    // What train() reports as it goes, for the caller to show (the library prints nothing). Each may
    // be empty.
    // After each epoch's checkpoint is written, with the epoch's figures and its evaluation on the
    // test set; returning false stops training there.
    std::function<bool(const EpochMetrics&, const EvalResult&)> on_epoch;
    // After each optimizer step; returning false stops training as Ctrl-C does (a mid-epoch
    // checkpoint, then Interrupted).
    std::function<bool(const StepProgress&)> on_step;
    // Before the first step of a resumed run, with where it takes up.
    std::function<void(const ResumePoint&)> on_resume;
    // Under MPI: batch norm normalises over the whole global batch, its statistics summed across
    // the ranks at every step, instead of over each rank's share (PyTorch's SyncBatchNorm).
    bool sync_batchnorm = false;
    // Catch SIGINT and SIGTERM while training: the current step finishes, DIR/model.safetensors is
    // written (mid-epoch if need be, so --resume continues from that exact step) and train() throws
    // Interrupted. The first signal restores the default handler, so a second one kills at once.
    bool catch_sigint = false;
};

// The wall time of `steps` training steps (forward, loss, backward, an optimizer step at learning
// rate 0.01) on synthetic data of `batch` images (normal pixels, labels cycling through the
// classes), after `warmup` untimed ones: what `lenz bench --train`, its training workloads and the
// summary's data-parallel estimate measure. Under MPI `batch` is this rank's share, and the
// gradients are summed across the ranks as in training. With `layers`, as many steps again after
// the timed ones time every layer (TrainingStep::set_layer_times, which adds an extra
// weight-gradient call per layer with weights), apart from the step times.
std::vector<double> time_training_steps(Model& model, int64_t batch, int64_t steps, int64_t warmup,
                                        Precision precision = Precision::f32,
                                        const OptimizerConfig& optimizer = {.kind = OptimizerKind::momentum},
                                        std::vector<TrainingStep::LayerTimes>* layers = nullptr);

// Training was stopped early (Ctrl-C, SIGTERM or on_step) after a checkpoint was written; what()
// says where. signal_number is the signal that asked for it, 0 for on_step.
struct Interrupted : Error {
    Interrupted(const std::string& what, std::string checkpoint_path, int signal = 0)
        : Error(what), checkpoint(std::move(checkpoint_path)), signal_number(signal) {}
    std::string checkpoint;
    int signal_number;
};

// Forward over a whole set in inference mode, in batches.
EvalResult evaluate(Model& model, const ImageSet& set, const Normalization& norm, int64_t batch = 256,
                    Precision precision = Precision::f32);

// Checks that the data fits the model (input shape, labels within the output) before any work.
void check_data_fits(const Model& model, const ImageSet& set, const std::string& which);
// load_dataset with image folders converted to the model's input size and channels.
DataSplit load_dataset_for(const Model& model, const std::string& spec, double val_split, uint64_t seed);

// Fine-tuning. The layer that `name_or_number` names: the one whose output has that name (name= in
// the model file), else the layer of that number, counted from 1 as the summary's table does; -1 if
// none (the input is no layer).
int64_t find_layer(const Model& model, const std::string& name_or_number);
// Puts a fresh layer of `classes` outputs in place of the model's last layer with weights, a dense
// layer or a convolution (SqueezeNet's classifier), which only layers without weights may follow
// in a chain (a softmax, relu, global pool, flatten), keeping its settings; its weights come from
// `seed` as Model::init_params makes them. Every other weight stays. Returns the layer's index;
// throws ShapeError if the model ends otherwise.
int64_t replace_head(Model& model, int64_t classes, uint64_t seed);

// Runs the epochs, writes DIR/model.safetensors after each epoch (atomically), DIR/best.safetensors
// at the best test accuracy, and DIR/metrics.jsonl; returns the metrics of every epoch run. An empty
// test set (the Python module's fit without validation data) evaluates nothing: the epochs' test
// figures are NaN, none is the best and no best.safetensors is written.
// With config.resume it continues from DIR/model.safetensors, at the step it was written after
// (mid-epoch checkpoints included), and reaches the uninterrupted run's weights bit for bit.
std::vector<EpochMetrics> train(Model& model, const DataSplit& data, const TrainConfig& config);

}  // namespace lenz
