// The fast convolution against the reference loops, over sweeps of shapes, strides and paddings.
#include "kernels/cpu/conv2d.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <vector>

#include "kernels/cpu/conv2d_int8.h"
#include "kernels/cpu/vector_isa.h"
#include "kernels/reference/conv2d.h"
#include "layers/window.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/precision.h"
#include "lenz/random.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

struct Case {
    int64_t N, C, H, W, OC, KH, KW, SH, SW;
    Padding padding;
    int threads;           // the engine's thread count while the kernel runs
    Layouts layouts{};     // how x/dx and y/dy are held
    int64_t G = 1, D = 1;  // groups, dilation (both axes)
};

const char* name_of(Layout l) {
    return l == Layout::nhwc ? "nhwc" : "nchw";
}

std::string describe(const Case& c) {
    std::ostringstream o;
    o << "N=" << c.N << " C=" << c.C << " H=" << c.H << " W=" << c.W << " OC=" << c.OC << " K=" << c.KH << "x"
      << c.KW << " S=" << c.SH << "x" << c.SW << " padding=" << c.padding.str() << " threads=" << c.threads
      << " layouts=" << name_of(c.layouts.input) << "->" << name_of(c.layouts.output) << " groups=" << c.G
      << " dilation=" << c.D;
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

// (N, C, P) <-> (N, P, C), P positions: the reference works on (N, C, H, W).
std::vector<float> transposed(const std::vector<float>& v, int64_t N, int64_t rows, int64_t cols) {
    std::vector<float> t(v.size());
    for (int64_t n = 0; n < N; ++n)
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t k = 0; k < cols; ++k)
                t[static_cast<size_t>((n * cols + k) * rows + r)] =
                    v[static_cast<size_t>((n * rows + r) * cols + k)];
    return t;
}
std::vector<float> as_held(const std::vector<float>& nchw, Layout l, int64_t N, int64_t C, int64_t P) {
    return l == Layout::nhwc ? transposed(nchw, N, C, P) : nchw;
}
std::vector<float> as_nchw(const std::vector<float>& held, Layout l, int64_t N, int64_t C, int64_t P) {
    return l == Layout::nhwc ? transposed(held, N, P, C) : held;
}

// The whole of a workspace vector, for a kernel call.
cpu::Workspace all_of(std::vector<float>& ws) {
    return {ws.data(), static_cast<int64_t>(ws.size())};
}

// A case's geometry and random operands, in (N, C, H, W).
struct Operands {
    ConvGeometry g;
    std::vector<float> x, w, b, dy;
};
Operands operands_for(const Case& c, uint64_t seed) {
    ConvGeometry g =
        resolve_window({c.KH, c.KW, c.SH, c.SW, c.padding, false, c.D, c.D}, {c.H, c.W, c.C}, c.OC, "conv");
    g.G = c.G;
    Rng rng(seed);
    auto x = random_vector(c.N * c.C * c.H * c.W, rng);
    auto w = random_vector(c.OC * g.patch(), rng);
    auto b = random_vector(c.OC, rng);
    auto dy = random_vector(c.N * c.OC * g.positions(), rng);
    return {g, std::move(x), std::move(w), std::move(b), std::move(dy)};
}

