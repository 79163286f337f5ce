// Timing training steps on synthetic data: `lenz bench`'s training workloads and the summary's
// estimate of data-parallel training.
#include <chrono>

#include "distributed/gradient_sync.h"
#include "lenz/engine.h"
#include "lenz/ranks.h"
#include "lenz/train.h"

namespace lenz {

std::vector<double> time_training_steps(Model& model, int64_t batch, int64_t steps, int64_t warmup,
                                        Precision precision, const OptimizerConfig& optimizer_config,
                                        std::vector<TrainingStep::LayerTimes>* layers) {
    Ranks& ranks = Ranks::world();
    TrainingStep step(model, batch, precision);
    GradientSync sync(model, ranks);
    step.set_backward_progress([&](int64_t layer) { sync.backward_reached(layer); });
    sync.set_share(1.0f / static_cast<float>(ranks.size()));
    Optimizer optimizer(model, optimizer_config);
    // A segmentation model trains on masks (pixel p of image n is class (n + p) mod K), any other on
    // labels over its whole output.
    const bool masks = segments(model) && model.output_shape().c < kIgnorePixel;
    const Shape out = model.output_shape();
    const int64_t classes = masks ? out.c : out.elements(), per_image = masks ? out.h * out.w : 1;
    Rng rng(2 + static_cast<uint64_t>(ranks.rank()));
    std::vector<float> x(static_cast<size_t>(batch * model.input_shape().elements()));
    for (float& v : x) v = rng.normal();
    std::vector<int32_t> labels(static_cast<size_t>(batch * per_image));
    std::vector<uint8_t> pixels(masks ? labels.size() : 0);
    for (size_t i = 0; i < labels.size(); ++i) {
        const auto n = static_cast<int64_t>(i) / per_image, p = static_cast<int64_t>(i) % per_image;
        labels[i] = static_cast<int32_t>((n + p) % classes);
        if (masks) pixels[i] = static_cast<uint8_t>(labels[i]);
    }
    const Targets targets{masks ? nullptr : labels.data(), masks ? pixels.data() : nullptr};
    std::vector<double> times;
    const int64_t profiled = layers ? steps : 0;
    for (int64_t s = 0; s < warmup + steps + profiled; ++s) {
        if (s == warmup + steps) step.set_layer_times(layers);
        const auto start = std::chrono::steady_clock::now();
        step.run(x.data(), targets, batch, static_cast<uint64_t>(s));
        sync.finish();
        optimizer.step(0.01);
        if (s >= warmup && s < warmup + steps)
            times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return times;
}

}  // namespace lenz
