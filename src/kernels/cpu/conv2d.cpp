#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <cstdio>
#include <dnnl.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/activation.h"

namespace lenz::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

// Batches run in chunks of images holding at most this many input (or output) floats (8 MB, or one image),
// so that blocked copies and the plain copy of dx stay small whatever the batch: the workspace
// then never grows with the batch, and a chunk is still big enough to keep the cores busy.
constexpr int64_t kChunkFloats = int64_t{1} << 21;

dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}
dnnl::stream& cpu_stream() {
    static dnnl::stream stream(cpu_engine());
    return stream;
}

memory::dims dims4(int64_t a, int64_t b, int64_t c, int64_t d) {
    return {a, b, c, d};
}
memory::desc plain_src(const ConvGeometry& g, int64_t N) {
    return {dims4(N, g.C, g.H, g.W), f32, tag::nchw};
}
memory::desc plain_dst(const ConvGeometry& g, int64_t N) {
    return {dims4(N, g.OC, g.OH, g.OW), f32, tag::nchw};
}
memory::desc plain_weights(const ConvGeometry& g) {
    return {dims4(g.OC, g.C, g.KH, g.KW), f32, tag::oihw};
}
memory::desc plain_bias(const ConvGeometry& g) {
    return {{g.OC}, f32, tag::x};
}
memory::desc any_desc(const memory::dims& d) {
    return {d, f32, tag::any};
}

struct Window {
    memory::dims strides, pad_l, pad_r;
};
Window window(const ConvGeometry& g) {
    const int64_t pb = (g.OH - 1) * g.SH + g.KH - g.H - g.PT, pr = (g.OW - 1) * g.SW + g.KW - g.W - g.PL;
    return {{g.SH, g.SW}, {g.PT, g.PL}, {std::max<int64_t>(pb, 0), std::max<int64_t>(pr, 0)}};
}

int64_t floats_of(const memory::desc& d) {
    return static_cast<int64_t>((d.get_size() + 3) / 4);
}

// Floats to reserve for `wanted` when the data lives as `plain`: nothing if they are the same layout.
int64_t copy_floats(const memory::desc& wanted, const memory::desc& plain) {
    return wanted == plain ? 0 : floats_of(wanted);
}

std::string key_of(const char* what, const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act) {
    char buf[256];
    std::snprintf(
        buf, sizeof buf, "%s %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %d %d %g", what,
        (long long)N, (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.OC, (long long)g.OH,
        (long long)g.OW, (long long)g.KH, (long long)g.KW, (long long)g.SH, (long long)g.SW, (long long)g.PT,
        (long long)g.PL, bias ? 1 : 0, static_cast<int>(act.kind), static_cast<double>(act.alpha));
    return buf;
}

dnnl::primitive_attr user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // so our memory plan holds it
    return attr;
}

bool fusable(const ActivationSpec& act) {
    return act.kind != Activation::softmax && act.kind != Activation::none;
}

dnnl::algorithm eltwise_of(const ActivationSpec& act) {
    switch (act.kind) {
        case Activation::sigmoid:
            return dnnl::algorithm::eltwise_logistic;
        case Activation::tanh:
            return dnnl::algorithm::eltwise_tanh;
        default:
            return dnnl::algorithm::eltwise_relu;  // relu, and leaky relu with alpha
    }
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvGeometry& g, int64_t N, bool bias,
                                                     const ActivationSpec& act) {
    const Window w = window(g);
    const auto d = bias
                       ? dnnl::convolution_forward::desc(
                             dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                             any_desc(dims4(N, g.C, g.H, g.W)), any_desc(dims4(g.OC, g.C, g.KH, g.KW)),
                             plain_bias(g), any_desc(dims4(N, g.OC, g.OH, g.OW)), w.strides, w.pad_l, w.pad_r)
                       : dnnl::convolution_forward::desc(
                             dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                             any_desc(dims4(N, g.C, g.H, g.W)), any_desc(dims4(g.OC, g.C, g.KH, g.KW)),
                             any_desc(dims4(N, g.OC, g.OH, g.OW)), w.strides, w.pad_l, w.pad_r);
    dnnl::primitive_attr attr = user_scratchpad();
    if (fusable(act)) {
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, eltwise_of(act), act.kind == Activation::leaky_relu ? act.alpha : 0.0f,
                           0.0f);
        attr.set_post_ops(ops);
    }
    return {d, attr, cpu_engine()};
}

