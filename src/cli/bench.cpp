// `lenz bench WORKLOAD`: throughput and latency of fixed workloads on synthetic data, so that
// runs compare with the PyTorch script in bench/ on the same shapes.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/quantize.h"
#include "lenz/ranks.h"
#include "lenz/threads.h"
#include "lenz/train.h"

namespace lenz::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
    std::string workload;
    std::string models_dir = "models";
    int64_t batches = 0;  // training steps; 0: the workload's default
    int64_t repeats = 0;  // 0: the workload's default
    double peak = 0;      // layers: the peak to compare with; 0: measure it
    int64_t batch = 0;    // a model file's batch; 0: 1 at inference, 32 with --train
    std::string dtype;    // empty: float32, or int8 for a quantised model file
    bool json = false;
    bool profile = false;   // time each layer too
    bool train = false;     // a model file: time training steps instead of inference
    std::string optimizer;  // training: empty for SGD with momentum 0.9
};

// Resident memory now and at its peak, from /proc (kB -> bytes).
int64_t proc_status_bytes(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size())) * 1024;
    return 0;
}

// Resident memory from the start of a workload: the peak, and at the end how much of it is the
// process's own (anonymous: what it allocated, oneDNN's generated code included) and how much is
// pages of shared-library code read in from disk (file-backed, shared with other processes).
struct ResidentMemory {
    int64_t rss = proc_status_bytes("VmRSS:"), anon = proc_status_bytes("RssAnon:"),
            file = proc_status_bytes("RssFile:");
    void report(nlohmann::json& r) const {
        r["peak_rss_above_start_bytes"] = proc_status_bytes("VmHWM:") - rss;
        r["anon_rss_above_start_bytes"] = proc_status_bytes("RssAnon:") - anon;
        r["file_rss_above_start_bytes"] = proc_status_bytes("RssFile:") - file;
    }
};

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

double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// Each layer's forward, input-gradient and weight-gradient time in a training step, the mean over
// `steps` profiled steps, for the layers that ran; and the three summed over the layers.
nlohmann::json training_profile(const Model& model, const std::vector<TrainingStep::LayerTimes>& times,
                                int64_t steps) {
    nlohmann::json layers = nlohmann::json::array();
    const double per_step = 1000.0 / static_cast<double>(steps);
    for (int64_t i = 0; i < model.size() && i < static_cast<int64_t>(times.size()); ++i) {
        const TrainingStep::LayerTimes& t = times[static_cast<size_t>(i)];
        const double total = t.forward + t.input_gradient + t.weight_gradient;
        if (total == 0.0) continue;  // a view
        layers.push_back({{"layer", i + 1},
                          {"spec", model.layer_text(i)},
                          {"weights", model.layer(i).param_count() > 0},
                          {"forward_ms", per_step * t.forward},
                          {"input_gradient_ms", per_step * t.input_gradient},
                          {"weight_gradient_ms", per_step * t.weight_gradient},
                          {"ms", per_step * total}});
    }
    return layers;
}

// Under mpirun the batch is the global one: each rank steps on its share, the gradients summed
// across the ranks as in `lenz train`, and a step's time is rank 0's. `classify`: the model must
// give one score per class (a model file; the seed workload's loss runs over its whole output map).
nlohmann::json bench_train(const std::string& model_path, int64_t batch, int64_t steps, int64_t warmup,
                           Precision precision, const OptimizerConfig& optimizer, bool profile,
                           bool classify = false) {
    const ResidentMemory start;
    Ranks& ranks = Ranks::world();
    if (batch % ranks.size() != 0)
        throw UsageError("the batch of " + std::to_string(batch) + " does not divide among " +
                         std::to_string(ranks.size()) + " ranks");
    const int64_t mine = batch / ranks.size();
    Model model = load_with_weights(model_path, 1).model;
    if (classify && !segments(model)) class_count(model, model_path + ": bench --train");
    std::vector<TrainingStep::LayerTimes> layer_times;
    const std::vector<double> times = time_training_steps(model, mine, steps, warmup, precision, optimizer,
                                                          profile ? &layer_times : nullptr);
    double total = 0;
    for (double t : times) total += t;
    nlohmann::json r{{"batch", batch},
                     {"steps", steps},
                     {"warmup_steps", warmup},
                     {"optimizer", optimizer_name(optimizer)},
                     {"step_ms_median", 1000 * median(times)},
                     {"images_per_s", batch / median(times)},
                     {"images_per_s_mean", batch * static_cast<double>(times.size()) / total},
                     {"training_bytes_plan", plan_training(model, mine, optimizer.kind, precision).bytes()},
                     {"gradient_bytes", 4 * model.gradient_floats()}};
    if (ranks.distributed()) r["ranks"] = ranks.size();
    start.report(r);  // before profiling, whose extra copies are not the step's
    if (profile) r["layers"] = training_profile(model, layer_times, steps);
    return r;
}

