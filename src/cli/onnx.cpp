// `lenz export CHECKPOINT OUT.onnx` and `lenz import MODEL.onnx OUT.safetensors`: models in and out
// of other tools through ONNX.
#include "lenz/onnx.h"

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "lenz/error.h"

namespace lenz::cli {
namespace {

struct ConvertArgs {
    std::string from, to;
    bool quiet = false;
};

void say_written(const ConvertArgs& a, Model& model, const char* what) {
    if (a.quiet) return;
    int64_t params = 0;
    for (int64_t i = 0; i < model.size(); ++i) params += model.layer(i).param_count();
    std::printf("%s: %s with %lld layers and %s parameters (input %s, output %s)\n", a.to.c_str(), what,
                static_cast<long long>(model.size()), with_commas(params).c_str(),
                model.input_shape().str().c_str(), model.output_shape().str().c_str());
}

int run_export(const ConvertArgs& a) {
    LoadedModel loaded = load_model(a.from);
    write_onnx(a.to, loaded.model, loaded.info);
    say_written(a, loaded.model, "ONNX (opset 13)");
    return 0;
}

int run_import(const ConvertArgs& a) {
    LoadedModel loaded = read_onnx(a.from);
    write_checkpoint(a.to, loaded.model, loaded.info, nullptr);
    say_written(a, loaded.model, "Lenz checkpoint");
    if (!a.quiet) std::printf("model:\n%s", loaded.model.to_text().c_str());
    return 0;
}

}  // namespace

void add_export(CLI::App& app, Runner& run) {
    auto a = std::make_shared<ConvertArgs>();
    CLI::App* cmd = app.add_subcommand("export", "Write a checkpoint's model and weights as ONNX");
    cmd->add_option("checkpoint", a->from, "checkpoint (.safetensors) written by lenz train")->required();
    cmd->add_option("out", a->to, "the ONNX file to write (.onnx)")->required();
    cmd->add_flag("--quiet", a->quiet, "print nothing but errors");
    cmd->callback([&run, a] { run = [a] { return run_export(*a); }; });
}

void add_import(CLI::App& app, Runner& run) {
    auto a = std::make_shared<ConvertArgs>();
    CLI::App* cmd = app.add_subcommand(
        "import", "Turn an ONNX model (e.g. from torch.onnx.export) into a Lenz checkpoint");
    cmd->add_option("model", a->from, "the ONNX file (.onnx)")->required();
    cmd->add_option("out", a->to, "the checkpoint to write (.safetensors), for eval, predict and visualize")
        ->required();
    cmd->add_flag("--quiet", a->quiet, "print nothing but errors");
    cmd->callback([&run, a] { run = [a] { return run_import(*a); }; });
}

}  // namespace lenz::cli
