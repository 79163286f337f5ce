// Memory plans: what the engine will allocate, computed from the layers' own shape and scratch
// figures before anything is allocated. `lenz summary` prints these; the runners allocate them.
#include <algorithm>
#include <fstream>
#include <string>

#include "engine/schedule.h"
#include "engine/value_graph.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/threads.h"

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
    return float_bytes({checked_mul(streams, arena_floats, "arena"),
                        checked_mul(streams, workspace_floats, "workspace"), param_floats, prepared_floats,
                        output_floats});
}

int64_t TrainingPlan::bytes() const {
    return float_bytes({param_floats, gradient_floats, optimizer_floats, input_floats, activation_floats,
                        value_gradient_floats, saved_floats, workspace_floats});
}

static int64_t all_params(const Model& model) {
    int64_t n = 0;
    for (int64_t i = 0; i < model.size(); ++i)
        n = checked_add(n, checked_add(model.layer(i).param_count(), model.layer(i).state_count()));
    return n;
}

// A value is channels-last when its writer and every reader take it so; the model's input and
// output stay (N, C, H, W). A layer that keeps the layout (element-wise, batch norm, concat, pools)
// has its output and every input of the output's size (a pool's input, whatever its size) in one
// layout: where they disagree, all of them go back to (N, C, H, W), until no layer has a
// disagreement. (A value of 1x1 pixels is the same in memory either way and is left out of the
// agreement.) At inference a layer that reads its input flattened (a dense layer) reads it
// channels-last too, through a flatten (a view) or not, with its weights permuted once to match,
// which costs nothing: inference packs (float32), converts (bf16) or quantises (int8) them anyway.
std::vector<Layouts> plan_layouts(const Model& model, bool inference) {
    const ValueGraph graph = analyse(model);
    const int64_t L = model.size();
    const auto permutes = [&](int64_t r) { return inference && model.layer(r).reads_flattened(); };
    const auto reads_channels_last = [&](int64_t r) {
        return model.layer(r).channels_last() != ChannelsLast::no || permutes(r);
    };
    std::vector<Layout> value_layout(static_cast<size_t>(L + 1), Layout::nchw);
    for (int64_t v = 1; v < L; ++v) {
        const auto& readers = graph.readers[static_cast<size_t>(v)];
        bool nhwc = model.layer(v - 1).channels_last() != ChannelsLast::no && !readers.empty();
        for (int64_t r : readers) {
            if (!(inference && graph.view[static_cast<size_t>(r)])) {
                nhwc = nhwc && reads_channels_last(r);
                continue;
            }
            const auto& through = graph.readers[static_cast<size_t>(r + 1)];  // what reads the view
            nhwc = nhwc && !through.empty() && r + 1 < L;
            for (int64_t t : through) nhwc = nhwc && permutes(t);
        }
        if (nhwc) value_layout[static_cast<size_t>(v)] = Layout::nhwc;
    }
    auto plane_of = [&](int64_t v) {
        const Shape s = model.value_shape(v);
        return s.h * s.w;
    };
    for (bool changed = true; changed;) {  // each pass only turns values back to (N, C, H, W)
        changed = false;
        for (int64_t i = 0; i < L; ++i) {
            if (model.layer(i).channels_last() != ChannelsLast::keeps) continue;
            std::vector<int64_t> tied{i + 1};
            // A pool's one input ties too, whatever its size, unless the output is a single pixel.
            for (int64_t v : model.inputs(i))
                if (plane_of(v) == plane_of(i + 1) ||
                    (!model.layer(i).reads_several() && plane_of(i + 1) > 1))
                    tied.push_back(v);
            const bool all_nhwc = std::all_of(tied.begin(), tied.end(), [&](int64_t v) {
                return value_layout[static_cast<size_t>(v)] == Layout::nhwc;
            });
            if (all_nhwc) continue;
            for (int64_t v : tied)
                if (value_layout[static_cast<size_t>(v)] == Layout::nhwc) {
                    value_layout[static_cast<size_t>(v)] = Layout::nchw;
                    changed = true;
                }
        }
    }
    if (inference)  // a view is its input's memory, laid out as that is
        for (int64_t i = 0; i < L; ++i)
            if (graph.view[static_cast<size_t>(i)] &&
                value_layout[static_cast<size_t>(model.inputs(i)[0])] == Layout::nhwc)
                value_layout[static_cast<size_t>(i + 1)] = Layout::nhwc;
    std::vector<Layouts> layouts(static_cast<size_t>(L));
    for (int64_t i = 0; i < L; ++i)
        layouts[static_cast<size_t>(i)] = {value_layout[static_cast<size_t>(model.inputs(i)[0])],
                                           value_layout[static_cast<size_t>(i + 1)]};
    return layouts;
}

