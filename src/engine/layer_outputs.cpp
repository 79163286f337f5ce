// The report's walk over the layers: every output kept, nothing folded. The one executor (docs/
// DESIGN-next.md, section 5) takes it over, as a plan at batch 1 that observes every value.
#include <algorithm>

#include "layers/pass.h"
#include "lenz/buffer.h"
#include "lenz/engine.h"

namespace lenz {

std::vector<std::vector<float>> layer_outputs(Model& model, const float* input) {
    // Buffers of its own and Layer::forward in inference mode: TrainingStep would re-prepare the
    // layers' training state (dropout masks, gradients) for batch 1 under a running trainer.
    Pass pass;  // batch 1, (N, C, H, W), float32
    int64_t workspace_floats = 0;
    for (int64_t i = 0; i < model.size(); ++i)
        workspace_floats = std::max(workspace_floats, model.layer(i).workspace_floats(pass));
    Buffer workspace(workspace_floats);
    pass.workspace = workspace.data();
    pass.workspace_capacity = workspace.size();
    // values[v]: value v of the graph, (C, H, W); value 0 is the input, value i + 1 layer i's output.
    std::vector<std::vector<float>> values{std::vector<float>(input, input + model.input_shape().elements())};
    std::vector<const float*> xs;
    for (int64_t i = 0; i < model.size(); ++i) {
        Layer& layer = model.layer(i);
        std::vector<float> y(static_cast<size_t>(layer.output_shape().elements()));
        xs.clear();
        for (int64_t v : model.inputs(i)) xs.push_back(values[static_cast<size_t>(v)].data());
        if (layer.reshape_only())
            std::copy(xs[0], xs[0] + y.size(), y.data());
        else
            layer.forward_inputs(xs, y.data(), pass);
        values.push_back(std::move(y));
    }
    values.erase(values.begin());
    return values;
}

}  // namespace lenz