// `given`: the floats of workspace the kernels are told they have (by default all they need);
// what lies past them must stay untouched.
void check(const Case& c, int64_t given = -1) {
    set_threads(c.threads);
    const auto [g, x, w, b, dy] = operands_for(c, 42);
    const int64_t y_size = c.N * c.OC * g.positions();

    std::vector<float> y_ref(static_cast<size_t>(y_size)), y_fast(static_cast<size_t>(y_size));
    reference::conv2d_forward(g, c.N, x.data(), w.data(), b.data(), y_ref.data());
    const int64_t needed = std::max(cpu::conv2d_forward_workspace(g, c.N, true, {}, c.layouts),
                                    cpu::conv2d_backward_workspace(g, c.N, true, c.layouts));
    ASSERT_LT(given, needed) << "a smaller workspace than needed, or none said";
    constexpr float kUntouched = -12345.0f;
    std::vector<float> ws(static_cast<size_t>(needed), kUntouched);
    const cpu::Workspace workspace{ws.data(), given < 0 ? needed : given};
    const int64_t in_positions = c.H * c.W, out_positions = g.positions();
    const auto x_held = as_held(x, c.layouts.input, c.N, c.C, in_positions);
    const auto dy_held = as_held(dy, c.layouts.output, c.N, c.OC, out_positions);
    cpu::conv2d_forward(g, c.N, x_held.data(), w.data(), b.data(), {}, y_fast.data(), workspace, c.layouts);
    expect_close(y_ref, as_nchw(y_fast, c.layouts.output, c.N, c.OC, out_positions), "forward", c, g.patch());

    std::vector<float> dx_ref(x.size()), dx_fast(x.size(), 123.0f);
    std::vector<float> dw_ref(w.size()), dw_fast(w.size()), db_ref(b.size()), db_fast(b.size());
    reference::conv2d_backward_data(g, c.N, dy.data(), w.data(), dx_ref.data());
    reference::conv2d_backward_weights(g, c.N, x.data(), dy.data(), dw_ref.data(), db_ref.data());
    const int64_t image = c.C * c.H * c.W;
    cpu::conv2d_backward(
        g, c.N, x_held.data(), dy_held.data(), w.data(),
        [&](int64_t n, const float* image_dx) {
            std::copy(image_dx, image_dx + image, dx_fast.data() + n * image);
        },
        dw_fast.data(), db_fast.data(), workspace, c.layouts);
    expect_close(dx_ref, as_nchw(dx_fast, c.layouts.input, c.N, c.C, in_positions), "dx", c,
                 g.OC / g.G * g.KH * g.KW);
    expect_close(dw_ref, dw_fast, "dweight", c, c.N * g.positions());
    expect_close(db_ref, db_fast, "dbias", c, c.N * g.positions());
    for (size_t i = static_cast<size_t>(workspace.floats); i < ws.size(); ++i)
        ASSERT_EQ(ws[i], kUntouched) << "written past the workspace given, at " << i << " for "
                                     << describe(c);
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

// Between two convolutions the engine holds activations channels-last; every side may be either.
TEST(Conv2dKernel, ChannelsLastOnEitherSideMatchesReference) {
    const Padding same{PaddingMode::same}, valid{PaddingMode::valid};
    const Layout nchw = Layout::nchw, nhwc = Layout::nhwc;
    int cases = 0;
    for (Layouts layouts : {Layouts{nhwc, nhwc}, Layouts{nchw, nhwc}, Layouts{nhwc, nchw}})
        for (int threads : {1, 2})
            for (int64_t k : {1, 3})
                for (int64_t s : {1, 2})
                    for (const Padding& p : {same, valid})
                        for (int64_t c : {1, 3, 20}) {
                            check({2, c, 7 + s, 6, 5, k, k, s, s, p, threads, layouts});
                            ++cases;
                        }
    EXPECT_EQ(cases, 144);
    // Chunks of several images, and the seed model's first two layers at a smaller size.
    check({40, 24, 12, 12, 16, 3, 3, 1, 1, same, 2, {nhwc, nhwc}});
    check({2, 3, 40, 60, 100, 3, 3, 2, 2, same, 2, {nchw, nhwc}});
    check({2, 100, 20, 30, 200, 3, 3, 2, 2, same, 2, {nhwc, nhwc}});
    set_threads(0);
}

// A call is bound to its pointers (src/kernels/cpu/conv2d.cpp): called again on the same buffers,
// it must read what they hold now, as training does with weights that change every step.
TEST(Conv2dKernel, ACallOnTheSameBuffersReadsWhatTheyHoldNow) {
    const Layout nchw = Layout::nchw, nhwc = Layout::nhwc;
    const Padding same{PaddingMode::same};
    // Small images in one chunk, whose call is kept bound; and six chunks of one big image each,
    // bound anew at every call.
    for (const Case& c : {Case{3, 20, 9, 9, 24, 3, 3, 1, 1, same, 2, {nchw, nchw}},
                          Case{3, 20, 9, 9, 24, 3, 3, 1, 1, same, 2, {nhwc, nhwc}},
                          Case{6, 16, 370, 370, 2, 3, 3, 1, 1, same, 2, {nhwc, nhwc}}}) {
        const Layouts layouts = c.layouts;
        set_threads(c.threads);
        auto [g, x, w, b, dy] = operands_for(c, 11);
        std::vector<float> y(static_cast<size_t>(c.N * c.OC * g.positions())), y_ref(y.size());
        std::vector<float> ws(static_cast<size_t>(cpu::conv2d_forward_workspace(g, c.N, true, {}, layouts)));
        std::vector<float> x_held = as_held(x, layouts.input, c.N, c.C, c.H * c.W);
        const float* const x_buffer = x_held.data();
        for (int call = 0; call < 3; ++call) {
            cpu::conv2d_forward(g, c.N, x_held.data(), w.data(), b.data(), {}, y.data(), all_of(ws), layouts);
            reference::conv2d_forward(g, c.N, x.data(), w.data(), b.data(), y_ref.data());
            expect_close(y_ref, as_nchw(y, layouts.output, c.N, c.OC, g.positions()),
                         "call " + std::to_string(call), c, g.patch());
            // New values in the same buffers, as an optimizer step and the next batch leave them.
            for (float& v : w) v = -0.5f * v + 0.01f;
            for (float& v : b) v += 0.25f;
            for (float& v : x) v = v * v - 0.3f;
            const std::vector<float> next = as_held(x, layouts.input, c.N, c.C, c.H * c.W);
            std::copy(next.begin(), next.end(), x_held.begin());
            ASSERT_EQ(x_held.data(), x_buffer);
        }
    }
    set_threads(0);
}

// Inference with prepared weights runs a 3x3 convolution of stride 1 by Winograd's algorithm where
// oneDNN has it (AVX-512): F(2x2, 3x3) by default on 256 channels (here a 7x7 map), either tile with
// LENZ_WINOGRAD=1 (here 32 -> 48 channels on a 28x28 map). Its weights then take a layout larger
// than their own. Its output is the reference convolution's, to Winograd's rounding, in both
// layouts, with a residual added and with a batch norm folded in, on the batch the weights were
// prepared for and on a smaller one, whose primitive wants another layout of the weights: the folded
// ones come from the plain copy kept after them. On a 14x14 map oneDNN has F(2x2, 3x3) for one
// image only, so the weights prepared for two are the direct kernel's, and one image is Winograd's.
TEST(Conv2dKernel, WinogradAtInferenceGivesTheReferenceConvolution) {
    struct Setting {
        const char* lenz_winograd;
        Case c;
        bool prepared_by_winograd;  // or directly, as oneDNN has no F(2x2, 3x3) kernel for the batch
    };
    const Padding same{PaddingMode::same};
    for (const Layout layout : {Layout::nhwc, Layout::nchw})
        for (const Setting& setting :
             {Setting{"1", {3, 32, 28, 28, 48, 3, 3, 1, 1, same, 2, {layout, layout}}, true},
              Setting{nullptr, {2, 256, 7, 7, 256, 3, 3, 1, 1, same, 2, {layout, layout}}, true},
              Setting{nullptr, {2, 256, 14, 14, 256, 3, 3, 1, 1, same, 2, {layout, layout}}, false}}) {
            const Case& c = setting.c;
            auto [g, x, w, b, dy] = operands_for(c, 5);
            std::vector<std::vector<float>> convolved;  // the reference, for c.N images and for one
            for (const int64_t N : {c.N, int64_t{1}}) {
                convolved.emplace_back(static_cast<size_t>(N * c.OC * g.positions()));
                reference::conv2d_forward(g, N, x.data(), w.data(), b.data(), convolved.back().data());
            }
            for (const bool folded : {false, true})
                for (const bool residual : {false, true}) {
                    if (setting.lenz_winograd) ::setenv("LENZ_WINOGRAD", setting.lenz_winograd, 1);
                    set_threads(c.threads);
                    std::vector<float> scale(static_cast<size_t>(c.OC)), shift(scale.size());
                    for (int64_t k = 0; k < c.OC; ++k) {
                        scale[static_cast<size_t>(k)] = 0.5f + 0.03f * static_cast<float>(k % 50);
                        shift[static_cast<size_t>(k)] = 0.1f * static_cast<float>(k % 7) - 0.3f;
                    }
                    const ActivationSpec relu{Activation::relu};
                    const int64_t prepared_floats = cpu::conv2d_prepared_floats(
                        g, c.N, true, relu, c.layouts, Precision::f32, folded, residual);
                    if (cpu::vector_isa() == cpu::VectorIsa::avx512 && setting.prepared_by_winograd) {
                        EXPECT_GT(prepared_floats, c.OC * g.patch()) << "Winograd's weights";
                    }
                    std::vector<float> prepared(static_cast<size_t>(prepared_floats));
                    cpu::conv2d_prepare_weights(g, c.N, true, relu, c.layouts, Precision::f32, w.data(),
                                                b.data(), folded ? scale.data() : nullptr,
                                                folded ? shift.data() : nullptr, prepared.data(), residual);
                    std::vector<float> ws(static_cast<size_t>(cpu::conv2d_forward_workspace(
                        g, c.N, true, relu, c.layouts, Precision::f32, folded, residual, true)));
                    for (const int64_t N : {c.N, int64_t{1}}) {
                        const int64_t P = g.positions();
                        std::vector<float> want = convolved[N == c.N ? 0 : 1], start(want.size());
                        for (size_t i = 0; i < want.size(); ++i)
                            start[i] = 0.01f * static_cast<float>(i % 29) - 0.1f;
                        for (size_t i = 0; i < want.size(); ++i) {
                            const size_t k = i / static_cast<size_t>(P) % static_cast<size_t>(c.OC);
                            float v = folded ? want[i] * scale[k] + shift[k] : want[i];
                            if (residual) v += start[i];
                            want[i] = std::max(v, 0.0f);
                        }
                        std::vector<float> y = as_held(start, layout, N, c.OC, P);
                        cpu::conv2d_forward(g, N, as_held(x, layout, N, c.C, c.H * c.W).data(), w.data(),
                                            b.data(), relu, y.data(), all_of(ws), c.layouts, Precision::f32,
                                            {prepared.data(), c.N, folded}, residual);
                        expect_close(want, as_nchw(y, layout, N, c.OC, P), "winograd", c, g.patch());
                    }
                    ::unsetenv("LENZ_WINOGRAD");
                }
        }
    set_threads(0);
}

// Which convolutions run by Winograd at inference: by default those of 256 channels or more on each
// side, with LENZ_WINOGRAD=1 also smaller ones on large maps, with LENZ_WINOGRAD=0 none. The direct
// kernel's weights keep their size. Any other setting is an error that names it.
TEST(Conv2dKernel, LenzWinogradChoosesWhichConvolutionsUseWinograd) {
    const auto geometry = [](int64_t C, int64_t HW) {
        const Case c{
            1, C, HW, HW, C, 3, 3, 1, 1, Padding{PaddingMode::same}, 2, {Layout::nhwc, Layout::nhwc}};
        return operands_for(c, 1).g;
    };
    const ConvGeometry small = geometry(32, 28), wide = geometry(256, 7);
    const auto winograd = [](const ConvGeometry& g) {
        return cpu::conv2d_prepared_floats(g, 1, true, {}, {Layout::nhwc, Layout::nhwc}, Precision::f32,
                                           false) > g.OC * g.patch();
    };
    const bool avx512 = cpu::vector_isa() == cpu::VectorIsa::avx512;
    EXPECT_FALSE(winograd(small));
    EXPECT_EQ(winograd(wide), avx512);
    ::setenv("LENZ_WINOGRAD", "1", 1);
    EXPECT_EQ(winograd(small), avx512);
    EXPECT_EQ(winograd(wide), avx512);
    ::setenv("LENZ_WINOGRAD", "0", 1);
    EXPECT_FALSE(winograd(small));
    EXPECT_FALSE(winograd(wide));
    ::setenv("LENZ_WINOGRAD", "yes", 1);
    try {
        winograd(wide);
        ADD_FAILURE() << "LENZ_WINOGRAD=yes was taken";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("LENZ_WINOGRAD is 'yes'"), std::string::npos) << e.what();
    }
    ::unsetenv("LENZ_WINOGRAD");
}

