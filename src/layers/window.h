// Resolving kernel, stride and padding against an input size: shared by convolution and pooling,
// the only place where the output-size formulas live.
#pragma once
#include <string>

#include "core/conv_geometry.h"
#include "lenz/layers.h"
#include "lenz/shape.h"

namespace lenz {

struct WindowSpec {
    int64_t kernel_h, kernel_w, stride_h, stride_w;
    Padding padding;
    bool pooling = false;  // pooling needs a real pixel in every window: explicit padding < kernel
    int64_t dilation_h = 1, dilation_w = 1;  // convolution: a kernel of k taps spans d * (k - 1) + 1
    bool ceil = false;                       // pooling: round the output size up (ceil_mode)
};

// Largest height, width or channel count a layer accepts: beyond it a typo is far likelier than intent.
inline constexpr int64_t kMaxDimension = int64_t{1} << 24;

// valid: floor((n - k) / s) + 1; same (Keras): ceil(n / s), the odd pixel of padding at the bottom/right;
// pixels P: floor((n + 2P - k) / s) + 1, with k the span of a dilated kernel. Throws ShapeError
// prefixed with `layer` when it does not fit.
ConvGeometry resolve_window(const WindowSpec& spec, Shape in, int64_t out_channels, const std::string& layer);

// Transposed convolution: (n - 1)·s - 2p + d·(k - 1) + output_padding + 1 on each axis, the sizes of
// a convolution's input that it maps back to. Geometry as kernels/cpu/conv_transpose.h. Throws
// ShapeError prefixed with "convtranspose" when a setting or the input does not fit.
ConvGeometry resolve_conv_transpose(const ConvTransposeConfig& config, Shape in);

// "3x3" and "3x5"; "2" style for the model file when square is handled by callers.
std::string size_pair(int64_t h, int64_t w);
void check_input(Shape in, const std::string& layer);

}  // namespace lenz
