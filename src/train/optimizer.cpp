// SGD (plain, momentum, Nesterov), Adam and AdamW, with PyTorch's update rules so that results
// can be compared with it step by step.
#include <algorithm>
#include <cmath>

#include "lenz/train.h"

namespace lenz {

const char* optimizer_name(const OptimizerConfig& config) {
    return config.kind == OptimizerKind::momentum && config.nesterov ? "sgd+nesterov"
                                                                     : optimizer_name(config.kind);
}

OptimizerConfig parse_optimizer(const std::string& name) {
    OptimizerConfig config;
    if (name == "sgd")
        config.kind = OptimizerKind::sgd;
    else if (name == "momentum" || name == "nesterov")
        config.kind = OptimizerKind::momentum;
    else if (name == "adam")
        config.kind = OptimizerKind::adam;
    else if (name == "adamw")
        config.kind = OptimizerKind::adamw;
    else
        throw ParseError("unknown optimizer '" + name +
                         "' (expected sgd, momentum, nesterov, adam or adamw)");
    config.nesterov = name == "nesterov";
    return config;
}

double default_learning_rate(OptimizerKind kind) {
    return kind == OptimizerKind::adam || kind == OptimizerKind::adamw ? 2e-3 : 0.05;
}

ScheduleKind parse_schedule(const std::string& name) {
    if (name == "cosine") return ScheduleKind::cosine;
    if (name == "step") return ScheduleKind::step;
    if (name == "constant") return ScheduleKind::constant;
    if (name == "poly") return ScheduleKind::poly;
    throw ParseError("unknown schedule '" + name + "' (expected cosine, step, constant or poly)");
}

Optimizer::Optimizer(Model& model, const OptimizerConfig& config) : config_(config) {
    const int copies = optimizer_state_copies(config.kind);
    for (Model::NamedParam& p : model.named_params()) {
        // Frozen layers get no slot: no state, and no weight decay moves them.
        if (!p.ref.trainable || model.frozen(p.layer - 1)) continue;
        Slot slot{p.name, p.ref.value, p.ref.grad, Buffer(copies >= 1 ? p.ref.value->size() : 0),
                  Buffer(copies >= 2 ? p.ref.value->size() : 0)};
        slots_.push_back(std::move(slot));
    }
}

std::vector<Optimizer::State> Optimizer::state() {
    std::vector<State> out;
    for (Slot& s : slots_) {
        if (config_.kind == OptimizerKind::momentum) out.push_back({s.name + ".momentum", &s.first});
        if (config_.kind == OptimizerKind::adam || config_.kind == OptimizerKind::adamw) {
            out.push_back({s.name + ".m", &s.first});
            out.push_back({s.name + ".v", &s.second});
        }
    }
    return out;
}

std::vector<ExtraTensor> optimizer_tensors(Optimizer& optimizer, Model& model) {
    const std::vector<Model::NamedParam> params = model.named_params();
    std::vector<ExtraTensor> tensors;
    for (Optimizer::State& st : optimizer.state()) {
        // "<param>.m" has its parameter's shape.
        auto it = std::find_if(params.begin(), params.end(), [&](const Model::NamedParam& p) {
            return st.name.rfind(p.name + ".", 0) == 0;
        });
        tensors.push_back({"optimizer." + st.name,
                           it != params.end() ? it->ref.dims : std::vector<int64_t>{st.value->size()},
                           st.value});
    }
    return tensors;
}

void load_optimizer_state(const CheckpointFile& file, Optimizer& optimizer) {
    for (Optimizer::State& s : optimizer.state()) {
        const std::string name = "optimizer." + s.name;
        auto it = file.tensors.find(name);
        if (it == file.tensors.end())
            throw FormatError(file.path + ": no optimizer state '" + name +
                              "': was it trained with another optimizer?");
        file.read_tensor(name, it->second.shape, *s.value);
    }
}

void Optimizer::step(double learning_rate) {
    ++steps_;
    const float lr = static_cast<float>(learning_rate);
    const float wd = static_cast<float>(config_.weight_decay);
    const float momentum = static_cast<float>(config_.momentum);
    const float b1 = static_cast<float>(config_.beta1), b2 = static_cast<float>(config_.beta2);
    const double correction1 = 1.0 - std::pow(config_.beta1, static_cast<double>(steps_));
    const double correction2 = 1.0 - std::pow(config_.beta2, static_cast<double>(steps_));
    const float step_size = static_cast<float>(learning_rate / correction1);
    const float sqrt_c2 = static_cast<float>(std::sqrt(correction2));
    const float eps = static_cast<float>(config_.epsilon);
    for (Slot& s : slots_) {
        float* w = s.value->data();
        const float* g = s.grad->data();
        const int64_t n = s.value->size();
        switch (config_.kind) {
            case OptimizerKind::sgd:
                for (int64_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + wd * w[i]);
                break;
            case OptimizerKind::momentum: {
                float* buf = s.first.data();
                // PyTorch: buf = momentum * buf + g (the first step starts from g itself).
                const bool first = steps_ == 1;
                for (int64_t i = 0; i < n; ++i) {
                    const float grad = g[i] + wd * w[i];
                    buf[i] = first ? grad : momentum * buf[i] + grad;
                    w[i] -= lr * (config_.nesterov ? grad + momentum * buf[i] : buf[i]);
                }
                break;
            }
            case OptimizerKind::adam:
            case OptimizerKind::adamw: {
                float* m = s.first.data();
                float* v = s.second.data();
                const bool decoupled = config_.kind == OptimizerKind::adamw;
                for (int64_t i = 0; i < n; ++i) {
                    if (decoupled) w[i] *= 1.0f - lr * wd;
                    const float grad = decoupled ? g[i] : g[i] + wd * w[i];
                    m[i] = b1 * m[i] + (1.0f - b1) * grad;
                    v[i] = b2 * v[i] + (1.0f - b2) * grad * grad;
                    w[i] -= step_size * m[i] / (std::sqrt(v[i]) / sqrt_c2 + eps);
                }
                break;
            }
        }
    }
}

double learning_rate_at(const ScheduleConfig& c, int64_t step, int64_t steps_per_epoch, int64_t total_steps) {
    const double warmup_steps = c.warmup_epochs * static_cast<double>(steps_per_epoch);
    // Step s ends at (s + 1) / warmup_steps of the ramp; with a fractional warm-up the last ramp step
    // would overshoot the peak, so the ramp is capped there.
    if (step < warmup_steps)
        return c.base_lr * std::min(1.0, (static_cast<double>(step) + 1.0) / warmup_steps);
    switch (c.kind) {
        case ScheduleKind::constant:
            return c.base_lr;
        case ScheduleKind::step: {
            const int64_t epoch = step / std::max<int64_t>(steps_per_epoch, 1);
            return c.base_lr *
                   std::pow(c.step_gamma, static_cast<double>(epoch / std::max<int64_t>(c.step_every, 1)));
        }
        case ScheduleKind::cosine: {
            const double span = std::max(1.0, static_cast<double>(total_steps) - warmup_steps);
            const double t = std::min(1.0, (static_cast<double>(step) - warmup_steps) / span);
            const double floor = c.base_lr * c.final_fraction;
            return floor + (c.base_lr - floor) * 0.5 * (1.0 + std::cos(3.141592653589793 * t));
        }
        case ScheduleKind::poly: {  // DeepLab's "poly" policy, power 0.9, from the end of warm-up
            const double span = std::max(1.0, static_cast<double>(total_steps) - warmup_steps);
            const double t = std::min(1.0, (static_cast<double>(step) - warmup_steps) / span);
            return c.base_lr * std::pow(1.0 - t, 0.9);
        }
    }
    return c.base_lr;
}

}  // namespace lenz