// Regions are carved at 64-byte boundaries.
int64_t aligned(int64_t floats) {
    return (floats + 15) / 16 * 16;
}

struct Forward {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward primitive;
    int64_t src_copy, weights_copy, dst_copy, scratch;
};

struct BackwardData {
    dnnl::convolution_backward_data::primitive_desc pd;
    dnnl::convolution_backward_data primitive;
    int64_t diff_dst_copy, weights_copy, diff_src_floats, diff_src_plain, scratch;
};

struct BackwardWeights {
    dnnl::convolution_backward_weights::primitive_desc pd;
    dnnl::convolution_backward_weights primitive;
    int64_t src_copy, diff_dst_copy, diff_weights_floats, diff_weights_plain, diff_bias_floats, scratch;
};

// Primitives are built once per shape and batch, then reused: building one costs far more than
// running a small convolution.
template <class T>
T& cached(const std::string& key, const std::function<T()>& make) {
    static std::map<std::string, std::unique_ptr<T>> cache;
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, std::make_unique<T>(make())).first;
    return *it->second;
}

Forward& forward_for(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act) {
    return cached<Forward>(key_of("fwd", g, N, bias, act), [&] {
        auto pd = forward_pd(g, N, bias, act);
        return Forward{pd,
                       dnnl::convolution_forward(pd),
                       copy_floats(pd.src_desc(), plain_src(g, N)),
                       copy_floats(pd.weights_desc(), plain_weights(g)),
                       copy_floats(pd.dst_desc(), plain_dst(g, N)),
                       floats_of(pd.scratchpad_desc())};
    });
}

BackwardData& backward_data_for(const ConvGeometry& g, int64_t N) {
    return cached<BackwardData>(key_of("bwd_data", g, N, false, {}), [&] {
        const Window w = window(g);
        dnnl::convolution_backward_data::desc d(
            dnnl::algorithm::convolution_direct, any_desc(dims4(N, g.C, g.H, g.W)),
            any_desc(dims4(g.OC, g.C, g.KH, g.KW)), any_desc(dims4(N, g.OC, g.OH, g.OW)), w.strides, w.pad_l,
            w.pad_r);
        dnnl::convolution_backward_data::primitive_desc pd(d, user_scratchpad(), cpu_engine(),
                                                           forward_pd(g, N, false, {}));
        return BackwardData{pd,
                            dnnl::convolution_backward_data(pd),
                            copy_floats(pd.diff_dst_desc(), plain_dst(g, N)),
                            copy_floats(pd.weights_desc(), plain_weights(g)),
                            floats_of(pd.diff_src_desc()),
                            copy_floats(pd.diff_src_desc(), plain_src(g, N)),
                            floats_of(pd.scratchpad_desc())};
    });
}

BackwardWeights& backward_weights_for(const ConvGeometry& g, int64_t N, bool bias) {
    return cached<BackwardWeights>(key_of("bwd_weights", g, N, bias, {}), [&] {
        const Window w = window(g);
        const auto src = any_desc(dims4(N, g.C, g.H, g.W)), wei = any_desc(dims4(g.OC, g.C, g.KH, g.KW)),
                   dst = any_desc(dims4(N, g.OC, g.OH, g.OW));
        const auto d =
            bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, wei,
                                                            plain_bias(g), dst, w.strides, w.pad_l, w.pad_r)
                 : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, wei,
                                                            dst, w.strides, w.pad_l, w.pad_r);
        dnnl::convolution_backward_weights::primitive_desc pd(d, user_scratchpad(), cpu_engine(),
                                                              forward_pd(g, N, bias, {}));
        return BackwardWeights{pd,
                               dnnl::convolution_backward_weights(pd),
                               copy_floats(pd.src_desc(), plain_src(g, N)),
                               copy_floats(pd.diff_dst_desc(), plain_dst(g, N)),
                               floats_of(pd.diff_weights_desc()),
                               copy_floats(pd.diff_weights_desc(), plain_weights(g)),
                               bias ? g.OC : 0,
                               floats_of(pd.scratchpad_desc())};
    });
}

// Carves consecutive regions out of the workspace.
class Carver {
  public:
    explicit Carver(float* base) : next_(base) {}
    float* take(int64_t floats) {
        float* p = next_;
        next_ += (floats + 15) / 16 * 16;  // keep 64-byte alignment
        return p;
    }

  private:
    float* next_;
};