namespace {

// The layer that computes value v: its own, or the one it is folded into (-1: the model's input).
int64_t computed_by(const InferenceSchedule& schedule, int64_t v) {
    if (v == 0) return -1;
    const int64_t host = schedule.absorbed_by[static_cast<size_t>(v - 1)];
    return host >= 0 ? host : v - 1;
}

// Whether value v is the means of a pool folded into the layer that computes them.
bool folded_means(const InferenceSchedule& schedule, int64_t v) {
    const int64_t host = computed_by(schedule, v);
    return host >= 0 && host != v - 1 && schedule.means_into[static_cast<size_t>(host)] == v - 1;
}

// An add of two values goes into the convolution that computes one of them (after what that
// absorbed) where the add is that value's only reader: the convolution writes its result over the
// other input, the residual, adding it (oneDNN's sum post-op), and the add does not run. That needs
// the residual computed before the convolution runs, and its memory read by no one from then on
// but the add. Not in int8, whose convolutions add no residual.
bool absorb_residual(const Model& model, ValueGraph& graph, InferenceSchedule& schedule, int64_t i) {
    const std::vector<int64_t>& in = model.inputs(i);
    if (model.layer(i).kind() != "add" || in.size() != 2 || schedule.plan.precision == Precision::int8)
        return false;
    const auto writer = [&](int64_t v) { return computed_by(schedule, v); };
    // A pool's means are not the output of the convolution that writes them.
    if (folded_means(schedule, in[0]) || folded_means(schedule, in[1])) return false;
    // The later-written input first: the earlier one is then ready when its convolution runs.
    const bool second_later = writer(in[1]) > writer(in[0]);
    for (const auto& [output, residual] :
         {std::pair{in[second_later], in[!second_later]}, std::pair{in[!second_later], in[second_later]}}) {
        const int64_t host = writer(output);
        if (output == 0 || graph.readers[static_cast<size_t>(output)].size() != 1 ||
            graph.view[static_cast<size_t>(host)] || writer(residual) >= host ||
            schedule.layouts[static_cast<size_t>(host)].output !=
                schedule.layouts[static_cast<size_t>(i)].output)
            continue;
        Absorption wanted = schedule.absorbs[static_cast<size_t>(host)];
        if (wanted.residual || wanted.activation.kind != Activation::none) continue;
        wanted.residual = true;
        wanted.activation = model.layer(i).activation();
        if (!model.layer(host).can_absorb(wanted)) continue;
        const int64_t root = graph.storage_root(residual);
        bool read_later = false;  // a value there read by a layer from the convolution on, but the add
        for (int64_t v = 0; v <= i; ++v)  // (what the add writes over it in place comes after)
            if (graph.storage_root(v) == root)
                for (int64_t reader : graph.readers[static_cast<size_t>(v)])
                    read_later = read_later || (reader >= host && reader != i);
        if (read_later) continue;
        schedule.absorbs[static_cast<size_t>(host)] = wanted;
        schedule.absorbed_by[static_cast<size_t>(i)] = host;
        graph.absorb_residual(i, output, residual);
        return true;
    }
    return false;
}

// A global average pool of a convolution's output (after what that absorbed) goes into the
// convolution too, which then applies its activation itself and writes the means in the same pass
// over its output, while a squeeze-and-excitation block's other reader, the scaling, still reads
// that. The pool's output keeps its own buffer, alive from the convolution on. Not in int8, and
// not in a chain, whose arena holds only two values at a time.
bool absorb_channel_means(const Model& model, InferenceSchedule& schedule, int64_t i) {
    const LayerConfig config = model.layer(i).config();
    const auto* pool = std::get_if<GlobalPoolConfig>(&config);
    const int64_t in = model.inputs(i)[0];
    if (!pool || pool->kind != PoolKind::average || in == 0 || model.is_chain() ||
        schedule.plan.precision == Precision::int8)
        return false;
    if (folded_means(schedule, in)) return false;  // a pool of a pool
    const int64_t host = computed_by(schedule, in);
    Absorption wanted = schedule.absorbs[static_cast<size_t>(host)];
    if (wanted.channel_means || model.layer(host).kind() != "conv") return false;
    wanted.channel_means = true;
    if (!model.layer(host).can_absorb(wanted)) return false;
    schedule.absorbs[static_cast<size_t>(host)] = wanted;
    schedule.absorbed_by[static_cast<size_t>(i)] = host;
    schedule.means_into[static_cast<size_t>(host)] = i;
    return true;
}

// Inference folds a batch norm and then an activation into the convolution whose output only it
// reads (through the batch norm, for the activation): the convolution computes act(scale·conv(x) +
// shift) in one pass over its output, and the folded layers, which run not at all, pass its memory
// on as in-place layers do. So may an add, before the activation (absorb_residual), and a global
// average pool of what the convolution then writes (absorb_channel_means).
void plan_absorption(const Model& model, ValueGraph& graph, InferenceSchedule& schedule) {
    const auto L = static_cast<size_t>(model.size());
    schedule.absorbed_by.assign(L, -1);
    schedule.absorbs.assign(L, {});
    schedule.affine_from.assign(L, -1);
    schedule.means_into.assign(L, -1);
    for (int64_t i = 0; i < model.size(); ++i) {
        if (absorb_residual(model, graph, schedule, i) || absorb_channel_means(model, schedule, i)) continue;
        const Layer& layer = model.layer(i);
        const int64_t in = model.inputs(i)[0];
        if (layer.reads_several() || in == 0 || graph.readers[static_cast<size_t>(in)].size() != 1) continue;
        // What follows a folded pool applies to the means, not to the host's output.
        if (folded_means(schedule, in)) continue;
        const int64_t host = computed_by(schedule, in);
        Absorption wanted = schedule.absorbs[static_cast<size_t>(host)];
        const LayerConfig config = layer.config();
        const auto* activation = std::get_if<ActivationConfig>(&config);
        if (layer.per_channel_affine() && !wanted.any())
            wanted.affine = true;  // the map comes before any activation
        else if (activation && wanted.activation.kind == Activation::none)
            wanted.activation = activation->activation;
        else
            continue;
        if (!model.layer(host).can_absorb(wanted)) continue;
        schedule.absorbs[static_cast<size_t>(host)] = wanted;
        if (layer.per_channel_affine()) schedule.affine_from[static_cast<size_t>(host)] = i;
        schedule.absorbed_by[static_cast<size_t>(i)] = host;
        graph.absorb(i, in);
    }
    graph.settle();
}

// A concatenation whose one reader comes right after it and can read its inputs' channels in its
// place (Layer::reads_channel_runs: DenseNet's concatenation, batch norm, relu, at every layer of a
// block) is never written: that reader reads each input's run of channels at every pixel, so the
// concatenation's copy and its output's memory go. Right after it, so that nothing runs between
// them that could write over an input. Channels-last, and not in int8, which may hold the inputs in
// bytes.
void plan_read_through(const Model& model, const ValueGraph& graph, InferenceSchedule& schedule) {
    const auto L = static_cast<size_t>(model.size());
    schedule.reads_through.assign(L, -1);
    schedule.input_runs.assign(L, {});
    if (schedule.plan.precision == Precision::int8) return;
    for (int64_t i = 0; i + 1 < model.size(); ++i) {
        const int64_t reader = i + 1;
        const auto at = static_cast<size_t>(reader);
        const std::vector<int64_t>& readers = graph.readers[static_cast<size_t>(i + 1)];
        if (!std::holds_alternative<ConcatConfig>(model.layer(i).config()) || readers.size() != 1 ||
            readers[0] != reader || !model.layer(reader).reads_channel_runs() ||
            schedule.absorbed_by[at] >= 0 || schedule.layouts[at].input != Layout::nhwc)
            continue;
        schedule.reads_through[at] = i;
        for (int64_t v : model.inputs(i)) schedule.input_runs[at].push_back(model.value_shape(v).c);
    }
}

// A concatenation's input whose writer can write a run of channels inside longer rows (Layer::
// writes_channel_slice) is written straight into the concatenation's output: the concatenation copies
// nothing of it. Where that writer and the concatenation are the only layers that touch the value's
// memory: nothing else reads it, nothing is folded into the writer, and the concatenation reads it
// once. Outer concatenations first, since an inner one that is written into an outer one writes its
// own inputs' slices at the outer one's stride. Channels-last, and not in int8, which may hold a
// value in bytes.
void plan_slice_writes(const Model& model, const ValueGraph& graph, InferenceSchedule& schedule) {
    const int64_t L = model.size();
    schedule.slice_of.assign(static_cast<size_t>(L + 1), {});
    if (schedule.plan.precision == Precision::int8) return;
    const auto folds_into = [&](int64_t writer) {
        return std::find(schedule.absorbed_by.begin(), schedule.absorbed_by.end(), writer) !=
               schedule.absorbed_by.end();
    };
    const auto may_write_into = [&](int64_t v, int64_t concat) {
        const int64_t writer = v - 1;
        if (v == 0 || graph.inference_storage(v) != v || graph.readers[static_cast<size_t>(v)].size() != 1)
            return false;
        const auto at = static_cast<size_t>(writer);
        const std::vector<int64_t>& inputs = model.inputs(concat);
        return model.layer(writer).writes_channel_slice() && !graph.view[at] && !graph.in_place[at] &&
               schedule.absorbed_by[at] < 0 && !folds_into(writer) && schedule.means_into[at] < 0 &&
               !schedule.read_through(writer) && schedule.layouts[at].output == Layout::nhwc &&
               std::count(inputs.begin(), inputs.end(), v) == 1;
    };
    for (int64_t concat = L - 1; concat >= 0; --concat) {
        const auto at = static_cast<size_t>(concat);
        if (!std::holds_alternative<ConcatConfig>(model.layer(concat).config()) ||
            schedule.absorbed_by[at] >= 0 || schedule.read_through(concat) ||
            schedule.layouts[at].output != Layout::nhwc)
            continue;
        const InferenceSchedule::ChannelSlice& own = schedule.slice_of[at + 1];
        const int64_t stride = own.concat >= 0 ? own.stride : model.value_shape(concat + 1).c;
        int64_t channel = 0;
        for (int64_t v : model.inputs(concat)) {
            if (may_write_into(v, concat))
                schedule.slice_of[static_cast<size_t>(v)] = {concat, channel, stride};
            channel += model.value_shape(v).c;
        }
    }
}

// int8 inference: which buffers hold int8 (see InferenceSchedule::int8_values), each layer's input
// quantisation, and what each layer reads and writes. A buffer is held in int8 where every layer
// writing it can write int8 and every layer reading it can read int8; a max pool passes its input's
// scale on (the largest of int8 values is the int8 of the largest), so it may hold int8 only where
// its input does, and read int8 only where its output is held so too: the decision is made for all
// buffers at once, dropping those that break a rule until none does. The decisions depend on the
// model's structure only, so a model never calibrated is planned as it would run once it is.
void plan_int8_storage(const Model& model, const ValueGraph& graph, InferenceSchedule& schedule) {
    const int64_t L = model.size();
    const auto root = [&](int64_t v) { return graph.inference_storage(v); };
    const auto runs = [&](int64_t i) {
        return !graph.view[static_cast<size_t>(i)] && schedule.absorbed_by[static_cast<size_t>(i)] < 0;
    };
    const auto is_conv = [&](int64_t i) {
        return std::holds_alternative<Conv2dConfig>(model.layer(i).config());
    };
    const auto is_max_pool = [&](int64_t i) {
        const LayerConfig config = model.layer(i).config();
        const auto* pool = std::get_if<Pool2dConfig>(&config);
        return pool && pool->kind == PoolKind::max;
    };
    // What layer i writes: the value of the last layer folded into it.
    schedule.held_value.assign(static_cast<size_t>(L), 0);
    schedule.input_value.assign(static_cast<size_t>(L), 0);
    for (int64_t i = 0; i < L; ++i) {
        schedule.held_value[static_cast<size_t>(i)] = i + 1;
        schedule.input_value[static_cast<size_t>(i)] = model.inputs(i)[0];
    }
    for (int64_t j = 0; j < L; ++j)
        if (const int64_t host = schedule.absorbed_by[static_cast<size_t>(j)]; host >= 0)
            schedule.held_value[static_cast<size_t>(host)] =
                std::max(schedule.held_value[static_cast<size_t>(host)], j + 1);
    std::vector<char> int8(static_cast<size_t>(L + 1), 0);
    for (int64_t i = 0; i < L; ++i)  // candidates: what convolutions and max pools write
        if (runs(i) && ((model.layer(i).runs_int8() && is_conv(i)) || is_max_pool(i)))
            int8[static_cast<size_t>(root(i + 1))] = 1;
    int8[static_cast<size_t>(root(0))] = int8[static_cast<size_t>(root(L))] = 0;
    // A convolution's output needs a range to be held in int8 (a QDQ file gives ranges only to what
    // int8 layers read; import passes them back through max pools and flattens).
    const auto has_range = [&](int64_t v) {
        const ValueRange r =
            model.calibrated() ? model.value_ranges()[static_cast<size_t>(v)] : ValueRange{0, 1};
        return r.min < r.max;
    };
    const auto writes_int8 = [&](int64_t i) {
        const Layer& layer = model.layer(i);
        if (is_max_pool(i)) return int8[static_cast<size_t>(root(model.inputs(i)[0]))] != 0;
        return layer.runs_int8() && is_conv(i) && has_range(schedule.held_value[static_cast<size_t>(i)]) &&
               !over_channels(schedule.absorbs[static_cast<size_t>(i)].activation.kind != Activation::none
                                  ? schedule.absorbs[static_cast<size_t>(i)].activation.kind
                                  : layer.activation().kind);
    };
    const auto reads_int8 = [&](int64_t i) {
        if (is_max_pool(i))
            return int8[static_cast<size_t>(root(schedule.held_value[static_cast<size_t>(i)]))] != 0;
        return model.layer(i).runs_int8();
    };
    for (bool changed = true; changed;) {
        changed = false;
        for (int64_t v = 0; v <= L; ++v) {
            char& held = int8[static_cast<size_t>(root(v))];
            if (!held) continue;
            bool fits = true;
            if (v > 0 && runs(v - 1))
                fits = root(schedule.held_value[static_cast<size_t>(v - 1)]) == root(v) && writes_int8(v - 1);
            for (int64_t r : graph.readers[static_cast<size_t>(v)])
                fits = fits && (!runs(r) || reads_int8(r));
            if (!fits) {
                held = 0;
                changed = true;
            }
        }
    }
    // Scales, writers before readers: a convolution's output by its own range, a max pool's by its input's.
    schedule.int8_values.assign(static_cast<size_t>(L + 1), std::nullopt);
    const auto range_of = [&](int64_t v) {
        const ValueRange r = model.calibrated() ? model.value_ranges()[static_cast<size_t>(v)] : ValueRange{};
        return int8_quant(r.min, r.max);
    };
    for (int64_t v = 1; v <= L; ++v) {
        if (!int8[static_cast<size_t>(root(v))]) continue;
        const int64_t writer = root(v) - 1;
        schedule.int8_values[static_cast<size_t>(v)] =
            is_max_pool(writer) ? schedule.int8_values[static_cast<size_t>(root(model.inputs(writer)[0]))]
                                : range_of(schedule.held_value[static_cast<size_t>(writer)]);
    }
    for (int64_t i = 0; i < L; ++i) {
        const auto& stored = schedule.int8_values[static_cast<size_t>(model.inputs(i)[0])];
        schedule.int8_inputs.push_back(stored ? *stored : range_of(model.inputs(i)[0]));
    }
}

// Floats that value v's buffer takes for `batch` images: int8 values a quarter, on 64-byte boundaries.
int64_t value_floats(const Model& model, const InferenceSchedule& schedule, int64_t batch, int64_t v) {
    const int64_t elements = checked_mul(batch, model.value_shape(v).elements(), "activation");
    const bool int8 = !schedule.int8_values.empty() && schedule.int8_values[static_cast<size_t>(v)];
    return int8 ? (elements + 63) / 64 * 16 : elements;
}

// A chain's arena: the live value at one end, the next output at the other, so the arena is exactly
// the largest pair of consecutive activations (the course notes' rule), less what folded layers
// no longer write.
void place_chain(const Model& model, const ValueGraph& graph, int64_t batch, InferenceSchedule& schedule) {
    InferencePlan& plan = schedule.plan;
    const auto shares_input = [&](int64_t i) {
        return graph.view[static_cast<size_t>(i)] || graph.in_place[static_cast<size_t>(i)];
    };
    int64_t live = plan.input_floats;
    plan.arena_floats = live;
    for (int64_t i = 0; i < model.size(); ++i) {
        const int64_t out = value_floats(model, schedule, batch, i + 1);
        if (!shares_input(i))
            plan.arena_floats = std::max(plan.arena_floats, checked_add(live, out, "arena"));
        live = out;
    }
    bool at_start = true;
    int64_t offset = 0;
    schedule.value_offset.assign(1, 0);
    for (int64_t i = 0; i < model.size(); ++i) {
        if (!shares_input(i)) {
            at_start = !at_start;
            offset = at_start ? 0 : plan.arena_floats - value_floats(model, schedule, batch, i + 1);
        }
        schedule.value_offset.push_back(offset);
    }
}

// A graph's arena: each buffer lives from its writer to its last reader and is placed by the planner.
void place_graph(const Model& model, const ValueGraph& graph, int64_t batch, InferenceSchedule& schedule) {
    const int64_t L = model.size();
    std::vector<Lifetime> buffers;
    std::vector<int64_t> buffer_of(static_cast<size_t>(L + 1), -1);
    for (int64_t v = 0; v <= L; ++v) {
        const int64_t root = graph.inference_storage(v);
        if (root == v) {
            // Written by its layer, or by the layer that absorbed it (a pool's means, see
            // absorb_channel_means).
            const int64_t writer = computed_by(schedule, v);
            buffer_of[static_cast<size_t>(v)] = static_cast<int64_t>(buffers.size());
            const bool no_memory = (v > 0 && schedule.read_through(v - 1)) ||
                                   schedule.slice_of[static_cast<size_t>(v)].concat >= 0;
            const int64_t floats = no_memory ? 0 : value_floats(model, schedule, batch, v);
            buffers.push_back({floats, writer, writer});
        }
        Lifetime& b = buffers[static_cast<size_t>(buffer_of[static_cast<size_t>(root)])];
        b.last = std::max(b.last, graph.last_read[static_cast<size_t>(v)]);
    }
    for (int64_t i = 0; i < L; ++i)  // a concatenation's inputs, read by the layer that reads it through
        if (schedule.read_through(i))
            for (int64_t v : model.inputs(i)) {
                Lifetime& b =
                    buffers[static_cast<size_t>(buffer_of[static_cast<size_t>(graph.inference_storage(v))])];
                b.last = std::max(b.last, i + 1);
            }
    // A concatenation's output is alive from the first of its inputs written straight into it (an
    // inner concatenation's from the first written into that: inputs before their readers).
    const auto buffer_of_value = [&](int64_t v) -> Lifetime& {
        return buffers[static_cast<size_t>(buffer_of[static_cast<size_t>(graph.inference_storage(v))])];
    };
    for (int64_t v = 0; v <= L; ++v)
        if (const int64_t concat = schedule.slice_of[static_cast<size_t>(v)].concat; concat >= 0) {
            Lifetime& out = buffer_of_value(concat + 1);
            out.first = std::min(out.first, buffer_of_value(v).first);
        }
    ArenaLayout layout = place_buffers(buffers);
    // ... and such an input lies inside it (outer concatenations placed first).
    for (int64_t v = L; v >= 0; --v)
        if (const auto& slice = schedule.slice_of[static_cast<size_t>(v)]; slice.concat >= 0)
            layout.offsets[static_cast<size_t>(buffer_of[static_cast<size_t>(v)])] =
                layout.offsets[static_cast<size_t>(
                    buffer_of[static_cast<size_t>(graph.inference_storage(slice.concat + 1))])] +
                slice.channel;
    schedule.plan.arena_floats = layout.floats;
    schedule.value_offset.resize(static_cast<size_t>(L + 1));
    for (int64_t v = 0; v <= L; ++v)
        schedule.value_offset[static_cast<size_t>(v)] =
            layout.offsets[static_cast<size_t>(buffer_of[static_cast<size_t>(graph.inference_storage(v))])];
}

}  // namespace

