#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/conv2d_onednn.h"
#include "kernels/cpu/onednn.h"
#include "kernels/cpu/pool2d.h"
#include "lenz/error.h"

namespace lenz::cpu {
namespace {

using namespace conv;

// What the primitive multiplies: float32, or bf16 copies of the activations and weights (the
// caller's memory stays float32; reorders convert on the way in, and outputs and gradients are
// written in float32 directly, accumulated in float32 by oneDNN).
memory::data_type compute_type(Precision precision) {
    return precision == Precision::bf16 ? memory::data_type::bf16 : f32;
}

// Floats to reserve for `wanted` when the data lives as `user`: nothing if they are the same layout.
int64_t copy_floats(const memory::desc& wanted, const memory::desc& user) {
    return wanted == user ? 0 : floats_of(wanted);
}

// What a primitive is built for: the geometry, batch, bias, activation, layouts and precision.
struct PrimitiveKey {
    enum Kind : int64_t { forward, backward_data, backward_weights, layout } kind;
    int64_t N, C, H, W, OC, OH, OW, KH, KW, SH, SW, PT, PL, G, DH, DW;
    int64_t bias, activation, alpha_bits, input_layout, output_layout, precision, residual, winograd;
    bool operator==(const PrimitiveKey&) const = default;
};
// A key made of 64-bit words with no padding between them, hashed a word at a time.
template <class Key>
struct WordHash {
    size_t operator()(const Key& k) const {
        int64_t words[sizeof k / sizeof(int64_t)];
        std::memcpy(words, &k, sizeof k);
        uint64_t h = 0x9e3779b97f4a7c15u;
        for (int64_t w : words) h = (h ^ static_cast<uint64_t>(w)) * 0xff51afd7ed558ccdu;
        return static_cast<size_t>(h ^ (h >> 32));
    }
};
using PrimitiveKeyHash = WordHash<PrimitiveKey>;
static_assert(sizeof(PrimitiveKey) == 25 * sizeof(int64_t), "PrimitiveKey must have no padding to hash");

// What a forward primitive is for besides its geometry, layouts and precision: a residual added
// (the sum post-op), and whether it serves inference, which may run Winograd's algorithm.
struct ForwardKind {
    bool residual = false, inference = false;
};

// Which of oneDNN's Winograd kernels inference may use (below): what set_winograd_use chose, else
// LENZ_WINOGRAD. F(4x4, 3x3)'s transforms round more: on one of torchvision's 64 classifiers (Wide
// ResNet-101-2, whose output with the direct kernel is 9.7e-5 of its largest value from PyTorch's)
// they moved the output past the zoo check's bound of 1e-4 (1.3e-4), even on its first three layers
// only. F(2x2, 3x3) left it where the direct kernel does (9.7e-5).
std::atomic<int> chosen_winograd_use{-1};  // -1: none chosen

WinogradUse winograd_use() {
    if (const int chosen = chosen_winograd_use.load(); chosen >= 0) return static_cast<WinogradUse>(chosen);
    const char* setting = std::getenv("LENZ_WINOGRAD");
    if (setting == nullptr || *setting == '\0') return WinogradUse::small_tiles;
    const std::string value(setting);
    if (value != "0" && value != "1")
        throw Error("LENZ_WINOGRAD is '" + value +
                    "': 0 turns Winograd's convolutions off, 1 allows its larger tiles");
    return value == "1" ? WinogradUse::any : WinogradUse::none;
}

// Inference may compute a 3x3 convolution of stride 1 (no dilation, no groups, float32) by Winograd's
// algorithm (oneDNN's kernels, on channel-blocked data) where it pays. Its data goes to and from its
// own layout, and its tiles overhang small maps, so the choice is by geometry:
// - F(2x2, 3x3), 2.25x fewer multiplications, alone ran ResNet's 14x14 and 7x7 layers of 256 and
//   512 channels 1.13-1.18x faster than the direct kernel at batch 1, but layers of 64 to 192 input
//   channels (ResNet's 56x56, GoogLeNet's, DenseNet's, SqueezeNet's) 0.6-1.1x: hence 256 channels or
//   more on each side.
// - F(4x4, 3x3), 4x fewer, ran VGG's and ResNet's 3x3 layers 1.8-2.8x faster alone, and with the
//   other kernel it pays on a map of 27x27 or more (SqueezeNet's 27x27 layers: 1.20x), or with 256x256
//   channels or more (ResNet's 14x14 and 7x7 layers: 1.36x and 1.18x), and 32 channels or more on
//   each side. GoogLeNet's 14x14 and 7x7 layers with 96 to 192 input channels, and any with 16, ran
//   0.5-0.8x the direct kernel's speed.
// The choice depends on the geometry only, so results do not change from run to run. Training keeps
// the direct kernel, whose backward pass matches it.
WinogradUse winograd_for(const ConvGeometry& g, Precision precision) {
    const bool kernel =
        g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1 && g.G == 1;
    if (precision != Precision::f32 || !kernel) return WinogradUse::none;
    switch (winograd_use()) {
        case WinogradUse::none:
            return WinogradUse::none;
        case WinogradUse::small_tiles:
            return g.C >= 256 && g.OC >= 256 ? WinogradUse::small_tiles : WinogradUse::none;
        case WinogradUse::any:
            break;
    }
    const bool pays = g.C >= 32 && g.OC >= 32 && (g.OH * g.OW >= 27 * 27 || g.C * g.OC >= 256 * 256);
    return pays ? WinogradUse::any : WinogradUse::none;
}

PrimitiveKey key_of(PrimitiveKey::Kind kind, const ConvGeometry& g, int64_t N, bool bias,
                    const ActivationSpec& act, Layouts layouts, Precision precision,
                    ForwardKind forward = {}) {
    uint32_t alpha_bits;
    std::memcpy(&alpha_bits, &act.alpha, sizeof alpha_bits);
    // leakyrelu's slope and elu's alpha are part of the post-op, so of the primitive.
    const bool alpha = act.kind == Activation::leaky_relu || act.kind == Activation::elu;
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
            bias ? 1 : 0,
            static_cast<int64_t>(act.kind),
            alpha ? static_cast<int64_t>(alpha_bits) : 0,
            static_cast<int64_t>(layouts.input),
            static_cast<int64_t>(layouts.output),
            static_cast<int64_t>(precision),
            forward.residual ? 1 : 0,
            kind == PrimitiveKey::forward && forward.inference
                ? static_cast<int64_t>(winograd_for(g, precision))
                : 0};
}

// oneDNN's own choice for activations is a blocked layout (nChw16c on AVX-512) that pads channels
// to a multiple of 16, so a layer with 100 input channels computes 112. Channels-last (nhwc) pads
// nothing, and where oneDNN has brgemm kernels for it, a forward pass with much padding runs far
// faster (seed conv2: 155 -> 245 GFLOP/s). With little padding (seed conv3: 200 -> 208) the two
// measured the same, and the extra reorder then costs more than it gains. The choice depends on the
// geometry only, never on timing, so that results are the same from one run to the next.
bool prefers_channels_last(const ConvGeometry& g, Precision precision) {
    static std::mutex guard;
    static std::unordered_map<PrimitiveKey, bool, PrimitiveKeyHash> decided;
    const std::lock_guard<std::mutex> lock(guard);
    const PrimitiveKey key = key_of(PrimitiveKey::layout, g, 1, false, {}, {}, precision);
    if (auto it = decided.find(key); it != decided.end()) return it->second;
    bool channels_last = false;
    if (const int64_t padded = (g.C + 15) / 16 * 16; g.C >= 16 && padded * 20 > g.C * 21) {  // > 5 %
        const Window w = window(g);
        const auto type = compute_type(precision);
        dnnl::convolution_forward::desc d(
            dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
            memory::desc(dims4(1, g.C, g.H, g.W), type, tag::nhwc), any_desc(weight_dims(g), type),
            memory::desc(dims4(1, g.OC, g.OH, g.OW), f32, tag::nhwc), w.strides, w.dilates, w.pad_l, w.pad_r);
        dnnl::convolution_forward::primitive_desc pd(d, cpu_engine());
        channels_last = std::string(pd.impl_info_str()).rfind("brg", 0) == 0;
    }
    decided.emplace(key, channels_last);
    return channels_last;
}

// The activation layout a primitive asks oneDNN for. Channels-last whenever the caller holds either
// side that way: then that side needs no reorder (asking for two different layouts would run
// oneDNN's reference code, hundreds of times slower). The exception is the weight gradient of a
// layer with few input channels, such as the first: oneDNN's channels-last kernel there is 4x slower
// (seed conv1: 2.1 ms an image against 0.46 ms), more than reordering dy costs. Otherwise the
// forward pass takes channels-last where it wins (above), and backward lets oneDNN choose.
tag primitive_layout(const ConvGeometry& g, Layouts layouts, bool forward, Precision precision) {
    if (!forward && g.C < 16) return tag::any;
    if (layouts.input == Layout::nhwc || layouts.output == Layout::nhwc) return tag::nhwc;
    return forward && prefers_channels_last(g, precision) ? tag::nhwc : tag::any;
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, int64_t N, bool bias,
                                                     const ActivationSpec& act, tag layout,
                                                     Precision precision, bool residual = false,
                                                     bool winograd = false) {
    const Window w = window(g);
    const auto type = compute_type(precision);
    const memory::desc src(dims4(N, g.C, g.H, g.W), type, layout),
        dst(dims4(N, g.OC, g.OH, g.OW), f32, layout);
    const auto prop = winograd ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
    const auto algorithm =
        winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
    const auto d =
        bias ? dnnl::convolution_forward::desc(prop, algorithm, src, any_desc(weight_dims(g), type),
                                               plain_bias(g), dst, w.strides, w.dilates, w.pad_l, w.pad_r)
             : dnnl::convolution_forward::desc(prop, algorithm, src, any_desc(weight_dims(g), type), dst,
                                               w.strides, w.dilates, w.pad_l, w.pad_r);
    dnnl::primitive_attr attr = user_scratchpad();
    // A residual is added before the activation: a sum post-op ahead of the activation's.
    dnnl::post_ops ops;
    if (residual) ops.append_sum(1.0f);
    if (fusable(act) && !applied_after(act)) ops = post_ops_of(act, ops);
    attr.set_post_ops(ops);
    return {d, attr, cpu_engine()};
}

struct Forward {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward primitive;
    int64_t src_copy, weights_copy, dst_copy, scratch;
};

struct BackwardData {
    dnnl::convolution_backward_data::primitive_desc pd;
    dnnl::convolution_backward_data primitive;
    int64_t diff_dst_copy, weights_copy, diff_src_floats, diff_src_user, scratch;
};

struct BackwardWeights {
    dnnl::convolution_backward_weights::primitive_desc pd;
    dnnl::convolution_backward_weights primitive;
    int64_t src_copy, diff_dst_copy, diff_weights_floats, diff_weights_plain, diff_bias_floats, scratch;
};

// Winograd's kernels read and write channel-blocked data (oneDNN picks the blocking); where oneDNN
// has none for a case (an activation or sum it cannot fuse there), the direct kernel serves.
dnnl::convolution_forward::primitive_desc forward_pd_for(const ConvGeometry& g, int64_t N, bool bias,
                                                         const ActivationSpec& act, Layouts layouts,
                                                         Precision precision, ForwardKind kind) {
    if (const WinogradUse use = kind.inference ? winograd_for(g, precision) : WinogradUse::none;
        use != WinogradUse::none)
        try {
            auto pd = forward_pd(g, N, bias, act, tag::any, precision, kind.residual, true);
            const std::string impl = pd.impl_info_str();
            if (impl.find(use == WinogradUse::small_tiles ? "wino_2x3" : "wino") != std::string::npos)
                return pd;
        } catch (const dnnl::error&) {
        }
    return forward_pd(g, N, bias, act, primitive_layout(g, layouts, true, precision), precision,
                      kind.residual);
}

// Folded weights keep a plain copy after their bias where a call may run a chunk of fewer images
// than they were prepared for, if Winograd's algorithm may serve either chunk: oneDNN reorders plain
// weights into a Winograd layout, but not one batch's Winograd layout into another's, nor the direct
// kernel's blocked layout into Winograd's (which F(2x2, 3x3) on a 14x14 map needs: oneDNN has it for
// one image, not two). With chunks of one image, as in every runner of one image at a time, no call
// runs fewer.
bool keeps_plain_copy(const ConvGeometry& g, Precision precision, int64_t prepared_chunk) {
    return prepared_chunk > 1 && winograd_for(g, precision) != WinogradUse::none;
}

std::shared_ptr<Forward> forward_for(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                                     Layouts layouts, Precision precision, ForwardKind kind = {}) {
    return cached<Forward, PrimitiveKey, PrimitiveKeyHash>(
        key_of(PrimitiveKey::forward, g, N, bias, act, layouts, precision, kind), [&] {
            auto pd = forward_pd_for(g, N, bias, act, layouts, precision, kind);
            return Forward{pd,
                           dnnl::convolution_forward(pd),
                           copy_floats(pd.src_desc(), user_src(g, N, layouts.input)),
                           copy_floats(pd.weights_desc(), plain_weights(g)),
                           copy_floats(pd.dst_desc(), user_dst(g, N, layouts.output)),
                           floats_of(pd.scratchpad_desc())};
        });
}

std::shared_ptr<BackwardData> backward_data_for(const ConvGeometry& g, int64_t N, Layouts layouts,
                                                Precision precision) {
    return cached<BackwardData, PrimitiveKey, PrimitiveKeyHash>(
        key_of(PrimitiveKey::backward_data, g, N, false, {}, layouts, precision), [&] {
            const Window w = window(g);
            const tag layout = primitive_layout(g, layouts, false, precision);
            const auto type = compute_type(precision);
            dnnl::convolution_backward_data::desc d(
                dnnl::algorithm::convolution_direct, memory::desc(dims4(N, g.C, g.H, g.W), f32, layout),
                any_desc(weight_dims(g), type), memory::desc(dims4(N, g.OC, g.OH, g.OW), type, layout),
                w.strides, w.dilates, w.pad_l, w.pad_r);
            dnnl::convolution_backward_data::primitive_desc pd(
                d, user_scratchpad(), cpu_engine(), forward_pd(g, N, false, {}, layout, precision));
            return BackwardData{pd,
                                dnnl::convolution_backward_data(pd),
                                copy_floats(pd.diff_dst_desc(), user_dst(g, N, layouts.output)),
                                copy_floats(pd.weights_desc(), plain_weights(g)),
                                floats_of(pd.diff_src_desc()),
                                copy_floats(pd.diff_src_desc(), user_src(g, N, layouts.input)),
                                floats_of(pd.scratchpad_desc())};
        });
}

std::shared_ptr<BackwardWeights> backward_weights_for(const ConvGeometry& g, int64_t N, bool bias,
                                                      Layouts layouts, Precision precision) {
    // With few input channels (a first layer's 3), oneDNN's bf16 weight gradient ran at 4 % of the
    // bf16 peak (seed conv 1: 219 ms at batch 50): such a layer keeps it in float32.
    if (g.C < 16) precision = Precision::f32;
    return cached<BackwardWeights, PrimitiveKey, PrimitiveKeyHash>(
        key_of(PrimitiveKey::backward_weights, g, N, bias, {}, layouts, precision), [&] {
            const Window w = window(g);
            const tag layout = primitive_layout(g, layouts, false, precision);
            const auto type = compute_type(precision);
            const memory::desc src(dims4(N, g.C, g.H, g.W), type, layout),
                wei = any_desc(weight_dims(g)), dst(dims4(N, g.OC, g.OH, g.OW), type, layout);
            const auto d =
                bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, wei,
                                                                plain_bias(g), dst, w.strides, w.dilates,
                                                                w.pad_l, w.pad_r)
                     : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, wei,
                                                                dst, w.strides, w.dilates, w.pad_l, w.pad_r);
            dnnl::convolution_backward_weights::primitive_desc pd(
                d, user_scratchpad(), cpu_engine(), forward_pd(g, N, bias, {}, layout, precision));
            return BackwardWeights{pd,
                                   dnnl::convolution_backward_weights(pd),
                                   copy_floats(pd.src_desc(), user_src(g, N, layouts.input)),
                                   copy_floats(pd.diff_dst_desc(), user_dst(g, N, layouts.output)),
                                   floats_of(pd.diff_weights_desc()),
                                   copy_floats(pd.diff_weights_desc(), plain_weights(g)),
                                   bias ? g.OC : 0,
                                   floats_of(pd.scratchpad_desc())};
        });
}

