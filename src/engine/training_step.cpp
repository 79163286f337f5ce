// One training step: forward keeping every activation, the loss on the logits (lenz/loss.h), and
// backward through the layers, each gradient written over the activation it belongs to.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/schedule.h"
#include "engine/value_graph.h"
#include "kernels/cpu/activation.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TrainingStep::TrainingStep(Model& model, int64_t max_batch, Precision precision)
    : model_(model), max_batch_(max_batch), precision_(precision) {
    const TrainingPlan plan = plan_training(model, max_batch, OptimizerKind::sgd, precision);
    const ValueGraph graph = analyse(model);
    model.allocate_gradients();
    needs_gradient_ = gradient_needed(model);
    const int64_t L = model.size();
    input_ = Buffer(plan.input_floats);
    values_.assign(static_cast<size_t>(L + 1), nullptr);
    gradients_.assign(static_cast<size_t>(L + 1), nullptr);
    values_[0] = input_.data();
    views_ = graph.view;
    for (int64_t i = 0; i < L; ++i) {
        Layer& layer = model.layer(i);
        const int64_t floats = max_batch * layer.output_shape().elements();
        if (views_[static_cast<size_t>(i)]) {
            values_[static_cast<size_t>(i + 1)] = values_[static_cast<size_t>(model.inputs(i)[0])];
        } else {
            activations_.emplace_back(floats);
            values_[static_cast<size_t>(i + 1)] = activations_.back().data();
            if (!model.frozen(i)) layer.prepare_training(max_batch);
        }
        if (graph.own_gradient[static_cast<size_t>(i + 1)] && needs_gradient_[static_cast<size_t>(i + 1)]) {
            value_gradients_.emplace_back(floats);
            gradients_[static_cast<size_t>(i + 1)] = value_gradients_.back().data();
        }
    }
    workspace_ = Buffer(plan.workspace_floats);
    for (int64_t i = 0; i < L; ++i) activations_of_.push_back(model.layer(i).activation());
    layouts_ = plan_layouts(model);
}

TrainingStep::~TrainingStep() = default;

void TrainingStep::check_batch(int64_t batch) const {
    if (batch <= 0 || batch > max_batch_)
        throw ShapeError("training batch " + std::to_string(batch) + " is outside 1.." +
                         std::to_string(max_batch_));
}

void TrainingStep::forward_layers(int64_t last, int64_t batch, bool training, uint64_t step_seed,
                                  bool logits_last) {
    std::vector<const float*> xs;
    for (int64_t i = 0; i <= last; ++i) {
        if (views_[static_cast<size_t>(i)]) continue;  // its output is its input under another shape
        Pass pass = training_pass(model_, layouts_, i, batch, precision_, logits_last && i == last);
        pass.training = pass.training && training;
        pass.workspace = workspace_.data();
        pass.workspace_capacity = workspace_.size();
        pass.seed = Rng::derive(step_seed, 0xD20, static_cast<uint64_t>(i)).next();
        if (statistics_sum_ && training) pass.sum_across = &statistics_sum_;
        pass.share = share_;
        xs.clear();
        for (int64_t v : model_.inputs(i)) xs.push_back(values_[static_cast<size_t>(v)]);
        const Clock::time_point start = layer_times_ ? Clock::now() : Clock::time_point();
        model_.layer(i).forward_inputs(xs, values_[static_cast<size_t>(i + 1)], pass);
        if (layer_times_) (*layer_times_)[static_cast<size_t>(i)].forward += seconds_since(start);
    }
}

const float* TrainingStep::forward(const float* input, int64_t batch, bool training, uint64_t step_seed) {
    check_batch(batch);
    if (layer_times_) layer_times_->resize(static_cast<size_t>(model_.size()));
    std::memcpy(input_.data(), input,
                sizeof(float) * static_cast<size_t>(batch * model_.input_shape().elements()));
    forward_layers(model_.size() - 1, batch, training, step_seed, false);
    return values_.back();
}

