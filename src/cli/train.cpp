// `lenz train MODEL --data ...`: trains, evaluates after every epoch, checkpoints atomically.
#include "lenz/train.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/commands.h"
#include "cli/options.h"
#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/evaluate.h"
#include "lenz/finetune.h"
#include "lenz/onnx.h"
#include "lenz/ranks.h"
#include "lenz/report.h"
#include "lenz/summary.h"
#include "lenz/threads.h"
#include "lenz/train_options.h"

namespace lenz::cli {
namespace {

struct TrainArgs {
    std::string model, out, resume;
    TrainOptionValues values;  // the options of lenz/train_options.h this command line gives
    // The run's options the table leaves to the command line.
    std::string data = "fashion-mnist";
    std::string freeze;  // --freeze NAME: train only the layers after NAME
    bool new_head = false, report = true, sync_batchnorm = false;
    bool skip_bad_images = false;  // --skip-bad-images, which add_data_option makes the loaders' default
    bool quiet = false;
    std::set<std::string> given;  // the options this command line set itself
};

// The run's options outside the table, by their command-line names. Checkpoints record them with
// the table's, and --resume takes up every one its own command line does not give, so a resumed run
// is the same run.
template <class Visit>
void each_command_line_run_option(TrainArgs& a, Visit visit) {
    visit("--data", a.data);
    visit("--new-head", a.new_head);
    visit("--freeze", a.freeze);
    visit("--sync-batchnorm", a.sync_batchnorm);
    visit("--report", a.report);  // --no-report, which a resumed run kept dropping
    visit("--skip-bad-images", a.skip_bad_images);
}

std::string run_options_json(TrainArgs a) {
    nlohmann::json j = nlohmann::json::parse(options_json(a.values));
    each_command_line_run_option(a, [&](const char* name, const auto& value) { j[name] = value; });
    return j.dump();
}

// Takes up the options recorded in DIR/model.safetensors that the command line leaves out.
// Checkpoints from before options were recorded leave everything as given; no checkpoint is an error.
void take_up_run_options(TrainArgs& a, const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / "model.safetensors").string();
    const std::optional<CheckpointFile> file = read_run_checkpoint(path);  // rank 0's, under MPI
    // Before the data set is loaded or any folder made: a wrong DIR is the error, not the images.
    if (!file)
        throw IoError("--resume " + dir + ": nothing to resume (no " + path +
                      "; the run's folder is what its --out named, runs/MODEL by default)");
    const CheckpointInfo info = load_model(*file).info;
    nlohmann::json stored;
    try {
        stored = nlohmann::json::parse(info.training_json).value("options", nlohmann::json::object());
    } catch (const nlohmann::json::exception&) {
        throw FormatError(path + ": the run's settings in the metadata are not JSON");
    }
    try {
        for (const auto& [name, value] : options_from_json(stored.dump()))
            if (!a.given.count(name)) a.values[name] = value;
    } catch (const FormatError& e) {
        throw FormatError(path + ": " + e.what());
    }
    each_command_line_run_option(a, [&](const char* name, auto& value) {
        if (a.given.count(name) || !stored.contains(name)) return;
        try {
            value = stored[name].get<std::decay_t<decltype(value)>>();
        } catch (const nlohmann::json::exception&) {
            throw FormatError(path + ": the run's " + name + " in the metadata has the wrong type");
        }
    });
}

// What the trainer reports, as lines on the terminal: a live progress line on stderr (only on a
// terminal, at most four times a second, cleared before anything else is printed), one line per
// epoch and a line where a resumed run takes up, on stdout.
struct TrainingPrinter {
    bool live = ::isatty(STDERR_FILENO);
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();

