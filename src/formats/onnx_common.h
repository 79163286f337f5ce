// What ONNX export and import share: Lenz's opset, size limits and constants, and a window layer's
// kernel, strides and pads as ONNX writes them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lenz/layer.h"

namespace lenz::onnx_io {

inline constexpr int64_t kOpset = 13;
inline constexpr int64_t kMaxOnnxBytes = int64_t{2} << 30;  // protobuf's own limit for one message
inline constexpr double kBatchNormEpsilon = 1e-5;           // Lenz's batchnorm; see src/layers/batchnorm.cpp

// Kernel, stride and the four pads of a window layer, as Lenz resolved them for its input.
struct Window {
    std::vector<int64_t> kernel, strides, pads;  // pads: top, left, bottom, right
};
// dh, dw: a convolution's dilation, whose kernel spans dh * (kh - 1) + 1 rows.
Window window_of(const Layer& layer, int64_t kh, int64_t kw, int64_t sh, int64_t sw, const Padding& padding,
                 bool pooling, int64_t dh = 1, int64_t dw = 1);
// The window of a convolution or pooling layer (empty for other layers), to compare two layers.
std::vector<int64_t> window_numbers(const Layer& layer);
// A layer's model-file line without its padding, which ONNX holds as pads instead.
std::string spec_without_padding(const Layer& layer);

}  // namespace lenz::onnx_io