// Calls whose caller's workspace was too small (workspace_shortfalls()).
std::atomic<int64_t> shortfalls{0};

// The caller's workspace, or `own` grown to `needed` floats where the caller's has fewer.
float* workspace_of(Workspace given, int64_t needed, std::vector<float>& own) {
    if (needed <= given.floats) return given.data;
    ++shortfalls;
    own.resize(static_cast<size_t>(needed));
    return own.data();
}

// One reorder or convolution with its memory objects and C arguments, ready to run again.
struct Step {
    explicit Step(dnnl::primitive p) : primitive(std::move(p)) {}
    Step& bind(int arg, const memory& m) {
        memories.push_back(m);
        args.push_back({arg, m.get()});
        return *this;
    }
    // Through the C API: the C++ one copies the arguments into a new vector at every call.
    void run() const {
        dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive.get(), cpu_stream().get(),
                                                       static_cast<int>(args.size()), args.data()),
                                "could not execute a convolution's step");
    }
    dnnl::primitive primitive;     // a handle: it outlives the primitive cache's eviction
    std::vector<memory> memories;  // owned here, for the arguments below
    std::vector<dnnl_exec_arg_t> args;
    // The last step of a chunk: its output is final, for the host's activation or pool.
    bool finishes_chunk = false;
    int64_t first_image = 0, images = 0;
};