    void clear_progress() const {
        if (live) std::fprintf(stderr, "\r%100s\r", "");
    }
    void step(const StepProgress& p) {
        const auto now = std::chrono::steady_clock::now();
        if (!live || now - last < std::chrono::milliseconds(250)) return;
        last = now;
        std::fprintf(stderr, "\repoch %lld/%lld  %3.0f%%  %6.0f img/s  loss %.4f  acc %.2f%%  ETA %s   ",
                     static_cast<long long>(p.epoch), static_cast<long long>(p.epochs),
                     100.0 * static_cast<double>(p.batch) / static_cast<double>(p.batches),
                     p.images_per_second, p.loss, 100 * p.accuracy, duration_text(p.seconds_left).c_str());
        std::fflush(stderr);
    }
    void epoch(const EpochMetrics& m, int64_t epochs) const {
        clear_progress();
        std::printf("%s\n", epoch_line(m, epochs).c_str());
        std::fflush(stdout);
    }
    static void resumed(const ResumePoint& r) {
        if (r.batch > 0)
            std::printf("resuming %s in epoch %lld at batch %lld of %lld (step %lld)\n", r.checkpoint.c_str(),
                        static_cast<long long>(r.epoch + 1), static_cast<long long>(r.batch + 1),
                        static_cast<long long>(r.batches), static_cast<long long>(r.step));
        else
            std::printf("resuming %s after epoch %lld (step %lld)\n", r.checkpoint.c_str(),
                        static_cast<long long>(r.epoch), static_cast<long long>(r.step));
        std::fflush(stdout);
    }
};

// --freeze NAME: the layers up to and including NAME keep their weights; a NAME that names no layer
// is a usage error, as a bad value of any option.
void freeze_through(Model& model, const std::string& name, const std::string& model_path) {
    const int64_t layer = find_layer(model, name);
    if (layer < 0) {
        std::string names;
        int64_t count = 0;
        for (int64_t v = 1; v <= model.size(); ++v)
            if (!model.value_name(v).empty() && ++count <= 6)
                names += (names.empty() ? "" : ", ") + model.value_name(v);
        if (count > 6) names += ", ...";
        throw UsageError("train: --freeze: no layer named '" + name + "' in " + model_path + " (" +
                         (names.empty() ? "" : "names: " + names + "; ") + "or a layer number 1-" +
                         std::to_string(model.size()) + ")");
    }
    bool trains_after = false;
    for (int64_t i = layer + 1; i < model.size(); ++i) trains_after = trains_after || model.trains(i);
    if (!trains_after)
        throw UsageError("train: --freeze " + name + ": no layer with weights after layer " +
                         std::to_string(layer + 1) + " (" + model.layer(layer).spec() +
                         "), nothing would train");
    model.freeze(layer + 1);
}

// The images a run really uses, as the header says them: "100 training images", or under a limit
// "100 of 6,000 training images (a stratified sample: 50 circle, 50 noise)", the same subset the
// trainer draws.
std::string images_used(const ImageSet& set, int64_t limit, uint64_t seed, uint64_t stream,
                        const char* noun) {
    if (limit <= 0 || limit >= set.size()) return count_of(set.size(), noun);
    if (set.segmentation())
        return with_commas(limit) + " of " + count_of(set.size(), noun) + " (a random sample)";
    const std::vector<int64_t> counts = class_counts(limit_images(set, limit, seed, stream));
    std::string per_class;
    for (size_t k = 0; k < counts.size(); ++k) {
        if (counts[k] == 0) continue;
        if (!per_class.empty()) per_class += ", ";
        per_class += with_commas(counts[k]) + " " +
                     (k < set.class_names.size() ? set.class_names[k] : "class " + std::to_string(k));
    }
    return with_commas(limit) + " of " + count_of(set.size(), noun) + " (a stratified sample: " + per_class +
           ")";
}

// A limit that cannot hold one image of every class is a usage error, found before anything runs.
void check_limit(const ImageSet& set, int64_t limit, const char* option) {
    if (limit <= 0 || limit >= set.size() || set.segmentation()) return;
    int64_t present = 0;
    for (const int64_t count : class_counts(set)) present += count > 0;
    if (limit < present)
        throw UsageError(std::string("train: ") + option + " " + std::to_string(limit) +
                         " is below the data set's " + std::to_string(present) +
                         " classes: a limit takes a stratified sample with at least one image of each class");
}

int run_train(TrainArgs a) {
    // A model file starts from fresh weights (--seed); a trained model (.onnx, or a checkpoint) from
    // its own, for fine-tuning.
    const std::string ext = std::filesystem::path(a.model).extension().string();
    const bool pretrained = ext == ".onnx" || ext == ".safetensors";
    Model model = load_any_model(a.model);
    if (!a.resume.empty()) {
        if (!a.out.empty() && a.out != a.resume)
            throw Error("--resume DIR continues in DIR; leave out --out");
        a.skip_bad_images = skip_bad_images_default();  // given on this command line
        take_up_run_options(a, a.resume);
        set_skip_bad_images_default(a.skip_bad_images);
    }
    a.skip_bad_images = skip_bad_images_default();
    TrainConfig c = train_config(a.values);
    c.resume = !a.resume.empty();
    c.out_dir = c.resume        ? a.resume
                : a.out.empty() ? "runs/" + std::filesystem::path(a.model).stem().string()
                                : a.out;
    c.options_json = run_options_json(a);
    c.sync_batchnorm = a.sync_batchnorm;
    const double val_split = std::get<double>(option_value(a.values, "--val-split"));

    if (!pretrained) model.init_params(c.seed);
    const DataSplit data = load_dataset_for(model, a.data, val_split, c.seed);
    const int64_t classes = static_cast<int64_t>(data.train.class_names.size());
    std::vector<int64_t> heads;
    if (a.new_head) {
        if (classes == 0) throw Error("--new-head: the data set " + a.data + " names no classes");
        try {
            heads = replace_head(model, classes, c.seed);
        } catch (const ShapeError& e) {
            throw ShapeError("--new-head: " + a.model + ": " + e.what());
        }
    }
    if (!a.freeze.empty()) freeze_through(model, a.freeze, a.model);
    check_data_fits(model, data.train, "training");
    check_data_fits(model, data.test, "test");
    check_limit(data.train, c.limit_train, "--limit-train");
    check_limit(data.test, c.limit_test, "--limit-test");
    // Under MPI, rank 0 alone speaks; the others train quietly beside it.
    const Ranks& ranks = Ranks::world();
    if (ranks.rank() != 0) a.quiet = true;
    if (!a.quiet) {
        const Summary s = summarize(model, {.batch = c.batch, .optimizer = c.optimizer.kind});
        std::printf(
            "Training %s on %s: %s and %s, %s\n", a.model.c_str(), data.description.c_str(),
            images_used(data.train, c.limit_train, c.seed, kTrainLimitStream, "training image").c_str(),
            images_used(data.test, c.limit_test, c.seed, kTestLimitStream, "test image").c_str(),
            count_of(static_cast<int64_t>(data.train.class_names.size()), "class").c_str());
        std::printf("  %s parameters, %s MACs per image; training plan %s at batch %lld\n",
                    with_commas(s.params).c_str(), with_commas(s.mults).c_str(),
                    human_bytes(s.training_plan.bytes()).c_str(), static_cast<long long>(c.batch));
        for (int64_t head : heads)
            std::printf("  new head: layer %lld is now %s, freshly initialised for %s\n",
                        static_cast<long long>(head + 1), model.layer(head).spec().c_str(),
                        count_of(classes, "class").c_str());
        if (model.frozen_layers() > 0) {
            int64_t frozen = 0;
            for (int64_t i = 0; i < model.frozen_layers(); ++i) frozen += model.layer(i).param_count();
            const int64_t last = model.frozen_layers();
            const std::string& name = model.value_name(last);
            std::printf("  %s parameters train, %s frozen in layers 1-%lld (through %s)\n",
                        with_commas(s.params - frozen).c_str(), with_commas(frozen).c_str(),
                        static_cast<long long>(last),
                        name.empty() ? model.layer(last - 1).spec().c_str() : name.c_str());
        }
        std::printf("  %s, lr %g (%s schedule, %g warm-up epochs), batch %lld, %s, seed %llu, %s%s\n",
                    optimizer_name(c.optimizer), c.schedule.base_lr,
                    std::get<std::string>(option_value(a.values, "--schedule")).c_str(),
                    c.schedule.warmup_epochs, static_cast<long long>(c.batch),
                    count_of(c.epochs, "epoch").c_str(), static_cast<unsigned long long>(c.seed),
                    count_of(threads(), "thread").c_str(),
                    c.precision == Precision::bf16 ? ", bf16 convolutions and dense layers" : "");
        if (data.train.segmentation())
            std::printf(
                "  segmentation: a class for every pixel of %s masks, loss %s (255 ignored), the best "
                "checkpoint by mean IoU\n",
                (std::to_string(data.train.height) + "x" + std::to_string(data.train.width)).c_str(),
                loss_name(c.loss.kind).c_str());
        if (ranks.distributed())
            std::printf("  %d ranks (MPI), %s each: every batch of %lld split %lld per rank\n", ranks.size(),
                        count_of(threads(), "thread").c_str(), static_cast<long long>(c.batch),
                        static_cast<long long>(c.batch / ranks.size()));
        std::printf("  checkpoints and metrics.jsonl in %s/\n", c.out_dir.c_str());
        if (a.report)
            std::printf("  report: %s/report.html, updated after each epoch (--no-report to skip)\n",
                        c.out_dir.c_str());
        std::fflush(stdout);
    }
    std::function<bool(const EpochMetrics&, const EvalResult&)> report;
    if (a.report)
        report = epoch_report_writer(model, data, c, std::filesystem::path(a.model).stem().string());
    auto printer = std::make_shared<TrainingPrinter>();
    const int64_t epochs = c.epochs;
    c.on_epoch = [printer, report, epochs, quiet = a.quiet](const EpochMetrics& m, const EvalResult& e) {
        if (!quiet) printer->epoch(m, epochs);
        return !report || report(m, e);
    };
    if (!a.quiet) {
        c.on_step = [printer](const StepProgress& p) {
            printer->step(p);
            return true;
        };
        c.on_resume = &TrainingPrinter::resumed;
    }
    // Ctrl-C or SIGTERM: the trainer finishes the step and checkpoints; exit 128 + the signal (130
    // for Ctrl-C), as shells expect.
    c.catch_sigint = true;
    std::vector<EpochMetrics> history;
    try {
        history = train(model, data, c);
    } catch (const Interrupted& e) {
        if (ranks.rank() != 0) return 128 + (e.signal_number ? e.signal_number : SIGINT);
        if (!a.quiet) printer->clear_progress();
        std::fprintf(stderr, "interrupted: %s\nto continue: lenz train %s --resume %s\n", e.what(),
                     a.model.c_str(), c.out_dir.c_str());
        return 128 + (e.signal_number ? e.signal_number : SIGINT);
    }
    if (!a.quiet && !history.empty() && data.train.segmentation())
        std::printf(
            "done: test mean IoU %.2f%% (pixel accuracy %.2f%%); model in %s/model.safetensors (best "
            "epoch in best.safetensors)\n",
            100 * history.back().test_mean_iou, 100 * history.back().test_accuracy, c.out_dir.c_str());
    else if (!a.quiet && !history.empty())
        std::printf(
            "done: test accuracy %.2f%%; model in %s/model.safetensors (best epoch in best.safetensors)\n",
            100 * history.back().test_accuracy, c.out_dir.c_str());
    return 0;
}

// The option's value in `text`, or what is wrong with it: "'abc' is not a number", or the table's
// range or choices, "must be between 1 and 100000, got 0" (CLI11 puts the option's name before it).
std::string parse_option_text(const TrainOption& option, const std::string& text, OptionValue& value) {
    using Type = TrainOption::Type;
    const char* begin = text.c_str();
    char* end = nullptr;
    errno = 0;
    if (option.type == Type::integer) {
        const long long n = std::strtoll(begin, &end, 10);
        if (end == begin || *end != '\0' || errno == ERANGE) {
            double real = 0;
            const bool number = CLI::detail::lexical_cast(text, real);
            return "'" + text + (number ? "' is not a whole number" : "' is not a number");
        }
        value = int64_t{n};
    } else if (option.type == Type::real) {
        const double x = std::strtod(begin, &end);
        if (end == begin || *end != '\0' || !std::isfinite(x)) return "'" + text + "' is not a number";
        value = x;
    } else {
        value = text;
    }
    return option_problem(option, value);
}

// An option of lenz/train_options.h on `cmd`, its value put in `values` where the command line gives it.
void add_table_option(CLI::App* cmd, const TrainOption& option, TrainOptionValues& values) {
    const std::string name = option.name;
    if (option.type == TrainOption::Type::flag) {
        cmd->add_flag_callback(
            name, [&values, name] { values[name] = true; }, option.help);
        return;
    }
    const CLI::Validator check(
        [&option](std::string& text) {
            OptionValue value;
            return parse_option_text(option, text, value);
        },
        "");
    cmd->add_option_function<std::string>(
           name,
           [&values, &option, name](const std::string& text) {
               parse_option_text(option, text, values[name]);
           },
           option.help)
        ->check(check)
        ->type_name(option.type == TrainOption::Type::integer ? "INT"
                    : option.type == TrainOption::Type::real  ? "NUMBER"
                                                              : "TEXT");
}

}  // namespace

