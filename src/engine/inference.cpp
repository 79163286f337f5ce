#include <cstring>

#include "lenz/engine.h"
#include "lenz/error.h"

namespace lenz {

Inference::Inference(Model& model, int64_t max_batch)
    : model_(model),
      plan_(plan_inference(model, max_batch)),
      arena_(plan_.arena_floats),
      workspace_(plan_.workspace_floats) {}

const float* Inference::run(const float* input, int64_t batch) {
    if (batch <= 0 || batch > plan_.batch)
        throw ShapeError("inference batch " + std::to_string(batch) + " is outside 1.." +
                         std::to_string(plan_.batch));
    std::memcpy(arena_.data(), input,
                sizeof(float) * static_cast<size_t>(batch * model_.input_shape().elements()));
    Pass pass;
    pass.batch = batch;
    pass.workspace = workspace_.data();
    float* base = arena_.data();
    for (int64_t i = 0; i < model_.size(); ++i) {
        Layer& layer = model_.layer(i);
        if (layer.reshape_only()) continue;
        pass.layouts = plan_.layouts[static_cast<size_t>(i)];
        // Offsets were planned for the largest batch; outputs at the far end still fit below it.
        layer.forward(base + plan_.in_offset[static_cast<size_t>(i)],
                      base + plan_.out_offset[static_cast<size_t>(i)], pass);
    }
    return model_.size() ? base + plan_.out_offset.back() : base;
}

}  // namespace lenz