// `wanted` holding the caller's data at `user_ptr` (laid out as `user`): that memory itself, or
// `copy` after a reorder step.
memory bound_layout(std::vector<Step>& steps, const memory::desc& wanted, const memory::desc& user,
                    const float* user_ptr, float* copy) {
    memory given(user, cpu_engine(), const_cast<float*>(user_ptr));
    if (wanted == user) return given;
    memory reordered(wanted, cpu_engine(), copy);
    steps.emplace_back(made_for_every_thread([&] { return dnnl::reorder(given, reordered); }))
        .bind(DNNL_ARG_FROM, given)
        .bind(DNNL_ARG_TO, reordered);
    return reordered;
}

// The same, reordered at once.
memory as_layout(const memory::desc& wanted, const memory::desc& user, const float* user_ptr, float* copy) {
    std::vector<Step> steps;
    const memory m = bound_layout(steps, wanted, user, user_ptr, copy);
    for (const Step& step : steps) step.run();
    return m;
}

// The chunk sizes a batch of N is cut into: at most two distinct ones.
std::vector<int64_t> chunk_sizes(const ConvGeometry& g, int64_t N) {
    const int64_t chunk = chunk_images(g, N);
    std::vector<int64_t> sizes{chunk};
    if (N % chunk) sizes.push_back(N % chunk);
    return sizes;
}