// A memory object for `wanted` holding the data at `plain_ptr` (laid out as `plain`), reordered
// into `copy` first when the layouts differ.
memory as_layout(const memory::desc& wanted, const memory::desc& plain, const float* plain_ptr, float* copy) {
    memory user(plain, cpu_engine(), const_cast<float*>(plain_ptr));
    if (wanted == plain) return user;
    memory blocked(wanted, cpu_engine(), copy);
    dnnl::reorder(user, blocked).execute(cpu_stream(), user, blocked);
    return blocked;
}

int64_t chunk_images(const ConvGeometry& g, int64_t N) {
    return std::clamp<int64_t>(kChunkFloats / std::max(g.C * g.H * g.W, g.OC * g.OH * g.OW), 1, N);
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
struct ForwardLayout {
    int64_t weights, per_chunk;
};
ForwardLayout forward_layout(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act) {
    const Forward& first = forward_for(g, chunk_images(g, N), bias, act);
    ForwardLayout l{aligned(first.weights_copy), 0};
    for (int64_t n : chunk_sizes(g, N)) {
        const Forward& f = forward_for(g, n, bias, act);
        const int64_t own_weights =
            f.pd.weights_desc() == first.pd.weights_desc() ? 0 : aligned(f.weights_copy);
        l.per_chunk = std::max(l.per_chunk,
                               own_weights + aligned(f.src_copy) + aligned(f.dst_copy) + aligned(f.scratch));
    }
    return l;
}

struct BackwardLayout {
    int64_t weights, per_chunk;
};
BackwardLayout backward_layout(const ConvGeometry& g, int64_t N, bool bias) {
    const BackwardData& first = backward_data_for(g, chunk_images(g, N));
    BackwardLayout l{aligned(first.weights_copy), 0};
    for (int64_t n : chunk_sizes(g, N)) {
        const BackwardWeights& bw = backward_weights_for(g, n, bias);
        const BackwardData& bd = backward_data_for(g, n);
        const int64_t for_weights = aligned(bw.src_copy) + aligned(bw.diff_weights_floats) +
                                    aligned(bw.diff_weights_plain) + aligned(bw.diff_bias_floats) +
                                    aligned(bw.scratch);
        const int64_t for_data =
            (bd.pd.diff_dst_desc() == bw.pd.diff_dst_desc() ? 0 : aligned(bd.diff_dst_copy)) +
            (bd.pd.weights_desc() == first.pd.weights_desc() ? 0 : aligned(bd.weights_copy)) +
            aligned(bd.diff_src_floats) + aligned(bd.diff_src_plain) + aligned(bd.scratch);
        l.per_chunk = std::max(l.per_chunk, aligned(bw.diff_dst_copy) + std::max(for_weights, for_data));
    }
    return l;
}

}  // namespace

int64_t conv2d_forward_workspace(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act) {
    const ForwardLayout l = forward_layout(g, N, bias, act);
    return l.weights + l.per_chunk;
}

int64_t conv2d_backward_workspace(const ConvGeometry& g, int64_t N, bool bias) {
    const BackwardLayout l = backward_layout(g, N, bias);
    return l.weights + l.per_chunk;
}

void conv2d_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                    const ActivationSpec& act, float* y, float* workspace) {
    const int64_t chunk = chunk_images(g, N), image = g.C * g.H * g.W, out_image = g.OC * g.OH * g.OW;
    const Forward& first = forward_for(g, chunk, b != nullptr, act);
    const ForwardLayout layout = forward_layout(g, N, b != nullptr, act);
    const memory weights = as_layout(first.pd.weights_desc(), plain_weights(g), w, workspace);
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t n = std::min(chunk, N - n0);
        Forward& f = forward_for(g, n, b != nullptr, act);
        Carver carve(workspace + layout.weights);
        const bool shared = f.pd.weights_desc() == first.pd.weights_desc();
        memory wei = shared ? weights
                            : as_layout(f.pd.weights_desc(), plain_weights(g), w, carve.take(f.weights_copy));
        memory src = as_layout(f.pd.src_desc(), plain_src(g, n), x + n0 * image, carve.take(f.src_copy));
        float* out = y + n0 * out_image;
        memory dst(f.pd.dst_desc(), cpu_engine(), f.dst_copy == 0 ? out : carve.take(f.dst_copy));
        memory scratch(f.pd.scratchpad_desc(), cpu_engine(), carve.take(f.scratch));
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                             {DNNL_ARG_WEIGHTS, wei},
                                             {DNNL_ARG_DST, dst},
                                             {DNNL_ARG_SCRATCHPAD, scratch}};
        if (b) args.emplace(DNNL_ARG_BIAS, memory(plain_bias(g), cpu_engine(), const_cast<float*>(b)));
        f.primitive.execute(cpu_stream(), args);
        if (f.dst_copy != 0) {
            memory user(plain_dst(g, n), cpu_engine(), out);
            dnnl::reorder(dst, user).execute(cpu_stream(), dst, user);
        }
    }
    cpu_stream().wait();
    if (act.kind == Activation::softmax) softmax_forward(y, N, g.OC, g.positions());
}

