// The engine's own plan of a run, beyond the figures the public plans report: each layer's
// layouts, where each value lives, what is folded into what, and the Pass each call gets. The
// runners execute it; `lenz bench --profile` and the tests read it.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "layers/pass.h"
#include "lenz/engine.h"

namespace lenz {

// Each layer's input and output layout: channels-last between two consecutive layers that both take
// it (a convolution feeding a convolution), plain (N, C, H, W) everywhere else, the model's input and
// output included. Inference and training both use these.
// At inference a dense layer reads channels-last too (Layer::reads_flattened).
std::vector<Layouts> plan_layouts(const Model& model, bool inference = false);

struct InferenceSchedule {
    InferencePlan plan;            // the figures
    std::vector<Layouts> layouts;  // per layer, from plan_layouts
    // Per layer that reads flattened from channels-last memory: that memory's shape (else empty).
    std::vector<Shape> flattened_from;
    // Where each value lives, in floats from the arena's start (value 0: the input; i + 1: layer i's output).
    std::vector<int64_t> value_offset;
    // Per layer: where its prepared weights start (Layer::prepare), -1 where it prepares nothing.
    std::vector<int64_t> prepared_offset;
    // Layers folded into the layer before them (Layer::can_absorb): a batch norm on its running
    // statistics, then an activation, where nothing else reads what is folded. Per layer: the layer
    // that computes it (-1: itself; a folded layer does not run, and its output is the other's);
    // what it computes for others; and the layer whose affine map it folds in (-1: none).
    std::vector<int64_t> absorbed_by;
    std::vector<Absorption> absorbs;
    std::vector<int64_t> affine_from;
    // Per layer: the global average pool whose means it writes besides its output (absorbs.channel_means;
    // the pool is absorbed_by it, but keeps its own output buffer, written when its host runs), or -1.
    std::vector<int64_t> means_into;
    // Per layer: the concatenation just before it whose inputs it reads in its place, one run of
    // channels each (Layer::reads_channel_runs; input_runs: their channels), or -1. Such a
    // concatenation does not run, and its output takes no memory.
    std::vector<int64_t> reads_through;
    std::vector<std::vector<int64_t>> input_runs;
    bool read_through(int64_t layer) const {
        const auto next = static_cast<size_t>(layer + 1);
        return next < reads_through.size() && reads_through[next] == layer;
    }
    // Per value: where its writer writes it straight into a concatenation's output (Layer::
    // writes_channel_slice): the concatenation, the first of its channels there, and the floats
    // from one pixel to the next (the concatenation's row, 0 where the value is held on its own).
    // The concatenation copies nothing of such a value, and the value takes no memory of its own.
    struct ChannelSlice {
        int64_t concat = -1, channel = 0, stride = 0;
    };
    std::vector<ChannelSlice> slice_of;

    // int8: how each layer's input is quantised (used by layers that run in int8), and how each
    // value is held: in int8 where every layer that writes its memory can write int8 (a convolution,
    // a max pool of an int8 value) and every layer that reads it can read int8 (convolutions, dense
    // layers, such max pools); nullopt: float32. The model's input and output are float32.
    std::vector<Int8Quant> int8_inputs;
    std::vector<std::optional<Int8Quant>> int8_values;
    // int8: per layer, the value it reads first, and the value its output buffer holds (that of the
    // last layer folded into it).
    std::vector<int64_t> input_value, held_value;

    // What layer i is told when it runs at batch `batch` (at most plan.slice), prepare() included.
    Pass pass(int64_t layer, int64_t batch) const;
};
// A precision the CPU lacks is an Error (require_precision).
InferenceSchedule schedule_inference(const Model& model, int64_t max_batch,
                                     Precision precision = Precision::f32);

// What layer i is told in a training step (Layer::workspace_floats, forward, backward); `logits`:
// leave out its fused activation, because the loss reads the logits.
Pass training_pass(const Model& model, const std::vector<Layouts>& layouts, int64_t layer, int64_t batch,
                   Precision precision, bool logits = false);

}  // namespace lenz