// Sums of float buffers across the ranks (what a training step's gradient sum does), from 4 KB to
// 64 MB: each size's median time and the bus bandwidth it reached, the bytes a ring all-reduce moves
// per rank (2(N - 1)/N of the buffer) over the time, as NCCL's and OSU's benchmarks count it.
nlohmann::json bench_allreduce(int64_t repeats) {
    Ranks& ranks = Ranks::world();
    if (!ranks.distributed())
        throw UsageError("the allreduce workload sums across ranks: run it under mpirun -np 2 or more");
    nlohmann::json sizes = nlohmann::json::array();
    for (int64_t bytes = 4096; bytes <= (int64_t{64} << 20); bytes *= 4) {
        std::vector<float> buffer(static_cast<size_t>(bytes / 4), 1.0f);
        std::vector<double> times;
        for (int64_t r = 0; r < repeats + 2; ++r) {
            double ready = 0;
            ranks.sum(&ready, 1);  // start together
            const auto t0 = Clock::now();
            ranks.sum(buffer.data(), bytes / 4);
            if (r >= 2) times.push_back(seconds(t0, Clock::now()));
        }
        const double t = median(times),
                     moved = 2.0 * (ranks.size() - 1) / ranks.size() * static_cast<double>(bytes);
        sizes.push_back({{"bytes", bytes}, {"ms", 1000 * t}, {"bus_gb_per_s", moved / t / 1e9}});
    }
    return {{"ranks", ranks.size()}, {"sizes", sizes}};
}

// Each layer's share of an inference run, from `runs` more runs after the timed ones (timing each
// layer adds a clock read per layer, so the latency above is measured without it). The kernels'
// threads finish before a layer returns, so a layer's time is its own.
nlohmann::json layer_profile(Inference& inference, const Model& model, const std::vector<float>& x,
                             int64_t batch, int64_t runs) {
    std::vector<double> seconds(static_cast<size_t>(model.size()), 0.0);
    for (int64_t r = 0; r < runs; ++r) inference.run(x.data(), batch, &seconds);
    const std::vector<LayerStep> steps = inference.layer_steps();
    nlohmann::json layers = nlohmann::json::array();
    for (int64_t i = 0; i < model.size(); ++i) {
        const LayerStep& step = steps[static_cast<size_t>(i)];
        std::string folded;  // what this layer computes for others
        if (step.reads_through >= 0) folded = model.layer_text(step.reads_through) + " (read through)";
        if (step.writes_slice_of >= 0) folded = "its slice of " + model.layer_text(step.writes_slice_of);
        for (int64_t k : step.absorbs) folded += (folded.empty() ? "" : ", ") + model.layer(k).spec();
        if (seconds[static_cast<size_t>(i)] == 0.0) continue;
        layers.push_back({{"layer", i + 1},
                          {"spec", model.layer_text(i)},
                          {"folded", folded},
                          {"ms", 1000 * seconds[static_cast<size_t>(i)] / static_cast<double>(runs)}});
    }
    return layers;
}

// The layers by time, longest first, with their share of the whole.
void print_profile(const nlohmann::json& layers) {
    std::vector<nlohmann::json> rows(layers.begin(), layers.end());
    double total = 0;
    for (const auto& row : rows) total += row["ms"].get<double>();
    std::stable_sort(rows.begin(), rows.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
        return a["ms"].get<double>() > b["ms"].get<double>();
    });
    std::printf("%6s %9s %6s  %s\n", "layer", "ms", "share", "what (+ folded into it)");
    for (const auto& row : rows) {
        std::string what = row["spec"].get<std::string>();
        if (!row["folded"].get<std::string>().empty()) what += "  + " + row["folded"].get<std::string>();
        std::printf("%6lld %9.3f %5.1f%%  %s\n", static_cast<long long>(row["layer"].get<int64_t>()),
                    row["ms"].get<double>(), 100 * row["ms"].get<double>() / total, what.c_str());
    }
    std::printf("%6s %9.3f        (the layers' sum, timed one by one)\n", "total", total);
}

