// The PyTorch goldens of every convolution and dense case again, with the layer in bf16 (mixed
// precision). The tolerance is derived, not tuned: bf16 keeps 8 significant bits (unit roundoff
// u = 2^-8), so each product of a rounded input and a rounded weight is within (2u + u²)|x·w| of
// the exact one, and float32 accumulation adds far less. An output that sums products is
// therefore within (2u + u²)·Σ|x|·|w| of PyTorch's float32 value, and the sum of magnitudes is
// the same layer run in float32 on |x|, |w| and |dy| with no bias. Activations that can be fused
// (relu, leaky relu, relu6, sigmoid, tanh, hardsigmoid) change no distance by more than a factor
// 1, so the bound holds after them; a fused softmax is left out. Backward is compared where the
// layer has no activation: with one, the derivative is taken at the bf16 output, which may lie on
// the other side of a kink.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <variant>
#include <vector>

#include "layers/golden_cases.h"
#include "layers/pass.h"
#include "lenz/engine.h"
#include "lenz/layers.h"
#include "lenz/model.h"
#include "lenz/model_text.h"
#include "lenz/precision.h"

namespace lenz {
namespace {

using testing::case_name;
using testing::floats;
using testing::golden_dir;

constexpr double kUnitRoundoff = 1.0 / 256;
constexpr double kBf16Factor = 2 * kUnitRoundoff + kUnitRoundoff * kUnitRoundoff;
constexpr double kFloat32Slack = 1e-5;  // what float32 itself may be off by (see golden_test.cpp)

std::vector<float> magnitudes(std::vector<float> v) {
    for (float& f : v) f = std::abs(f);
    return v;
}

// The convolution and dense cases, by name.
std::vector<std::string> product_cases() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(golden_dir(), ec)) {
        const std::string stem = entry.path().stem().string();
        // convtranspose computes in float32 in every precision (its goldens hold in golden_test).
        const bool product = (stem.rfind("conv", 0) == 0 && stem.rfind("convtranspose", 0) != 0) ||
                             stem.rfind("dense", 0) == 0;
        // A fused softmax is no 1-Lipschitz map of each output, so the bound does not carry through it.
        if (entry.path().extension() == ".json" && product && stem.find("softmax") == std::string::npos)
            names.push_back(stem);
    }
    std::sort(names.begin(), names.end());
    return names;
}

ActivationSpec& activation_of(LayerConfig& config) {
    if (auto* conv = std::get_if<Conv2dConfig>(&config)) return conv->activation;
    return std::get<DenseConfig>(config).activation;
}

struct Outputs {
    std::vector<float> y, dx;
    std::vector<std::vector<float>> grads;  // of the trainable parameters, in params() order
};

// Runs one layer of `config` on input shape `in`, forward and (if asked) backward, with the given
// parameter values (in params() order), input and output gradient.
Outputs run_layer(const LayerConfig& config, Shape in, int64_t N,
                  const std::vector<std::vector<float>>& values, const std::vector<float>& x,
                  const std::vector<float>& dy, Precision precision, bool backward) {
    std::unique_ptr<Layer> layer = make_layer(config);
    layer->connect(in);
    Rng rng(1);
    layer->init_params(rng);
    layer->allocate_gradients();
    std::vector<ParamRef> params = layer->params();
    for (size_t i = 0; i < params.size(); ++i)
        std::copy(values[i].begin(), values[i].end(), params[i].value->data());
    Pass pass;
    pass.batch = N;
    pass.training = true;
    pass.precision = precision;
    Buffer workspace(std::max<int64_t>(layer->workspace_floats(pass), 1));
    pass.workspace = workspace.data();
    pass.workspace_capacity = workspace.size();
    Outputs out;
    out.y.resize(static_cast<size_t>(N * layer->output_shape().elements()));
    layer->forward(x.data(), out.y.data(), pass);
    if (!backward) return out;
    std::vector<float> dy_scratch = dy;
    out.dx.resize(x.size());
    layer->backward(x.data(), out.y.data(), dy_scratch.data(),
                    InputGradient::overwriting(out.dx.data(), layer->input_shape()), pass);
    for (ParamRef& p : params)
        if (p.trainable) out.grads.emplace_back(p.grad->data(), p.grad->data() + p.grad->size());
    return out;
}

