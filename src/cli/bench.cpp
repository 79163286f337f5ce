// `lenz bench WORKLOAD`: throughput and latency of fixed workloads on synthetic data, so that
// runs compare with the PyTorch script in bench/ on the same shapes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/threads.h"
#include "lenz/train.h"

namespace lenz::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
    std::string workload;
    std::string models_dir = "models";
    int64_t batches = 30;
    int64_t repeats = 0;  // 0: the workload's default
    bool json = false;
};

// Resident memory now and at its peak, from /proc (kB -> bytes).
int64_t proc_status_bytes(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size())) * 1024;
    return 0;
}

std::vector<float> random_input(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = rng.normal();
    return v;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

nlohmann::json bench_train(const std::string& model_path, int64_t batch, int64_t steps, int64_t warmup) {
    const int64_t rss_before = proc_status_bytes("VmRSS:");
    Model model = load_model_file(model_path);
    model.init_params(1);
    TrainingStep step(model, batch);
    Optimizer opt(model, {.kind = OptimizerKind::momentum, .momentum = 0.9});
    const int64_t classes = model.output_shape().elements();
    const auto x = random_input(batch * model.input_shape().elements(), 2);
    std::vector<int32_t> labels(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) labels[static_cast<size_t>(i)] = static_cast<int32_t>(i % classes);
    std::vector<double> times;
    for (int64_t s = 0; s < warmup + steps; ++s) {
        const auto t0 = Clock::now();
        step.run(x.data(), labels.data(), batch, static_cast<uint64_t>(s));
        opt.step(0.01);
        if (s >= warmup) times.push_back(seconds(t0, Clock::now()));
    }
    double total = 0;
    for (double t : times) total += t;
    return {{"batch", batch},
            {"steps", steps},
            {"step_ms_median", 1000 * median(times)},
            {"images_per_s", batch / median(times)},
            {"images_per_s_mean", batch * static_cast<double>(times.size()) / total},
            {"peak_rss_above_start_bytes", proc_status_bytes("VmHWM:") - rss_before},
            {"training_bytes_plan", plan_training(model, batch, OptimizerKind::momentum).bytes()}};
}

nlohmann::json bench_infer(const std::string& model_path, int64_t batch, int64_t runs, int64_t warmup) {
    const int64_t rss_before = proc_status_bytes("VmRSS:");
    Model model = load_model_file(model_path);
    model.init_params(1);
    Inference inference(model, batch);
    const auto x = random_input(batch * model.input_shape().elements(), 3);
    std::vector<double> times;
    for (int64_t r = 0; r < warmup + runs; ++r) {
        const auto t0 = Clock::now();
        inference.run(x.data(), batch);
        if (r >= warmup) times.push_back(seconds(t0, Clock::now()));
    }
    return {{"batch", batch},
            {"runs", runs},
            {"latency_ms", 1000 * median(times)},
            {"images_per_s", batch / median(times)},
            {"peak_rss_above_start_bytes", proc_status_bytes("VmHWM:") - rss_before},
            {"inference_bytes_plan", plan_inference(model, batch).bytes()}};
}

int run_bench(const BenchArgs& a) {
    const std::string fashion = a.models_dir + "/fashion.lenz", seed = a.models_dir + "/seed.lenz";
    nlohmann::json r;
    const std::string& w = a.workload;
    const auto rep = [&](int64_t d) { return a.repeats > 0 ? a.repeats : d; };
    if (w == "fmnist-train")
        r = bench_train(fashion, 64, a.batches, 3);
    else if (w == "fmnist-infer")
        r = bench_infer(fashion, 256, rep(20), 3);
    else if (w == "fmnist-latency")
        r = bench_infer(fashion, 1, rep(500), 20);
    else if (w == "seed-infer")
        r = bench_infer(seed, 1, rep(20), 2);
    else if (w == "seed-train")
        r = bench_train(seed, 50, rep(3), 1);
    else
        throw Error("unknown workload '" + w + "' (expected fmnist-train, fmnist-infer, fmnist-latency, seed-infer, seed-train)");
    r["workload"] = w;
    r["threads"] = threads();
    if (a.json) {
        std::cout << r.dump() << "\n";
    } else {
        std::printf("%s (%d threads): ", w.c_str(), threads());
        if (r.contains("latency_ms")) std::printf("latency %.3f ms, ", r["latency_ms"].get<double>());
        if (r.contains("step_ms_median")) std::printf("step %.1f ms, ", r["step_ms_median"].get<double>());
        std::printf("%.0f images/s, peak memory above start %.1f MB\n", r["images_per_s"].get<double>(),
                    r["peak_rss_above_start_bytes"].get<int64_t>() / 1e6);
    }
    return 0;
}

}  // namespace

void add_bench(CLI::App& app, Runner& run) {
    auto a = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand("bench", "Throughput and latency of standard workloads (synthetic data)");
    cmd->add_option("workload", a->workload, "fmnist-train, fmnist-infer, fmnist-latency, seed-infer or seed-train")
        ->required();
    cmd->add_option("--batches", a->batches, "training steps to time (fmnist-train; default 30)")
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--repeats", a->repeats, "timed runs (inference, seed-train)")->check(CLI::Range(1, 100000));
    cmd->add_option("--models", a->models_dir, "folder holding fashion.lenz and seed.lenz (default models)");
    cmd->add_flag("--json", a->json, "one JSON object with workload, threads, images_per_s / latency_ms");
    cmd->callback([&run, a] { run = [a] { return run_bench(*a); }; });
}

}  // namespace lenz::cli
