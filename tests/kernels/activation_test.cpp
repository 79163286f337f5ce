// The element-wise activations built on exp_approx against exp in double precision.
#include "kernels/cpu/activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/exp_approx.h"

namespace lenz {
namespace {

double relative_error(double got, double want) {
    return std::abs(got - want) / std::max(std::abs(want), 1e-300);
}

TEST(ExpApprox, WithinATenthOfAMillionthOfExpOverItsRange) {
    double worst = 0.0;
    for (double x = -87.0; x <= 88.0; x += 1e-4) {
        const auto xf = static_cast<float>(x);
        worst = std::max(worst, relative_error(cpu::exp_approx(xf), std::exp(static_cast<double>(xf))));
    }
    EXPECT_LT(worst, 1.5e-7);
    EXPECT_EQ(cpu::exp_approx(0.0f), 1.0f);
    // Outside the range it is clamped, finite and positive; NaN stays NaN.
    EXPECT_EQ(cpu::exp_approx(-1000.0f), cpu::exp_approx(-87.0f));
    EXPECT_EQ(cpu::exp_approx(1000.0f), cpu::exp_approx(88.0f));
    EXPECT_TRUE(std::isfinite(cpu::exp_approx(std::numeric_limits<float>::infinity())));
    EXPECT_TRUE(std::isnan(cpu::exp_approx(std::numeric_limits<float>::quiet_NaN())));
}

// Sizes below and above the threaded path, and with a ragged end for the vector loops.
TEST(Activation, SiluAndSigmoidMatchExpInDouble) {
    for (int64_t n : {1, 17, 100003}) {
        std::vector<float> x(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
            x[static_cast<size_t>(i)] = -40.0f + 80.0f * static_cast<float>(i) / static_cast<float>(n);
        std::vector<float> silu = x, sigmoid = x, dx(x.size());
        const std::vector<float> dy(x.size(), 0.5f);
        cpu::activation_forward({Activation::silu}, silu.data(), n);
        cpu::activation_forward({Activation::sigmoid}, sigmoid.data(), n);
        cpu::activation_backward_from_input({Activation::silu}, x.data(), dy.data(), dx.data(), n);
        for (size_t i = 0; i < x.size(); ++i) {
            const double v = x[i], s = 1.0 / (1.0 + std::exp(-v));
            ASSERT_LT(relative_error(sigmoid[i], s), 5e-7) << "sigmoid(" << v << ")";
            ASSERT_LT(relative_error(silu[i], v * s), 5e-7) << "silu(" << v << ")";
            const double slope = 0.5 * s * (1.0 + v * (1.0 - s));
            // Near its zero (x = -1.28) the slope is a difference of terms of s's size.
            ASSERT_NEAR(dx[i], slope, 1e-6 * s * (1.0 + std::abs(v))) << "silu'(" << v << ")";
        }
    }
}

}  // namespace
}  // namespace lenz