// Workspace layout. Weights are reordered once per call, at the start; each chunk of images then
// carves what it needs from the rest. In backward, a chunk's diff_dst copy serves both the weights
// and the data gradient when oneDNN wants the same layout for both (the usual case).
struct ForwardWorkspace {
    int64_t weights, per_chunk;
};
// Folded weights are reordered from the prepared ones, whatever layout the primitive wants.
ForwardWorkspace forward_workspace(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                                   Layouts layouts, Precision precision, bool folded, ForwardKind kind) {
    const auto copy = [&](const Forward& f) {
        return aligned(folded ? floats_of(f.pd.weights_desc()) : f.weights_copy);
    };
    const auto first = forward_for(g, chunk_images(g, N), bias, act, layouts, precision, kind);
    ForwardWorkspace l{copy(*first), 0};
    for (int64_t n : chunk_sizes(g, N)) {
        const auto f = forward_for(g, n, bias, act, layouts, precision, kind);
        const int64_t own_weights = f->pd.weights_desc() == first->pd.weights_desc() ? 0 : copy(*f);
        l.per_chunk = std::max(
            l.per_chunk, own_weights + aligned(f->src_copy) + aligned(f->dst_copy) + aligned(f->scratch));
    }
    return l;
}

struct BackwardWorkspace {
    int64_t weights, per_chunk;
};
BackwardWorkspace backward_workspace(const ConvGeometry& g, int64_t N, bool bias, Layouts layouts,
                                     Precision precision) {
    const auto first = backward_data_for(g, chunk_images(g, N), layouts, precision);
    BackwardWorkspace l{aligned(first->weights_copy), 0};
    for (int64_t n : chunk_sizes(g, N)) {
        const auto bw = backward_weights_for(g, n, bias, layouts, precision);
        const auto bd = backward_data_for(g, n, layouts, precision);
        const int64_t for_weights = aligned(bw->src_copy) + aligned(bw->diff_weights_floats) +
                                    aligned(bw->diff_weights_plain) + aligned(bw->diff_bias_floats) +
                                    aligned(bw->scratch);
        const int64_t for_data =
            (bd->pd.diff_dst_desc() == bw->pd.diff_dst_desc() ? 0 : aligned(bd->diff_dst_copy)) +
            (bd->pd.weights_desc() == first->pd.weights_desc() ? 0 : aligned(bd->weights_copy)) +
            aligned(bd->diff_src_floats) + aligned(bd->diff_src_user) + aligned(bd->scratch);
        l.per_chunk = std::max(l.per_chunk, aligned(bw->diff_dst_copy) + std::max(for_weights, for_data));
    }
    return l;
}

}  // namespace

