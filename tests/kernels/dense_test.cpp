// The dense kernel in bf16 against plain loops, held to bf16's rounding bound (see conv2d_test.cpp).
#include "kernels/cpu/dense.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>
#include <vector>

#include "kernels/cpu/activation.h"
#include "lenz/engine.h"
#include "lenz/precision.h"
#include "lenz/random.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

struct Matrices {
    int64_t N, I, U;
    std::vector<float> x, w, b, dy;
};

Matrices random_case(int64_t N, int64_t I, int64_t U) {
    Rng rng(11);
    auto fill = [&](int64_t n) {
        std::vector<float> v(static_cast<size_t>(n));
        for (float& f : v) f = rng.uniform(-1.0f, 1.0f);
        return v;
    };
    return {N, I, U, fill(N * I), fill(U * I), fill(U), fill(N * U)};
}

// Checks got (R, C) against init(c) + Σ_k a(r, k)·b(k, c): within (2u + u²)·Σ|a|·|b| of it
// (u = 2^-8). Returns whether some element is off by more than float32 would be: bf16 really ran.
template <class Init, class A, class B>
bool expect_bf16_product(int64_t R, int64_t C, int64_t K, Init init, A a, B b,
                         const std::vector<float>& got) {
    bool rounded = false;
    for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) {
            double exact = init(c), magnitudes = 0;
            for (int64_t k = 0; k < K; ++k) {
                const double p = double(a(r, k)) * b(k, c);
                exact += p;
                magnitudes += std::abs(p);
            }
            const double error = std::abs(got[static_cast<size_t>(r * C + c)] - exact);
            EXPECT_LE(error, (2.0 / 256 + 1.0 / 65536) * magnitudes + 1e-5 * (1 + magnitudes))
                << "at (" << r << ", " << c << ")";
            rounded = rounded || error > 1e-5 * (1 + magnitudes);
        }
    return rounded;
}

// Inference's packed weights, with or without a bias, with the activation fused (ReLU), applied
// after (SiLU) or after as a whole row (softmax), at batches other than any it was packed for (one
// primitive serves every batch): the float32 product that sgemm gives, up to the order of the sums.
TEST(DenseKernel, PackedWeightsGiveTheSgemmProduct) {
    for (auto [I, U] : {std::tuple{50, 7}, std::tuple{3136, 128}, std::tuple{9, 1}})
        for (const ActivationSpec act : {ActivationSpec{Activation::relu}, ActivationSpec{Activation::silu},
                                         ActivationSpec{Activation::softmax}})
            for (bool bias : {true, false}) {
                const Matrices m = random_case(64, I, U);
                const float* b = bias ? m.b.data() : nullptr;
                std::vector<float> packed(static_cast<size_t>(cpu::dense_packed_floats(I, U, bias, act)));
                cpu::dense_pack_weights(I, U, bias, act, m.w.data(), packed.data());
                std::vector<float> ws(static_cast<size_t>(cpu::dense_packed_workspace(I, U, bias, act)) + 1);
                for (int64_t N : {1, 5, 64}) {
                    std::vector<float> want(static_cast<size_t>(N * U)), got(want.size(), 99.0f);
                    cpu::dense_forward(N, I, U, m.x.data(), m.w.data(), b, act, want.data());
                    cpu::dense_packed_forward(N, I, U, m.x.data(), packed.data(), b, act, got.data(),
                                              ws.data());
                    for (size_t k = 0; k < want.size(); ++k)
                        ASSERT_NEAR(got[k], want[k],
                                    1e-5f * std::sqrt(static_cast<float>(I)) * (1.0f + std::abs(want[k])))
                            << "I=" << I << " U=" << U << " N=" << N << " " << act.str() << " bias " << bias
                            << " at " << k;
                }
            }
}

