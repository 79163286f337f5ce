// `lenz bench layers`: single layers timed in the calls and layouts a training step gives them.
#include <algorithm>
#include <chrono>

#include "engine/schedule.h"
#include "layers/pass.h"
#include "lenz/engine.h"
#include "lenz/random.h"

namespace lenz {

std::vector<LayerTiming> time_layers(Model& model, const std::vector<int64_t>& layers, int64_t batch,
                                     Precision precision, int reps) {
    using Clock = std::chrono::steady_clock;
    const auto seconds = [](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double>(b - a).count();
    };
    const std::vector<Layouts> layouts = plan_layouts(model);
    std::vector<LayerTiming> timings;
    for (int64_t i : layers) {
        Layer& layer = model.layer(i);
        layer.allocate_gradients();
        Buffer x(batch * layer.input_shape().elements()), y(batch * layer.output_shape().elements());
        Pass pass = training_pass(model, layouts, i, batch, precision);
        Buffer dy(y.size()), dx(i == 0 ? 0 : x.size()), ws(layer.workspace_floats(pass));
        pass.workspace = ws.data();
        pass.workspace_capacity = ws.size();
        const InputGradient dx_to =
            i == 0 ? InputGradient() : InputGradient::overwriting(dx.data(), layer.input_shape());
        Rng rng(4);
        for (int64_t k = 0; k < x.size(); ++k) x[k] = rng.normal();
        LayerTiming t{i, 1e30, 1e30};
        for (int r = 0; r < reps + 1; ++r) {
            const auto t0 = Clock::now();
            layer.forward(x.data(), y.data(), pass);
            const auto t1 = Clock::now();
            std::fill(dy.data(), dy.data() + dy.size(), 0.01f);
            const auto t2 = Clock::now();
            layer.backward(x.data(), y.data(), dy.data(), dx_to, pass);
            const auto t3 = Clock::now();
            if (r == 0) continue;
            t.forward = std::min(t.forward, seconds(t0, t1));
            t.backward = std::min(t.backward, seconds(t2, t3));
        }
        timings.push_back(t);
    }
    return timings;
}

}  // namespace lenz
