// Memory plans: what the engine will allocate, computed from the layers' own shape and scratch
// figures before anything is allocated. `lenz summary` prints these; the runners allocate them.
#include <string>

#include "lenz/engine.h"
#include "lenz/error.h"

namespace lenz {

int optimizer_state_copies(OptimizerKind kind) {
    switch (kind) {
        case OptimizerKind::sgd:
            return 0;
        case OptimizerKind::momentum:
            return 1;
        case OptimizerKind::adam:
        case OptimizerKind::adamw:
            return 2;
    }
    return 0;
}

const char* optimizer_name(OptimizerKind kind) {
    switch (kind) {
        case OptimizerKind::sgd:
            return "sgd";
        case OptimizerKind::momentum:
            return "sgd+momentum";
        case OptimizerKind::adam:
            return "adam";
        case OptimizerKind::adamw:
            return "adamw";
    }
    return "";
}

// Every buffer is sized for the batch: a batch of 0 or less would plan nothing, then run off its end.
static void check_plan_batch(int64_t batch) {
    if (batch <= 0) throw ShapeError("batch " + std::to_string(batch) + " must be at least 1");
}

static int64_t float_bytes(std::initializer_list<int64_t> parts) {
    int64_t floats = 0;
    for (int64_t p : parts) floats = checked_add(floats, p, "memory");
    return checked_mul(floats, 4, "memory");
}

int64_t InferencePlan::bytes() const {
    return float_bytes({arena_floats, workspace_floats, param_floats});
}

int64_t TrainingPlan::bytes() const {
    return float_bytes({param_floats, gradient_floats, optimizer_floats, input_floats, activation_floats,
                        saved_floats, workspace_floats});
}

static int64_t all_params(const Model& model) {
    int64_t n = 0;
    for (int64_t i = 0; i < model.size(); ++i)
        n = checked_add(n, checked_add(model.layer(i).param_count(), model.layer(i).state_count()));
    return n;
}

std::vector<Layouts> plan_layouts(const Model& model) {
    std::vector<Layouts> layouts(static_cast<size_t>(model.size()));
    for (int64_t i = 0; i + 1 < model.size(); ++i)
        if (model.layer(i).takes_channels_last() && model.layer(i + 1).takes_channels_last()) {
            layouts[static_cast<size_t>(i)].output = Layout::nhwc;
            layouts[static_cast<size_t>(i + 1)].input = Layout::nhwc;
        }
    return layouts;
}

InferencePlan plan_inference(const Model& model, int64_t batch) {
    check_plan_batch(batch);
    InferencePlan plan;
    plan.batch = batch;
    plan.layouts = plan_layouts(model);
    plan.input_floats = checked_mul(batch, model.input_shape().elements(), "input batch");
    plan.param_floats = all_params(model);
    // First pass: the arena size. The live tensor sits at one end; a new output goes to the other.
    int64_t live = plan.input_floats;
    plan.arena_floats = live;
    for (int64_t i = 0; i < model.size(); ++i) {
        const Layer& layer = model.layer(i);
        const int64_t out = checked_mul(batch, layer.output_shape().elements(), "activation");
        if (!layer.reshape_only() && !layer.in_place())
            plan.arena_floats = std::max(plan.arena_floats, checked_add(live, out, "arena"));
        live = out;
        plan.workspace_floats =
            std::max(plan.workspace_floats,
                     layer.workspace_floats(batch, false, plan.layouts[static_cast<size_t>(i)]));
    }
    // Second pass: offsets, alternating ends.
    bool at_start = true;
    int64_t offset = 0;
    for (int64_t i = 0; i < model.size(); ++i) {
        const Layer& layer = model.layer(i);
        plan.in_offset.push_back(offset);
        if (!layer.reshape_only() && !layer.in_place()) {
            at_start = !at_start;
            offset = at_start ? 0 : plan.arena_floats - batch * layer.output_shape().elements();
        }
        plan.out_offset.push_back(offset);
    }
    return plan;
}

TrainingPlan plan_training(const Model& model, int64_t batch, OptimizerKind optimizer) {
    check_plan_batch(batch);
    TrainingPlan plan;
    plan.batch = batch;
    plan.layouts = plan_layouts(model);
    plan.param_floats = all_params(model);
    int64_t trainable = 0;
    for (int64_t i = 0; i < model.size(); ++i)
        trainable = checked_add(trainable, model.layer(i).param_count());
    plan.gradient_floats = trainable;
    plan.optimizer_floats = checked_mul(trainable, optimizer_state_copies(optimizer));
    plan.input_floats = checked_mul(batch, model.input_shape().elements(), "input batch");
    for (int64_t i = 0; i < model.size(); ++i) {
        const Layer& layer = model.layer(i);
        const int64_t out = checked_mul(batch, layer.output_shape().elements(), "activation");
        if (!layer.reshape_only())
            plan.activation_floats = checked_add(plan.activation_floats, out, "activations");
        plan.saved_floats = checked_add(plan.saved_floats, layer.saved_floats(batch), "saved tensors");
        plan.workspace_floats = std::max(
            plan.workspace_floats, layer.workspace_floats(batch, true, plan.layouts[static_cast<size_t>(i)]));
    }
    plan.bytes();  // throws here, before anyone allocates, if the total overflows
    return plan;
}

}  // namespace lenz