// A call given less workspace than it needs (a caller that planned for another batch) computes the
// same and writes nothing past what it was given: it works in memory of its own.
TEST(Conv2dKernel, ACallGivenTooLittleWorkspaceWritesNothingPastIt) {
    const int64_t shortfalls = cpu::workspace_shortfalls();
    check({3, 20, 9, 9, 24, 3, 3, 1, 1, Padding{PaddingMode::same}, 2, {Layout::nchw, Layout::nchw}}, 16);
    EXPECT_EQ(cpu::workspace_shortfalls(), shortfalls + 2);  // the forward and the backward call
    set_threads(0);
}

// Plain on both sides, with so much channel padding that the forward pass runs channels-last
// inside and reorders on both sides.
// SiLU and sigmoid are applied by Lenz to each chunk of images once oneDNN has written it
// (applied_after), the others by oneDNN as post-ops: either way the output is the activated
// reference convolution, in each layout, over two chunks of images (8 and a short 2).
TEST(Conv2dKernel, FusedActivationsActivateTheReferenceConvolution) {
    const Layout nchw = Layout::nchw, nhwc = Layout::nhwc;
    for (Layouts layouts : {Layouts{nchw, nchw}, Layouts{nhwc, nhwc}, Layouts{nchw, nhwc}}) {
        const Case c{10, 16, 128, 128, 8, 3, 3, 1, 1, Padding{PaddingMode::same}, 2, layouts};
        set_threads(c.threads);
        const auto [g, x, w, b, dy] = operands_for(c, 7);
        std::vector<float> y_ref(static_cast<size_t>(c.N * c.OC * g.positions()));
        reference::conv2d_forward(g, c.N, x.data(), w.data(), b.data(), y_ref.data());
        const auto x_held = as_held(x, layouts.input, c.N, c.C, c.H * c.W);
        for (const ActivationSpec act :
             {ActivationSpec{Activation::silu}, ActivationSpec{Activation::sigmoid},
              ActivationSpec{Activation::relu6}}) {
            std::vector<float> want(y_ref.size()), y(y_ref.size());
            for (size_t i = 0; i < want.size(); ++i) {
                const double v = y_ref[i], s = 1.0 / (1.0 + std::exp(-v));
                want[i] = static_cast<float>(act.kind == Activation::silu      ? v * s
                                             : act.kind == Activation::sigmoid ? s
                                                                               : std::clamp(v, 0.0, 6.0));
            }
            std::vector<float> ws(
                static_cast<size_t>(cpu::conv2d_forward_workspace(g, c.N, true, act, layouts)));
            cpu::conv2d_forward(g, c.N, x_held.data(), w.data(), b.data(), act, y.data(), all_of(ws),
                                layouts);
            expect_close(want, as_nchw(y, layouts.output, c.N, c.OC, g.positions()), act.str(), c, g.patch());
        }
    }
    set_threads(0);
}

