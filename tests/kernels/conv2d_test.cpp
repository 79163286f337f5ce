// The fast convolution against the reference loops, over sweeps of shapes, strides and paddings.
#include "kernels/cpu/conv2d.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "kernels/reference/conv2d.h"
#include "layers/window.h"
#include "lenz/random.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

struct Case {
    int64_t N, C, H, W, OC, KH, KW, SH, SW;
    Padding padding;
    int threads;  // the engine's thread count while the kernel runs
};

std::string describe(const Case& c) {
    std::ostringstream o;
    o << "N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W << " OC=" << c.OC << " K=" << c.KH << "x"
      << c.KW << " S=" << c.SH << "x" << c.SW << " padding=" << c.padding.str() << " threads=" << c.threads;
    return o.str();
}

std::vector<float> random_vector(int64_t n, Rng& rng) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = rng.uniform(-1.0f, 1.0f);
    return v;
}

// Sums of `terms` products in another order differ by rounding that grows like sqrt(terms).
void expect_close(const std::vector<float>& want, const std::vector<float>& got, const std::string& what,
                  const Case& c, int64_t terms) {
    ASSERT_EQ(want.size(), got.size());
    const float slack = 1e-5f * std::sqrt(static_cast<float>(terms));
    for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(want[i], got[i], 1e-4f * (1.0f + std::abs(want[i])) + slack)
            << what << " differs first at index " << i << " for " << describe(c);
}

void check(const Case& c) {
    set_threads(c.threads);
    const ConvGeometry g = resolve_window({c.KH, c.KW, c.SH, c.SW, c.padding}, {c.H, c.W, c.C}, c.OC, "conv");
    Rng rng(42);
    const auto x = random_vector(c.N * c.C * c.H * c.W, rng);
    const auto w = random_vector(c.OC * g.patch(), rng);
    const auto b = random_vector(c.OC, rng);
    const auto dy = random_vector(c.N * c.OC * g.positions(), rng);
    const int64_t y_size = c.N * c.OC * g.positions();

    std::vector<float> y_ref(static_cast<size_t>(y_size)), y_fast(static_cast<size_t>(y_size));
    reference::conv2d_forward(g, c.N, x.data(), w.data(), b.data(), y_ref.data());
    std::vector<float> ws(static_cast<size_t>(std::max(cpu::conv2d_forward_workspace(g, c.N, true, {}),
                                                       cpu::conv2d_backward_workspace(g, c.N, true))));
    cpu::conv2d_forward(g, c.N, x.data(), w.data(), b.data(), {}, y_fast.data(), ws.data());
    expect_close(y_ref, y_fast, "forward", c, g.patch());

    std::vector<float> dx_ref(x.size()), dx_fast(x.size(), 123.0f);
    std::vector<float> dw_ref(w.size()), dw_fast(w.size()), db_ref(b.size()), db_fast(b.size());
    reference::conv2d_backward_data(g, c.N, dy.data(), w.data(), dx_ref.data());
    reference::conv2d_backward_weights(g, c.N, x.data(), dy.data(), dw_ref.data(), db_ref.data());
    const int64_t image = c.C * c.H * c.W;
    cpu::conv2d_backward(
        g, c.N, x.data(), dy.data(), w.data(),
        [&](int64_t n, const float* image_dx) {
            std::copy(image_dx, image_dx + image, dx_fast.data() + n * image);
        },
        dw_fast.data(), db_fast.data(), ws.data());
    expect_close(dx_ref, dx_fast, "dx", c, g.OC * g.KH * g.KW);
    expect_close(dw_ref, dw_fast, "dweight", c, c.N * g.positions());
    expect_close(db_ref, db_fast, "dbias", c, c.N * g.positions());
}

TEST(Conv2dKernel, MatchesReferenceOverSweep) {
    const Padding same{PaddingMode::same}, valid{PaddingMode::valid};
    int cases = 0;
    for (int threads : {1, 2, 3})
        for (int64_t k : {1, 2, 3, 5})
            for (int64_t s : {1, 2, 3})
                for (const Padding& p : {same, valid, Padding{PaddingMode::pixels, 1, 2}})
                    for (int64_t c : {1, 3}) {
                        const int64_t h = 7 + s, w = 6;  // odd and even sizes
                        if (p.mode == PaddingMode::valid && k > std::min(h, w)) continue;
                        check({2, c, h, w, 4, k, k, s, s, p, threads});
                        ++cases;
                    }
    EXPECT_GT(cases, 150);
    set_threads(0);
}

TEST(Conv2dKernel, NonSquareAndLargeImageTiles) {
    // 64x80 with 40 channels makes several im2col tiles per image, so tile edges are exercised.
    check({1, 40, 64, 80, 8, 3, 3, 1, 1, Padding{PaddingMode::same}, 2});
    check({2, 3, 9, 11, 5, 3, 5, 2, 1, Padding{PaddingMode::pixels, 1, 2}, 2});
    check({3, 2, 10, 10, 3, 4, 2, 1, 3, Padding{PaddingMode::same}, 2});
    check(
        {5, 1, 3, 3, 2, 1, 1, 1, 1, Padding{PaddingMode::valid}, 2});  // pointwise, more images than threads
    check({2, 100, 150, 150, 8, 3, 3, 2, 2, Padding{PaddingMode::same}, 2});  // dx one image at a time
    set_threads(0);
}

}  // namespace
}  // namespace lenz
