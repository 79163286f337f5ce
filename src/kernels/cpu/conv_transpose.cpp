// Transposed convolution through oneDNN's deconvolution primitives. The activations stay in the
// caller's layout (oneDNN's jit kernels read channels-last directly, and its GEMM kernel (N, C, H, W));
// only the weights, small, are reordered into the layout the primitive picks.
#include "kernels/cpu/conv_transpose.h"

#include <algorithm>
#include <cstring>
#include <dnnl.hpp>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/onednn.h"

namespace lenz::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

// Images of one backward-data call: dx goes through the workspace a chunk at a time, at most this
// many floats of it (8 MB), so that the workspace does not grow with the batch.
constexpr int64_t kChunkFloats = int64_t{1} << 21;

int64_t chunk_images(const ConvGeometry& g, int64_t N) {
    return std::clamp<int64_t>(kChunkFloats / (g.C * g.H * g.W), 1, N);
}
tag tag_of(Layout layout) {
    return layout == Layout::nhwc ? tag::nhwc : tag::nchw;
}
memory::desc src_desc(const ConvGeometry& g, int64_t N, Layout layout) {
    return {{N, g.C, g.H, g.W}, f32, tag_of(layout)};
}
memory::desc dst_desc(const ConvGeometry& g, int64_t N, Layout layout) {
    return {{N, g.OC, g.OH, g.OW}, f32, tag_of(layout)};
}
// PyTorch's (C, OC/G, KH, KW) is oneDNN's iohw (giohw with the groups as a dimension of their own).
memory::dims weight_dims(const ConvGeometry& g) {
    if (g.G == 1) return {g.OC, g.C, g.KH, g.KW};
    return {g.G, g.OC / g.G, g.C / g.G, g.KH, g.KW};
}
memory::desc plain_weights(const ConvGeometry& g) {
    return {weight_dims(g), f32, g.G == 1 ? tag::iohw : tag::giohw};
}
memory::desc any_weights(const ConvGeometry& g) {
    return {weight_dims(g), f32, tag::any};
}
memory::desc bias_desc(const ConvGeometry& g) {
    return {{g.OC}, f32, tag::x};
}

// oneDNN: OH = (H - 1)·S - pad_l - pad_r + span. The right padding is negative where the output
// padding exceeds P (rows only the bias reaches), which oneDNN's kernels take.
struct Window {
    memory::dims strides, dilates, pad_l, pad_r;
};
Window window(const ConvGeometry& g) {
    return {{g.SH, g.SW},
            {g.DH - 1, g.DW - 1},
            {g.PT, g.PL},
            {(g.H - 1) * g.SH + g.span_h() - g.PT - g.OH, (g.W - 1) * g.SW + g.span_w() - g.PL - g.OW}};
}

dnnl::primitive_attr user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // so that the memory plan holds it
    return attr;
}

struct Key {
    int64_t kind, N, C, H, W, OC, OH, OW, KH, KW, SH, SW, PT, PL, G, DH, DW, bias, input_layout,
        output_layout;
    bool operator==(const Key&) const = default;
};
struct KeyHash {
    size_t operator()(const Key& k) const {
        int64_t words[sizeof k / sizeof(int64_t)];
        std::memcpy(words, &k, sizeof k);
        uint64_t h = 0x9e3779b97f4a7c15u;
        for (int64_t w : words) h = (h ^ static_cast<uint64_t>(w)) * 0xff51afd7ed558ccdu;
        return static_cast<size_t>(h ^ (h >> 32));
    }
};
static_assert(sizeof(Key) == 20 * sizeof(int64_t), "Key must have no padding to hash");
enum Kind : int64_t { forward_kind, backward_data_kind, backward_weights_kind };
Key key_of(Kind kind, const ConvGeometry& g, int64_t N, bool bias, Layouts layouts) {
    return {kind,
            N,
            g.C,
            g.H,
            g.W,
            g.OC,
            g.OH,
            g.OW,
            g.KH,
            g.KW,
            g.SH,
            g.SW,
            g.PT,
            g.PL,
            g.G,
            g.DH,
            g.DW,
            bias,
            static_cast<int64_t>(layouts.input),
            static_cast<int64_t>(layouts.output)};
}

dnnl::deconvolution_forward::primitive_desc forward_pd(const ConvGeometry& g, int64_t N, bool bias,
                                                       Layouts layouts) {
    const Window w = window(g);
    const auto src = src_desc(g, N, layouts.input), dst = dst_desc(g, N, layouts.output);
    const auto d = bias ? dnnl::deconvolution_forward::desc(
                              dnnl::prop_kind::forward_training, dnnl::algorithm::deconvolution_direct, src,
                              any_weights(g), bias_desc(g), dst, w.strides, w.dilates, w.pad_l, w.pad_r)
                        : dnnl::deconvolution_forward::desc(
                              dnnl::prop_kind::forward_training, dnnl::algorithm::deconvolution_direct, src,
                              any_weights(g), dst, w.strides, w.dilates, w.pad_l, w.pad_r);
    return {d, user_scratchpad(), cpu_engine()};
}

