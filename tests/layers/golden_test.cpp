// Golden values from PyTorch (tools/make_goldens.py writes tests/golden/*.json): for each case, one
// layer is parsed from its model-file line, given the case's parameters, and its forward output,
// input gradient, parameter gradients and (batch norm) running statistics are compared with PyTorch's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "layers/fold_activation.h"
#include "layers/golden_cases.h"
#include "layers/pass.h"
#include "lenz/buffer.h"
#include "lenz/layer.h"
#include "lenz/model.h"
#include "lenz/model_text.h"

namespace lenz {
namespace {

using testing::case_name;
using testing::floats;
using testing::golden_dir;

// The goldens are float64 results rounded to float32; Lenz computes in float32 with sums of at most a
// few hundred terms of magnitude ~1, so its error is ~1e-6: abs 1e-4 + rel 1e-4 leaves ample room.
constexpr double kAbsTolerance = 1e-4;
constexpr double kRelTolerance = 1e-4;

std::vector<std::string> golden_cases() {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(golden_dir(), ec))
        if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

nlohmann::json load_case(const std::string& name) {
    std::ifstream in(golden_dir() / (name + ".json"));
    if (!in) throw std::runtime_error("cannot open golden file " + name + ".json");
    return nlohmann::json::parse(in);
}

int64_t product(const std::vector<int64_t>& dims) {
    int64_t p = 1;
    for (int64_t d : dims) p *= d;
    return p;
}

std::string dims_str(const std::vector<int64_t>& dims) {
    std::string s = "(";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + ")";
}

// Compares `actual` with `expected`; on failure names the case, the tensor and the first index that
// differs (with its multi-index when `dims` is given), then how many differ and the largest error.
void expect_close(const std::string& case_name, const std::string& tensor, const float* actual,
                  const std::vector<float>& expected, int64_t actual_size,
                  const std::vector<int64_t>& dims = {}) {
    ASSERT_EQ(actual_size, static_cast<int64_t>(expected.size()))
        << case_name << ": " << tensor << " has " << actual_size << " values, PyTorch " << expected.size();
    int64_t first = -1, bad = 0;
    double worst = 0.0;
    for (int64_t i = 0; i < actual_size; ++i) {
        const double a = actual[i], e = expected[static_cast<size_t>(i)];
        const double err = std::abs(a - e);
        if (!(err <= kAbsTolerance + kRelTolerance * std::abs(e))) {  // NaN fails too
            if (first < 0) first = i;
            ++bad;
            worst = std::max(worst, std::isnan(err) ? INFINITY : err);
        }
    }
    if (first < 0) return;
    std::string where = std::to_string(first);
    if (!dims.empty() && product(dims) == actual_size) {
        std::vector<int64_t> idx(dims.size());
        int64_t rest = first;
        for (size_t d = dims.size(); d-- > 0;) {
            idx[d] = rest % dims[d];
            rest /= dims[d];
        }
        where += " " + dims_str(idx);
    }
    std::ostringstream msg;
    msg.precision(9);
    msg << case_name << ": " << tensor << "[" << where << "] = " << actual[first] << ", PyTorch "
        << expected[static_cast<size_t>(first)] << " (" << bad << " of " << actual_size
        << " values differ, largest error " << worst << ", tolerance " << kAbsTolerance << " + "
        << kRelTolerance << "·|expected|)";
    ADD_FAILURE() << msg.str();
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesPyTorch) {
    const std::string name = GetParam();
    const nlohmann::json g = load_case(name);
    const auto in_dims = g.at("input_shape").get<std::vector<int64_t>>();  // N, C, H, W
    ASSERT_EQ(in_dims.size(), 4u) << name;
    const int64_t N = in_dims[0];
    const Shape in{in_dims[2], in_dims[3], in_dims[1]};
    const std::string spec = g.at("spec").get<std::string>();
    const bool training = g.at("training").get<bool>();

    Model model = parse_model("input " + in.str() + "\n" + spec + "\n", name + ".lenz");
    ASSERT_EQ(model.size(), 1) << name;
    Layer& layer = model.layer(0);
    EXPECT_EQ(layer.spec(), spec) << name << ": the layer does not write back its model-file line";

    const auto out_dims = g.at("output_shape").get<std::vector<int64_t>>();
    const Shape out = layer.output_shape();
    ASSERT_EQ(out_dims, (std::vector<int64_t>{N, out.c, out.h, out.w}))
        << name << ": output shape " << out.str() << " per image, PyTorch " << dims_str(out_dims);

    // Parameters: allocate, then overwrite every tensor from the case; the sets of names must agree.
    model.init_params(1);
    layer.allocate_gradients();
    const nlohmann::json& gp = g.at("params");
    std::vector<ParamRef> params = layer.params();
    ASSERT_EQ(params.size(), gp.size())
        << name << ": Lenz has " << params.size() << " parameter tensors, PyTorch " << gp.size();
    for (ParamRef& p : params) {
        ASSERT_TRUE(gp.contains(p.name)) << name << ": no golden values for parameter " << p.name;
        const auto dims = gp.at(p.name).at("dims").get<std::vector<int64_t>>();
        ASSERT_EQ(p.dims, dims) << name << ": " << p.name << " is " << dims_str(p.dims) << " in Lenz, "
                                << dims_str(dims) << " in PyTorch";
        const std::vector<float> v = floats(gp.at(p.name).at("value"));
        ASSERT_EQ(p.value->size(), static_cast<int64_t>(v.size())) << name << ": " << p.name;
        std::copy(v.begin(), v.end(), p.value->data());
        if (p.trainable) {
            ASSERT_NE(p.grad, nullptr) << name << ": " << p.name;
        }
    }
    layer.prepare_training(N);

    const std::vector<float> x = floats(g.at("x"));
    ASSERT_EQ(static_cast<int64_t>(x.size()), N * in.elements()) << name << ": x";
    Pass pass;
    pass.batch = N;
    pass.training = true;
    Buffer workspace(std::max<int64_t>(layer.workspace_floats(pass), 1));
    pass.training = training;
    pass.workspace = workspace.data();
    pass.workspace_capacity = workspace.size();

    Buffer y(N * out.elements());
    layer.forward(x.data(), y.data(), pass);
    expect_close(name, "y", y.data(), floats(g.at("y")), y.size(), out_dims);

    if (g.contains("params_after")) {
        for (const auto& [key, values] : g.at("params_after").items()) {
            const std::string& pname = key;  // clang 14 cannot capture a structured binding
            auto it = std::find_if(params.begin(), params.end(),
                                   [&](const ParamRef& p) { return p.name == pname; });
            ASSERT_NE(it, params.end()) << name << ": no parameter " << pname;
            expect_close(name, pname + " after forward", it->value->data(), floats(values), it->value->size(),
                         it->dims);
        }
    }

    // A case may set "check_backward": false to leave out the backward comparison (none does by default).
    if (!g.value("check_backward", true)) return;

    // Backward: dy is scratch for the layer, so it gets its own copy.
    const std::vector<float> dy_values = floats(g.at("dy"));
    ASSERT_EQ(static_cast<int64_t>(dy_values.size()), y.size()) << name << ": dy";
    Buffer dy(y.size());
    std::copy(dy_values.begin(), dy_values.end(), dy.data());
    Buffer dx(N * in.elements());
    std::fill(dx.data(), dx.data() + dx.size(), NAN);  // every value must be written
    testing::fold_own_activation(layer, y.data(), dy.data(), N);
    layer.backward(x.data(), y.data(), dy.data(), InputGradient::overwriting(dx.data(), in), pass);
    expect_close(name, "dx", dx.data(), floats(g.at("dx")), dx.size(), in_dims);

    const nlohmann::json& grads = g.at("grads");
    int64_t trainable = 0;
    for (ParamRef& p : params) {
        if (!p.trainable) continue;
        ++trainable;
        ASSERT_TRUE(grads.contains(p.name)) << name << ": no golden gradient for " << p.name;
        expect_close(name, "d" + p.name, p.grad->data(), floats(grads.at(p.name)), p.grad->size(), p.dims);
    }
    EXPECT_EQ(trainable, static_cast<int64_t>(grads.size())) << name << ": trainable parameter count";
}

INSTANTIATE_TEST_SUITE_P(PyTorch, Golden, ::testing::ValuesIn(golden_cases()), case_name);

// Guards against a missing or empty fixture directory silently instantiating no cases.
TEST(GoldenFiles, Present) {
    EXPECT_GE(golden_cases().size(), 54u) << "in " << golden_dir();
}

}  // namespace
}  // namespace lenz