void add_train(CLI::App& app, Runner& run) {
    auto a = std::make_shared<TrainArgs>();
    CLI::App* cmd = app.add_subcommand("train", "Train a model on a data set");
    cmd->add_option(
           "model", a->model,
           "model file (.lenz), or a trained model to fine-tune from its weights (.onnx or a checkpoint)")
        ->required();
    add_data_option(cmd, a->data);
    for (const TrainOption& option : train_options()) add_table_option(cmd, option, a->values);
    cmd->add_option("--out", a->out, "output folder (default runs/<model name>)");
    cmd->add_option("--resume", a->resume, "continue the stopped run in this folder");
    cmd->add_flag("--new-head", a->new_head,
                  "fine-tuning: replace the model's classifier, its last layer with weights (a dense layer, "
                  "or a convolution as SqueezeNet's), with a fresh one sized for the data set's classes; "
                  "the layers after it (activation, pooling, flatten) stay");
    cmd->add_option("--freeze", a->freeze,
                    "fine-tuning: train only the layers after NAME (its name= in the model file, or its "
                    "number in the summary); NAME and the layers before it keep their weights, and run as "
                    "at inference: batch norm uses its running statistics and does not update them, as "
                    "Keras does for trainable=False")
        ->type_name("NAME");
    cmd->add_flag(
        "--sync-batchnorm", a->sync_batchnorm,
        "under mpirun: batch norm normalises over the whole batch, summing its statistics across the "
        "ranks at every step (default: each rank's share, as PyTorch DDP)");
    cmd->add_flag("--quiet", a->quiet, "print nothing but errors");
    // Two flags rather than CLI11's "--report,!--no-report", whose help reads "--report,--no-report{false}".
    cmd->add_flag_callback(
        "--no-report", [a] { a->report = false; },
        "do not write DIR/report.html (by default it is written after each epoch: curves, confusion "
        "matrix, mistakes, feature maps)");
    cmd->add_flag_callback(
        "--report", [a] { a->report = true; }, "write DIR/report.html after each epoch (the default)");
    cmd->callback([&run, a, cmd] {
        for (const CLI::Option* option : cmd->get_options())
            if (option->count() > 0)
                a->given.insert(option->get_name() == "--no-report" ? "--report" : option->get_name());
        run = [a] { return run_train(*a); };
    });
}

}  // namespace lenz::cli