Pass InferenceSchedule::pass(int64_t layer, int64_t batch) const {
    const auto at = static_cast<size_t>(layer);
    Pass pass;
    pass.batch = batch;
    pass.precision = plan.precision;
    pass.layouts = layouts[at];
    pass.absorbed = absorbs[at];
    if (absorbs[at].activation.kind != Activation::none) pass.activation = absorbs[at].activation;
    if (reads_through[at] >= 0) pass.input_runs = &input_runs[at];
    pass.output_stride = slice_of[at + 1].stride;
    pass.prepared_batch = plan.slice;
    if (!flattened_from.empty()) pass.flattened_from = flattened_from[at];
    if (!int8_inputs.empty()) pass.int8_input = int8_inputs[at];
    if (!int8_values.empty()) {
        pass.int8_input_stored = int8_values[static_cast<size_t>(input_value[at])].has_value();
        pass.int8_output = int8_values[static_cast<size_t>(held_value[at])];
    }
    return pass;
}

namespace {

// The size of the largest cache of the first CPU, as Linux describes it; 0 if it does not. (glibc's
// sysconf(_SC_LEVEL3_CACHE_SIZE) can be the whole package's, 320 MB on this virtual EPYC whose
// cores share 32 MB.)
int64_t last_level_cache_bytes() {
    int64_t largest = 0;
    for (int index = 0;; ++index) {
        std::ifstream file("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
        int64_t size = 0;
        char unit = 0;
        if (!(file >> size)) break;
        if (file >> unit) size *= unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : 1;
        largest = std::max(largest, size);
    }
    return largest;
}

// `images` in equal slices of at least `least` images that hold at most `budget` bytes, `per_image` each.
int64_t equal_slices(int64_t images, int64_t per_image, int64_t budget, int64_t least) {
    const int64_t fits = std::max(least, budget / std::max<int64_t>(per_image, 1));
    if (fits >= images) return images;
    const int64_t slices = (images + fits - 1) / fits;
    return (images + slices - 1) / slices;
}

InferenceSplit split_of(const Model& model, const ValueGraph& graph, int64_t batch, Precision precision) {
    const int64_t per_image = checked_mul(live_peak(model, graph).elements, int64_t{sizeof(float)}, "memory");
    const auto team = static_cast<int64_t>(threads());
    InferenceSplit split;
    // The batch runs whole, in one stream, where:
    // - the weights outweigh what the batch holds at its peak, since every slice reads them again
    //   (AlexNet's and VGG's dense layers: AlexNet at batch 16 ran at 0.87x ONNX Runtime's speed in
    //   two streams);
    // - bf16: its matrix products use oneDNN's own scratchpad, which one primitive cannot share
    //   between calls at once, and with two threads on every layer, slices of 128 took fmnist-infer
    //   in bf16 from about 22,000 to 18,000 images/s;
    // - fewer than two images a thread.
    const bool weights_outweigh = checked_mul(all_params(model), int64_t{sizeof(float)}, "memory") >
                                  checked_mul(per_image, batch, "memory");
    if (weights_outweigh || precision == Precision::bf16 || batch < 2 * team) {
        split.slice = batch;
        return split;
    }
    split.streams = team;
    split.slice = equal_slices((batch + team - 1) / team, per_image, inference_slice_bytes() / team, 2);
    return split;
}

}  // namespace

// Half: the other half keeps the weights a layer reads and what the kernels copy.
int64_t inference_slice_bytes() {
    static const int64_t budget = [] {
        const int64_t cache = last_level_cache_bytes();
        return cache > 0 ? cache / 2 : int64_t{16} << 20;
    }();
    return budget;
}

InferenceSplit inference_split(const Model& model, int64_t batch, Precision precision) {
    check_plan_batch(batch);
    return split_of(model, analyse(model), batch, precision);
}

InferenceSchedule schedule_inference(const Model& model, int64_t max_batch, Precision precision) {
    check_plan_batch(max_batch);
    require_precision(precision);
    InferenceSchedule schedule;
    InferencePlan& plan = schedule.plan;
    ValueGraph graph = analyse(model);
    // Everything below is planned for one slice.
    const InferenceSplit split = split_of(model, graph, max_batch, precision);
    const int64_t batch = split.slice;
    plan.batch = max_batch;
    plan.slice = batch;
    plan.streams = split.streams;
    if (batch < max_batch)
        plan.output_floats = checked_mul(max_batch, model.output_shape().elements(), "output batch");
    plan.precision = precision;
    schedule.layouts = plan_layouts(model, true);
    plan.input_floats = checked_mul(batch, model.input_shape().elements(), "input batch");
    plan.param_floats = all_params(model);
    schedule.flattened_from.assign(static_cast<size_t>(model.size()), Shape{});
    for (int64_t i = 0; i < model.size(); ++i) {
        int64_t v = model.inputs(i)[0];
        if (v > 0 && graph.view[static_cast<size_t>(v - 1)])
            v = model.inputs(v - 1)[0];  // before the flatten
        if (schedule.layouts[static_cast<size_t>(i)].input == Layout::nhwc &&
            model.layer(i).reads_flattened())
            schedule.flattened_from[static_cast<size_t>(i)] = model.value_shape(v);
    }
    plan_absorption(model, graph, schedule);
    plan_read_through(model, graph, schedule);
    plan_slice_writes(model, graph, schedule);
    if (precision == Precision::int8) plan_int8_storage(model, graph, schedule);
    for (int64_t i = 0; i < model.size(); ++i) {
        schedule.prepared_offset.push_back(-1);
        if (schedule.absorbed_by[static_cast<size_t>(i)] >= 0 || schedule.read_through(i))
            continue;  // does not run
        const Layer& layer = model.layer(i);
        const Pass pass = schedule.pass(i, batch);
        plan.workspace_floats = std::max(plan.workspace_floats, layer.workspace_floats(pass));
        // Each layer's region on a 64-byte boundary, as the kernels' own copies are.
        const int64_t prepared = layer.prepared_floats(pass);
        if (prepared > 0) schedule.prepared_offset.back() = plan.prepared_floats;
        plan.prepared_floats =
            checked_add(plan.prepared_floats, (prepared + 15) / 16 * 16, "prepared weights");
    }
    if (model.is_chain())
        place_chain(model, graph, batch, schedule);
    else
        place_graph(model, graph, batch, schedule);
    return schedule;
}

InferencePlan plan_inference(const Model& model, int64_t batch, Precision precision) {
    return schedule_inference(model, batch, precision).plan;
}

Pass training_pass(const Model& model, const std::vector<Layouts>& layouts, int64_t layer, int64_t batch,
                   Precision precision, bool logits) {
    Pass pass;
    pass.batch = batch;
    // Frozen layers run as at inference, as Keras runs layers with trainable=False: batch norm
    // normalises with its running statistics and leaves them as they are; dropout keeps everything.
    pass.training = !model.frozen(layer);
    pass.precision = precision;
    pass.layouts = layouts[static_cast<size_t>(layer)];
    if (logits) pass.activation = ActivationSpec{};
    return pass;
}

std::vector<char> gradient_needed(const Model& model) {
    std::vector<char> needed(static_cast<size_t>(model.size() + 1), 0);
    for (int64_t i = 0; i < model.size(); ++i) {
        char& out = needed[static_cast<size_t>(i + 1)];
        out = model.trains(i);
        for (int64_t v : model.inputs(i)) out = out || needed[static_cast<size_t>(v)];
    }
    return needed;
}

TrainingPlan plan_training(const Model& model, int64_t batch, OptimizerKind optimizer, Precision precision) {
    check_plan_batch(batch);
    if (precision == Precision::int8)
        throw Error("int8 is for inference: train in float32 or bf16, then lenz quantize the checkpoint");
    require_precision(precision);
    TrainingPlan plan;
    plan.batch = batch;
    plan.precision = precision;
    const std::vector<Layouts> layouts = plan_layouts(model);
    plan.param_floats = all_params(model);
    int64_t trainable = 0;
    for (int64_t i = model.frozen_layers(); i < model.size(); ++i)
        trainable = checked_add(trainable, model.layer(i).param_count());
    plan.gradient_floats = trainable;
    plan.optimizer_floats = checked_mul(trainable, optimizer_state_copies(optimizer));
    plan.input_floats = checked_mul(batch, model.input_shape().elements(), "input batch");
    const ValueGraph graph = analyse(model);
    const std::vector<char> needed = gradient_needed(model);
    for (int64_t i = 0; i < model.size(); ++i) {
        const Layer& layer = model.layer(i);
        // A frozen layer runs as at inference: nothing saved for a backward it never runs.
        const bool frozen = model.frozen(i);
        const int64_t out = checked_mul(batch, layer.output_shape().elements(), "activation");
        if (!graph.view[static_cast<size_t>(i)])
            plan.activation_floats = checked_add(plan.activation_floats, out, "activations");
        if (graph.own_gradient[static_cast<size_t>(i + 1)] && needed[static_cast<size_t>(i + 1)])
            plan.value_gradient_floats = checked_add(plan.value_gradient_floats, out, "gradients");
        if (!frozen)
            plan.saved_floats = checked_add(plan.saved_floats, layer.saved_floats(batch), "saved tensors");
        plan.workspace_floats =
            std::max(plan.workspace_floats,
                     layer.workspace_floats(training_pass(model, layouts, i, batch, precision)));
    }
    plan.bytes();  // throws here, before anyone allocates, if the total overflows
    return plan;
}

}  // namespace lenz