void conv2d_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy, const float* w,
                     const ImageGradientSink& store_dx, float* dw, float* db, float* workspace) {
    const int64_t chunk = chunk_images(g, N), image = g.C * g.H * g.W, out_image = g.OC * g.OH * g.OW;
    const BackwardData& first = backward_data_for(g, chunk);
    const BackwardLayout layout = backward_layout(g, N, db != nullptr);
    memory weights;
    if (store_dx) weights = as_layout(first.pd.weights_desc(), plain_weights(g), w, workspace);
    // Chunk by chunk: the weight gradient reads the chunk's x first, then its dx may overwrite it.
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t n = std::min(chunk, N - n0);
        BackwardWeights& bw = backward_weights_for(g, n, db != nullptr);
        Carver carve(workspace + layout.weights);
        memory diff_dst_w = as_layout(bw.pd.diff_dst_desc(), plain_dst(g, n), dy + n0 * out_image,
                                      carve.take(bw.diff_dst_copy));
        float* rest = carve.take(0);
        {
            Carver region(rest);
            memory src =
                as_layout(bw.pd.src_desc(), plain_src(g, n), x + n0 * image, region.take(bw.src_copy));
            float* dw_out = region.take(bw.diff_weights_floats);
            float* dw_plain = region.take(bw.diff_weights_plain);
            float* db_out = region.take(bw.diff_bias_floats);
            memory diff_wei(bw.pd.diff_weights_desc(), cpu_engine(), dw_out);
            memory scratch(bw.pd.scratchpad_desc(), cpu_engine(), region.take(bw.scratch));
            std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src},
                                                 {DNNL_ARG_DIFF_DST, diff_dst_w},
                                                 {DNNL_ARG_DIFF_WEIGHTS, diff_wei},
                                                 {DNNL_ARG_SCRATCHPAD, scratch}};
            if (db) args.emplace(DNNL_ARG_DIFF_BIAS, memory(plain_bias(g), cpu_engine(), db_out));
            bw.primitive.execute(cpu_stream(), args);
            if (bw.diff_weights_plain) {  // back to (OC, C, KH, KW)
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
        BackwardData& bd = backward_data_for(g, n);
        Carver region(rest);  // the weight gradient's region is free again
        memory diff_dst = bd.pd.diff_dst_desc() == bw.pd.diff_dst_desc()
                              ? diff_dst_w
                              : as_layout(bd.pd.diff_dst_desc(), plain_dst(g, n), dy + n0 * out_image,
                                          region.take(bd.diff_dst_copy));
        memory wei = bd.pd.weights_desc() == first.pd.weights_desc()
                         ? weights
                         : as_layout(bd.pd.weights_desc(), plain_weights(g), w, region.take(bd.weights_copy));
        memory diff_src(bd.pd.diff_src_desc(), cpu_engine(), region.take(bd.diff_src_floats));
        float* plain_copy = region.take(bd.diff_src_plain);
        memory scratch(bd.pd.scratchpad_desc(), cpu_engine(), region.take(bd.scratch));
        bd.primitive.execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, diff_dst},
                                            {DNNL_ARG_WEIGHTS, wei},
                                            {DNNL_ARG_DIFF_SRC, diff_src},
                                            {DNNL_ARG_SCRATCHPAD, scratch}});
        const float* plain = static_cast<const float*>(diff_src.get_data_handle());
        if (bd.diff_src_plain) {
            memory user(plain_src(g, n), cpu_engine(), plain_copy);
            dnnl::reorder(diff_src, user).execute(cpu_stream(), diff_src, user);
            plain = plain_copy;
        }
        cpu_stream().wait();
        for (int64_t i = 0; i < n; ++i) store_dx(n0 + i, plain + i * image);
    }
}

}  // namespace lenz::cpu
