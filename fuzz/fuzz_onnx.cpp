// Fuzzes the ONNX importer: the protobuf, then the graph walk (operators, attributes, shapes,
// fusion and tensor bytes) and the weights it loads; then, for a model small enough, the engine's
// plan and one inference on it, so that odd graphs reach the executor too. Anything but a
// lenz::Error is a bug.
#include <cstdint>
#include <string>
#include <vector>

#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/onnx.h"
#include "lenz/shape.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        lenz::LoadedModel loaded = lenz::parse_onnx(bytes, "fuzz.onnx");
        lenz::Model& model = loaded.model;
        // Small enough to keep the fuzzer exploring, and far inside its per-input timeout.
        constexpr int64_t kValues = int64_t{1} << 20, kMults = int64_t{1} << 26;
        int64_t values = model.input_shape().elements(), mults = 0;
        for (int64_t i = 0; i < model.size() && values <= kValues && mults <= kMults; ++i) {
            values = lenz::checked_add(values, model.layer(i).output_shape().elements());
            mults = lenz::checked_add(mults, model.layer(i).mult_count());
        }
        if (values > kValues || mults > kMults) return 0;
        lenz::Inference inference(model, 1);
        const std::vector<float> x(static_cast<size_t>(model.input_shape().elements()), 0.5f);
        inference.run(x.data(), 1);
    } catch (const lenz::Error&) {
    }
    return 0;
}