// The row-by-row product of small runners, against sums in double: every image count up to two
// passes of kRowMajorImages, unit counts around its four-row blocks and 64-unit thread blocks,
// inputs around its 16-lane steps; with the bias and each way an activation is applied. The same
// floats at one thread and at two.
TEST(DenseKernel, RowMajorWeightsGiveTheProductAtEveryThreadCount) {
    for (auto [I, U] : {std::tuple{1, 1}, std::tuple{15, 3}, std::tuple{16, 4}, std::tuple{17, 5},
                        std::tuple{100, 67}, std::tuple{3136, 130}})
        for (const ActivationSpec act :
             {ActivationSpec{}, ActivationSpec{Activation::relu}, ActivationSpec{Activation::softmax}})
            for (bool bias : {true, false})
                for (int64_t N = 1; N <= 2 * cpu::kRowMajorImages + 1; ++N) {
                    const Matrices m = random_case(N, I, U);
                    std::vector<float> want(static_cast<size_t>(N * U));
                    for (int64_t n = 0; n < N; ++n)
                        for (int64_t u = 0; u < U; ++u) {
                            double sum = bias ? m.b[static_cast<size_t>(u)] : 0.0;
                            for (int64_t i = 0; i < I; ++i)
                                sum += double{m.w[static_cast<size_t>(u * I + i)]} *
                                       m.x[static_cast<size_t>(n * I + i)];
                            want[static_cast<size_t>(n * U + u)] = static_cast<float>(sum);
                        }
                    cpu::apply_activation(act, want.data(), N, U, 1);
                    std::vector<float> one(want.size(), 99.0f), two(want.size(), 98.0f);
                    set_threads(1);
                    cpu::dense_rows_forward(N, I, U, m.x.data(), m.w.data(), bias ? m.b.data() : nullptr, act,
                                            one.data());
                    set_threads(2);
                    cpu::dense_rows_forward(N, I, U, m.x.data(), m.w.data(), bias ? m.b.data() : nullptr, act,
                                            two.data());
                    set_threads(0);
                    ASSERT_EQ(one, two) << "I=" << I << " U=" << U << " N=" << N;
                    for (size_t k = 0; k < want.size(); ++k)
                        ASSERT_NEAR(one[k], want[k],
                                    1e-6f * std::sqrt(static_cast<float>(I)) * (1.0f + std::abs(want[k])))
                            << "I=" << I << " U=" << U << " N=" << N << " " << act.str() << " bias " << bias
                            << " at " << k;
                }
}

TEST(DenseKernel, Bf16KeepsToItsRoundingBound) {
    if (!cpu_supports(Precision::bf16))
        GTEST_SKIP() << "no bf16 on this CPU (the refusal is tested with conv)";
    for (auto [N, I, U] : {std::tuple{3, 50, 7}, std::tuple{64, 3136, 128}, std::tuple{1, 9, 1}}) {
        const Matrices m = random_case(N, I, U);
        std::vector<float> ws(static_cast<size_t>(cpu::dense_workspace(N, I, U, true, Precision::bf16)));
        std::vector<float> y(static_cast<size_t>(N * U));
        cpu::dense_forward(N, I, U, m.x.data(), m.w.data(), m.b.data(), {}, y.data(), ws.data(),
                           Precision::bf16);
        const auto at = [](const std::vector<float>& v, int64_t cols) {
            return [&v, cols](int64_t r, int64_t c) { return v[static_cast<size_t>(r * cols + c)]; };
        };
        const auto transposed = [](auto f) { return [f](int64_t r, int64_t c) { return f(c, r); }; };
        const auto bias = [&](int64_t u) { return double(m.b[static_cast<size_t>(u)]); };
        // y = x · w^T + b
        EXPECT_TRUE(expect_bf16_product(N, U, I, bias, at(m.x, I), transposed(at(m.w, I)), y) || N * I < 100);

        // dw accumulates onto what it holds; dx overwrites; db is summed in float32.
        std::vector<float> dw(m.w.size(), 0.5f), db(m.b.size(), 0.25f), dx(m.x.size(), 99.0f);
        cpu::dense_backward(N, I, U, m.x.data(), m.dy.data(), m.w.data(), dx.data(), dw.data(), db.data(),
                            ws.data(), Precision::bf16);
        for (int64_t u = 0; u < U; ++u) {
            double db_exact = 0.25;
            for (int64_t n = 0; n < N; ++n) db_exact += m.dy[static_cast<size_t>(n * U + u)];
            EXPECT_NEAR(db[static_cast<size_t>(u)], db_exact, 1e-4);
        }
        const auto zero = [](int64_t) { return 0.0; };
        bool rounded = expect_bf16_product(
            U, I, N, [](int64_t) { return 0.5; }, transposed(at(m.dy, U)), at(m.x, I), dw);    // dy^T · x
        rounded = expect_bf16_product(N, I, U, zero, at(m.dy, U), at(m.w, I), dx) || rounded;  // dy · w
        EXPECT_TRUE(rounded || N * I < 100) << N << "x" << I << "x" << U;
    }
}