// A training profile: the layers by time, longest first, then the forward, input-gradient and
// weight-gradient totals against the step timed without profiling.
void print_training_profile(const nlohmann::json& layers, double step_ms) {
    std::vector<nlohmann::json> rows(layers.begin(), layers.end());
    double forward = 0, input_gradient = 0, weight_gradient = 0;
    for (const auto& row : rows) {
        forward += row["forward_ms"].get<double>();
        input_gradient += row["input_gradient_ms"].get<double>();
        weight_gradient += row["weight_gradient_ms"].get<double>();
    }
    const double total = forward + input_gradient + weight_gradient;
    std::stable_sort(rows.begin(), rows.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
        return a["ms"].get<double>() > b["ms"].get<double>();
    });
    std::printf("%6s %9s %9s %9s %9s %6s  %s\n", "layer", "forward", "input grad", "weight grad", "ms",
                "share", "what");
    for (const auto& row : rows)
        std::printf("%6lld %9.3f %9.3f %9.3f %9.3f %5.1f%%  %s\n",
                    static_cast<long long>(row["layer"].get<int64_t>()), row["forward_ms"].get<double>(),
                    row["input_gradient_ms"].get<double>(), row["weight_gradient_ms"].get<double>(),
                    row["ms"].get<double>(), 100 * row["ms"].get<double>() / total,
                    row["spec"].get<std::string>().c_str());
    std::printf(
        "%6s %9.3f %9.3f %9.3f %9.3f         (the layers' sums, timed one by one; the step: %.3f ms)\n",
        "total", forward, input_gradient, weight_gradient, total, step_ms);
    std::printf("%6s %8.1f%% %8.1f%% %8.1f%%\n", "share", 100 * forward / total, 100 * input_gradient / total,
                100 * weight_gradient / total);
}

// dtype: as given, empty for float32 (int8 for a quantised model).
nlohmann::json bench_infer(const std::string& model_path, int64_t batch, int64_t runs, int64_t warmup,
                           const std::string& dtype, bool profile) {
    const ResidentMemory start;
    Model model = load_with_weights(model_path, 1).model;
    const Precision precision = precision_for(dtype, model);
    const auto x = random_input(batch * model.input_shape().elements(), 3);
    // A model with seeded weights has no calibrated ranges: its own input stands in for training
    // images, which sets the scales as calibration would; the time does not depend on them.
    if (precision == Precision::int8 && !model.calibrated())
        model.set_value_ranges(calibrate(model, x.data(), batch));
    Inference inference(model, batch, precision);
    std::vector<double> times;
    for (int64_t r = 0; r < warmup + runs; ++r) {
        const auto t0 = Clock::now();
        inference.run(x.data(), batch);
        if (r >= warmup) times.push_back(seconds(t0, Clock::now()));
    }
    nlohmann::json r{{"batch", batch},
                     {"runs", runs},
                     {"latency_ms", 1000 * median(times)},
                     {"images_per_s", batch / median(times)},
                     {"slice", inference.plan().slice},
                     {"streams", inference.plan().streams},
                     {"inference_bytes_plan", inference.plan().bytes()},
                     {"dtype", precision_name(precision)}};
    start.report(r);
    if (profile) r["layers"] = layer_profile(inference, model, x, batch, runs);
    return r;
}

// Peak FP32 rate of this machine: independent FMA chains that never touch memory, on every thread.
// Each chain function holds its own target attribute: an OpenMP region is outlined into a function
// of its own, which would not inherit it.
constexpr int64_t kFmaIterations = 20'000'000;

__attribute__((target("avx2,fma"))) float fma_chains_avx2() {  // 10 chains of 8 floats
    __m256 acc[10];
    for (int i = 0; i < 10; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < kFmaIterations; ++it)
        for (int i = 0; i < 10; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 total = acc[0];
    for (int i = 1; i < 10; ++i) total = _mm256_add_ps(total, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, total);
    return out[0];
}

__attribute__((target("avx512f"))) float fma_chains_avx512() {  // 12 chains of 16 floats
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < kFmaIterations; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 total = acc[0];
    for (int i = 1; i < 12; ++i) total = _mm512_add_ps(total, acc[i]);
    float out[16];
    _mm512_storeu_ps(out, total);
    return out[0];
}

// AVX512-BF16's dot product: each instruction multiplies 16 pairs of bf16 pairs and adds them to 16
// float32 lanes, 64 operations. 12 chains of bf16 products that never touch memory.
__attribute__((target("avx512f,avx512bf16"))) float bf16_dot_chains() {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    for (int64_t it = 0; it < kFmaIterations; ++it)
        for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, a);
    __m512 total = acc[0];
    for (int i = 1; i < 12; ++i) total = _mm512_add_ps(total, acc[i]);
    float out[16];
    _mm512_storeu_ps(out, total);
    return out[0];
}