TrainingStep::Result TrainingStep::run(const float* input, const Targets& targets, int64_t batch,
                                       uint64_t step_seed) {
    const int64_t L = model_.size();
    // Where the logits are: a standalone softmax is left out; a fused one is skipped in the last layer.
    const bool standalone_softmax =
        model_.ends_with_softmax() && std::holds_alternative<ActivationConfig>(model_.layer(L - 1).config());
    const bool fused_softmax = model_.ends_with_softmax() && !standalone_softmax;
    if (standalone_softmax && model_.inputs(L - 1)[0] != L - 1)
        throw ShapeError("a final " + model_.layer(L - 1).activation().str() +
                         " must read the layer before it to train it with cross-entropy");
    const int64_t last = standalone_softmax ? L - 2 : L - 1;

    check_batch(batch);
    if (layer_times_) layer_times_->resize(static_cast<size_t>(model_.size()));
    std::memcpy(input_.data(), input,
                sizeof(float) * static_cast<size_t>(batch * model_.input_shape().elements()));
    forward_layers(last, batch, true, step_seed, fused_softmax);

    // The activation whose output a value's memory holds: walk back over reshape-only views.
    auto stored_activation = [&](int64_t value) -> const ActivationSpec* {
        int64_t producer = value - 1;
        while (producer >= 0 && views_[static_cast<size_t>(producer)])
            producer = model_.inputs(producer)[0] - 1;
        return producer < 0 ? nullptr : &activations_of_[static_cast<size_t>(producer)];
    };

    // The loss gradient overwrites the logits; from then on every layer finds the gradient of its
    // output, already through its activation's derivative, where its output was (or, for a value
    // several layers read, in its own gradient buffer, where the readers' shares add up).
    Result result;
    float* logits = values_[static_cast<size_t>(last + 1)];
    const ActivationSpec* last_act = fused_softmax ? nullptr : stored_activation(last + 1);
    const bool elementwise = !last_act || !over_channels(last_act->kind);
    if (!elementwise)
        throw ShapeError(last_act->str() +
                         " must be the model's last activation to train it with cross-entropy");
    result = softmax_loss(loss_, logits, model_.value_shape(last + 1),
                          layouts_[static_cast<size_t>(last)].output == Layout::nhwc, targets, batch, logits,
                          last_act ? *last_act : ActivationSpec{});

    if (model_.gradient_floats() > 0)
        std::memset(model_.gradient_store(), 0,
                    sizeof(float) * static_cast<size_t>(model_.gradient_floats()));
    for (size_t v = 0; v < gradients_.size(); ++v)
        if (gradients_[v])
            std::memset(gradients_[v], 0,
                        sizeof(float) * static_cast<size_t>(
                                            batch * model_.value_shape(static_cast<int64_t>(v)).elements()));
    std::vector<const float*> xs;
    std::vector<InputGradient> dxs;
    for (int64_t i = last; i >= 0; --i) {
        if (progress_) progress_(i + 1);
        // Nothing that trains wrote this value or lies upstream of it: no backward here (frozen layers,
        // and the layers before the first one with weights).
        if (!needs_gradient_[static_cast<size_t>(i + 1)]) continue;
        float* own = gradients_[static_cast<size_t>(i + 1)];
        // A view's gradient keeps its memory (only the shape changes), unless its readers' shares
        // were added up apart.
        if (views_[static_cast<size_t>(i)] && !own) continue;
        Layer& layer = model_.layer(i);
        const Shape out = layer.output_shape();
        float* y = values_[static_cast<size_t>(i + 1)];
        float* dy = own ? own : y;
        const Clock::time_point start = layer_times_ ? Clock::now() : Clock::time_point();
        if (own && activations_of_[static_cast<size_t>(i)].kind != Activation::none)
            cpu::apply_activation_backward(activations_of_[static_cast<size_t>(i)], y, dy, dy, batch, out.c,
                                           out.h * out.w);
        xs.clear();
        dxs.clear();
        for (int64_t v : model_.inputs(i)) {
            xs.push_back(values_[static_cast<size_t>(v)]);
            const Shape shape = model_.value_shape(v);
            if (!needs_gradient_[static_cast<size_t>(v)])
                dxs.emplace_back();  // the image's, or a value only frozen layers lead to
            else if (float* g = gradients_[static_cast<size_t>(v)])
                dxs.push_back(InputGradient::accumulating(g, shape));
            else  // over the value itself, through the derivative of the activation that wrote it
                dxs.push_back(
                    InputGradient::overwriting(values_[static_cast<size_t>(v)], shape, stored_activation(v)));
        }
        Pass pass = training_pass(model_, layouts_, i, batch, precision_);
        pass.workspace = workspace_.data();
        pass.workspace_capacity = workspace_.size();
        if (statistics_sum_) pass.sum_across = &statistics_sum_;
        pass.share = share_;
        if (!layer_times_) {
            layer.backward_inputs(xs, y, dy, dxs, pass);
            continue;
        }
        double elapsed = seconds_since(start), weights_alone = 0;
        const int64_t g0 = model_.gradient_offset(i), g1 = model_.gradient_offset(i + 1);
        const bool has_dx =
            std::any_of(dxs.begin(), dxs.end(), [](const InputGradient& g) { return bool(g); });
        if (g1 > g0 && has_dx) {  // the weight gradient alone, then undone (set_layer_times)
            const std::vector<float> dy_before(dy, dy + batch * out.elements()),
                grads_before(model_.gradient_store() + g0, model_.gradient_store() + g1);
            const std::vector<InputGradient> none(dxs.size());
            const Clock::time_point alone = Clock::now();
            layer.backward_inputs(xs, y, dy, none, pass);
            weights_alone = seconds_since(alone);
            std::copy(dy_before.begin(), dy_before.end(), dy);
            std::copy(grads_before.begin(), grads_before.end(), model_.gradient_store() + g0);
        }
        const Clock::time_point real = Clock::now();
        layer.backward_inputs(xs, y, dy, dxs, pass);
        elapsed += seconds_since(real);
        LayerTimes& times = (*layer_times_)[static_cast<size_t>(i)];
        if (g1 == g0) {
            times.input_gradient += elapsed;
        } else if (!has_dx) {
            times.weight_gradient += elapsed;
        } else {
            times.weight_gradient += std::min(weights_alone, elapsed);
            times.input_gradient += elapsed - std::min(weights_alone, elapsed);
        }
    }
    if (progress_) progress_(0);
    return result;
}

}  // namespace lenz
