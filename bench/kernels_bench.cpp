// Google Benchmark micro-benchmarks of the kernels alone, without the engine around them: the
// convolutions of the course notes' worked example (seed.lenz) forward and backward, and the GEMM
// of a dense layer. Each reports GFLOP per second as the counter "GFLOP". Build with -DLENZ_BUILD_BENCH=ON,
// then
//   build/lenz_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// `lenz bench` times whole workloads; this is for working on one kernel.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "core/conv_geometry.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"

namespace lenz {
namespace {

// The seed model's three layers at batch 1: 3x3 stride 2 'same' convolutions of 200x300x3.
ConvGeometry seed_layer(int64_t index) {
    static const ConvGeometry layers[] = {
        {3, 200, 300, 100, 100, 150, 3, 3, 2, 2, 0, 0},
        {100, 100, 150, 200, 50, 75, 3, 3, 2, 2, 0, 0},
        {200, 50, 75, 400, 25, 38, 3, 3, 2, 2, 0, 1},
    };
    return layers[index];
}

std::vector<float> filled(int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 13) * 0.01f - 0.06f;
    return v;
}

void set_gflops(benchmark::State& state, double flops_per_iteration) {
    state.counters["GFLOP"] =
        benchmark::Counter(flops_per_iteration / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void conv_forward(benchmark::State& state) {
    const ConvGeometry g = seed_layer(state.range(0));
    const int64_t N = state.range(1);
    const ActivationSpec relu{Activation::relu};
    std::vector<float> x = filled(N * g.C * g.H * g.W), w = filled(g.OC * g.patch()), b = filled(g.OC);
    std::vector<float> y(static_cast<size_t>(N * g.OC * g.positions()));
    std::vector<float> workspace(static_cast<size_t>(cpu::conv2d_forward_workspace(g, N, true, relu, {})));
    for (auto _ : state) {
        cpu::conv2d_forward(g, N, x.data(), w.data(), b.data(), relu, y.data(),
                            {workspace.data(), static_cast<int64_t>(workspace.size())});
        benchmark::DoNotOptimize(y.data());
    }
    set_gflops(state, 2.0 * static_cast<double>(N * g.OC * g.positions() * g.patch()));
}

void conv_backward(benchmark::State& state) {
    const ConvGeometry g = seed_layer(state.range(0));
    const int64_t N = state.range(1);
    std::vector<float> x = filled(N * g.C * g.H * g.W), w = filled(g.OC * g.patch());
    std::vector<float> dy = filled(N * g.OC * g.positions()), dw(w.size()), db(static_cast<size_t>(g.OC));
    std::vector<float> dx(x.size());
    std::vector<float> workspace(static_cast<size_t>(cpu::conv2d_backward_workspace(g, N, true, {})));
    const cpu::ImageGradientSink store_dx = [&](int64_t n, const float* image_dx) {
        std::copy(image_dx, image_dx + g.C * g.H * g.W, dx.begin() + n * g.C * g.H * g.W);
    };
    for (auto _ : state) {
        cpu::conv2d_backward(g, N, x.data(), dy.data(), w.data(), store_dx, dw.data(), db.data(),
                             {workspace.data(), static_cast<int64_t>(workspace.size())});
        benchmark::DoNotOptimize(dx.data());
    }
    // Weight gradient and input gradient: each as many multiply-adds as the forward pass.
    set_gflops(state, 4.0 * static_cast<double>(N * g.OC * g.positions() * g.patch()));
}

// A dense layer's forward product: (batch, inputs) x (inputs, units).
void dense_gemm(benchmark::State& state) {
    const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
    std::vector<float> a = filled(M * K), b = filled(K * N), c(static_cast<size_t>(M * N));
    for (auto _ : state) {
        cpu::gemm(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
        benchmark::DoNotOptimize(c.data());
    }
    set_gflops(state, 2.0 * static_cast<double>(M * N * K));
}

BENCHMARK(conv_forward)->ArgNames({"layer", "batch"})->ArgsProduct({{0, 1, 2}, {1, 8}})->UseRealTime();
BENCHMARK(conv_backward)->ArgNames({"layer", "batch"})->ArgsProduct({{0, 1, 2}, {8}})->UseRealTime();
BENCHMARK(dense_gemm)
    ->ArgNames({"M", "K", "N"})
    ->Args({64, 3136, 128})
    ->Args({256, 9216, 4096})
    ->UseRealTime();

}  // namespace
}  // namespace lenz

BENCHMARK_MAIN();