int64_t conv2d_forward_workspace(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                                 Layouts layouts, Precision precision, bool folded, bool residual,
                                 bool inference) {
    const ForwardWorkspace l =
        forward_workspace(g, N, bias, act, layouts, precision, folded, {residual, inference});
    return l.weights + l.per_chunk;
}

int64_t conv2d_backward_workspace(const ConvGeometry& g, int64_t N, bool bias, Layouts layouts,
                                  Precision precision) {
    const BackwardWorkspace l = backward_workspace(g, N, bias, layouts, precision);
    return l.weights + l.per_chunk;
}

bool conv2d_fuses(const ActivationSpec& act) {
    return !over_channels(act.kind);
}

int64_t conv2d_prepared_floats(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                               Layouts layouts, Precision precision, bool folded, bool residual) {
    const ForwardKind kind{residual, true};
    const auto f = forward_for(g, chunk_images(g, N), bias, act, layouts, precision, kind);
    if (!folded) return f->weights_copy;
    return aligned(floats_of(f->pd.weights_desc())) +
           (keeps_plain_copy(g, precision, chunk_images(g, N)) ? aligned(g.OC) + g.OC * g.patch() : g.OC);
}

void conv2d_prepare_weights(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                            Layouts layouts, Precision precision, const float* w, const float* b,
                            const float* scale, const float* shift, float* prepared, bool residual) {
    const ForwardKind kind{residual, true};
    const auto f = forward_for(g, chunk_images(g, N), bias, act, layouts, precision, kind);
    std::vector<float> folded;  // once per runner, when it is made
    if (scale) {
        // scale·(w * x + b) + shift: each filter's weights times its channel's scale, a new bias.
        const int64_t per_filter = g.patch();
        folded.assign(w, w + g.OC * per_filter);
        float* folded_bias = prepared + aligned(floats_of(f->pd.weights_desc()));
        for (int64_t oc = 0; oc < g.OC; ++oc) {
            for (int64_t k = 0; k < per_filter; ++k)
                folded[static_cast<size_t>(oc * per_filter + k)] *= scale[oc];
            folded_bias[oc] = (b ? b[oc] : 0.0f) * scale[oc] + shift[oc];
        }
        w = folded.data();
    } else if (f->weights_copy == 0) {
        return;  // the primitive reads the weights as the layer keeps them
    }
    memory plain(plain_weights(g), cpu_engine(), const_cast<float*>(w)),
        converted(f->pd.weights_desc(), cpu_engine(), prepared);
    dnnl::reorder(plain, converted).execute(cpu_stream(), plain, converted);
    cpu_stream().wait();
    if (scale && keeps_plain_copy(g, precision, chunk_images(g, N)))
        std::copy(folded.begin(), folded.end(),
                  prepared + aligned(floats_of(f->pd.weights_desc())) + aligned(g.OC));
}

