// Who reads each value of a model and where its memory and gradient live: what the memory plans,
// the runners and the summary share. Value 0 is the model's input, value i + 1 layer i's output.
#pragma once
#include <cstdint>
#include <vector>

#include "lenz/model.h"

namespace lenz {

struct ValueGraph {
    std::vector<std::vector<int64_t>> readers;  // per value: the layers reading it, in order
    // Per value: the last layer that reads it; size() for the model's output (it outlives the run).
    std::vector<int64_t> last_read;
    // Per layer: its output is its input's memory under another shape (a reshape-only layer whose
    // input nobody else reads). Such a layer costs nothing and is skipped.
    std::vector<char> view;
    // Per layer, inference only: it overwrites its input (standalone activations and dropout whose
    // input nobody else reads; add and mul, one of their inputs that nobody else reads).
    std::vector<char> in_place;
    // Per value, training: its gradient has a buffer of its own, where the gradients from each reader
    // add up (several readers, or a reader of several values). Every other value's gradient
    // overwrites the value itself once its one reader is done with it.
    std::vector<char> own_gradient;

    // The value whose memory holds `value` in inference (itself, unless views or in-place layers
    // pass their input's memory on) and in training (only views pass it on).
    int64_t inference_storage(int64_t value) const { return inference_storage_[static_cast<size_t>(value)]; }
    int64_t training_storage(int64_t value) const { return training_storage_[static_cast<size_t>(value)]; }
    // Inference: layer i is folded into the layer that wrote its input `in`, and shares its memory.
    // Once every such layer is marked, settle() passes that memory on to the values that shared
    // theirs (an add in place over a folded batch norm's output).
    void absorb(int64_t i, int64_t in) {
        in_place[static_cast<size_t>(i)] = 1;
        inference_storage_[static_cast<size_t>(i + 1)] = inference_storage_[static_cast<size_t>(in)];
    }
    // Inference: layer i (an add) is computed by the layer that writes its input `output`, into the
    // memory of its other input `residual`: both values, and the add's, live there from now on.
    void absorb_residual(int64_t i, int64_t output, int64_t residual) {
        const int64_t root = storage_root(residual);
        in_place[static_cast<size_t>(i)] = 1;
        inference_storage_[static_cast<size_t>(storage_root(output))] = root;
        inference_storage_[static_cast<size_t>(i + 1)] = root;
    }
    // The value whose memory `value` shares, before settle().
    int64_t storage_root(int64_t value) const {
        while (inference_storage_[static_cast<size_t>(value)] != value)
            value = inference_storage_[static_cast<size_t>(value)];
        return value;
    }
    void settle() {  // each value's storage is itself or an earlier value, settled before it
        for (int64_t& storage : inference_storage_)
            storage = inference_storage_[static_cast<size_t>(storage)];
    }

    std::vector<int64_t> inference_storage_, training_storage_;
};

ValueGraph analyse(const Model& model);

// The notes' rule for what one prediction holds: a value lives from the layer that writes it to the
// last that reads it, and the peak is the largest total alive at one layer (its inputs and output
// included), views and in-place layers sharing their input's memory. For a chain this is the
// largest consecutive pair. Elements per image; `layer` is where the peak is, `values` the values
// alive there (0: the input). The summary reports it; the inference runner sizes its slices by it.
struct LivePeak {
    int64_t elements = 0;
    int64_t layer = -1;
    std::vector<int64_t> values;
};
LivePeak live_peak(const Model& model, const ValueGraph& graph);

// One buffer of an arena: `floats` long, alive from the layer that writes it (`first`; -1 for the
// model's input) to the last that reads it (`last`), both inclusive.
struct Lifetime {
    int64_t floats, first, last;
};
// Offsets in one arena, so that no two buffers alive at the same layer overlap, and the arena's
// size. Greedy, like ONNX Runtime's and ggml's allocators: the better of placing the largest first
// and placing in order of first use.
struct ArenaLayout {
    std::vector<int64_t> offsets;
    int64_t floats = 0;
};
ArenaLayout place_buffers(const std::vector<Lifetime>& buffers);

}  // namespace lenz
