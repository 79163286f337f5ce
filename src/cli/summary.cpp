// `lenz summary MODEL`: the cost table, --explain derivations, --json / --csv, --fit MEMORY.
#include "lenz/summary.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "lenz/communication.h"
#include "lenz/error.h"
#include "lenz/onnx.h"
#include "lenz/train.h"

namespace lenz::cli {
namespace {

struct SummaryArgs {
    std::string model;
    int64_t batch = 1;
    bool json = false, csv = false, explain = false;
    std::string dtype = "float32";
    std::string optimizer = "adam";
    std::string fit;
    int ranks = 1;  // --ranks N: data-parallel training over N processes
    std::string bandwidth = "10Gbit/s";
    double step_ms = 0;  // the computation of one step, as measured elsewhere; 0: measure it here
};

// The data-parallel estimate: the network's share of a step next to the computation's, measured on
// this machine at the per-rank batch unless --step-ms gives it.
CommunicationCost communication_of(Model& model, const SummaryArgs& a, Precision precision) {
    const double bits_per_second = parse_bandwidth(a.bandwidth);
    if (a.batch % a.ranks != 0)
        throw ShapeError("--batch " + std::to_string(a.batch) + " does not divide among " +
                         std::to_string(a.ranks) + " ranks (each computes an equal share)");
    double compute = a.step_ms / 1000;
    if (compute <= 0) {
        model.init_params(1);
        const std::vector<double> times = time_training_steps(model, a.batch / a.ranks, 3, 1, precision);
        compute = *std::min_element(times.begin(), times.end());
    }
    return communication_cost(model, a.ranks, a.batch, bits_per_second, compute);
}

int run_summary(const SummaryArgs& a) {
    // An ONNX file's import notes (folded batch norms) follow the table.
    std::vector<std::string> notes;
    Model model = [&] {
        if (std::filesystem::path(a.model).extension() != ".onnx") return load_any_model(a.model);
        LoadedModel loaded = read_onnx(a.model);
        notes = std::move(loaded.notes);
        return std::move(loaded.model);
    }();
    SummaryOptions options = summary_options(a.batch, a.dtype, parse_optimizer(a.optimizer).kind);
    if (!a.fit.empty()) {
        const int64_t bytes = parse_memory_size(a.fit);
        const int64_t batch = largest_batch_that_fits(model, bytes, options.optimizer);
        if (batch == 0) {
            const int64_t one = plan_training(model, 1, options.optimizer).bytes();
            throw ShapeError("not even a batch of 1 fits in " + human_bytes(bytes) + ": training needs " +
                             human_bytes(one) + " (" + with_commas(one) + " bytes) per step with " +
                             optimizer_name(options.optimizer));
        }
        options.batch = batch;
        const Summary s = summarize(model, options);
        if (a.json) {
            std::printf(
                "{\"fit_bytes\": %lld, \"batch\": %lld, \"training_bytes_plan\": %lld, \"optimizer\": "
                "\"%s\"}\n",
                static_cast<long long>(bytes), static_cast<long long>(batch),
                static_cast<long long>(s.training_plan.bytes()), optimizer_name(options.optimizer));
        } else {
            std::printf(
                "Largest batch that fits in %s (%s bytes) for training with %s: %lld\n"
                "  training plan at batch %lld: %s bytes (%s); batch %lld would need %s bytes\n",
                human_bytes(bytes).c_str(), with_commas(bytes).c_str(), optimizer_name(options.optimizer),
                static_cast<long long>(batch), static_cast<long long>(batch),
                with_commas(s.training_plan.bytes()).c_str(), human_bytes(s.training_plan.bytes()).c_str(),
                static_cast<long long>(batch + 1),
                with_commas(plan_training(model, batch + 1, options.optimizer).bytes()).c_str());
        }
        return 0;
    }
    const Summary s = summarize(model, options);
    if (a.ranks > 1) {
        const CommunicationCost cost = communication_of(model, a, Precision::f32);
        if (a.json) {
            nlohmann::json j = nlohmann::json::parse(summary_json(s, a.model));
            j["communication"] = nlohmann::json::parse(communication_json(cost));
            std::cout << j.dump() << "\n";
        } else {
            std::cout << format_summary(s, a.model, a.explain) << "\n" << format_communication(cost);
        }
        return 0;
    }
    if (a.json)
        std::cout << summary_json(s, a.model) << "\n";
    else if (a.csv)
        std::cout << summary_csv(s);
    else
        std::cout << format_summary(s, a.model, a.explain);
    if (!a.json && !a.csv)
        for (const std::string& note : notes) std::cout << "\nNote: " << note << "\n";
    return 0;
}

}  // namespace

void add_summary(CLI::App& app, Runner& run) {
    auto args = std::make_shared<SummaryArgs>();
    CLI::App* cmd = app.add_subcommand("summary", "What a model costs: parameters, multiplications, memory");
    cmd->add_option("model", args->model,
                    "model file (.lenz), ONNX model (.onnx) or checkpoint (.safetensors)")
        ->required();
    cmd->add_option("--batch", args->batch, "training batch size for the memory figures")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
    CLI::Option* json = cmd->add_flag("--json", args->json, "one JSON object (stable keys)");
    cmd->add_flag("--csv", args->csv, "one CSV row per layer (stable columns)")->excludes(json);
    cmd->add_flag("--explain", args->explain, "show how each figure is derived");
    cmd->add_option(
           "--ranks", args->ranks,
           "data-parallel training over N processes (MPI): what sending the gradients adds to a step "
           "at --batch (the global batch)")
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--bandwidth", args->bandwidth, "the network's bandwidth for --ranks (default 10Gbit/s)");
    cmd->add_option("--step-ms", args->step_ms,
                    "for --ranks: one step's computation at the per-rank batch, as `lenz bench` measured it "
                    "(default: measured here, the best of 3 steps)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--dtype", args->dtype, "element type of the textbook figures")
        ->check(CLI::IsMember({"float32", "float16", "bfloat16", "int8"}));
    cmd->add_option("--optimizer", args->optimizer, "optimizer whose state the training plan includes")
        ->check(CLI::IsMember({"sgd", "momentum", "nesterov", "adam", "adamw"}));
    cmd->add_option("--fit", args->fit,
                    "print the largest training batch whose plan fits in this memory, e.g. 8GB");
    cmd->callback([&run, args] { run = [args] { return run_summary(*args); }; });
}

}  // namespace lenz::cli