namespace {

// A forward call bound to its pointers: the reorders and the convolution of each chunk, in order,
// with their memory objects made once. An inference stream calls each layer with the same pointers
// every time (its arena does not move), and building the call anew, with ten memory objects and
// six cache lookups, cost more than a small layer's convolution itself at batch 1.
struct BoundForward {
    std::vector<Step> steps;
    float* means_workspace = nullptr;
    std::vector<float> own_workspace;  // where the caller's was too small for this call
};

// Everything a bound call depends on: the primitive's key, how the weights were prepared, and
// every pointer it reads or writes.
struct BoundKey {
    PrimitiveKey primitive;
    int64_t folded, prepared_batch, workspace_floats;
    const void* pointers[7];
    bool operator==(const BoundKey&) const = default;
};
static_assert(sizeof(BoundKey) == 35 * sizeof(int64_t), "BoundKey must have no padding to hash");

BoundForward bind_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                          const ActivationSpec& act, float* y, Workspace given, Layouts layouts,
                          Precision precision, PreparedWeights prepared, ForwardKind kind,
                          bool channel_means) {
    const bool residual = kind.residual;
    const int64_t chunk = chunk_images(g, N), image = g.C * g.H * g.W, out_image = g.OC * g.OH * g.OW;
    const bool bias = prepared.folded || b != nullptr;
    // The host finishes a chunk where oneDNN does not apply the activation, or a pool is fused in.
    const bool host_pass = channel_means || applied_after(act);
    BoundForward call;
    const auto first = forward_for(g, chunk, bias, act, layouts, precision, kind);
    const ForwardWorkspace layout =
        forward_workspace(g, N, bias, act, layouts, precision, prepared.folded, kind);
    const int64_t needed = layout.weights + layout.per_chunk +
                           (channel_means ? channel_means_workspace(chunk, g.OC, g.positions()) : 0);
    float* workspace = workspace_of(given, needed, call.own_workspace);
    call.means_workspace = workspace + layout.weights + layout.per_chunk;
    // Prepared for the same chunk size, they fit; for another, only if that primitive wants the same.
    const int64_t prepared_chunk = chunk_images(g, prepared.batch);
    const bool fits =
        prepared.data &&
        (prepared_chunk == chunk ||
         forward_for(g, prepared_chunk, bias, act, layouts, precision, kind)->pd.weights_desc() ==
             first->pd.weights_desc());
    // Folded weights exist only as prepared, their bias after them (conv2d_prepare_weights); others
    // are reordered from the layer's own.
    const auto at_prepared = forward_for(g, prepared_chunk, bias, act, layouts, precision, kind);
    const float* folded_bias = prepared.data + aligned(floats_of(at_prepared->pd.weights_desc()));
    const bool plain_copy = prepared.folded && keeps_plain_copy(g, precision, prepared_chunk);
    const memory::desc source_desc =
        prepared.folded && !plain_copy ? at_prepared->pd.weights_desc() : plain_weights(g);
    const float* source = !prepared.folded ? w : plain_copy ? folded_bias + aligned(g.OC) : prepared.data;
    if (prepared.folded) b = folded_bias;
    auto& steps = call.steps;
    const memory weights =
        fits ? memory(first->pd.weights_desc(), cpu_engine(), const_cast<float*>(prepared.data))
             : bound_layout(steps, first->pd.weights_desc(), source_desc, source, workspace);
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t n = std::min(chunk, N - n0);
        const auto f = forward_for(g, n, bias, act, layouts, precision, kind);
        Carver carve(workspace + layout.weights);
        const bool shared = f->pd.weights_desc() == first->pd.weights_desc();
        memory wei = shared ? weights
                            : bound_layout(steps, f->pd.weights_desc(), source_desc, source,
                                           carve.take(f->weights_copy));
        memory src = bound_layout(steps, f->pd.src_desc(), user_src(g, n, layouts.input), x + n0 * image,
                                  carve.take(f->src_copy));
        float* out = y + n0 * out_image;
        // The residual the sum post-op adds goes into the primitive's layout first, where that differs.
        memory dst = residual ? bound_layout(steps, f->pd.dst_desc(), user_dst(g, n, layouts.output), out,
                                             carve.take(f->dst_copy))
                              : memory(f->pd.dst_desc(), cpu_engine(),
                                       f->dst_copy == 0 ? out : carve.take(f->dst_copy));
        memory scratch(f->pd.scratchpad_desc(), cpu_engine(), carve.take(f->scratch));
        Step& convolution = steps.emplace_back(f->primitive)
                                .bind(DNNL_ARG_SRC, src)
                                .bind(DNNL_ARG_WEIGHTS, wei)
                                .bind(DNNL_ARG_DST, dst)
                                .bind(DNNL_ARG_SCRATCHPAD, scratch);
        if (b) convolution.bind(DNNL_ARG_BIAS, memory(plain_bias(g), cpu_engine(), const_cast<float*>(b)));
        if (f->dst_copy != 0) {
            memory user(user_dst(g, n, layouts.output), cpu_engine(), out);
            steps.emplace_back(made_for_every_thread([&] { return dnnl::reorder(dst, user); }))
                .bind(DNNL_ARG_FROM, dst)
                .bind(DNNL_ARG_TO, user);
        }
        if (host_pass) {
            steps.back().finishes_chunk = true;
            steps.back().first_image = n0;
            steps.back().images = n;
        }
    }
    return call;
}