// flops_per_iteration: chains x lanes x 2 (an FMA is two operations).
double fma_gflops(int threads, float (*chains)(), double flops_per_iteration) {
    const auto t0 = Clock::now();
    double sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += chains();
    const double s = seconds(t0, Clock::now());
    if (sink == 12345.0) std::printf(" ");  // keeps the chains from being optimised away
    return threads * static_cast<double>(kFmaIterations) * flops_per_iteration / s / 1e9;
}

// The widest FMA this processor has: the peak oneDNN's kernels can approach. The best of five
// runs, since a busy machine only ever lowers it. In bf16, the AVX512-BF16 dot product's (a CPU with
// AMX has more, in its tiles, which this loop does not measure).
double peak_gflops(int threads, Precision precision) {
    double best = 0;
    for (int run = 0; run < 5; ++run) {
        if (precision == Precision::bf16)
            best = std::max(best, fma_gflops(threads, bf16_dot_chains, 12 * 16 * 4));
        else if (__builtin_cpu_supports("avx512f"))
            best = std::max(best, fma_gflops(threads, fma_chains_avx512, 12 * 16 * 2));
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            best = std::max(best, fma_gflops(threads, fma_chains_avx2, 10 * 8 * 2));
    }
    return best;
}

// Forward and backward GFLOP/s of every convolution of both models, against the measured peak.
nlohmann::json bench_layers(const BenchArgs& a, Precision precision) {
    const double peak = a.peak > 0 ? a.peak : peak_gflops(threads(), precision);
    nlohmann::json rows = nlohmann::json::array();
    struct Setup {
        std::string model;
        int64_t batch;
    };
    for (const Setup& setup :
         {Setup{a.models_dir + "/fashion.lenz", 64}, Setup{a.models_dir + "/seed.lenz", 1},
          Setup{a.models_dir + "/seed.lenz", 50}}) {
        Model model = load_model_file(setup.model);
        model.init_params(1);
        const int64_t B = setup.batch;
        std::vector<int64_t> convolutions;
        for (int64_t i = 0; i < model.size(); ++i)
            if (std::holds_alternative<Conv2dConfig>(model.layer(i).config())) convolutions.push_back(i);
        for (const LayerTiming& t : time_layers(model, convolutions, B, precision, B == 1 ? 20 : 3)) {
            const int64_t i = t.layer;
            const Layer& layer = model.layer(i);
            const double f_flops = 2.0 * layer.mult_count() * B;
            const double b_flops =
                2.0 * (layer.weight_grad_mults() + (i == 0 ? 0 : layer.input_grad_mults())) * B;
            const double fwd_s = t.forward, bwd_s = t.backward;
            const double f = f_flops / fwd_s / 1e9, b = b_flops / bwd_s / 1e9;
            rows.push_back({{"model", setup.model},
                            {"layer", std::to_string(i + 1) + " " + layer.spec()},
                            {"batch", B},
                            {"forward_ms", 1000 * fwd_s},
                            {"forward_gflops", f},
                            {"forward_peak_fraction", peak > 0 ? f / peak : 0.0},
                            {"backward_ms", 1000 * bwd_s},
                            {"backward_gflops", b},
                            {"backward_peak_fraction", peak > 0 ? b / peak : 0.0}});
        }
    }
    return {{"peak_gflops", peak}, {"layers", rows}, {"images_per_s", 0}};
}

