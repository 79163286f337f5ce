// How the weights move: the optimizers (SGD, momentum, Nesterov, Adam, AdamW), their state as a
// checkpoint keeps it, and the learning-rate schedules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lenz/buffer.h"
#include "lenz/checkpoint.h"
#include "lenz/engine.h"
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

enum class ScheduleKind { constant, step, cosine, poly };

struct ScheduleConfig {
    ScheduleKind kind = ScheduleKind::cosine;
    // The defaults are lenz train's (lenz/train_options.h): Adam's 0.002, half an epoch of warm-up.
    double base_lr = 2e-3;
    double warmup_epochs = 0.5;  // linear from 0 to base_lr over these (fractional) epochs
    int64_t step_every = 10;     // step: multiply by step_gamma every this many epochs
    double step_gamma = 0.1;
    double final_fraction = 0.0;  // cosine: the learning rate at the end, as a fraction of base_lr
};

// "cosine", "step", "constant" or "poly". Throws ParseError naming the choices.
ScheduleKind parse_schedule(const std::string& name);

// The learning rate for step `step` (0-based) of `total_steps`, with `steps_per_epoch`.
double learning_rate_at(const ScheduleConfig& config, int64_t step, int64_t steps_per_epoch,
                        int64_t total_steps);

}  // namespace lenz
