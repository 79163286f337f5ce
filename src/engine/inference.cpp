#include <chrono>
#include <cstring>
#include <vector>

#include "engine/value_graph.h"
#include "lenz/engine.h"
#include "lenz/error.h"

namespace lenz {

Inference::Inference(Model& model, int64_t max_batch, Precision precision)
    : model_(model),
      plan_(plan_inference(model, max_batch, precision)),
      arena_(plan_.arena_floats),
      workspace_(plan_.workspace_floats),
      prepared_(plan_.prepared_floats),
      views_(analyse(model).view) {
    for (int64_t i = 0; i < model_.size(); ++i) {
        const auto at = static_cast<size_t>(i);
        const int64_t offset = plan_.prepared_offset[at];
        if (offset < 0) continue;
        std::vector<float> scale, shift;  // of a folded batch norm, on its running statistics
        if (const int64_t from = plan_.affine_from[at]; from >= 0) {
            scale.resize(static_cast<size_t>(model_.layer(i).output_shape().c));
            shift.resize(scale.size());
            model_.layer(from).affine_map(scale.data(), shift.data());
        }
        model_.layer(i).prepare(prepared_.data() + offset, plan_.batch, plan_.layouts[at], plan_.precision,
                                plan_.absorbs[at], scale.empty() ? nullptr : scale.data(),
                                shift.empty() ? nullptr : shift.data());
    }
}

const float* Inference::run(const float* input, int64_t batch, std::vector<double>* layer_seconds) {
    if (batch <= 0 || batch > plan_.batch)
        throw ShapeError("inference batch " + std::to_string(batch) + " is outside 1.." +
                         std::to_string(plan_.batch));
    std::memcpy(arena_.data() + plan_.value_offset[0], input,
                sizeof(float) * static_cast<size_t>(batch * model_.input_shape().elements()));
    Pass pass;
    pass.batch = batch;
    pass.workspace = workspace_.data();
    pass.precision = plan_.precision;
    float* base = arena_.data();
    std::vector<const float*> xs;
    for (int64_t i = 0; i < model_.size(); ++i) {
        // Its output is its input under another shape, or another layer computed it.
        if (views_[static_cast<size_t>(i)] || plan_.absorbed_by[static_cast<size_t>(i)] >= 0) continue;
        Layer& layer = model_.layer(i);
        pass.layouts = plan_.layouts[static_cast<size_t>(i)];
        // A layer that prepared nothing reads its weights as they are.
        const int64_t offset = plan_.prepared_offset[static_cast<size_t>(i)];
        pass.prepared = offset >= 0 ? prepared_.data() + offset : nullptr;
        pass.prepared_batch = plan_.batch;
        pass.absorbed = plan_.absorbs[static_cast<size_t>(i)];
        xs.clear();
        for (int64_t v : model_.inputs(i)) xs.push_back(base + plan_.value_offset[static_cast<size_t>(v)]);
        // Offsets were planned for the largest batch; a smaller one uses the start of each buffer.
        const auto start = std::chrono::steady_clock::now();
        layer.forward_inputs(xs, base + plan_.value_offset[static_cast<size_t>(i + 1)], pass);
        if (layer_seconds)
            (*layer_seconds)[static_cast<size_t>(i)] +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return base + plan_.value_offset.back();
}

}  // namespace lenz
