// `lenz run MODEL --input x.npy [--output y.npy]`: the model on a tensor, NCHW float32 as PyTorch
// holds it, for comparing Lenz's numbers with any other framework's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/options.h"
#include "lenz/checkpoint.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/npy.h"
#include "lenz/onnx.h"

namespace lenz::cli {
namespace {

constexpr int64_t kImagesPerRun = 64;  // the plan's batch: memory stays bounded for any N

struct RunArgs {
    std::string model, input, output;
    uint64_t seed = 1;
    std::string dtype;  // empty: the model's (int8 where quantised)
};

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

int run_run(const RunArgs& a) {
    std::string input_path = a.input;
    if (const size_t eq = a.input.find('='); eq != std::string::npos && !std::filesystem::exists(a.input)) {
        if (a.input.substr(0, eq) != "input")
            throw UsageError("--input " + a.input + ": the model has one input, named 'input'");
        input_path = a.input.substr(eq + 1);
    }
    if (!a.dtype.empty()) precision_of(a.dtype);  // before loading anything
    LoadedModel loaded = load_with_weights(a.model, a.seed);
    Model& model = loaded.model;
    const Precision precision = precision_for(a.dtype, model);
    NpyArray x = read_npy(input_path);
    const Shape in = model.input_shape();
    const std::vector<int64_t> expected{in.c, in.h, in.w};
    if (x.shape.size() != 4 || !std::equal(expected.begin(), expected.end(), x.shape.begin() + 1))
        throw ShapeError(input_path + ": the array is " + shape_text(x.shape) + "; " + a.model +
                         " takes (N, " + std::to_string(in.c) + ", " + std::to_string(in.h) + ", " +
                         std::to_string(in.w) + ")");
    const int64_t N = x.shape[0];
    // A NaN or infinite input would come out as NaN outputs that look like an answer.
    if (const auto bad =
            std::find_if(x.data.begin(), x.data.end(), [](float v) { return !std::isfinite(v); });
        bad != x.data.end()) {
        const int64_t i = bad - x.data.begin(), plane = in.h * in.w;
        throw FormatError(
            input_path + ": element [" + std::to_string(i / in.elements()) + ", " +
            std::to_string(i / plane % in.c) + ", " + std::to_string(i % plane / in.w) + ", " +
            std::to_string(i % in.w) + "] is " + (std::isnan(*bad) ? "NaN" : "infinite") + " (the first of " +
            std::to_string(std::count_if(bad, x.data.end(), [](float v) { return !std::isfinite(v); })) +
            " such values)");
    }
    const Normalization& norm = loaded.info.normalization;
    if (norm.mean.size() == static_cast<size_t>(in.c) && norm.stddev.size() == static_cast<size_t>(in.c)) {
        const int64_t plane = in.h * in.w;
        for (int64_t i = 0; i < N * in.c; ++i) {
            const size_t c = static_cast<size_t>(i % in.c);
            float* v = x.data.data() + i * plane;
            for (int64_t p = 0; p < plane; ++p) v[p] = (v[p] - norm.mean[c]) / norm.stddev[c];
        }
    }
    const Shape out = model.output_shape();
    NpyArray y;
    y.shape = out.h == 1 && out.w == 1 ? std::vector<int64_t>{N, out.c}
                                       : std::vector<int64_t>{N, out.c, out.h, out.w};
    y.data.resize(static_cast<size_t>(N * out.elements()));
    if (N > 0) {
        Inference inference(model, std::min(N, kImagesPerRun), precision);
        for (int64_t first = 0; first < N; first += kImagesPerRun) {
            const int64_t count = std::min(kImagesPerRun, N - first);
            const float* result = inference.run(x.data.data() + first * in.elements(), count);
            std::copy(result, result + count * out.elements(), y.data.begin() + first * out.elements());
        }
    }
    if (!a.output.empty()) {
        write_npy(a.output, y);
        std::printf("wrote %s: %s float32\n", a.output.c_str(), shape_text(y.shape).c_str());
        return 0;
    }
    std::printf("output %s float32\n", shape_text(y.shape).c_str());
    const int64_t per_image = out.elements(), shown = std::min<int64_t>(per_image, 8);
    for (int64_t n = 0; n < std::min<int64_t>(N, 4); ++n) {
        std::printf("  [%lld]", static_cast<long long>(n));
        for (int64_t k = 0; k < shown; ++k)
            std::printf(" %.6g", y.data[static_cast<size_t>(n * per_image + k)]);
        std::printf("%s\n", shown < per_image ? " ..." : "");
    }
    if (N > 4) std::printf("  ... %lld more\n", static_cast<long long>(N - 4));
    return 0;
}

}  // namespace

void add_run(CLI::App& app, Runner& run) {
    auto a = std::make_shared<RunArgs>();
    CLI::App* cmd = app.add_subcommand("run", "Run a model on a NumPy array (N, C, H, W) of float32");
    cmd->add_option("model", a->model,
                    "model file (.lenz, weights from --seed), a checkpoint (.safetensors) or an .onnx file")
        ->required();
    cmd->add_option("--input", a->input, "the input array, x.npy or input=x.npy")->required();
    cmd->add_option("--output", a->output, "write the output array here (.npy) instead of printing it");
    cmd->add_option("--seed", a->seed, "weights of a .lenz model (default 1, as lenz train)");
    add_dtype_option(cmd, a->dtype, true);
    cmd->callback([a, &run] { run = [a] { return run_run(*a); }; });
}

}  // namespace lenz::cli
