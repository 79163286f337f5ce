// The training loop: shuffled mini-batches, augmentation, optimizer steps on a schedule, an
// evaluation and an atomic checkpoint after every epoch, and Ctrl-C handling that checkpoints
// mid-epoch so that --resume continues from the exact step. It prints nothing: it reports each
// step, epoch and resumption to the caller (TrainConfig's on_step, on_epoch, on_resume).
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "distributed/gradient_sync.h"
#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "lenz/evaluate.h"
#include "lenz/ranks.h"
#include "lenz/threads.h"
#include "lenz/train.h"
#include "train/augment.h"

namespace lenz {

std::optional<CheckpointFile> read_run_checkpoint(const std::string& path) {
    Ranks& ranks = Ranks::world();
    if (!ranks.distributed()) {
        if (!std::filesystem::exists(path)) return std::nullopt;
        return read_checkpoint(path);
    }
    // Rank 0 sends "-" (no file), "!" and its error, or "+" and the file's bytes.
    std::string message;
    if (ranks.rank() == 0) {
        try {
            message = std::filesystem::exists(path) ? "+" + read_checkpoint_bytes(path) : "-";
        } catch (const Error& e) {
            message = std::string("!") + e.what();
        }
    }
    message = ranks.broadcast(std::move(message));
    if (message == "-") return std::nullopt;
    if (message.front() == '!') throw IoError(message.substr(1));
    return parse_checkpoint(message.substr(1), path);
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// The signal that asked training to stop (SIGINT from Ctrl-C, or SIGTERM from `kill` or a job
// scheduler), read by the training loop between steps. SA_RESETHAND puts the default handler back
// as the first signal arrives, so a second one kills a run that does not stop.
volatile std::sig_atomic_t g_sigint = 0;

extern "C" void on_sigint(int signal_number) {
    g_sigint = signal_number;
}

class SigintCatcher {
  public:
    explicit SigintCatcher(bool enabled) : enabled_(enabled) {
        if (!enabled_) return;
        g_sigint = 0;
        struct sigaction action {};
        action.sa_handler = on_sigint;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESETHAND | SA_RESTART;
        ::sigaction(SIGINT, &action, &previous_);
        ::sigaction(SIGTERM, &action, &previous_term_);
    }
    ~SigintCatcher() {
        if (!enabled_) return;
        ::sigaction(SIGINT, &previous_, nullptr);
        ::sigaction(SIGTERM, &previous_term_, nullptr);
    }
    bool caught() const { return enabled_ && g_sigint != 0; }
    int signal_number() const { return caught() ? static_cast<int>(g_sigint) : 0; }

  private:
    bool enabled_;
    struct sigaction previous_ {};
    struct sigaction previous_term_ {};
};

// metrics.jsonl describes this run: a fresh run starts it anew, a resumed one keeps the lines of the
// epochs it continues from (a stop after an epoch's line but before the next can leave later ones).
void keep_metrics_up_to(const std::string& path, int64_t last_epoch) {
    std::vector<std::string> kept;
    {
        std::ifstream in(path);
        std::string line;
        while (last_epoch > 0 && std::getline(in, line)) {
            try {
                if (nlohmann::json::parse(line).value("epoch", int64_t{0}) <= last_epoch)
                    kept.push_back(line);
            } catch (const nlohmann::json::exception&) {
                // a line cut short by a crash: dropped
            }
        }
    }
    std::ofstream out(path, std::ios::trunc);
    for (const std::string& line : kept) out << line << "\n";
    if (!out) throw IoError(path + ": cannot write");
}

// Removes temporary files that a killed run left behind (write_checkpoint names them
// "<name>.tmp.<pid>"); they are never the only copy of anything.
void remove_stale_temporaries(const std::filesystem::path& dir) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("model.safetensors.tmp.", 0) == 0 || name.rfind("best.safetensors.tmp.", 0) == 0)
            std::filesystem::remove(entry.path(), ec);
    }
}

// Creates the output folder, or checks the one there (fail now, not after an epoch of work, if it
// is not writable), and removes what a killed run left behind.
void prepare_output_folder(const std::string& out_dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec))
        throw IoError(out_dir + ": is a file, not a folder (expected the output folder)");
    fs::create_directories(out_dir, ec);
    if (ec) throw IoError(out_dir + ": cannot create the output folder: " + ec.message());
    const std::string probe = (fs::path(out_dir) / ".write-test").string();
    std::ofstream f(probe);
    if (!f || !(f << "ok") || !f.flush()) throw IoError(out_dir + ": the output folder is not writable");
    f.close();
    fs::remove(probe, ec);
    remove_stale_temporaries(out_dir);
}