TEST(Conv2dKernel, ChannelPaddedLayersMatchReference) {
    check({3, 100, 20, 30, 200, 3, 3, 2, 2, Padding{PaddingMode::same}, 2});
    check({2, 20, 9, 9, 7, 3, 3, 1, 1, Padding{PaddingMode::valid}, 1});
    set_threads(0);
}

// Grouped, depthwise (groups = channels, with one or two filters per channel) and dilated
// convolutions, in both layouts: what MobileNet, ShuffleNet and DeepLab-style layers are made of.
TEST(Conv2dKernel, GroupedDepthwiseAndDilatedMatchReference) {
    const Padding same{PaddingMode::same}, valid{PaddingMode::valid};
    const Layout nchw = Layout::nchw, nhwc = Layout::nhwc;
    struct Groups {
        int64_t C, OC, G;
    };
    int cases = 0;
    for (Groups grouping :
         {Groups{4, 6, 2}, Groups{6, 6, 6}, Groups{8, 16, 8}, Groups{24, 24, 24}, Groups{4, 4, 1}})
        for (int64_t d : {1, 2})
            for (int64_t k : {1, 3})
                for (int64_t s : {1, 2})
                    for (const Padding& p : {same, valid})
                        for (Layouts layouts : {Layouts{nchw, nchw}, Layouts{nhwc, nhwc}}) {
                            if (grouping.G == 1 && d == 1) continue;  // the sweeps above
                            check(
                                {2, grouping.C, 9, 8, grouping.OC, k, k, s, s, p, 2, layouts, grouping.G, d});
                            ++cases;
                        }
    EXPECT_EQ(cases, 144);
    check({3, 32, 16, 16, 32, 3, 3, 1, 1, same, 1, {nhwc, nhwc}, 32, 1});  // MobileNet's depthwise 3x3
    check({2, 6, 11, 7, 6, 3, 2, 1, 2, Padding{PaddingMode::pixels, 2, 1}, 2, {}, 3, 3});
    set_threads(0);
}