// Each value within kBf16Factor · bound + float32's own slack of PyTorch's, and some value off by
// more than float32 would be: the bf16 kernels really ran.
void expect_within_bound(const std::string& name, const char* tensor, const std::vector<float>& got,
                         const std::vector<float>& expected, const std::vector<float>& bound, bool& rounded) {
    ASSERT_EQ(got.size(), expected.size()) << name << ": " << tensor;
    for (size_t i = 0; i < got.size(); ++i) {
        const double error = std::abs(double(got[i]) - expected[i]);
        ASSERT_LE(error, kBf16Factor * bound[i] + kFloat32Slack * (1 + bound[i]))
            << name << ": " << tensor << "[" << i << "] = " << got[i] << ", PyTorch " << expected[i]
            << ", beyond bf16's bound " << kBf16Factor * bound[i];
        rounded = rounded || error > 1e-5 * (1 + std::abs(expected[i]));
    }
}

class GoldenBf16 : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenBf16, WithinBf16sRoundingBoundOfPyTorch) {
    if (!cpu_supports(Precision::bf16))
        GTEST_SKIP() << "this CPU has no bf16 (its refusal: Conv2dKernel.Bf16*)";
    const std::string name = GetParam();
    std::ifstream file(golden_dir() / (name + ".json"));
    const nlohmann::json g = nlohmann::json::parse(file);
    const auto in_dims = g.at("input_shape").get<std::vector<int64_t>>();
    const int64_t N = in_dims[0];
    const Shape in{in_dims[2], in_dims[3], in_dims[1]};
    const Model model =
        parse_model("input " + in.str() + "\n" + g.at("spec").get<std::string>() + "\n", name);
    LayerConfig config = model.layer(0).config();
    const ActivationSpec act = activation_of(config);
    const bool backward = act.kind == Activation::none;

    // PyTorch's parameters, in params() order; and their magnitudes with a zero bias.
    std::vector<std::vector<float>> values, magnitude_values;
    std::unique_ptr<Layer> probe = make_layer(config);
    probe->connect(in);
    for (const ParamRef& p : probe->params()) {
        values.push_back(floats(g.at("params").at(p.name).at("value")));
        magnitude_values.push_back(p.name == "bias" ? std::vector<float>(values.back().size(), 0.0f)
                                                    : magnitudes(values.back()));
    }
    const std::vector<float> x = floats(g.at("x")), dy = floats(g.at("dy"));
    const Outputs bf16 = run_layer(config, in, N, values, x, dy, Precision::bf16, backward);
    activation_of(config) = {};
    const Outputs bound =
        run_layer(config, in, N, magnitude_values, magnitudes(x), magnitudes(dy), Precision::f32, backward);

    bool rounded = false;
    expect_within_bound(name, "y", bf16.y, floats(g.at("y")), bound.y, rounded);
    if (backward) {
        expect_within_bound(name, "dx", bf16.dx, floats(g.at("dx")), bound.dx, rounded);
        std::vector<std::string> trainable;
        for (const ParamRef& p : probe->params())
            if (p.trainable) trainable.push_back(p.name);
        // The bias gradient sums dy, rounded to bf16 where oneDNN sums its bf16 copy: within u·Σ|dy|,
        // which the magnitude run's bias gradient (Σ|dy|) bounds too.
        for (size_t i = 0; i < trainable.size(); ++i)
            expect_within_bound(name, ("d" + trainable[i]).c_str(), bf16.grads[i],
                                floats(g.at("grads").at(trainable[i])), bound.grads[i], rounded);
    }
    EXPECT_TRUE(rounded) << name << ": every value as float32 would give it; did bf16 run?";
}

INSTANTIATE_TEST_SUITE_P(PyTorch, GoldenBf16, ::testing::ValuesIn(product_cases()), case_name);

TEST(GoldenBf16Files, Present) {
    EXPECT_GE(product_cases().size(), 21u) << "conv_* and dense_* cases in " << golden_dir();
}

}  // namespace
}  // namespace lenz