// A primitive with what it needs beside the caller's tensors: the weights (or their gradient) in
// its own layout when that is not PyTorch's, and its scratchpad.
template <class P>
struct Made {
    typename P::primitive_desc pd;
    P primitive;
    int64_t weight_copy, scratchpad;
};
int64_t copy_floats(const memory::desc& wanted, const memory::desc& user) {
    return wanted == user ? 0 : floats_of(wanted);
}
using Forward = Made<dnnl::deconvolution_forward>;
using BackwardData = Made<dnnl::deconvolution_backward_data>;
using BackwardWeights = Made<dnnl::deconvolution_backward_weights>;

std::shared_ptr<Forward> forward_for(const ConvGeometry& g, int64_t N, bool bias, Layouts layouts) {
    return cached<Forward, Key, KeyHash>(key_of(forward_kind, g, N, bias, layouts), [&] {
        auto pd = forward_pd(g, N, bias, layouts);
        return Forward{pd, dnnl::deconvolution_forward(pd), copy_floats(pd.weights_desc(), plain_weights(g)),
                       floats_of(pd.scratchpad_desc())};
    });
}
std::shared_ptr<BackwardData> backward_data_for(const ConvGeometry& g, int64_t N, Layouts layouts) {
    return cached<BackwardData, Key, KeyHash>(key_of(backward_data_kind, g, N, false, layouts), [&] {
        const Window w = window(g);
        dnnl::deconvolution_backward_data::desc d(
            dnnl::algorithm::deconvolution_direct, src_desc(g, N, layouts.input), any_weights(g),
            dst_desc(g, N, layouts.output), w.strides, w.dilates, w.pad_l, w.pad_r);
        dnnl::deconvolution_backward_data::primitive_desc pd(d, user_scratchpad(), cpu_engine(),
                                                             forward_pd(g, N, false, layouts));
        return BackwardData{pd, dnnl::deconvolution_backward_data(pd),
                            copy_floats(pd.weights_desc(), plain_weights(g)),
                            floats_of(pd.scratchpad_desc())};
    });
}
std::shared_ptr<BackwardWeights> backward_weights_for(const ConvGeometry& g, int64_t N, bool bias,
                                                      Layouts layouts) {
    return cached<BackwardWeights, Key, KeyHash>(key_of(backward_weights_kind, g, N, bias, layouts), [&] {
        const Window w = window(g);
        const auto src = src_desc(g, N, layouts.input), dst = dst_desc(g, N, layouts.output);
        const auto d = bias ? dnnl::deconvolution_backward_weights::desc(
                                  dnnl::algorithm::deconvolution_direct, src, any_weights(g), bias_desc(g),
                                  dst, w.strides, w.dilates, w.pad_l, w.pad_r)
                            : dnnl::deconvolution_backward_weights::desc(
                                  dnnl::algorithm::deconvolution_direct, src, any_weights(g), dst, w.strides,
                                  w.dilates, w.pad_l, w.pad_r);
        dnnl::deconvolution_backward_weights::primitive_desc pd(d, user_scratchpad(), cpu_engine(),
                                                                forward_pd(g, N, bias, layouts));
        // The weight gradient always goes through the workspace: oneDNN overwrites it, Lenz accumulates.
        return BackwardWeights{pd, dnnl::deconvolution_backward_weights(pd),
                               floats_of(pd.diff_weights_desc()), floats_of(pd.scratchpad_desc())};
    });
}

int64_t aligned(int64_t floats) {
    return (floats + 15) / 16 * 16;  // regions keep 64-byte alignment
}
int64_t weight_floats(const ConvGeometry& g) {
    return g.C * (g.OC / g.G) * g.KH * g.KW;
}

// Weights as the primitive wants them: the layer's own, or a reordered copy at `copy`.
memory weights_for(const memory::desc& wanted, const ConvGeometry& g, const float* w, float* copy) {
    memory user(plain_weights(g), cpu_engine(), const_cast<float*>(w));
    if (wanted == plain_weights(g)) return user;
    memory reordered(wanted, cpu_engine(), copy);
    dnnl::reorder(user, reordered).execute(cpu_stream(), user, reordered);
    return reordered;
}

}  // namespace

int64_t conv_transpose_forward_workspace(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec&,
                                         Layouts layouts) {
    const auto f = forward_for(g, N, bias, layouts);
    return aligned(f->weight_copy) + aligned(f->scratchpad);
}