// bf16 rounds each input and weight to 8 significant bits (unit roundoff u = 2^-8), so a product
// x·w is off by at most (2u + u²)|x·w|, and float32 accumulation adds far less. Each output of a
// bf16 convolution is therefore within (2u + u²)·Σ|x|·|w| of the exact sum: that bound, computed
// by the reference loops on |x| and |w|, is what each element is held to (dx and dw alike).
void check_bf16(const Case& c) {
    set_threads(c.threads);
    const auto [g, x, w, b, dy] = operands_for(c, 7);
    auto magnitudes = [](std::vector<float> v) {
        for (float& f : v) f = std::abs(f);
        return v;
    };
    const auto ax = magnitudes(x), aw = magnitudes(w), ady = magnitudes(dy);
    const float rounding = 2.0f / 256 + 1.0f / 65536, f32_slack = 1e-5f;
    auto expect_within = [&](const std::vector<float>& want, const std::vector<float>& got,
                             const std::vector<float>& magnitude_sums, const char* what, bool bf16 = true) {
        float largest_error = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            const float error = std::abs(want[i] - got[i]);
            ASSERT_LE(error, rounding * magnitude_sums[i] + f32_slack * (1 + magnitude_sums[i]))
                << what << " beyond bf16's bound at index " << i << " for " << describe(c);
            largest_error = std::max(largest_error, error / (1 + magnitude_sums[i]));
        }
        // float32 would be within 1e-6 here: a larger error shows the bf16 kernels really ran.
        if (bf16) {
            EXPECT_GT(largest_error, 1e-5f) << what << " for " << describe(c);
        } else {
            EXPECT_LT(largest_error, 1e-5f) << what << " in float32 for " << describe(c);
        }
    };

    const int64_t y_size = c.N * c.OC * g.positions(), in_positions = c.H * c.W;
    std::vector<float> y_ref(static_cast<size_t>(y_size)), y_bound(y_ref.size()), y_bf16(y_ref.size());
    std::vector<float> zero_bias(b.size(), 0.0f);
    reference::conv2d_forward(g, c.N, x.data(), w.data(), b.data(), y_ref.data());
    reference::conv2d_forward(g, c.N, ax.data(), aw.data(), zero_bias.data(), y_bound.data());
    std::vector<float> ws(static_cast<size_t>(
        std::max(cpu::conv2d_forward_workspace(g, c.N, true, {}, c.layouts, Precision::bf16),
                 cpu::conv2d_backward_workspace(g, c.N, true, c.layouts, Precision::bf16))));
    const auto x_held = as_held(x, c.layouts.input, c.N, c.C, in_positions);
    const auto dy_held = as_held(dy, c.layouts.output, c.N, c.OC, g.positions());
    cpu::conv2d_forward(g, c.N, x_held.data(), w.data(), b.data(), {}, y_bf16.data(), all_of(ws), c.layouts,
                        Precision::bf16);
    expect_within(y_ref, as_nchw(y_bf16, c.layouts.output, c.N, c.OC, g.positions()), y_bound, "forward");

    std::vector<float> dx_ref(x.size()), dx_bound(x.size()), dx_bf16(x.size());
    std::vector<float> dw_ref(w.size()), dw_bound(w.size()), dw_bf16(w.size());
    std::vector<float> db_ref(b.size()), db_bound(b.size()), db_bf16(b.size());
    reference::conv2d_backward_data(g, c.N, dy.data(), w.data(), dx_ref.data());
    reference::conv2d_backward_data(g, c.N, ady.data(), aw.data(), dx_bound.data());
    reference::conv2d_backward_weights(g, c.N, x.data(), dy.data(), dw_ref.data(), db_ref.data());
    reference::conv2d_backward_weights(g, c.N, ax.data(), ady.data(), dw_bound.data(), db_bound.data());
    const int64_t image = c.C * c.H * c.W;
    cpu::conv2d_backward(
        g, c.N, x_held.data(), dy_held.data(), w.data(),
        [&](int64_t n, const float* image_dx) {
            std::copy(image_dx, image_dx + image, dx_bf16.data() + n * image);
        },
        dw_bf16.data(), db_bf16.data(), all_of(ws), c.layouts, Precision::bf16);
    expect_within(dx_ref, as_nchw(dx_bf16, c.layouts.input, c.N, c.C, in_positions), dx_bound, "dx");
    // A layer of fewer than 16 input channels computes its weight gradient in float32 (conv2d.cpp).
    expect_within(dw_ref, dw_bf16, dw_bound, "dweight", c.C >= 16);
}