int run_bench(const BenchArgs& a) {
    const Precision p = a.dtype.empty() ? Precision::f32 : precision_of(a.dtype);
    bool named = false;
    for (const char* n : {"fmnist-train", "fmnist-infer", "fmnist-latency", "seed-infer", "seed-train",
                          "layers", "allreduce"})
        named |= a.workload == n;
    if (a.train && named)
        throw UsageError("--train times a model file's training; " + a.workload +
                         " is a fixed workload (fmnist-train and seed-train train)");
    if (!a.optimizer.empty() && !a.train && !a.workload.ends_with("-train"))
        throw UsageError("--optimizer needs --train (or fmnist-train, seed-train)");
    if (p == Precision::int8 && (a.workload == "layers" || a.workload.ends_with("-train") || a.train))
        throw UsageError("--dtype int8 runs inference only: " + (a.train ? "--train" : a.workload) +
                         " measures training too");
    OptimizerConfig optimizer{.kind = OptimizerKind::momentum, .momentum = 0.9};
    if (!a.optimizer.empty()) optimizer = parse_optimizer(a.optimizer);
    if (a.workload == "layers") {
        nlohmann::json r = bench_layers(a, p);
        r["workload"] = "layers";
        r["threads"] = threads();
        r["dtype"] = precision_name(p);
        // Above the peak is impossible: a measured peak ran while the machine was busy, or the one
        // given with --peak is too low.
        bool above_peak = false;
        for (auto& row : r["layers"])
            above_peak |= row["forward_peak_fraction"].get<double>() > 1 ||
                          row["backward_peak_fraction"].get<double>() > 1;
        if (above_peak)
            std::fprintf(stderr, "%s",
                         a.peak > 0
                             ? "lenz: warning: a layer ran above the --peak given, which is too low; the "
                               "percentages are too high.\n"
                             : "lenz: warning: a layer ran above the measured peak, so the peak was "
                               "measured while the machine was busy; the percentages are too high. Run "
                               "again on an idle machine.\n");
        if (a.json) {
            std::cout << r.dump() << "\n";
            return 0;
        }
        std::printf("%s %s peak: %.1f GFLOP/s on %d threads%s; each layer: its fastest run\n",
                    a.peak > 0 ? "given" : "measured",
                    p == Precision::bf16 ? "AVX512-BF16 dot-product" : "FP32", r["peak_gflops"].get<double>(),
                    threads(), a.peak > 0 ? "" : " (best of 5)");
        std::printf("%-48s %5s %10s %8s %6s %10s %8s %6s\n", "layer", "batch", "fwd ms", "GFLOP/s", "peak",
                    "bwd ms", "GFLOP/s", "peak");
        for (auto& row : r["layers"]) {
            const std::string name = std::filesystem::path(row["model"].get<std::string>()).stem().string() +
                                     ": " + row["layer"].get<std::string>();
            std::printf("%-48.48s %5lld %10.3f %8.1f %5.0f%% %10.3f %8.1f %5.0f%%\n", name.c_str(),
                        static_cast<long long>(row["batch"].get<int64_t>()), row["forward_ms"].get<double>(),
                        row["forward_gflops"].get<double>(), 100 * row["forward_peak_fraction"].get<double>(),
                        row["backward_ms"].get<double>(), row["backward_gflops"].get<double>(),
                        100 * row["backward_peak_fraction"].get<double>());
        }
        return 0;
    }
    const std::string fashion = a.models_dir + "/fashion.lenz", seed = a.models_dir + "/seed.lenz";
    nlohmann::json r;
    const std::string& w = a.workload;
    const auto rep = [&](int64_t d) { return a.repeats > 0 ? a.repeats : d; };
    if (w == "allreduce") {
        r = bench_allreduce(rep(20));
        if (Ranks::world().rank() != 0) return 0;
        if (a.json) {
            std::cout << r.dump() << "\n";
            return 0;
        }
        std::printf("all-reduce across %d ranks: %10s %10s %14s\n", r["ranks"].get<int>(), "bytes", "ms",
                    "bus GB/s");
        for (const auto& row : r["sizes"])
            std::printf("%34s %10.3f %14.2f\n", with_commas(row["bytes"].get<int64_t>()).c_str(),
                        row["ms"].get<double>(), row["bus_gb_per_s"].get<double>());
        return 0;
    }
    const auto steps = [&](int64_t d) { return a.batches > 0 ? a.batches : d; };
    if (w == "fmnist-train")
        r = bench_train(fashion, 64, steps(30), 3, p, optimizer, a.profile);
    else if (w == "fmnist-infer")
        r = bench_infer(fashion, 256, rep(20), 3, a.dtype, a.profile);
    else if (w == "fmnist-latency")
        r = bench_infer(fashion, 1, rep(500), 20, a.dtype, a.profile);
    else if (w == "seed-infer")
        r = bench_infer(seed, 1, rep(20), 2, a.dtype, a.profile);
    else if (w == "seed-train")
        r = bench_train(seed, 50, a.batches > 0 ? a.batches : rep(3), 1, p, optimizer, a.profile);
    else if (std::filesystem::is_regular_file(w) && a.train)  // any model file's training at --batch
        r = bench_train(w, a.batch > 0 ? a.batch : 32, steps(10), 2, p, optimizer, a.profile, true);
    else if (std::filesystem::is_regular_file(w))  // any model file: inference at --batch
        r = bench_infer(w, a.batch > 0 ? a.batch : 1, rep(20), 3, a.dtype, a.profile);
    else
        throw UsageError(
            "unknown workload '" + w +
            "' (expected fmnist-train, fmnist-infer, fmnist-latency, seed-infer, seed-train, layers, "
            "allreduce or a model file)");
    if (a.train) r["train"] = true;
    r["workload"] = w;
    r["threads"] = threads();
    if (!r.contains("dtype")) r["dtype"] = precision_name(p);
    if (Ranks::world().rank() != 0) return 0;  // rank 0 speaks for the run
    if (a.json) {
        std::cout << r.dump() << "\n";
    } else {
        if (Ranks::world().distributed())
            std::printf("%s (%d ranks, %d threads each): ", w.c_str(), Ranks::world().size(), threads());
        else
            std::printf("%s (%d threads): ", w.c_str(), threads());
        if (r.contains("latency_ms")) std::printf("latency %.3f ms, ", r["latency_ms"].get<double>());
        if (r.contains("streams") && r["streams"] != 1)
            std::printf("%lld streams, ", static_cast<long long>(r["streams"].get<int64_t>()));
        if (r.contains("slice") && r["slice"] != r["batch"])
            std::printf("in slices of %lld images, ", static_cast<long long>(r["slice"].get<int64_t>()));
        if (r.contains("step_ms_median")) std::printf("step %.1f ms, ", r["step_ms_median"].get<double>());
        std::printf("%.0f images/s, peak memory above start %.1f MB\n", r["images_per_s"].get<double>(),
                    r["peak_rss_above_start_bytes"].get<int64_t>() / 1e6);
        if (r.contains("layers") && r.contains("step_ms_median"))
            print_training_profile(r["layers"], r["step_ms_median"].get<double>());
        else if (r.contains("layers"))
            print_profile(r["layers"]);
    }
    return 0;
}

}  // namespace