// Replaces every rank's non-trainable tensors (batch norm's running statistics) by their mean.
void average_state(Model& model, Ranks& ranks) {
    for (Model::NamedParam& p : model.named_params()) {
        if (p.ref.trainable) continue;
        Buffer& value = *p.ref.value;
        ranks.sum(value.data(), value.size());
        for (int64_t i = 0; i < value.size(); ++i) value[i] /= static_cast<float>(ranks.size());
    }
}

// In the list's order (ordered_json: nlohmann::json would sort the keys).
nlohmann::ordered_json metrics_json(const EpochMetrics& m) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const MetricValue& v : epoch_values(m)) {
        if (v.kind == MetricValue::Kind::count)
            j[v.name] = static_cast<int64_t>(v.value);
        else if (v.kind == MetricValue::Kind::flag)
            j[v.name] = v.value != 0;
        else
            j[v.name] = v.value;
    }
    return j;
}

}  // namespace

std::vector<EpochMetrics> train(Model& model, const DataSplit& data, const TrainConfig& config) {
    check_data_fits(model, data.train, "training");
    const bool has_test = data.test.size() > 0;
    if (has_test) check_data_fits(model, data.test, "test");
    if (config.batch <= 0 || config.epochs <= 0) throw ShapeError("epochs and batch must be positive");
    // --limit-train and --limit-test: stratified seeded subsets (a copy only where a limit cuts).
    const bool cut_train = config.limit_train > 0 && config.limit_train < data.train.size();
    const ImageSet limited_train =
        cut_train ? limit_images(data.train, config.limit_train, config.seed, kTrainLimitStream) : ImageSet{};
    const ImageSet& train_set = cut_train ? limited_train : data.train;
    const int64_t n_train = train_set.size();
    const ImageSet test_set = limit_images(data.test, config.limit_test, config.seed, kTestLimitStream);

    // Under MPI, every rank trains on its share of each batch; rank 0 alone writes the folder.
    Ranks& ranks = Ranks::world();
    const bool lead = ranks.rank() == 0;
    if (config.batch % ranks.size() != 0)
        throw ShapeError("--batch " + std::to_string(config.batch) + " does not divide among " +
                         std::to_string(ranks.size()) +
                         " ranks (the global batch is split evenly: use a multiple of " +
                         std::to_string(ranks.size()) + ")");
    namespace fs = std::filesystem;
    const std::string model_path = (fs::path(config.out_dir) / "model.safetensors").string();
    const std::string best_path = (fs::path(config.out_dir) / "best.safetensors").string();
    const std::string metrics_path = (fs::path(config.out_dir) / "metrics.jsonl").string();
    if (lead) prepare_output_folder(config.out_dir);

    const int64_t batch = std::min(config.batch, n_train);
    // Every image trains every epoch, as PyTorch's DataLoader does by default: the last step of an
    // epoch takes the images left over (n_train % batch of them), and its loss is their mean.
    const int64_t steps_per_epoch = (n_train + batch - 1) / batch;
    const int64_t total_steps = steps_per_epoch * config.epochs;
    // This rank's share of a global batch of n images: [n·rank/ranks, n·(rank + 1)/ranks).
    const auto share_of = [&](int64_t n, int rank) { return n * rank / ranks.size(); };
    TrainingStep step_runner(model, share_of(batch, ranks.rank() + 1) - share_of(batch, ranks.rank()),
                             config.precision);
    step_runner.set_loss(config.loss);
    // Gradients are summed across the ranks while backward runs (all-reduce in buckets).
    GradientSync gradient_sync(model, ranks);
    step_runner.set_backward_progress([&](int64_t layer) { gradient_sync.backward_reached(layer); });
    if (config.sync_batchnorm && ranks.distributed()) {
        // Every rank takes part in every batch norm's sums, so none may sit out the last step.
        const int64_t last = n_train % batch;
        if (last > 0 && last < ranks.size())
            throw ShapeError("--sync-batchnorm: the last batch of each epoch has " + std::to_string(last) +
                             " images, fewer than the " + std::to_string(ranks.size()) +
                             " ranks (change --batch or --limit-train)");
        step_runner.set_statistics_sum([&ranks](double* values, int64_t count) { ranks.sum(values, count); });
    }
    Optimizer optimizer(model, config.optimizer);

    CheckpointInfo info;
    info.class_names = train_set.class_names;
    info.normalization = compute_normalization(data.train);  // the whole set's, limited or not
    int64_t first_epoch = 1;
    int64_t step = 0;         // optimizer steps taken, over all epochs
    int64_t first_batch = 0;  // where the first epoch run here starts (non-zero after a mid-epoch stop)
    nlohmann::json partial;   // a mid-epoch checkpoint's running sums for its epoch
    // The best checkpoint's figure: the test accuracy, or for segmentation the mean IoU.
    double best_score = -1;
    if (config.resume) {
        const std::optional<CheckpointFile> found = read_run_checkpoint(model_path);
        if (!found) throw IoError(model_path + ": nothing to resume (no checkpoint there)");
        const CheckpointFile& file = *found;
        LoadedModel loaded = load_model(file);
        if (loaded.model.to_text() != model.to_text())
            throw FormatError(model_path + ": the checkpoint holds another model:\n" +
                              loaded.model.to_text());
        // Frozen layers have no optimizer state, so the frozen set is part of what the run is.
        const nlohmann::json stored = nlohmann::json::parse(loaded.info.training_json, nullptr, false);
        const int64_t stored_frozen = stored.is_object() ? stored.value("frozen_layers", int64_t{0}) : 0;
        if (stored_frozen != model.frozen_layers())
            throw FormatError(model_path + ": the run froze " + std::to_string(stored_frozen) +
                              " layers, this one freezes " + std::to_string(model.frozen_layers()) +
                              "; resume with the same --freeze");
        for (size_t i = 0; i < model.named_params().size(); ++i) {
            auto dst = model.named_params()[i];
            file.read_tensor(dst.name, dst.ref.dims, *dst.ref.value);
        }
        load_optimizer_state(file, optimizer);
        optimizer.set_steps_taken(loaded.info.step);
        info.normalization = loaded.info.normalization;
        info.metrics_json = loaded.info.metrics_json;
        first_epoch = loaded.info.epoch + 1;
        step = loaded.info.step;
        // The step must fall within the epoch after the completed ones; otherwise the run's batch
        // size or training set differ from the checkpoint's and replaying it would not be the same run.
        if (loaded.info.epoch < 0 || step < loaded.info.epoch * steps_per_epoch ||
            step > (loaded.info.epoch + 1) * steps_per_epoch)
            throw FormatError(model_path + ": checkpoint at step " + std::to_string(step) + " after epoch " +
                              std::to_string(loaded.info.epoch) + " does not fit " +
                              std::to_string(steps_per_epoch) +
                              " steps per epoch; resume with the same --batch, --limit-train and data");
        first_batch = step - loaded.info.epoch * steps_per_epoch;
        try {
            const nlohmann::json metrics = nlohmann::json::parse(loaded.info.metrics_json);
            best_score = metrics.value("best_score", metrics.value("best_test_accuracy", -1.0));
            if (first_batch > 0 && metrics.contains("partial")) partial = metrics["partial"];
        } catch (const nlohmann::json::exception&) {
        }
        if (config.on_resume)
            config.on_resume({model_path, loaded.info.epoch, first_batch, steps_per_epoch, step});
    }
    nlohmann::json run_settings = {{"epochs", config.epochs},
                                   {"batch", batch},
                                   {"seed", config.seed},
                                   {"optimizer", optimizer_name(config.optimizer)},
                                   {"lr", config.schedule.base_lr},
                                   {"weight_decay", config.optimizer.weight_decay},
                                   {"threads", threads()},
                                   {"data", data.description},
                                   {"dtype", precision_name(config.precision)},
                                   {"label_smoothing", config.loss.label_smoothing},
                                   {"loss", loss_name(config.loss.kind)}};
    if (ranks.distributed()) run_settings["ranks"] = ranks.size();
    if (config.sync_batchnorm) run_settings["sync_batchnorm"] = true;
    if (model.frozen_layers() > 0) run_settings["frozen_layers"] = model.frozen_layers();
    try {
        run_settings["options"] = nlohmann::json::parse(config.options_json);
    } catch (const nlohmann::json::exception&) {
        throw Error("TrainConfig::options_json is not JSON: " + config.options_json.substr(0, 80));
    }
    info.training_json = run_settings.dump();

    if (lead) keep_metrics_up_to(metrics_path, first_epoch - 1);

    const int64_t image = train_set.image_elements();
    std::vector<float> input(static_cast<size_t>(batch * image));
    const bool segmentation = train_set.segmentation();
    std::vector<int32_t> labels(segmentation ? 0 : static_cast<size_t>(batch));
    std::vector<uint8_t> masks(segmentation ? static_cast<size_t>(batch * train_set.height * train_set.width)
                                            : 0);
    std::vector<EpochMetrics> history;
    SigintCatcher sigint(config.catch_sigint);

    for (int64_t epoch = first_epoch; epoch <= config.epochs; ++epoch) {
        const auto start = Clock::now();
        std::vector<int64_t> order(static_cast<size_t>(n_train));
        std::iota(order.begin(), order.end(), 0);
        Rng shuffle = Rng::derive(config.seed, 0x5AFF1E, static_cast<uint64_t>(epoch));
        for (int64_t i = n_train - 1; i > 0; --i)
            std::swap(order[static_cast<size_t>(i)], order[shuffle.below(static_cast<uint64_t>(i + 1))]);
        double loss_sum = 0, lr = 0;
        int64_t correct = 0, counted = 0, seen = 0;  // counted: images, or pixels not ignored
        const int64_t start_batch = epoch == first_epoch ? first_batch : 0;
        if (start_batch > 0 &&
            partial.is_object()) {  // the sums up to the stop, so the epoch's metrics match too
            loss_sum = partial.value("loss_sum", 0.0);
            correct = partial.value("correct", int64_t{0});
            seen = partial.value("seen", int64_t{0});
            counted = partial.value("counted", seen);
            lr = partial.value("learning_rate", 0.0);
        }
        const int64_t seen_before = seen;
        bool stop_requested = false;
        for (int64_t b = start_batch; b < steps_per_epoch; ++b, ++step) {
            const int64_t this_batch = std::min(batch, n_train - b * batch);
            const int64_t first = share_of(this_batch, ranks.rank()),
                          mine = share_of(this_batch, ranks.rank() + 1) - first;
            // Each image's augmentation from a stream of its own, so the images a batch sees do not
            // depend on how many ranks share it.
            const uint64_t aug_seed = Rng::derive(config.seed, 0xA06, static_cast<uint64_t>(step)).next();
            for (int64_t i = 0; i < mine; ++i) {
                const int64_t index = order[static_cast<size_t>(b * batch + first + i)];
                Rng aug_rng = Rng::derive(aug_seed, 0x1A6, static_cast<uint64_t>(first + i));
                load_example(train_set, index, info.normalization, config.augment, aug_rng,
                             input.data() + i * image,
                             segmentation ? masks.data() + i * train_set.height * train_set.width : nullptr);
                if (!segmentation)
                    labels[static_cast<size_t>(i)] = train_set.labels[static_cast<size_t>(index)];
            }
            // Dropout draws its masks per rank, so that ranks do not repeat each other's.
            uint64_t step_seed = Rng::derive(config.seed, 0xD0, step).next();
            if (ranks.distributed())
                step_seed = Rng::derive(step_seed, 0x7A4C, static_cast<uint64_t>(ranks.rank())).next();
            gradient_sync.set_share(static_cast<float>(mine) / static_cast<float>(this_batch));
            step_runner.set_share(static_cast<double>(mine) / static_cast<double>(this_batch));
            TrainingStep::Result r;
            if (mine > 0) {
                r = step_runner.run(
                    input.data(),
                    Targets{segmentation ? nullptr : labels.data(), segmentation ? masks.data() : nullptr},
                    mine, step_seed);
            } else {  // fewer images left than ranks: this one adds nothing to the sums
                if (model.gradient_floats() > 0)
                    std::memset(model.gradient_store(), 0,
                                sizeof(float) * static_cast<size_t>(model.gradient_floats()));
            }
            gradient_sync.finish();
            // The step's loss and hits over the whole batch.
            double step_sums[3] = {r.loss_sum, static_cast<double>(r.correct),
                                   static_cast<double>(r.counted)};
            ranks.sum(step_sums, 3);
            r.loss_sum = step_sums[0];
            r.correct = std::llround(step_sums[1]);
            r.counted = std::llround(step_sums[2]);
            if (!std::isfinite(r.loss_sum))
                throw Error(
                    "the loss became " + std::string(std::isnan(r.loss_sum) ? "NaN" : "infinite") +
                    " at epoch " + std::to_string(epoch) + ", batch " + std::to_string(b + 1) +
                    "; try a lower learning rate (--lr). The last good checkpoint, if any, is kept: " +
                    model_path);
            lr = learning_rate_at(config.schedule, step, steps_per_epoch, total_steps);
            optimizer.step(lr);
            loss_sum += r.loss_sum;
            correct += r.correct;
            counted += r.counted;
            seen += this_batch;
            const double elapsed = seconds_since(start);
            const double ips = static_cast<double>(seen - seen_before) / std::max(elapsed, 1e-9);
            const StepProgress progress{
                epoch,
                config.epochs,
                b + 1,
                steps_per_epoch,
                step + 1,
                loss_sum / static_cast<double>(seen),
                static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(counted, 1)),
                ips,
                static_cast<double>(total_steps - step - 1) * static_cast<double>(batch) / ips};
            // Progress is shown by rank 0 alone. A wish to stop (its caller's, or a signal to any
            // rank) reaches every rank, so that all stop after the same step.
            double stops = lead && config.on_step && !config.on_step(progress) ? 1.0 : 0.0;
            if (sigint.caught()) stops += 1;
            ranks.sum(&stops, 1);
            if (stops > 0) stop_requested = true;
            if (stop_requested && b + 1 < steps_per_epoch) {
                // Mid-epoch checkpoint: epoch counts completed epochs, step the steps taken, and the
                // running sums let the resumed epoch report the same metrics.
                nlohmann::json mj = nlohmann::json::parse(info.metrics_json, nullptr, false);
                if (!mj.is_object()) mj = nlohmann::json::object();
                mj["best_score"] = best_score;
                mj["partial"] = {{"epoch", epoch},     {"loss_sum", loss_sum}, {"correct", correct},
                                 {"counted", counted}, {"seen", seen},         {"learning_rate", lr}};
                CheckpointInfo stop_info = info;
                stop_info.epoch = epoch - 1;
                stop_info.step = optimizer.steps_taken();
                stop_info.metrics_json = mj.dump();
                if (lead) write_checkpoint(model_path, model, stop_info, optimizer_tensors(optimizer, model));
                throw Interrupted("training stopped in epoch " + std::to_string(epoch) + " after batch " +
                                      std::to_string(b + 1) + " of " + std::to_string(steps_per_epoch) +
                                      " (step " + std::to_string(step + 1) + "); checkpoint written to " +
                                      model_path,
                                  model_path, sigint.signal_number());
            }
            // A stop at the epoch's last step finishes the epoch (evaluation, checkpoint) first.
        }
        const double train_seconds = seconds_since(start);
        EpochMetrics m;
        m.epoch = epoch;
        m.train_loss = loss_sum / std::max<int64_t>(seen, 1);
        m.train_accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(counted, 1));
        m.learning_rate = lr;
        m.seconds = train_seconds;
        // Only the images trained here: a resumed epoch's earlier part ran in another process.
        m.images_per_second = static_cast<double>(seen - seen_before) / std::max(train_seconds, 1e-9);
        // Batch norm's running statistics saw each rank's share only: their mean is what rank 0
        // writes and every rank evaluates with.
        if (ranks.distributed()) average_state(model, ranks);
        EvalResult test;
        test.loss = test.accuracy = test.mean_iou = std::numeric_limits<double>::quiet_NaN();
        if (has_test) test = evaluate(model, test_set, info.normalization, 256, config.precision);
        m.test_loss = test.loss;
        m.test_accuracy = test.accuracy;
        m.test_mean_iou = test.mean_iou;
        const double score = segmentation ? m.test_mean_iou : m.test_accuracy;
        m.best = score > best_score;
        if (m.best) best_score = score;
        history.push_back(m);
        nlohmann::ordered_json mj = metrics_json(m);
        mj["best_score"] = best_score;
        info.epoch = epoch;
        info.step = optimizer.steps_taken();
        info.metrics_json = mj.dump();
        if (lead) {
            write_checkpoint(model_path, model, info, optimizer_tensors(optimizer, model));
            if (m.best) write_checkpoint(best_path, model, info);
            std::ofstream log(metrics_path, std::ios::app);
            if (!log || !(log << metrics_json(m).dump() << "\n"))
                throw IoError(metrics_path + ": cannot append");
        }
        double epoch_stops = lead && config.on_epoch && !config.on_epoch(m, test) ? 1.0 : 0.0;
        ranks.sum(&epoch_stops, 1);
        if (epoch_stops > 0) break;
        if ((stop_requested || sigint.caught()) && epoch < config.epochs)
            throw Interrupted("training stopped after epoch " + std::to_string(epoch) + " (step " +
                                  std::to_string(step) + "); checkpoint written to " + model_path,
                              model_path, sigint.signal_number());
    }
    return history;
}

}  // namespace lenz