// Where the CPU has bf16 (AVX512-BF16 or AMX), every layout, grouping and chunking case keeps to
// the rounding bound; where it has not (or DNNL_MAX_CPU_ISA holds oneDNN below it, as the
// kernels_at_* tests do), asking for bf16 is one line that says what the CPU has.
TEST(Conv2dKernel, Bf16KeepsToItsRoundingBoundOrIsRefused) {
    if (!cpu_supports(Precision::bf16)) {
        try {
            require_precision(Precision::bf16);
            FAIL() << "bf16 accepted on a CPU without it";
        } catch (const Error& e) {
            EXPECT_NE(
                std::string(e.what()).find("bf16 needs a CPU with AVX512-BF16 or AMX; this one goes up to"),
                std::string::npos)
                << e.what();
        }
        return;
    }
    const Padding same{PaddingMode::same}, valid{PaddingMode::valid};
    const Layout nchw = Layout::nchw, nhwc = Layout::nhwc;
    for (Layouts layouts : {Layouts{nchw, nchw}, Layouts{nhwc, nhwc}, Layouts{nchw, nhwc}})
        for (int64_t c : {3, 20, 64}) {
            check_bf16({2, c, 9, 8, 16, 3, 3, 1, 1, same, 2, layouts});
            check_bf16({3, c, 10, 10, 24, 1, 1, 2, 2, valid, 1, layouts});
        }
    check_bf16({2, 32, 12, 12, 32, 3, 3, 1, 1, same, 2, {nhwc, nhwc}, 32, 1});  // depthwise
    check_bf16({2, 16, 11, 9, 32, 3, 3, 2, 1, same, 2, {}, 4, 2});              // grouped, dilated
    check_bf16({40, 24, 12, 12, 16, 3, 3, 1, 1, same, 2, {nhwc, nhwc}});        // several chunks
    set_threads(0);
}