int64_t conv_transpose_backward_workspace(const ConvGeometry& g, int64_t N, bool bias, Layouts layouts) {
    const auto bw = backward_weights_for(g, N, bias, layouts);
    int64_t floats = aligned(bw->weight_copy) + aligned(weight_floats(g)) + aligned(bias ? g.OC : 0) +
                     aligned(bw->scratchpad);
    const int64_t chunk = chunk_images(g, N);
    for (const int64_t images : {chunk, N % chunk}) {
        if (images == 0) continue;
        const auto bd = backward_data_for(g, images, layouts);
        floats = std::max(
            floats, aligned(bd->weight_copy) + aligned(images * g.C * g.H * g.W) + aligned(bd->scratchpad));
    }
    return floats;
}

void conv_transpose_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                            const ActivationSpec& act, float* y, float* workspace, Layouts layouts) {
    const auto f = forward_for(g, N, b != nullptr, layouts);
    float* copy = workspace;
    float* scratch = workspace + aligned(f->weight_copy);
    memory src(f->pd.src_desc(), cpu_engine(), const_cast<float*>(x));
    memory dst(f->pd.dst_desc(), cpu_engine(), y);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_WEIGHTS, weights_for(f->pd.weights_desc(), g, w, copy)},
        {DNNL_ARG_DST, dst},
        {DNNL_ARG_SCRATCHPAD, memory(f->pd.scratchpad_desc(), cpu_engine(), scratch)}};
    if (b) args.emplace(DNNL_ARG_BIAS, memory(bias_desc(g), cpu_engine(), const_cast<float*>(b)));
    f->primitive.execute(cpu_stream(), args);
    cpu_stream().wait();
    // Softmax runs over the channels of (N, C, H, W), which the layer asks for; the others elementwise.
    if (act.kind != Activation::none) apply_activation(act, y, N, g.OC, g.OH * g.OW);
}

void conv_transpose_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                             const float* w, const ImageGradientSink& store_dx, float* dw, float* db,
                             float* workspace, Layouts layouts) {
    {
        const auto bw = backward_weights_for(g, N, db != nullptr, layouts);
        float* diff = workspace;
        float* plain = diff + aligned(bw->weight_copy);
        float* dbias = plain + aligned(weight_floats(g));
        float* scratch = dbias + aligned(db ? g.OC : 0);
        memory diff_weights(bw->pd.diff_weights_desc(), cpu_engine(), diff);
        std::unordered_map<int, memory> args{
            {DNNL_ARG_SRC, memory(bw->pd.src_desc(), cpu_engine(), const_cast<float*>(x))},
            {DNNL_ARG_DIFF_DST, memory(bw->pd.diff_dst_desc(), cpu_engine(), const_cast<float*>(dy))},
            {DNNL_ARG_DIFF_WEIGHTS, diff_weights},
            {DNNL_ARG_SCRATCHPAD, memory(bw->pd.scratchpad_desc(), cpu_engine(), scratch)}};
        if (db) args.emplace(DNNL_ARG_DIFF_BIAS, memory(bias_desc(g), cpu_engine(), dbias));
        bw->primitive.execute(cpu_stream(), args);
        const float* dw_plain = diff;
        if (bw->pd.diff_weights_desc() != plain_weights(g)) {
            memory user(plain_weights(g), cpu_engine(), plain);
            dnnl::reorder(diff_weights, user).execute(cpu_stream(), diff_weights, user);
            dw_plain = plain;
        }
        cpu_stream().wait();
        for (int64_t i = 0, n = weight_floats(g); i < n; ++i) dw[i] += dw_plain[i];
        if (db)
            for (int64_t c = 0; c < g.OC; ++c) db[c] += dbias[c];
    }
    if (!store_dx) return;
    const int64_t chunk = chunk_images(g, N), image = g.C * g.H * g.W, out_image = g.OC * g.OH * g.OW;
    for (int64_t first = 0; first < N; first += chunk) {
        const int64_t images = std::min(chunk, N - first);
        const auto bd = backward_data_for(g, images, layouts);
        float* copy = workspace;
        float* dx = copy + aligned(bd->weight_copy);
        float* scratch = dx + aligned(images * image);
        bd->primitive.execute(
            cpu_stream(), {{DNNL_ARG_DIFF_DST, memory(bd->pd.diff_dst_desc(), cpu_engine(),
                                                      const_cast<float*>(dy + first * out_image))},
                           {DNNL_ARG_WEIGHTS, weights_for(bd->pd.weights_desc(), g, w, copy)},
                           {DNNL_ARG_DIFF_SRC, memory(bd->pd.diff_src_desc(), cpu_engine(), dx)},
                           {DNNL_ARG_SCRATCHPAD, memory(bd->pd.scratchpad_desc(), cpu_engine(), scratch)}});
        cpu_stream().wait();
        for (int64_t n = 0; n < images; ++n) store_dx(first + n, dx + n * image);
    }
}

}  // namespace lenz::cpu
