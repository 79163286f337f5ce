// What the oneDNN convolutions share, float32, bf16 and int8 alike: the descriptors of the
// caller's tensors, the window, the fused activation, and how a batch is cut into chunks and the
// workspace into regions.
#pragma once
#include <algorithm>
#include <dnnl.hpp>
#include <vector>

#include "core/conv_geometry.h"
#include "core/layout.h"
#include "kernels/cpu/onednn.h"
#include "lenz/activation.h"

namespace lenz::cpu::conv {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

// Batches run in chunks of images holding at most this many input (or output) floats (8 MB, or one image),
// so that reordered copies and the copy of dx stay small whatever the batch: the workspace
// then never grows with the batch, and a chunk is still big enough to keep the cores busy.
constexpr int64_t kChunkFloats = int64_t{1} << 21;

inline memory::dims dims4(int64_t a, int64_t b, int64_t c, int64_t d) {
    return {a, b, c, d};
}
// The caller's activations, laid out as the engine keeps them.
inline tag tag_of(Layout layout) {
    return layout == Layout::nhwc ? tag::nhwc : tag::nchw;
}
inline memory::desc user_src(const ConvGeometry& g, int64_t N, Layout layout) {
    return {dims4(N, g.C, g.H, g.W), f32, tag_of(layout)};
}
inline memory::desc user_dst(const ConvGeometry& g, int64_t N, Layout layout) {
    return {dims4(N, g.OC, g.OH, g.OW), f32, tag_of(layout)};
}
// Weights as the layer keeps them, (OC, C/G, KH, KW); oneDNN names the groups as a dimension of their own.
inline memory::dims weight_dims(const ConvGeometry& g) {
    if (g.G == 1) return dims4(g.OC, g.C, g.KH, g.KW);
    return {g.G, g.OC / g.G, g.group_channels(), g.KH, g.KW};
}
inline memory::desc plain_weights(const ConvGeometry& g) {
    return {weight_dims(g), f32, g.G == 1 ? tag::oihw : tag::goihw};
}
inline memory::desc plain_bias(const ConvGeometry& g) {
    return {{g.OC}, f32, tag::x};
}
inline memory::desc any_desc(const memory::dims& d, memory::data_type type = f32) {
    return {d, type, tag::any};
}

// oneDNN counts dilation from 0 (taps next to each other), Lenz and PyTorch from 1.
struct Window {
    memory::dims strides, dilates, pad_l, pad_r;
};
inline Window window(const ConvGeometry& g) {
    const int64_t pb = (g.OH - 1) * g.SH + g.span_h() - g.H - g.PT,
                  pr = (g.OW - 1) * g.SW + g.span_w() - g.W - g.PL;
    return {{g.SH, g.SW},
            {g.DH - 1, g.DW - 1},
            {g.PT, g.PL},
            {std::max<int64_t>(pb, 0), std::max<int64_t>(pr, 0)}};
}

inline dnnl::primitive_attr user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // so our memory plan holds it
    return attr;
}

// The batch and geometry as integers, for the keys that primitives are cached under.
inline std::vector<int64_t> geometry_key(const ConvGeometry& g, int64_t N) {
    return {N, g.C, g.H, g.W, g.OC, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.PT, g.PL, g.G, g.DH, g.DW};
}

// Regions are carved at 64-byte boundaries.
inline int64_t aligned(int64_t floats) {
    return (floats + 15) / 16 * 16;
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

inline int64_t chunk_images(const ConvGeometry& g, int64_t N) {
    return std::clamp<int64_t>(kChunkFloats / std::max(g.C * g.H * g.W, g.OC * g.OH * g.OW), 1, N);
}

}  // namespace lenz::cpu::conv
