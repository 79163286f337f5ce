#include "engine/value_graph.h"

#include <algorithm>
#include <numeric>

namespace lenz {

ValueGraph analyse(const Model& model) {
    const int64_t L = model.size();
    ValueGraph g;
    g.readers.resize(static_cast<size_t>(L + 1));
    g.last_read.assign(static_cast<size_t>(L + 1), -1);
    for (int64_t i = 0; i < L; ++i)
        for (int64_t v : model.inputs(i)) {
            g.readers[static_cast<size_t>(v)].push_back(i);
            g.last_read[static_cast<size_t>(v)] = i;
        }
    g.last_read[static_cast<size_t>(L)] = L;
    g.view.assign(static_cast<size_t>(L), 0);
    g.in_place.assign(static_cast<size_t>(L), 0);
    g.own_gradient.assign(static_cast<size_t>(L + 1), 0);
    g.inference_storage_.resize(static_cast<size_t>(L + 1));
    g.training_storage_.resize(static_cast<size_t>(L + 1));
    std::iota(g.inference_storage_.begin(), g.inference_storage_.end(), 0);
    std::iota(g.training_storage_.begin(), g.training_storage_.end(), 0);
    for (int64_t i = 0; i < L; ++i) {
        const Layer& layer = model.layer(i);
        int64_t in = model.inputs(i)[0];
        const bool sole_reader = !layer.reads_several() && g.readers[static_cast<size_t>(in)].size() == 1;
        g.view[static_cast<size_t>(i)] = layer.reshape_only() && sole_reader;
        g.in_place[static_cast<size_t>(i)] = layer.in_place() && sole_reader;
        // add and mul write over the first input of their output's shape that only they read.
        if (layer.reads_several() && layer.in_place())
            for (int64_t v : model.inputs(i))
                if (g.readers[static_cast<size_t>(v)].size() == 1 &&
                    model.value_shape(v) == layer.output_shape()) {
                    g.in_place[static_cast<size_t>(i)] = 1;
                    in = v;
                    break;
                }
        if (g.view[static_cast<size_t>(i)])
            g.training_storage_[static_cast<size_t>(i + 1)] = g.training_storage_[static_cast<size_t>(in)];
        if (g.view[static_cast<size_t>(i)] || g.in_place[static_cast<size_t>(i)])
            g.inference_storage_[static_cast<size_t>(i + 1)] = g.inference_storage_[static_cast<size_t>(in)];
        if (layer.reads_several())
            for (int64_t v : model.inputs(i)) g.own_gradient[static_cast<size_t>(v)] = 1;
    }
    for (int64_t v = 0; v <= L; ++v)
        if (g.readers[static_cast<size_t>(v)].size() > 1) g.own_gradient[static_cast<size_t>(v)] = 1;
    g.own_gradient[0] = 0;  // nobody needs the gradient of the model's input
    return g;
}

namespace {

constexpr size_t kLargestFirstUpTo = 4096;

bool overlap_in_time(const Lifetime& a, const Lifetime& b) {
    return a.first <= b.last && b.first <= a.last;
}

// Places each buffer, in the given order, at the lowest offset where it fits between the buffers
// already placed that are alive at the same time. In order of first use, a placed buffer that ends
// before the next one starts can never overlap a later one and is dropped from the search, so the
// work grows with the buffers alive at once, not with all of them.
ArenaLayout place_in_order(const std::vector<Lifetime>& buffers, const std::vector<size_t>& order,
                           bool by_first_use) {
    ArenaLayout layout;
    layout.offsets.assign(buffers.size(), 0);
    std::vector<size_t> placed;
    for (size_t b : order) {
        if (by_first_use) std::erase_if(placed, [&](size_t p) { return buffers[p].last < buffers[b].first; });
        std::vector<std::pair<int64_t, int64_t>> taken;  // [start, end) of buffers alive with b
        for (size_t p : placed)
            if (overlap_in_time(buffers[b], buffers[p]))
                taken.emplace_back(layout.offsets[p], layout.offsets[p] + buffers[p].floats);
        std::sort(taken.begin(), taken.end());
        int64_t offset = 0;
        for (const auto& [start, end] : taken) {
            if (start >= offset + buffers[b].floats) break;  // fits in the gap before this one
            offset = std::max(offset, end);
        }
        layout.offsets[b] = offset;
        layout.floats = std::max(layout.floats, offset + buffers[b].floats);
        placed.push_back(b);
    }
    return layout;
}

}  // namespace

ArenaLayout place_buffers(const std::vector<Lifetime>& buffers) {
    std::vector<size_t> by_size(buffers.size()), by_first(buffers.size());
    std::iota(by_size.begin(), by_size.end(), 0);
    std::iota(by_first.begin(), by_first.end(), 0);
    std::stable_sort(by_size.begin(), by_size.end(),
                     [&](size_t a, size_t b) { return buffers[a].floats > buffers[b].floats; });
    std::stable_sort(by_first.begin(), by_first.end(),
                     [&](size_t a, size_t b) { return buffers[a].first < buffers[b].first; });
    ArenaLayout b = place_in_order(buffers, by_first, true);
    // Largest first compares every pair of buffers: beyond a few thousand, first use order alone.
    if (buffers.size() > kLargestFirstUpTo) return b;
    ArenaLayout a = place_in_order(buffers, by_size, false);
    return a.floats <= b.floats ? a : b;
}

// One sweep over the layers, adding each buffer as its writer runs and dropping it after its last
// reader, so that a model of 100,000 layers costs no more than a few of its passes.
LivePeak live_peak(const Model& model, const ValueGraph& graph) {
    const int64_t L = model.size();
    // Per storage root: its last reader, and at least the layer that writes it (an output nobody reads
    // still exists while its layer runs).
    std::vector<int64_t> last(static_cast<size_t>(L + 1), -1);
    for (int64_t v = 0; v <= L; ++v) {
        const int64_t root = graph.inference_storage(v);
        last[static_cast<size_t>(root)] =
            std::max({last[static_cast<size_t>(root)], root - 1, graph.last_read[static_cast<size_t>(v)]});
    }
    auto elements_of = [&](int64_t r) { return model.value_shape(r).elements(); };
    std::vector<std::vector<int64_t>> ending(static_cast<size_t>(L + 1));  // roots by their last layer
    for (int64_t r = 0; r <= L; ++r)
        if (graph.inference_storage(r) == r && last[static_cast<size_t>(r)] < L)
            ending[static_cast<size_t>(std::max<int64_t>(last[static_cast<size_t>(r)], 0))].push_back(r);
    LivePeak peak;
    int64_t alive = elements_of(0);  // the input, written before layer 0
    for (int64_t i = 0; i < L; ++i) {
        if (graph.inference_storage(i + 1) == i + 1) alive = checked_add(alive, elements_of(i + 1), "memory");
        if (!graph.view[static_cast<size_t>(i)] && !graph.in_place[static_cast<size_t>(i)] &&
            alive > peak.elements) {
            peak.elements = alive;
            peak.layer = i;
        }
        for (int64_t r : ending[static_cast<size_t>(i)]) alive -= elements_of(r);
    }
    for (int64_t r = 0; r <= peak.layer + 1; ++r)
        if (graph.inference_storage(r) == r && last[static_cast<size_t>(r)] >= peak.layer)
            peak.values.push_back(r);
    return peak;
}

}  // namespace lenz