// int8: with x and w rounded to int8 as the kernel rounds them (x per tensor, w per filter after the
// folded map), Σ q_x·q_w is exact in int32, so the kernel must give the reference convolution of
// the rounded operands, scaled back, to float32 rounding; a wrong scale, bias, compensation or
// layout is off by far more.
namespace int8 {

// x rounded to `in`: clamped to u8 or s8 and read back.
std::vector<float> rounded_input(const std::vector<float>& x, Int8Quant in) {
    std::vector<float> r(x.size());
    for (size_t i = 0; i < x.size(); ++i)
        r[i] = std::clamp(std::nearbyint(x[i] / in.scale), in.is_unsigned ? 0.0f : -128.0f,
                          in.is_unsigned ? 255.0f : 127.0f) *
               in.scale;
    return r;
}

struct Int8Case {
    Case shape;
    bool is_unsigned;  // the input never negative (after a ReLU)
    bool fold;         // a per-channel map (a batch norm) folded in
    ActivationSpec act;
    int64_t prepared_batch;  // at least shape.N: a runner made for more images than this call runs
    bool in_stored = false;  // x handed over in int8, as the executor holds an int8 value
    bool out_int8 = false;   // y written in int8
};

// x quantised to `in`, one byte an element.
std::vector<int8_t> quantised(const std::vector<float>& x, Int8Quant in) {
    std::vector<int8_t> q(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const float v = std::clamp(std::nearbyint(x[i] / in.scale), in.is_unsigned ? 0.0f : -128.0f,
                                   in.is_unsigned ? 255.0f : 127.0f);
        q[i] = in.is_unsigned ? static_cast<int8_t>(static_cast<uint8_t>(v)) : static_cast<int8_t>(v);
    }
    return q;
}

void check(const Int8Case& k) {
    const Case& c = k.shape;
    set_threads(c.threads);
    auto [g, x, w, b, dy] = operands_for(c, 7);
    if (k.is_unsigned)
        for (float& v : x) v = std::abs(v);
    Rng rng(3);
    std::vector<float> scale(static_cast<size_t>(c.OC)), shift(scale.size());
    for (size_t i = 0; i < scale.size(); ++i) {
        scale[i] = rng.uniform(-2.0f, 2.0f);
        shift[i] = rng.uniform(-1.0f, 1.0f);
    }
    const Int8Quant in = int8_quant(k.is_unsigned ? 0.0f : -1.0f, 1.0f);

    // The reference: the folded weights and bias, rounded as the kernel rounds them.
    std::vector<float> folded(w), bias(b);
    for (int64_t oc = 0; oc < c.OC; ++oc) {
        const float s = k.fold ? scale[static_cast<size_t>(oc)] : 1.0f;
        for (int64_t i = 0; i < g.patch(); ++i) folded[static_cast<size_t>(oc * g.patch() + i)] *= s;
        bias[static_cast<size_t>(oc)] =
            b[static_cast<size_t>(oc)] * s + (k.fold ? shift[static_cast<size_t>(oc)] : 0);
    }
    std::vector<float> row_scales(static_cast<size_t>(c.OC));
    std::vector<int8_t> q(folded.size());
    cpu::int8_row_scales(folded.data(), c.OC, g.patch(), row_scales.data(), cpu::int8_weight_levels());
    cpu::quantize_rows(folded.data(), c.OC, g.patch(), row_scales.data(), q.data());
    std::vector<float> w_rounded(q.size()), magnitude_w(q.size());
    for (size_t i = 0; i < q.size(); ++i) {
        w_rounded[i] = q[i] * row_scales[i / static_cast<size_t>(g.patch())];
        magnitude_w[i] = std::abs(w_rounded[i]);
    }
    const std::vector<float> x_rounded = rounded_input(x, in);
    std::vector<float> magnitude_x(x_rounded);
    for (float& v : magnitude_x) v = std::abs(v);
    const int64_t out_positions = g.positions(), y_size = c.N * c.OC * out_positions;
    std::vector<float> y_ref(static_cast<size_t>(y_size)), magnitudes(y_ref.size());
    reference::conv2d_forward(g, c.N, x_rounded.data(), w_rounded.data(), bias.data(), y_ref.data());
    reference::conv2d_forward(g, c.N, magnitude_x.data(), magnitude_w.data(), nullptr, magnitudes.data());
    for (float& v : y_ref)
        v = k.act.kind == Activation::relu         ? std::max(v, 0.0f)
            : k.act.kind == Activation::tanh       ? std::tanh(v)
            : k.act.kind == Activation::hard_swish ? v * std::clamp(v + 3.0f, 0.0f, 6.0f) / 6.0f
                                                   : v;
    // Without VNNI, oneDNN halves the weights of an s8 input once more (rounded; its remedy for the
    // same int16 saturation), so each weight may be off by one more of its filter's steps: the
    // output by up to that step times Σ|x| over the filter's window.
    const bool halved = !k.is_unsigned && cpu::int8_weight_levels() < 127;
    // ... an error the activation passes on times its steepest slope (hard-swish's: 1.5).
    const float slope = k.act.kind == Activation::hard_swish ? 1.5f : 1.0f;
    std::vector<float> window_sums(y_ref.size()), ones(w.size(), 1.0f);
    if (halved)
        reference::conv2d_forward(g, c.N, magnitude_x.data(), ones.data(), nullptr, window_sums.data());

    // An int8 output: scaled to its largest value, unsigned after a ReLU.
    float largest = 0;
    for (float v : y_ref) largest = std::max(largest, std::abs(v));
    const Int8Quant out = int8_quant(k.act.kind == Activation::relu ? 0.0f : -largest, largest);
    const Int8Io io{in, k.in_stored, k.out_int8 ? std::optional(out) : std::nullopt};
    std::vector<float> prepared(static_cast<size_t>(cpu::conv2d_int8_prepared_floats(g)));
    cpu::conv2d_int8_prepare(g, k.prepared_batch, k.act, c.layouts, io, w.data(), b.data(),
                             k.fold ? scale.data() : nullptr, k.fold ? shift.data() : nullptr,
                             prepared.data());
    std::vector<float> ws(
        static_cast<size_t>(cpu::conv2d_int8_workspace(g, k.prepared_batch, k.act, c.layouts, io)));
    std::vector<float> y(static_cast<size_t>(y_size), 123.0f);
    const auto x_held = as_held(x, c.layouts.input, c.N, c.C, c.H * c.W);
    const std::vector<int8_t> x_int8 = quantised(x_held, in);
    cpu::conv2d_int8_forward(g, c.N,
                             k.in_stored ? reinterpret_cast<const float*>(x_int8.data()) : x_held.data(),
                             k.act, y.data(), ws.data(), c.layouts, io, prepared.data(), k.prepared_batch);
    if (k.out_int8) {  // read the bytes back as the values they stand for
        std::vector<float> values(y.size());
        const auto* bytes = reinterpret_cast<const int8_t*>(y.data());
        for (size_t i = 0; i < values.size(); ++i)
            values[i] =
                (out.is_unsigned ? static_cast<float>(static_cast<uint8_t>(bytes[i])) : bytes[i]) * out.scale;
        y = values;
    }
    const auto got = as_nchw(y, c.layouts.output, c.N, c.OC, out_positions);
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(
            got[i], y_ref[i],
            1e-5f * (1.0f + magnitudes[i]) + (k.out_int8 ? 0.5001f * out.scale : 0.0f) +
                (halved ? slope *
                              row_scales[i / static_cast<size_t>(out_positions) % static_cast<size_t>(c.OC)] *
                              window_sums[i]
                        : 0.0f))
            << "int8 forward differs first at index " << i << " for " << describe(c)
            << (k.is_unsigned ? " u8" : " s8") << (k.fold ? " folded" : "") << (k.in_stored ? " int8 in" : "")
            << (k.out_int8 ? " int8 out" : "");
}

}  // namespace int8

