#include "kernels/cpu/conv2d_int8.h"

#include <cstring>
#include <optional>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/conv2d_onednn.h"
#include "lenz/error.h"

namespace lenz::cpu {
namespace {

using namespace conv;

// A primitive bakes the output scales in (oneDNN 2.6's integer convolutions take no run-time
// scales), so they are part of what it is built for; none: a probe, for sizes, with scales of 1.
struct Int8Key {
    std::vector<int64_t> words;
    bool operator==(const Int8Key&) const = default;
};
struct Int8KeyHash {
    size_t operator()(const Int8Key& k) const {
        uint64_t h = 0x9e3779b97f4a7c15u;
        for (int64_t w : k.words) h = (h ^ static_cast<uint64_t>(w)) * 0xff51afd7ed558ccdu;
        return static_cast<size_t>(h ^ (h >> 32));
    }
};

int64_t bits(float v) {
    uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}

Int8Key key_of(const ConvGeometry& g, int64_t N, const ActivationSpec& act, Layouts layouts, const Int8Io& io,
               const float* output_scales) {
    Int8Key k{geometry_key(g, N)};
    for (int64_t word : {static_cast<int64_t>(act.kind), bits(act.alpha), static_cast<int64_t>(layouts.input),
                         static_cast<int64_t>(layouts.output), int64_t{io.in.is_unsigned}, bits(io.in.scale),
                         int64_t{io.in_stored}, io.out ? 1 + int64_t{io.out->is_unsigned} : 0,
                         io.out ? bits(io.out->scale) : 0})
        k.words.push_back(word);
    if (output_scales)
        for (int64_t oc = 0; oc < g.OC; ++oc) k.words.push_back(bits(output_scales[oc]));
    return k;
}

memory::data_type int8_type(const Int8Quant& q) {
    return q.is_unsigned ? memory::data_type::u8 : memory::data_type::s8;
}

// The caller's x and y, as it holds them.
memory::desc held_src(const ConvGeometry& g, int64_t N, Layouts layouts, const Int8Io& io) {
    return {dims4(N, g.C, g.H, g.W), io.in_stored ? int8_type(io.in) : f32, tag_of(layouts.input)};
}
memory::desc held_dst(const ConvGeometry& g, int64_t N, Layouts layouts, const Int8Io& io) {
    return {dims4(N, g.OC, g.OH, g.OW), io.out ? int8_type(*io.out) : f32, tag_of(layouts.output)};
}

struct Int8Forward {
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward primitive;
    // The caller's input to the primitive's int8 one, quantised on the way (none: read as held).
    std::optional<dnnl::reorder> quantize_src;
    int64_t src_copy, dst_copy, scratch;
};

std::shared_ptr<Int8Forward> forward_for(const ConvGeometry& g, int64_t N, const ActivationSpec& act,
                                         Layouts layouts, const Int8Io& io, const float* output_scales) {
    return cached<Int8Forward, Int8Key, Int8KeyHash>(key_of(g, N, act, layouts, io, output_scales), [&] {
        const Window w = window(g);
        const memory::desc src(dims4(N, g.C, g.H, g.W), int8_type(io.in), tag::nhwc),
            dst(dims4(N, g.OC, g.OH, g.OW), io.out ? int8_type(*io.out) : f32, tag::nhwc);
        const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                                dnnl::algorithm::convolution_direct, src,
                                                any_desc(weight_dims(g), memory::data_type::s8),
                                                plain_bias(g), dst, w.strides, w.dilates, w.pad_l, w.pad_r);
        dnnl::primitive_attr attr = user_scratchpad();
        attr.set_output_scales(1 << 1, output_scales ? std::vector<float>(output_scales, output_scales + g.OC)
                                                     : std::vector<float>(static_cast<size_t>(g.OC), 1.0f));
        // An int8 output is the activation's result divided by its own scale: the activation runs
        // on the float32 value (the output scales give it), its post-op scale then divides.
        if (fusable(act)) {
            dnnl::post_ops ops = post_ops_of(act);
            if (io.out) {
                dnnl::post_ops scaled;
                for (int k = 0; k < ops.len(); ++k) {
                    float scale, alpha, beta;
                    dnnl::algorithm alg;
                    ops.get_params_eltwise(k, scale, alg, alpha, beta);
                    scaled.append_eltwise(k + 1 == ops.len() ? 1.0f / io.out->scale : scale, alg, alpha,
                                          beta);
                }
                ops = scaled;
            }
            attr.set_post_ops(ops);
        }  // without one, the output scales divide by the output's scale (conv2d_int8_prepare)
        dnnl::convolution_forward::primitive_desc pd(d, attr, cpu_engine());
        std::optional<dnnl::reorder> quantize;
        const memory::desc held = held_src(g, N, layouts, io);
        if (!io.in_stored || held != pd.src_desc()) {
            dnnl::primitive_attr to_int8;
            to_int8.set_output_scales(0, {io.in_stored ? 1.0f : 1.0f / io.in.scale});
            quantize = dnnl::reorder(
                dnnl::reorder::primitive_desc(cpu_engine(), held, cpu_engine(), pd.src_desc(), to_int8));
        }
        return Int8Forward{pd,
                           dnnl::convolution_forward(pd),
                           quantize,
                           quantize ? floats_of(pd.src_desc()) : 0,
                           pd.dst_desc() == held_dst(g, N, layouts, io) ? 0 : floats_of(pd.dst_desc()),
                           floats_of(pd.scratchpad_desc())};
    });
}

memory::desc plain_int8_weights(const ConvGeometry& g) {
    return {weight_dims(g), memory::data_type::s8, g.G == 1 ? tag::oihw : tag::goihw};
}

// The prepared region: output scales, bias, the int8 weights as (OC, C/G, KH, KW), then as the
// primitive for the prepared batch's chunk reads them (blocked_floats of them).
struct PreparedLayout {
    int64_t bias, plain, blocked;
};
PreparedLayout prepared_layout(const ConvGeometry& g) {
    const int64_t bias = aligned(g.OC), plain = bias + aligned(g.OC);
    return {bias, plain, plain + int8_floats(g.OC * g.patch())};
}
int64_t blocked_floats(const Int8Forward& f) {
    return int8_floats(static_cast<int64_t>(f.pd.weights_desc().get_size()));
}
// Room for the weights of any primitive this convolution may get: a chunk of another size may get
// another kernel (brgconv for 167 images, jit_int8 for 89, measured) that reads them in another
// blocked order, with room for the s8 input's compensation. Blocked orders pad output and input
// channels to at most 64 each (a depthwise one pads the groups to 16), and compensation takes at
// most 16 bytes per output channel.
int64_t weights_room(const ConvGeometry& g) {
    const auto up = [](int64_t v, int64_t to) { return (v + to - 1) / to * to; };
    const int64_t taps = g.KH * g.KW;
    if (g.G > 1 && g.G == g.C && g.OC == g.C) return int8_floats(up(g.G, 16) * (taps + 16) + 256);
    return int8_floats(g.G * up(g.OC / g.G, 64) * (up(g.group_channels(), 64) * taps + 16) + 256);
}

}  // namespace

