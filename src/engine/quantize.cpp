#include "lenz/quantize.h"

#include <algorithm>
#include <limits>

#include "kernels/cpu/int8.h"
#include "lenz/engine.h"
#include "lenz/error.h"

namespace lenz {

std::vector<ValueRange> calibrate(Model& model, const float* images, int64_t count, int64_t batch) {
    if (count <= 0) throw ShapeError("calibration needs at least one image");
    batch = std::clamp<int64_t>(batch, 1, count);
    constexpr float inf = std::numeric_limits<float>::infinity();
    std::vector<ValueRange> ranges(static_cast<size_t>(model.size() + 1), ValueRange{inf, -inf});
    const Inference::ValueObserver observe = [&](int64_t value, const float* data, int64_t floats) {
        ValueRange& r = ranges[static_cast<size_t>(value)];
        float lo = r.min, hi = r.max;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) if (floats >= (1 << 16))
        for (int64_t i = 0; i < floats; ++i) {
            lo = std::min(lo, data[i]);
            hi = std::max(hi, data[i]);
        }
        r = {lo, hi};
    };
    Inference runner(model, batch);
    const int64_t image = model.input_shape().elements();
    for (int64_t first = 0; first < count; first += batch)
        runner.run(images + first * image, std::min(batch, count - first), nullptr, &observe);
    for (ValueRange& r : ranges) {
        if (r.min > r.max) r = {0, 0};  // never held
        if (!std::isfinite(r.min) || !std::isfinite(r.max))
            throw Error(
                "calibration: a value of the model is not finite (NaN or infinity in its activations)");
    }
    return ranges;
}

Int8Weights to_int8(const float* w, int64_t rows, int64_t cols) {
    Int8Weights q{std::vector<int8_t>(static_cast<size_t>(rows * cols)),
                  std::vector<float>(static_cast<size_t>(rows))};
    cpu::int8_row_scales(w, rows, cols, q.scales.data());
    cpu::quantize_rows(w, rows, cols, q.scales.data(), q.values.data());
    return q;
}

void round_weights_to_int8(Model& model) {
    for (int64_t i = 0; i < model.size(); ++i) {
        Layer& layer = model.layer(i);
        if (!layer.runs_int8()) continue;
        for (ParamRef& p : layer.params()) {
            if (p.name != "weight") continue;
            const int64_t rows = p.dims.front(), cols = p.value->size() / rows;
            const Int8Weights q = to_int8(p.value->data(), rows, cols);
            for (int64_t k = 0; k < p.value->size(); ++k)
                p.value->data()[k] =
                    q.values[static_cast<size_t>(k)] * q.scales[static_cast<size_t>(k / cols)];
        }
    }
}

}  // namespace lenz