TEST(Conv2dKernel, Int8IsTheConvolutionOfTheRoundedOperands) {
    const Padding same{PaddingMode::same}, valid{PaddingMode::valid};
    const Layouts nchw{}, nhwc{Layout::nhwc, Layout::nhwc}, to_nchw{Layout::nhwc, Layout::nchw};
    const ActivationSpec relu{Activation::relu}, none{};
    const std::vector<int8::Int8Case> cases{
        {{3, 16, 9, 9, 24, 3, 3, 1, 1, same, 2, nchw}, true, false, relu, 3},
        {{2, 16, 9, 7, 24, 3, 3, 2, 2, valid, 1, nhwc}, false, false, none, 2},
        {{2, 1, 12, 12, 8, 3, 3, 1, 1, same, 2, nchw}, false, true, relu, 4},            // a first layer
        {{2, 16, 8, 8, 16, 3, 3, 1, 1, same, 2, nhwc, 16}, true, true, relu, 2},         // depthwise
        {{2, 16, 10, 10, 8, 3, 3, 1, 1, same, 2, to_nchw, 4, 2}, false, true, none, 2},  // grouped, dilated
        {{2, 24, 7, 7, 40, 1, 1, 1, 1, valid, 2, nhwc},
         true,
         true,
         none,
         5},  // 1x1, batch below the runner's
        {{18, 32, 64, 64, 8, 3, 3, 1, 1, same, 2, nhwc}, true, false, relu, 18},  // two chunks of images
        // Held in int8 on either side, as the executor chains int8 layers.
        {{3, 16, 9, 9, 24, 3, 3, 1, 1, same, 2, nhwc}, true, true, relu, 3, true, true},
        {{2, 16, 9, 7, 24, 3, 3, 2, 2, valid, 1, nchw}, false, false, none, 2, true, true},
        {{2, 16, 8, 8, 16, 3, 3, 1, 1, same, 2, to_nchw, 16}, true, true, relu, 2, false, true},
        {{2, 24, 7, 7, 40, 1, 1, 1, 1, valid, 2, nchw}, true, false, {Activation::tanh}, 5, true, true},
        {{2, 24, 7, 7, 40, 1, 1, 1, 1, valid, 2, nhwc}, false, true, none, 2, true, false},
        // MobileNet's: depthwise with stride 2 on a signed input, hard-swish folded in.
        {{2, 16, 14, 14, 16, 3, 3, 2, 2, same, 2, nhwc, 16}, false, true, {Activation::hard_swish}, 2},
        {{2, 16, 14, 14, 16, 3, 3, 2, 2, same, 2, nhwc, 16},
         false,
         true,
         {Activation::hard_swish},
         2,
         true,
         true},
        {{2, 16, 14, 14, 64, 1, 1, 1, 1, valid, 2, nhwc},
         false,
         true,
         {Activation::hard_swish},
         2,
         true,
         true},
        {{256, 1, 28, 28, 16, 3, 3, 1, 1, same, 2, {Layout::nchw, Layout::nhwc}},
         false,
         true,
         {Activation::hard_swish},
         256},
    };
    for (const auto& k : cases) int8::check(k);
}

TEST(Conv2dKernel, Int8QuantScalesFollowTheCalibratedRange) {
    const Int8Quant after_relu = int8_quant(0.0f, 5.1f), signed_in = int8_quant(-2.54f, 1.0f);
    EXPECT_TRUE(after_relu.is_unsigned);
    EXPECT_FLOAT_EQ(after_relu.scale, 5.1f / 255);
    EXPECT_FALSE(signed_in.is_unsigned);
    EXPECT_FLOAT_EQ(signed_in.scale, 2.54f / 127);
    EXPECT_FLOAT_EQ(int8_quant(0.0f, 0.0f).scale, 1.0f) << "a value that is always 0";
    float scales[2];
    const float w[6] = {0.5f, -1.27f, 0.0f, 0.0f, 0.0f, 0.0f};
    int8_t q[6];
    cpu::int8_row_scales(w, 2, 3, scales);
    cpu::quantize_rows(w, 2, 3, scales, q);
    EXPECT_FLOAT_EQ(scales[0], 0.01f);
    EXPECT_EQ(q[0], 50);
    EXPECT_EQ(q[1], -127);
    EXPECT_FLOAT_EQ(scales[1], 1.0f) << "a filter of zeros";
}

}  // namespace
}  // namespace lenz