// int8: the product of x and w rounded as the kernel rounds them, exactly, scaled back (as for the
// convolution in conv2d_test.cpp), with the bias and a ReLU; u8 and s8 inputs.
TEST(DenseKernel, Int8IsTheProductOfTheRoundedOperands) {
    for (auto [N, I, U, is_unsigned] :
         {std::tuple{3, 50, 7, true}, std::tuple{64, 3136, 128, false}, std::tuple{1, 9, 1, false}}) {
        Matrices m = random_case(N, I, U);
        if (is_unsigned)
            for (float& v : m.x) v = std::abs(v);
        const Int8Quant in = int8_quant(is_unsigned ? 0.0f : -1.0f, 1.0f);
        std::vector<float> prepared(static_cast<size_t>(cpu::dense_int8_prepared_floats(I, U)));
        cpu::dense_int8_prepare(I, U, in, m.w.data(), m.b.data(), prepared.data());
        std::vector<float> ws(static_cast<size_t>(cpu::dense_int8_workspace(N, I, U, is_unsigned))),
            y(static_cast<size_t>(N * U));
        cpu::dense_int8_forward(N, I, U, m.x.data(), {Activation::relu}, y.data(), ws.data(),
                                {in, false, std::nullopt}, prepared.data());

        std::vector<float> scales(static_cast<size_t>(U));
        std::vector<int8_t> q(m.w.size());
        cpu::int8_row_scales(m.w.data(), U, I, scales.data(), cpu::int8_weight_levels());
        cpu::quantize_rows(m.w.data(), U, I, scales.data(), q.data());
        const bool halved = !is_unsigned && cpu::int8_weight_levels() < 127;  // see conv2d_test.cpp
        for (int64_t n = 0; n < N; ++n)
            for (int64_t u = 0; u < U; ++u) {
                double exact = m.b[static_cast<size_t>(u)], magnitudes = 0, inputs = 0;
                for (int64_t i = 0; i < I; ++i) {
                    const double x =
                        std::clamp<double>(std::nearbyint(m.x[static_cast<size_t>(n * I + i)] / in.scale),
                                           is_unsigned ? 0.0 : -128.0, is_unsigned ? 255.0 : 127.0) *
                        in.scale;
                    const double w =
                        q[static_cast<size_t>(u * I + i)] * double(scales[static_cast<size_t>(u)]);
                    exact += x * w;
                    magnitudes += std::abs(x * w);
                    inputs += std::abs(x);
                }
                const double bound =
                    1e-5 * (1 + magnitudes) + (halved ? scales[static_cast<size_t>(u)] * inputs : 0);
                EXPECT_NEAR(y[static_cast<size_t>(n * U + u)], std::max(exact, 0.0), bound)
                    << "at (" << n << ", " << u << ") of " << N << "x" << I << "x" << U;
            }
    }
}

}  // namespace
}  // namespace lenz