int64_t conv2d_int8_prepared_floats(const ConvGeometry& g) {
    // The primitive built with the real scales might read the weights in another order than a
    // probe's: room for any.
    return prepared_layout(g).blocked + weights_room(g);
}

void conv2d_int8_prepare(const ConvGeometry& g, int64_t N, const ActivationSpec& act, Layouts layouts,
                         const Int8Io& io, const float* w, const float* b, const float* scale,
                         const float* shift, float* prepared) {
    const PreparedLayout p = prepared_layout(g);
    const int64_t patch = g.patch();
    // scale·(w * x + b) + shift: each filter's weights times its channel's scale, a new bias.
    std::vector<float> folded(w, w + g.OC * patch), bias(static_cast<size_t>(g.OC));
    for (int64_t oc = 0; oc < g.OC; ++oc) {
        const float s = scale ? scale[oc] : 1.0f;
        for (int64_t k = 0; k < patch; ++k) folded[static_cast<size_t>(oc * patch + k)] *= s;
        bias[static_cast<size_t>(oc)] = (b ? b[oc] : 0.0f) * s + (shift ? shift[oc] : 0.0f);
    }
    float* output_scales = prepared;
    std::vector<float> weight_scales(static_cast<size_t>(g.OC));
    int8_row_scales(folded.data(), g.OC, patch, weight_scales.data(), int8_weight_levels());
    auto* plain = reinterpret_cast<int8_t*>(prepared + p.plain);
    quantize_rows(folded.data(), g.OC, patch, weight_scales.data(), plain);
    // Without an activation, an int8 output's own scale divides in the output scales.
    const float out_scale = io.out && !fusable(act) ? io.out->scale : 1.0f;
    for (int64_t oc = 0; oc < g.OC; ++oc) {
        const float sums = io.in.scale * weight_scales[static_cast<size_t>(oc)];  // of Σ q_x·q_w
        output_scales[oc] = sums / out_scale;
        // oneDNN scales the bias with the sums: (Σ q_x·q_w + bias) · output scale.
        prepared[p.bias + oc] = bias[static_cast<size_t>(oc)] / sums;
    }
    const auto f = forward_for(g, chunk_images(g, N), act, layouts, io, output_scales);
    if (blocked_floats(*f) > weights_room(g))
        throw Error("internal: oneDNN's int8 weights take " + std::to_string(blocked_floats(*f)) +
                    " floats, more than the " + std::to_string(weights_room(g)) + " reserved for them");
    memory from(plain_int8_weights(g), cpu_engine(), plain),
        to(f->pd.weights_desc(), cpu_engine(), prepared + p.blocked);
    dnnl::reorder(from, to).execute(cpu_stream(), from, to);  // computes the s8 input's compensation too
    cpu_stream().wait();
}

