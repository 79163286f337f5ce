#include "formats/onnx_common.h"

#include <algorithm>
#include <sstream>

#include "layers/window.h"
#include "lenz/layers.h"

namespace lenz::onnx_io {

Window window_of(const Layer& layer, int64_t kh, int64_t kw, int64_t sh, int64_t sw, const Padding& padding,
                 bool pooling, int64_t dh, int64_t dw) {
    // Pixels: the same on every side, and ONNX's floor((n + 2P - span) / s) + 1 is Lenz's formula.
    if (padding.mode == PaddingMode::pixels)
        return {{kh, kw}, {sh, sw}, {padding.h, padding.w, padding.h, padding.w}};
    const Shape in = layer.input_shape();
    const ConvGeometry g = resolve_window({kh, kw, sh, sw, padding, pooling, dh, dw}, in, 1, layer.kind());
    const int64_t bottom = std::max<int64_t>((g.OH - 1) * sh + g.span_h() - in.h - g.PT, 0);
    const int64_t right = std::max<int64_t>((g.OW - 1) * sw + g.span_w() - in.w - g.PL, 0);
    return {{kh, kw}, {sh, sw}, {g.PT, g.PL, bottom, right}};
}

std::vector<int64_t> window_numbers(const Layer& layer) {
    const LayerConfig config = layer.config();
    Window w;
    if (const auto* c = std::get_if<Conv2dConfig>(&config))
        w = window_of(layer, c->kernel_h, c->kernel_w, c->stride_h, c->stride_w, c->padding, false);
    else if (const auto* p = std::get_if<Pool2dConfig>(&config))
        w = window_of(layer, p->kernel_h, p->kernel_w, p->stride_h ? p->stride_h : p->kernel_h,
                      p->stride_w ? p->stride_w : p->kernel_w, p->padding, true);
    std::vector<int64_t> all = w.kernel;
    all.insert(all.end(), w.strides.begin(), w.strides.end());
    all.insert(all.end(), w.pads.begin(), w.pads.end());
    return all;
}

std::string spec_without_padding(const Layer& layer) {
    std::istringstream in(layer.spec());
    std::string word, out;
    while (in >> word)
        if (word.rfind("padding=", 0) != 0) out += (out.empty() ? "" : " ") + word;
    return out;
}

}  // namespace lenz::onnx_io
