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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        lenz::LoadedModel loaded = lenz::parse_onnx(bytes, "fuzz.onnx");
        lenz::Model& model = loaded.model;
        int64_t values = model.input_shape().elements();
        for (int64_t i = 0; i < model.size(); ++i) values += model.layer(i).output_shape().elements();
        if (values > (int64_t{1} << 20)) return 0;  // fast enough to keep the fuzzer exploring
        lenz::Inference inference(model, 1);
        const std::vector<float> x(static_cast<size_t>(model.input_shape().elements()), 0.5f);
        inference.run(x.data(), 1);
    } catch (const lenz::Error&) {
    }
    return 0;
}