// The calls kept bound on this thread (each inference stream runs on a thread of its own), at most
// kBoundCalls of them: a process that loads model after model starts afresh now and then. A call
// of more than kBoundChunks chunks is bound anew each time instead: its chunks are images too
// big for binding to matter, and keeping memory objects for each would grow with the batch.
constexpr size_t kBoundCalls = 1024;
constexpr int64_t kBoundChunks = 4;

template <class Bind>
const BoundForward& bound_forward(const BoundKey& key, int64_t chunks, BoundForward& unkept, Bind&& bind) {
    if (chunks > kBoundChunks) return unkept = bind();
    thread_local std::unordered_map<BoundKey, BoundForward, WordHash<BoundKey>> calls;
    if (auto it = calls.find(key); it != calls.end()) return it->second;
    if (calls.size() >= kBoundCalls) calls.clear();
    return calls.emplace(key, bind()).first->second;
}

}  // namespace

int64_t workspace_shortfalls() {
    return shortfalls.load();
}

void conv2d_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                    const ActivationSpec& act, float* y, Workspace workspace, Layouts layouts,
                    Precision precision, PreparedWeights prepared, bool residual, float* channel_means) {
    if (over_channels(act.kind) && layouts.output != Layout::nchw)
        throw ShapeError("conv: a " + act.str() + " over channels needs the (N, C, H, W) layout");
    const bool bias = prepared.folded || b != nullptr;
    // Prepared weights exist only at inference.
    const ForwardKind kind{residual, prepared.data != nullptr};
    const BoundKey key{key_of(PrimitiveKey::forward, g, N, bias, act, layouts, precision, kind),
                       prepared.folded ? 1 : 0,
                       prepared.batch,
                       workspace.floats,
                       {x, w, b, y, workspace.data, prepared.data, channel_means}};
    const int64_t chunk = chunk_images(g, N);
    BoundForward unkept;
    const BoundForward& call = bound_forward(key, (N + chunk - 1) / chunk, unkept, [&] {
        return bind_forward(g, N, x, w, b, act, y, workspace, layouts, precision, prepared, kind,
                            channel_means != nullptr);
    });
    const int64_t out_image = g.OC * g.OH * g.OW;
    for (const Step& step : call.steps) {
        step.run();
        if (!step.finishes_chunk) continue;
        cpu_stream().wait();
        float* out = y + step.first_image * out_image;
        if (channel_means)
            activate_and_average(applied_after(act) ? act : ActivationSpec{}, out, step.images, g.OC,
                                 g.positions(), layouts.output, channel_means + step.first_image * g.OC,
                                 call.means_workspace);
        else
            activation_forward(act, out, step.images * out_image);
    }
    cpu_stream().wait();
    if (over_channels(act.kind)) apply_activation(act, y, N, g.OC, g.positions());
}

