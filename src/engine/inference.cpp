// The inference runner: one arena for every value, as the schedule places them, and the layers
// run in file order on it.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <vector>

#include "engine/schedule.h"
#include "engine/value_graph.h"
#include "kernels/cpu/channel_runs.h"
#include "kernels/cpu/conv2d.h"
#include "lenz/engine.h"
#include "lenz/error.h"

namespace lenz {

void set_winograd(Winograd use) {
    cpu::set_winograd_use(use == Winograd::off  ? cpu::WinogradUse::none
                          : use == Winograd::on ? cpu::WinogradUse::small_tiles
                                                : cpu::WinogradUse::any);
}

Winograd parse_winograd(const std::string& text) {
    if (text == "off") return Winograd::off;
    if (text == "on") return Winograd::on;
    if (text == "wide") return Winograd::wide;
    throw Error("winograd '" + text + "': off, on (the default) or wide");
}

namespace {

const Model& runnable(const Model& model, Precision precision) {
    if (precision == Precision::int8 && !model.calibrated())
        throw Error(
            "int8 needs the ranges of the model's values: quantise the checkpoint first "
            "(lenz quantize CHECKPOINT --data DATA --out q.safetensors)");
    return model;
}

}  // namespace

Inference::Inference(Model& model, int64_t max_batch, Precision precision)
    : model_(model),
      schedule_(std::make_unique<const InferenceSchedule>(
          schedule_inference(runnable(model, precision), max_batch, precision))),
      arena_(checked_mul(schedule_->plan.streams, schedule_->plan.arena_floats, "arena")),
      workspace_(checked_mul(schedule_->plan.streams, schedule_->plan.workspace_floats, "workspace")),
      prepared_(schedule_->plan.prepared_floats),
      output_(schedule_->plan.output_floats),
      views_(analyse(model).view) {
    const InferenceSchedule& s = *schedule_;
    for (int64_t i = 0; i < model_.size(); ++i) {
        const auto at = static_cast<size_t>(i);
        const int64_t offset = s.prepared_offset[at];
        if (offset < 0) continue;
        std::vector<float> scale, shift;  // of a folded batch norm, on its running statistics
        if (const int64_t from = s.affine_from[at]; from >= 0) {
            scale.resize(static_cast<size_t>(model_.layer(i).output_shape().c));
            shift.resize(scale.size());
            model_.layer(from).affine_map(scale.data(), shift.data());
        }
        model_.layer(i).prepare(prepared_.data() + offset, s.pass(i, s.plan.slice),
                                scale.empty() ? nullptr : scale.data(),
                                shift.empty() ? nullptr : shift.data());
    }
}

Inference::~Inference() = default;

const InferencePlan& Inference::plan() const {
    return schedule_->plan;
}

std::vector<double> class_probabilities(const Model& model, const float* scores, int64_t count,
                                        int64_t stride) {
    std::vector<double> p(static_cast<size_t>(count));
    for (int64_t k = 0; k < count; ++k) p[static_cast<size_t>(k)] = scores[k * stride];
    if (!p.empty() && model.layer(model.size() - 1).activation().kind == Activation::log_softmax) {
        for (double& v : p) v = std::exp(v);  // log-probabilities, as after nn.LogSoftmax
        return p;
    }
    if (p.empty() || model.ends_with_softmax()) return p;
    const double top = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (double& v : p) sum += v = std::exp(v - top);
    for (double& v : p) v /= sum;
    return p;
}

std::vector<LayerStep> Inference::layer_steps() const {
    const InferenceSchedule& s = *schedule_;
    std::vector<LayerStep> steps(static_cast<size_t>(model_.size()));
    for (int64_t i = 0; i < model_.size(); ++i) {
        LayerStep& step = steps[static_cast<size_t>(i)];
        step.reads_through = s.reads_through[static_cast<size_t>(i)];
        step.writes_slice_of = s.slice_of[static_cast<size_t>(i + 1)].concat;
        if (const int64_t host = s.absorbed_by[static_cast<size_t>(i)]; host >= 0)
            steps[static_cast<size_t>(host)].absorbs.push_back(i);
    }
    return steps;
}

const float* Inference::run(const float* input, int64_t batch, std::vector<double>* layer_seconds,
                            const ValueObserver* observe) {
    const InferenceSchedule& s = *schedule_;
    if (batch <= 0 || batch > s.plan.batch)
        throw ShapeError("inference batch " + std::to_string(batch) + " is outside 1.." +
                         std::to_string(s.plan.batch));
    const int64_t image = model_.input_shape().elements(), out_image = model_.output_shape().elements();
    const int64_t slices = (batch + s.plan.slice - 1) / s.plan.slice;
    // Observing each value wants the layers one at a time: one stream then. Timing each layer does
    // not: each stream times its own layers, and a layer's time is their mean over the streams, so
    // that the layers' times still add up to the run's.
    const int64_t streams = observe ? 1 : std::min(s.plan.streams, slices);
    std::vector<std::vector<double>> stream_seconds;
    if (layer_seconds && streams > 1)
        stream_seconds.assign(static_cast<size_t>(streams), std::vector<double>(layer_seconds->size(), 0.0));
    // Slice k of the batch through stream `stream`; its output into the batch's where there are several.
    const auto run_one = [&](int64_t k, int64_t stream) {
        const int64_t first = k * s.plan.slice, images = std::min(s.plan.slice, batch - first);
        std::vector<double>* seconds =
            stream_seconds.empty() ? layer_seconds : &stream_seconds[static_cast<size_t>(stream)];
        const float* out = run_slice(input + first * image, images, stream, seconds, observe);
        if (slices > 1)
            std::memcpy(output_.data() + first * out_image, out,
                        sizeof(float) * static_cast<size_t>(images * out_image));
        return out;
    };
    if (streams == 1) {
        const float* out = nullptr;
        for (int64_t k = 0; k < slices; ++k) out = run_one(k, 0);
        return slices > 1 ? output_.data() : out;
    }
    // Each stream takes every n-th slice of n streams, with one thread: the layers' own parallel
    // loops and oneDNN's run on the calling thread alone inside. OpenMP may give fewer threads than
    // asked (a caller already inside a parallel region gets one): the slices go to those there are.
    std::exception_ptr failure;
    int64_t teamed = 1;  // the streams OpenMP gave
#pragma omp parallel num_threads(static_cast <int>(streams))
    {
        omp_set_num_threads(1);
        const int64_t stream = omp_get_thread_num(), team = omp_get_num_threads();
        if (stream == 0) teamed = team;
        try {
            for (int64_t k = stream; k < slices; k += team) run_one(k, stream);
        } catch (...) {
#pragma omp critical(lenz_inference_failure)
            if (!failure) failure = std::current_exception();
        }
    }
    if (failure) std::rethrow_exception(failure);
    for (const std::vector<double>& own : stream_seconds)
        for (size_t i = 0; i < own.size(); ++i) (*layer_seconds)[i] += own[i] / static_cast<double>(teamed);
    return output_.data();
}

const float* Inference::run_slice(const float* input, int64_t batch, int64_t stream,
                                  std::vector<double>* layer_seconds, const ValueObserver* observe) {
    const InferenceSchedule& s = *schedule_;
    float* base = arena_.data() + stream * s.plan.arena_floats;
    float* workspace = workspace_.data() + stream * s.plan.workspace_floats;
    std::memcpy(base + s.value_offset[0], input,
                sizeof(float) * static_cast<size_t>(batch * model_.input_shape().elements()));
    // Layer i's output holds value held[i] + 1: its own, or that of the last layer folded into it.
    std::vector<float> gathered;
    const auto notify = [&](int64_t value) {
        const float* data = base + s.value_offset[static_cast<size_t>(value)];
        const int64_t floats = batch * model_.value_shape(value).elements();
        // A value written into its slice of a concatenation: its runs of channels, gathered.
        if (const int64_t stride = s.slice_of[static_cast<size_t>(value)].stride; stride > 0) {
            const int64_t c = model_.value_shape(value).c;
            gathered.resize(static_cast<size_t>(floats));
            cpu::copy_runs(data, stride, gathered.data(), c, floats / c, c);
            data = gathered.data();
        }
        (*observe)(value, data, floats);
    };
    if (observe) notify(0);
    std::vector<const float*> xs;
    for (int64_t i = 0; i < model_.size(); ++i) {
        const auto at = static_cast<size_t>(i);
        // Its output is its input under another shape, or another layer computed it, or the next
        // layer reads its inputs in its place.
        if (views_[at] && observe) notify(i + 1);
        if (views_[at] || s.absorbed_by[at] >= 0 || s.read_through(i)) continue;
        Layer& layer = model_.layer(i);
        Pass pass = s.pass(i, batch);
        pass.workspace = workspace;
        pass.workspace_capacity = s.plan.workspace_floats;
        // A layer that prepared nothing reads its weights as they are.
        pass.prepared = s.prepared_offset[at] >= 0 ? prepared_.data() + s.prepared_offset[at] : nullptr;
        if (s.means_into[at] >= 0)
            pass.channel_means = base + s.value_offset[static_cast<size_t>(s.means_into[at] + 1)];
        xs.clear();
        for (int64_t v : model_.inputs(s.reads_through[at] >= 0 ? s.reads_through[at] : i))
            xs.push_back(base + s.value_offset[static_cast<size_t>(v)]);
        // Offsets were planned for the largest slice; a smaller one uses the start of each buffer.
        const auto start = std::chrono::steady_clock::now();
        layer.forward_inputs(xs, base + s.value_offset[at + 1], pass);
        if (layer_seconds)
            (*layer_seconds)[at] +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (observe) {
            int64_t held = i;
            for (int64_t j = i + 1; j < model_.size(); ++j)
                if (s.absorbed_by[static_cast<size_t>(j)] == i && s.means_into[at] != j) held = j;
            notify(held + 1);
            if (s.means_into[at] >= 0) notify(s.means_into[at] + 1);
        }
    }
    return base + s.value_offset.back();
}

}  // namespace lenz
