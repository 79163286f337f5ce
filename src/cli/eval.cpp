// `lenz eval CHECKPOINT --data ...`: accuracy, per-class accuracy and the confusion matrix; for a
// segmentation set, over pixels, with each class's IoU and their mean.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/commands.h"
#include "cli/options.h"
#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/evaluate.h"
#include "lenz/onnx.h"
#include "lenz/ranks.h"
#include "lenz/report.h"
#include "lenz/summary.h"
#include "lenz/train.h"

namespace lenz::cli {
namespace {

struct EvalArgs {
    std::string checkpoint, data, report;  // data: empty = the data set the checkpoint was trained on
    double val_split = 0;
    uint64_t seed = 1;
    int64_t batch = 256;
    bool json = false;
    std::string dtype;  // empty: the checkpoint's (int8 where quantised)
};

// The evaluation part of the training report; the curves too when the run's metrics.jsonl sits
// beside the checkpoint.
void write_eval_report(const EvalArgs& a, LoadedModel& loaded, const DataSplit& data,
                       const EvalResult& result, const std::vector<std::string>& names) {
    namespace fs = std::filesystem;
    ReportData d;
    const fs::path checkpoint(a.checkpoint);
    d.model_name = checkpoint.parent_path().filename().string();
    if (d.model_name.empty()) d.model_name = checkpoint.stem().string();
    d.data_name = data.description;
    d.status = "evaluation of " + checkpoint.filename().string() + " (epoch " +
               std::to_string(loaded.info.epoch) + ")";
    d.class_names = names;
    d.summary = summarize(loaded.model, {.batch = a.batch});
    try {
        d.history = read_metrics_jsonl((checkpoint.parent_path() / "metrics.jsonl").string());
    } catch (const FormatError& e) {  // the curves are a bonus; the evaluation still stands
        std::fprintf(stderr, "lenz: warning: no training curves in the report: %s\n", e.what());
    }
    d.evaluation = result;
    add_evaluation(d, loaded.model, data.test, loaded.info.normalization);
    write_report(a.report, d);
}

// Without --data: the data set, validation split and seed recorded in the checkpoint by lenz train;
// Fashion-MNIST for a model that records none (an ONNX file). The error says which was tried.
DataSplit load_eval_data(const EvalArgs& a, const LoadedModel& loaded, const std::set<std::string>& given) {
    if (!a.data.empty()) return load_dataset_for(loaded.model, a.data, a.val_split, a.seed);
    const nlohmann::json options = nlohmann::json::parse(loaded.info.training_json, nullptr, false)
                                       .value("options", nlohmann::json::object());
    const bool recorded = options.is_object() && options.contains("--data") && options["--data"].is_string();
    const std::string spec = recorded ? options["--data"].get<std::string>() : "fashion-mnist";
    double val_split = a.val_split;
    uint64_t seed = a.seed;
    if (recorded && !given.count("--val-split") && options.contains("--val-split") &&
        options["--val-split"].is_number())
        val_split = options["--val-split"].get<double>();
    if (recorded && !given.count("--seed") && options.contains("--seed") &&
        options["--seed"].is_number_unsigned())
        seed = options["--seed"].get<uint64_t>();
    try {
        DataSplit data = load_dataset_for(loaded.model, spec, val_split, seed);
        check_data_fits(loaded.model, data.test, "test");
        return data;
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (no --data given; " +
                    (recorded ? "this is the data set " + a.checkpoint + " was trained on"
                              : a.checkpoint + " records no data set, so Fashion-MNIST was tried") +
                    ")");
    }
}

int run_eval(const EvalArgs& a, const std::set<std::string>& given) {
    if (!a.dtype.empty()) precision_of(a.dtype);  // before loading anything
    LoadedModel loaded = load_trained_model(a.checkpoint);
    const Precision precision = precision_for(a.dtype, loaded.model);
    const DataSplit data = load_eval_data(a, loaded, given);
    // Under mpirun the ranks share the images (evaluate sums their figures); rank 0 reports them.
    const EvalResult r = evaluate(loaded.model, data.test, loaded.info.normalization, a.batch, precision);
    if (Ranks::world().rank() != 0) return 0;
    const std::vector<std::string>& names =
        data.test.class_names.empty() ? loaded.info.class_names : data.test.class_names;
    auto name = [&](size_t k) { return k < names.size() ? names[k] : "class " + std::to_string(k); };
    if (!a.report.empty()) write_eval_report(a, loaded, data, r, names);
    // NaN (a class in neither the truth nor the prediction) is JSON's null.
    const auto number = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
    if (a.json) {
        nlohmann::json per_class = nlohmann::json::array();
        for (size_t k = 0; k < r.per_class_accuracy.size(); ++k) {
            per_class.push_back({{"class", name(k)}, {"accuracy", r.per_class_accuracy[k]}});
            if (r.segmentation) per_class.back()["iou"] = number(r.per_class_iou[k]);
        }
        nlohmann::json j = {
            {"checkpoint", a.checkpoint}, {"data", data.description}, {"images", r.count},
            {"accuracy", r.accuracy},     {"loss", r.loss},           {"per_class", per_class}};
        if (r.segmentation) {
            j["pixels"] = r.pixels;
            j["pixel_accuracy"] = r.accuracy;
            j["mean_iou"] = number(r.mean_iou);
            nlohmann::json iou = nlohmann::json::array();
            for (double v : r.per_class_iou) iou.push_back(number(v));
            j["per_class_iou"] = iou;
        }
        j["confusion"] = r.confusion;
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%s on %s: %s\n", a.checkpoint.c_str(), data.description.c_str(),
                count_of(r.count, "test image").c_str());
    if (r.segmentation) {
        std::printf("pixel accuracy %.2f%%   mean IoU %.2f%%   loss %.4f per pixel (%lld pixels)\n\n",
                    100 * r.accuracy, 100 * r.mean_iou, r.loss, static_cast<long long>(r.pixels));
        std::printf("per class:           accuracy     IoU\n");
        for (size_t k = 0; k < r.per_class_accuracy.size(); ++k) {
            std::printf("  %2zu %-14s %6.2f%%  ", k, name(k).c_str(), 100 * r.per_class_accuracy[k]);
            if (std::isnan(r.per_class_iou[k]))
                std::printf("     -   (in neither truth nor prediction)\n");
            else
                std::printf("%6.2f%%\n", 100 * r.per_class_iou[k]);
        }
    } else {
        std::printf("accuracy %.2f%%   loss %.4f\n\nper class:\n", 100 * r.accuracy, r.loss);
        for (size_t k = 0; k < r.per_class_accuracy.size(); ++k)
            std::printf("  %2zu %-14s %6.2f%%\n", k, name(k).c_str(), 100 * r.per_class_accuracy[k]);
    }
    std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n     ");
    for (size_t k = 0; k < r.confusion.size(); ++k) std::printf("%6zu", k);
    std::printf("\n");
    for (size_t t = 0; t < r.confusion.size(); ++t) {
        std::printf("  %2zu ", t);
        for (int64_t v : r.confusion[t]) std::printf("%6lld", static_cast<long long>(v));
        std::printf("   %s\n", name(t).c_str());
    }
    if (!a.report.empty()) std::printf("\nreport: %s\n", a.report.c_str());
    return 0;
}

}  // namespace

void add_eval(CLI::App& app, Runner& run) {
    auto a = std::make_shared<EvalArgs>();
    CLI::App* cmd =
        app.add_subcommand("eval", "Accuracy, per-class accuracy and confusion matrix on a test set");
    cmd->add_option("checkpoint", a->checkpoint,
                    "checkpoint (.safetensors) written by lenz train, or an ONNX model (.onnx)")
        ->required();
    add_data_option(cmd, a->data)
        ->description(
            "the data set to evaluate on (default: the one the checkpoint was trained on; Fashion-MNIST for "
            "a "
            "model that records none): fashion-mnist, mnist, a folder with the four IDX files, or an image "
            "folder");
    cmd->add_option("--val-split", a->val_split, "image folders without test/: the fraction held out")
        ->check(CLI::Range(0.0, 0.9));
    cmd->add_option("--seed", a->seed, "seed of the --val-split (as in training)");
    cmd->add_option("--batch", a->batch, "images per forward pass")->check(CLI::Range(1, 1 << 16));
    cmd->add_flag("--json", a->json, "one JSON object");
    add_dtype_option(cmd, a->dtype, true);
    cmd->add_option(
        "--report", a->report,
        "also write a self-contained HTML report to this file (confusion matrix, mistakes, feature maps)");
    cmd->callback([&run, a, cmd] {
        std::set<std::string> given;  // the options this command line set itself
        for (const CLI::Option* option : cmd->get_options())
            if (option->count() > 0) given.insert(option->get_name());
        run = [a, given] { return run_eval(*a, given); };
    });
}

}  // namespace lenz::cli