void add_bench(CLI::App& app, Runner& run) {
    auto a = std::make_shared<BenchArgs>();
    CLI::App* cmd =
        app.add_subcommand("bench", "Throughput and latency of standard workloads (synthetic data)");
    cmd->add_option(
           "workload", a->workload,
           "fmnist-train, fmnist-infer, fmnist-latency, seed-infer, seed-train, layers, allreduce "
           "(under mpirun), or a model file (.lenz, weights from seed 1; a checkpoint; .onnx) timed at "
           "inference, or in training with --train")
        ->required();
    cmd->add_flag("--train", a->train,
                  "a model file: time training steps (forward, cross-entropy, backward, an optimizer "
                  "step) on random images of its input size and labels within its classes, after 2 "
                  "warm-up steps; the model must end in one score per class");
    cmd->add_option("--batch", a->batch,
                    "a model file: images per inference run (default 1), or per training step with "
                    "--train (default 32)")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
    cmd->add_option("--batches", a->batches,
                    "training steps to time (fmnist-train: default 30; --train: 10; seed-train: 3)")
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--optimizer", a->optimizer,
                    "training: sgd, momentum (default: SGD with momentum 0.9), nesterov, adam or adamw; "
                    "learning rate 0.01")
        ->check(CLI::IsMember({"sgd", "momentum", "nesterov", "adam", "adamw"}));
    cmd->add_option("--repeats", a->repeats, "timed runs (inference, seed-train)")
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--models", a->models_dir, "folder holding fashion.lenz and seed.lenz (default models)");
    cmd->add_option(
           "--peak", a->peak,
           "layers: compare with this many GFLOP/s (say, the processor's rated peak) instead of measuring")
        ->check(positive_number);
    add_dtype_option(cmd, a->dtype, true);
    cmd->add_flag("--json", a->json, "one JSON object with workload, threads, images_per_s / latency_ms");
    cmd->add_flag("--profile", a->profile,
                  "each layer's time as well: at inference (layers folded into another are named beside "
                  "it), in training its forward, input-gradient and weight-gradient times, from as many "
                  "steps again after the timed ones");
    cmd->callback([&run, a] { run = [a] { return run_bench(*a); }; });
}

}  // namespace lenz::cli
