#include "layers/window.h"

#include <algorithm>

#include "lenz/error.h"

namespace lenz {

std::string Padding::str() const {
    switch (mode) {
        case PaddingMode::valid:
            return "valid";
        case PaddingMode::same:
            return "same";
        case PaddingMode::pixels:
            return h == w ? std::to_string(h) : std::to_string(h) + "x" + std::to_string(w);
    }
    return "";
}

std::string size_pair(int64_t h, int64_t w) {
    return std::to_string(h) + "x" + std::to_string(w);
}

void check_input(Shape in, const std::string& layer) {
    if (in.h <= 0 || in.w <= 0 || in.c <= 0)
        throw ShapeError(layer + ": input " + in.str() + " has a zero or negative size");
    in.elements();  // throws on overflow
}

namespace {

struct Axis {
    int64_t out, pad_before;
};

// k: the kernel's taps, d: their spacing; the window spans d * (k - 1) + 1 pixels.
Axis resolve_axis(int64_t n, int64_t taps, int64_t d, int64_t s, const Padding& p, int64_t pixels,
                  const std::string& layer, const std::string& padded_desc, bool pooling, bool ceil) {
    if (taps <= 0 || s <= 0) throw ShapeError(layer + ": kernel and stride must be positive");
    if (d <= 0) throw ShapeError(layer + ": dilation must be positive");
    if (taps > kMaxDimension || s > kMaxDimension || d > kMaxDimension)
        throw ShapeError(layer + ": kernel, stride or dilation larger than 2^24");
    const int64_t k = d * (taps - 1) + 1;
    switch (p.mode) {
        case PaddingMode::same: {
            const int64_t out = (n + s - 1) / s;
            const int64_t total = std::max<int64_t>((out - 1) * s + k - n, 0);
            return {out, total / 2};
        }
        case PaddingMode::valid:
        case PaddingMode::pixels: {
            const int64_t pad = p.mode == PaddingMode::pixels ? pixels : 0;
            if (pad < 0) throw ShapeError(layer + ": padding must not be negative");
            if (pooling && pad >= k)
                throw ShapeError(layer + ": padding " + std::to_string(pad) +
                                 " must be smaller than the window " + std::to_string(k) +
                                 " (a window of padding only has nothing to pool)");
            const int64_t padded = n + 2 * pad;
            if (padded < k) throw ShapeError(padded_desc);
            if (!ceil) return {(padded - k) / s + 1, pad};
            // Rounded up, less a last window that would start past the input and its padding before.
            int64_t out = (padded - k + s - 1) / s + 1;
            if ((out - 1) * s >= n + pad) --out;
            return {out, pad};
        }
    }
    return {0, 0};
}

}  // namespace

ConvGeometry resolve_window(const WindowSpec& spec, Shape in, int64_t out_channels,
                            const std::string& layer) {
    check_input(in, layer);
    const bool pooling = spec.pooling;
    const int64_t ph = spec.padding.mode == PaddingMode::pixels ? spec.padding.h : 0;
    const int64_t pw = spec.padding.mode == PaddingMode::pixels ? spec.padding.w : 0;
    const bool dilated = spec.dilation_h != 1 || spec.dilation_w != 1;
    const std::string too_big = layer + ": kernel " + size_pair(spec.kernel_h, spec.kernel_w) +
                                (dilated ? " (dilated to " +
                                               size_pair(spec.dilation_h * (spec.kernel_h - 1) + 1,
                                                         spec.dilation_w * (spec.kernel_w - 1) + 1) +
                                               ")"
                                         : "") +
                                " is larger than its padded input " +
                                size_pair(in.h + 2 * ph, in.w + 2 * pw) + " (padding=" + spec.padding.str() +
                                ")";
    const Axis ah = resolve_axis(in.h, spec.kernel_h, spec.dilation_h, spec.stride_h, spec.padding, ph, layer,
                                 too_big, pooling, spec.ceil);
    const Axis aw = resolve_axis(in.w, spec.kernel_w, spec.dilation_w, spec.stride_w, spec.padding, pw, layer,
                                 too_big, pooling, spec.ceil);
    ConvGeometry g{};
    g.C = in.c;
    g.H = in.h;
    g.W = in.w;
    g.OC = out_channels;
    g.OH = ah.out;
    g.OW = aw.out;
    g.KH = spec.kernel_h;
    g.KW = spec.kernel_w;
    g.SH = spec.stride_h;
    g.SW = spec.stride_w;
    g.PT = ah.pad_before;
    g.PL = aw.pad_before;
    g.DH = spec.dilation_h;
    g.DW = spec.dilation_w;
    return g;
}

ConvGeometry resolve_conv_transpose(const ConvTransposeConfig& c, Shape in) {
    const std::string layer = "convtranspose";
    check_input(in, layer);
    auto positive = [&](int64_t h, int64_t w, const char* what) {
        if (h < 1 || w < 1 || h > kMaxDimension || w > kMaxDimension)
            throw ShapeError(layer + ": " + what + " must be between 1 and 2^24, got " + size_pair(h, w));
    };
    positive(c.kernel_h, c.kernel_w, "the kernel size");
    positive(c.stride_h, c.stride_w, "the stride");
    positive(c.dilation_h, c.dilation_w, "the dilation");
    if (c.padding_h < 0 || c.padding_w < 0 || c.padding_h > kMaxDimension || c.padding_w > kMaxDimension)
        throw ShapeError(layer + ": padding must be 0 or more, got " + size_pair(c.padding_h, c.padding_w));
    // PyTorch's rule: beyond max(stride, dilation) - 1 the extra rows would be out of every window.
    if (c.output_padding_h < 0 || c.output_padding_w < 0 ||
        c.output_padding_h >= std::max(c.stride_h, c.dilation_h) ||
        c.output_padding_w >= std::max(c.stride_w, c.dilation_w))
        throw ShapeError(layer + ": output-padding " + size_pair(c.output_padding_h, c.output_padding_w) +
                         " must be smaller than the stride or the dilation (stride " +
                         size_pair(c.stride_h, c.stride_w) + ", dilation " +
                         size_pair(c.dilation_h, c.dilation_w) + ")");
    if (c.groups < 1 || in.c % c.groups != 0 || c.filters % c.groups != 0)
        throw ShapeError(layer + ": groups=" + std::to_string(c.groups) + " must divide both the " +
                         std::to_string(in.c) + " input channels and the " + std::to_string(c.filters) +
                         " filters");
    ConvGeometry g{};
    g.C = in.c;
    g.H = in.h;
    g.W = in.w;
    g.OC = c.filters;
    g.KH = c.kernel_h;
    g.KW = c.kernel_w;
    g.SH = c.stride_h;
    g.SW = c.stride_w;
    g.PT = c.padding_h;
    g.PL = c.padding_w;
    g.G = c.groups;
    g.DH = c.dilation_h;
    g.DW = c.dilation_w;
    auto size = [&](int64_t n, int64_t s, int64_t span, int64_t p, int64_t op) {
        return checked_add(checked_mul(n - 1, s, "convtranspose output"), span + op - 2 * p,
                           "convtranspose output");
    };
    g.OH = size(in.h, g.SH, g.span_h(), g.PT, c.output_padding_h);
    g.OW = size(in.w, g.SW, g.span_w(), g.PL, c.output_padding_w);
    if (g.OH < 1 || g.OW < 1)
        throw ShapeError(layer + ": padding " + size_pair(c.padding_h, c.padding_w) +
                         " leaves no output of input " + size_pair(in.h, in.w) + " (output " +
                         size_pair(g.OH, g.OW) + ")");
    if (g.OH > kMaxDimension || g.OW > kMaxDimension)
        throw ShapeError(layer + ": the output " + size_pair(g.OH, g.OW) + " is larger than the limit 2^24");
    return g;
}

}  // namespace lenz