int64_t conv2d_int8_workspace(const ConvGeometry& g, int64_t N, const ActivationSpec& act, Layouts layouts,
                              const Int8Io& io) {
    int64_t per_chunk = 0;
    for (int64_t n : {chunk_images(g, N), N % chunk_images(g, N)}) {
        if (n == 0) continue;
        const auto f = forward_for(g, n, act, layouts, io, nullptr);
        per_chunk = std::max(per_chunk, aligned(f->src_copy) + aligned(f->dst_copy) + aligned(f->scratch));
    }
    // A chunk whose primitive reads the weights in another order gets them reordered first.
    return weights_room(g) + per_chunk;
}

void conv2d_int8_forward(const ConvGeometry& g, int64_t N, const float* x, const ActivationSpec& act,
                         float* y, float* workspace, Layouts layouts, const Int8Io& io, const float* prepared,
                         int64_t prepared_batch) {
    if (over_channels(act.kind) && (layouts.output != Layout::nchw || io.out))
        throw ShapeError("conv: a " + act.str() + " over channels needs the (N, C, H, W) layout in float32");
    const PreparedLayout p = prepared_layout(g);
    const float* output_scales = prepared;
    const auto at_prepared = forward_for(g, chunk_images(g, prepared_batch), act, layouts, io, output_scales);
    const int64_t chunk = chunk_images(g, N);
    // Bytes per image of x and y as held: int8 takes one byte an element, float32 four.
    const int64_t image = g.C * g.H * g.W * (io.in_stored ? 1 : 4),
                  out_image = g.OC * g.OH * g.OW * (io.out ? 1 : 4);
    const memory bias(plain_bias(g), cpu_engine(), const_cast<float*>(prepared + p.bias));
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t n = std::min(chunk, N - n0);
        const auto f = forward_for(g, n, act, layouts, io, output_scales);
        Carver carve(workspace);
        float* weights_copy = carve.take(weights_room(g));
        memory wei(f->pd.weights_desc(), cpu_engine(), const_cast<float*>(prepared + p.blocked));
        if (f->pd.weights_desc() != at_prepared->pd.weights_desc()) {
            if (blocked_floats(*f) > weights_room(g))
                throw Error("internal: oneDNN's int8 weights take " + std::to_string(blocked_floats(*f)) +
                            " floats, more than the " + std::to_string(weights_room(g)) +
                            " reserved for them");
            memory plain(plain_int8_weights(g), cpu_engine(), const_cast<float*>(prepared + p.plain));
            wei = memory(f->pd.weights_desc(), cpu_engine(), weights_copy);
            dnnl::reorder(plain, wei).execute(cpu_stream(), plain, wei);
        }
        memory held_x(held_src(g, n, layouts, io), cpu_engine(),
                      const_cast<char*>(reinterpret_cast<const char*>(x)) + n0 * image);
        memory src = held_x;
        if (f->quantize_src) {
            src = memory(f->pd.src_desc(), cpu_engine(), carve.take(f->src_copy));
            f->quantize_src->execute(cpu_stream(), held_x, src);
        }
        char* out = reinterpret_cast<char*>(y) + n0 * out_image;
        memory dst(f->pd.dst_desc(), cpu_engine(),
                   f->dst_copy == 0 ? static_cast<void*>(out) : carve.take(f->dst_copy));
        memory scratch(f->pd.scratchpad_desc(), cpu_engine(), carve.take(f->scratch));
        f->primitive.execute(cpu_stream(), {{DNNL_ARG_SRC, src},
                                            {DNNL_ARG_WEIGHTS, wei},
                                            {DNNL_ARG_BIAS, bias},
                                            {DNNL_ARG_DST, dst},
                                            {DNNL_ARG_SCRATCHPAD, scratch}});
        if (f->dst_copy != 0) {
            memory held(held_dst(g, n, layouts, io), cpu_engine(), out);
            dnnl::reorder(dst, held).execute(cpu_stream(), dst, held);
        }
    }
    cpu_stream().wait();
    if (over_channels(act.kind)) apply_activation(act, y, N, g.OC, g.positions());
}

}  // namespace lenz::cpu
