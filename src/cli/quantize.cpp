// `lenz quantize CHECKPOINT --data DATA --out q.safetensors`: post-training static quantisation.
// The ranges of the model's values are calibrated on a few hundred training images, the weights of
// convolutions and dense layers are rounded to int8 per output channel, and the test accuracy in
// float32 and in int8 is printed side by side, so the cost of quantising is seen at once.
#include "lenz/quantize.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "lenz/checkpoint.h"
#include "lenz/engine.h"
#include "lenz/evaluate.h"
#include "lenz/shape.h"
#include "lenz/train.h"

namespace lenz::cli {
namespace {

struct QuantizeArgs {
    std::string checkpoint, data, out;
    int64_t images = 512;
    uint64_t seed = 1;
    double val_split = 0;
    bool skip_eval = false, json = false;
};

int run_quantize(const QuantizeArgs& a) {
    require_precision(Precision::int8);
    LoadedModel loaded = load_trained_model(a.checkpoint);
    Model& model = loaded.model;
    const DataSplit data = load_dataset_for(model, a.data, a.val_split, a.seed);
    check_data_fits(model, data.train, "training");
    const int64_t count = std::min(a.images, data.train.size());
    if (count == 0) throw Error(data.description + " has no training images to calibrate on");

    nlohmann::json report = {{"checkpoint", a.checkpoint},
                             {"out", a.out},
                             {"data", data.description},
                             {"calibration_images", count}};
    const auto accuracy = [&](Precision precision) {
        return evaluate(model, data.test, loaded.info.normalization, 256, precision).accuracy;
    };
    const bool with_test = !a.skip_eval && data.test.size() > 0;
    if (with_test) report["float32_accuracy"] = accuracy(Precision::f32);

    const std::vector<float> images =
        calibration_images(data.train, loaded.info.normalization, count, a.seed);
    std::vector<ValueRange> ranges = calibrate(model, images.data(), count);
    round_weights_to_int8(model);
    model.set_value_ranges(std::move(ranges));
    int64_t layers = 0, weights = 0;
    for (int64_t i = 0; i < model.size(); ++i)
        if (model.layer(i).runs_int8()) {
            ++layers;
            for (const ParamRef& p : model.layer(i).params())
                if (p.name == "weight") weights += p.value->size();
        }
    report["int8_layers"] = layers;
    report["int8_weights"] = weights;
    if (with_test) report["int8_accuracy"] = accuracy(Precision::int8);
    write_checkpoint(a.out, model, loaded.info);

    if (a.json) {
        std::printf("%s\n", report.dump(2).c_str());
        return 0;
    }
    std::printf("calibrated on %s training images of %s\n", with_commas(count).c_str(),
                data.description.c_str());
    std::printf("int8: %lld convolutions and dense layers, %s weights in one byte each\n",
                static_cast<long long>(layers), with_commas(weights).c_str());
    if (with_test)
        std::printf("test accuracy: float32 %.2f%%, int8 %.2f%% (%+.2f points)\n",
                    100 * report["float32_accuracy"].get<double>(),
                    100 * report["int8_accuracy"].get<double>(),
                    100 * (report["int8_accuracy"].get<double>() - report["float32_accuracy"].get<double>()));
    std::printf("wrote %s\n", a.out.c_str());
    return 0;
}

}  // namespace

void add_quantize(CLI::App& app, Runner& run) {
    auto a = std::make_shared<QuantizeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "quantize", "Quantise a trained model to int8 (calibrated on training images) for faster inference");
    cmd->add_option("checkpoint", a->checkpoint,
                    "checkpoint (.safetensors) written by lenz train, or an ONNX model")
        ->required();
    add_data_option(cmd, a->data)
        ->required()
        ->description(
            "the data set to calibrate on (its training images) and to test on: fashion-mnist, mnist, a "
            "folder with "
            "the four IDX files, or an image folder");
    cmd->add_option("--out", a->out, "where to write the quantised checkpoint")->required();
    cmd->add_option("--images", a->images, "training images to calibrate on (default 512)")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
    cmd->add_option("--seed", a->seed, "which images are drawn, and the seed of --val-split");
    cmd->add_option("--val-split", a->val_split, "image folders without test/: the fraction held out")
        ->check(CLI::Range(0.0, 0.9));
    cmd->add_flag("--no-eval", a->skip_eval, "skip measuring the test accuracy before and after");
    cmd->add_flag("--json", a->json, "one JSON object");
    cmd->callback([&run, a] { run = [a] { return run_quantize(*a); }; });
}

}  // namespace lenz::cli