void conv2d_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy, const float* w,
                     const ImageGradientSink& store_dx, float* dw, float* db, Workspace given,
                     Layouts layouts, Precision precision) {
    const int64_t chunk = chunk_images(g, N), image = g.C * g.H * g.W, out_image = g.OC * g.OH * g.OW;
    const auto first = backward_data_for(g, chunk, layouts, precision);
    const BackwardWorkspace layout = backward_workspace(g, N, db != nullptr, layouts, precision);
    std::vector<float> own_workspace;  // where the caller's is too small for this call
    float* workspace = workspace_of(given, layout.weights + layout.per_chunk, own_workspace);
    memory weights;
    if (store_dx) weights = as_layout(first->pd.weights_desc(), plain_weights(g), w, workspace);
    // Chunk by chunk: the weight gradient reads the chunk's x first, then its dx may overwrite it.
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t n = std::min(chunk, N - n0);
        const auto bw = backward_weights_for(g, n, db != nullptr, layouts, precision);
        Carver carve(workspace + layout.weights);
        memory diff_dst_w = as_layout(bw->pd.diff_dst_desc(), user_dst(g, n, layouts.output),
                                      dy + n0 * out_image, carve.take(bw->diff_dst_copy));
        float* rest = carve.take(0);
        {
            Carver region(rest);
            memory src = as_layout(bw->pd.src_desc(), user_src(g, n, layouts.input), x + n0 * image,
                                   region.take(bw->src_copy));
            float* dw_out = region.take(bw->diff_weights_floats);
            float* dw_plain = region.take(bw->diff_weights_plain);
            float* db_out = region.take(bw->diff_bias_floats);
            memory diff_wei(bw->pd.diff_weights_desc(), cpu_engine(), dw_out);
            memory scratch(bw->pd.scratchpad_desc(), cpu_engine(), region.take(bw->scratch));
            std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                                 {DNNL_ARG_DIFF_DST, diff_dst_w},
                                                 {DNNL_ARG_DIFF_WEIGHTS, diff_wei},
                                                 {DNNL_ARG_SCRATCHPAD, scratch}};
            if (db) args.emplace(DNNL_ARG_DIFF_BIAS, memory(plain_bias(g), cpu_engine(), db_out));
            bw->primitive.execute(cpu_stream(), args);
            if (bw->diff_weights_plain) {  // back to (OC, C/G, KH, KW)
                memory user(plain_weights(g), cpu_engine(), dw_plain);
                dnnl::reorder(diff_wei, user).execute(cpu_stream(), diff_wei, user);
                dw_out = dw_plain;
            }
            cpu_stream().wait();
            for (int64_t i = 0; i < g.OC * g.patch(); ++i) dw[i] += dw_out[i];
            if (db)
                for (int64_t oc = 0; oc < g.OC; ++oc) db[oc] += db_out[oc];
        }
        if (!store_dx) continue;
        const auto bd = backward_data_for(g, n, layouts, precision);
        Carver region(rest);  // the weight gradient's region is free again
        memory diff_dst = bd->pd.diff_dst_desc() == bw->pd.diff_dst_desc()
                              ? diff_dst_w
                              : as_layout(bd->pd.diff_dst_desc(), user_dst(g, n, layouts.output),
                                          dy + n0 * out_image, region.take(bd->diff_dst_copy));
        memory wei =
            bd->pd.weights_desc() == first->pd.weights_desc()
                ? weights
                : as_layout(bd->pd.weights_desc(), plain_weights(g), w, region.take(bd->weights_copy));
        memory diff_src(bd->pd.diff_src_desc(), cpu_engine(), region.take(bd->diff_src_floats));
        float* user_copy = region.take(bd->diff_src_user);
        memory scratch(bd->pd.scratchpad_desc(), cpu_engine(), region.take(bd->scratch));
        bd->primitive.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, diff_dst},
                                             {DNNL_ARG_WEIGHTS, wei},
                                             {DNNL_ARG_DIFF_SRC, diff_src},
                                             {DNNL_ARG_SCRATCHPAD, scratch}});
        const float* image_dx = static_cast<const float*>(diff_src.get_data_handle());
        if (bd->diff_src_user) {
            memory user(user_src(g, n, layouts.input), cpu_engine(), user_copy);
            dnnl::reorder(diff_src, user).execute(cpu_stream(), diff_src, user);
            image_dx = user_copy;
        }
        cpu_stream().wait();
        for (int64_t i = 0; i < n; ++i) store_dx(n0 + i, image_dx + i * image);
    }
}

void set_winograd_use(std::optional<WinogradUse> use) {
    chosen_winograd_use.store(use ? static_cast<int>(*use) : -1);
}

}  // namespace lenz::cpu
