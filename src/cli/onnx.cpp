// `lenz export MODEL OUT.onnx` and `lenz import MODEL.onnx OUT.safetensors`: models in and out
// of other tools through ONNX.
#include "lenz/onnx.h"

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "lenz/error.h"
#include "lenz/model_text.h"

namespace lenz::cli {
namespace {

struct ConvertArgs {
    std::string from, to;
    uint64_t seed = 1;
    bool quiet = false;
};

void say_written(const ConvertArgs& a, Model& model, const char* what) {
    if (a.quiet) return;
    int64_t params = 0;
    for (int64_t i = 0; i < model.size(); ++i) params += model.layer(i).param_count();
    std::printf("%s: %s with %s and %s parameters (input %s, output %s)\n", a.to.c_str(), what,
                count_of(model.size(), "layer").c_str(), with_commas(params).c_str(),
                model.input_shape().str().c_str(), model.output_shape().str().c_str());
}

// A checkpoint exports its weights; a model file (.lenz) exports fresh ones from --seed, with no
// input normalisation, for a model that is to be trained or run elsewhere; an ONNX file goes out
// again as Lenz reads it (its graph as Lenz's layers write it).
LoadedModel model_to_export(const ConvertArgs& a) {
    const std::string extension = std::filesystem::path(a.from).extension().string();
    if (extension == ".onnx") return read_onnx(a.from);
    if (extension != ".lenz") return load_model(a.from);
    LoadedModel fresh{load_model_file(a.from), {}, {}};
    fresh.model.init_params(a.seed);
    return fresh;
}

int run_export(const ConvertArgs& a) {
    LoadedModel loaded = model_to_export(a);
    write_onnx(a.to, loaded.model, loaded.info);
    say_written(a, loaded.model, "ONNX (opset 13)");
    return 0;
}

int run_import(const ConvertArgs& a) {
    LoadedModel loaded = read_onnx(a.from);
    write_checkpoint(a.to, loaded.model, loaded.info);
    say_written(a, loaded.model, "Lenz checkpoint");
    if (!a.quiet) {
        for (const std::string& note : loaded.notes) std::printf("note: %s\n", note.c_str());
        std::printf("model:\n%s", loaded.model.to_text().c_str());
    }
    return 0;
}

}  // namespace

void add_export(CLI::App& app, Runner& run) {
    auto a = std::make_shared<ConvertArgs>();
    CLI::App* cmd = app.add_subcommand("export", "Write a model and its weights as ONNX");
    cmd->add_option(
           "model", a->from,
           "checkpoint (.safetensors) written by lenz train, a model file (.lenz) with fresh weights, or an "
           "ONNX file to write again as Lenz reads it")
        ->required();
    cmd->add_option("--seed", a->seed, "a model file's weights come from this seed (default 1)");
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
