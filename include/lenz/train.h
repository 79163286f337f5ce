// Training: the loop that runs epochs over a data set, what it is given (TrainConfig, built from
// lenz/train_options.h by the command line and Python) and what it reports as it goes.
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
#include "lenz/metrics.h"
#include "lenz/model.h"
#include "lenz/optimizer.h"

namespace lenz {

// PATH (a run's model.safetensors) as rank 0 reads it, handed to every rank, so that under MPI the
// output folder need only be on rank 0's disk; nullopt where there is none. A file rank 0 cannot
// read or parse is the same error on every rank.
std::optional<CheckpointFile> read_run_checkpoint(const std::string& path);

struct AugmentConfig {
    int64_t crop_padding = 0;  // random crop after zero-padding this many pixels on each side
    bool horizontal_flip = false;
    // Random erasing (Zhong et al., 2017): with this probability, a rectangle of 2-40 % of the image,
    // of aspect ratio 0.3-3.3, is set to the data set's mean (0 after normalisation). 0: off.
    double erase_probability = 0;
    // Random scale: each image resampled by a factor log-uniform in [1/max_scale, max_scale], then
    // cropped (or padded) back to its size at a random place; masks alike. 1: off.
    double max_scale = 1;
};

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
    // The loss (cross-entropy, Dice, both), its label smoothing and class weights; the test loss
    // stays the plain cross-entropy.
    LossConfig loss;
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
// classes, or for a segmentation model masks cycling through them pixel by pixel), after `warmup`
// untimed ones: what `lenz bench --train`, its training workloads and the summary's data-parallel
// estimate measure. Under MPI `batch` is this rank's share, and the
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

// Runs the epochs, writes DIR/model.safetensors after each epoch (atomically), DIR/best.safetensors
// at the best test accuracy, and DIR/metrics.jsonl; returns the metrics of every epoch run. An empty
// test set (the Python module's fit without validation data) evaluates nothing: the epochs' test
// figures are NaN, none is the best and no best.safetensors is written.
// With config.resume it continues from DIR/model.safetensors, at the step it was written after
// (mid-epoch checkpoints included), and reaches the uninterrupted run's weights bit for bit.
std::vector<EpochMetrics> train(Model& model, const DataSplit& data, const TrainConfig& config);

}  // namespace lenz
