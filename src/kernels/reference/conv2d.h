// Naive convolution loops: slow, obviously right, the oracle that the fast kernels are tested against.
#pragma once
#include "core/conv_geometry.h"

namespace lenz::reference {

// x: (N, C, H, W)  w: (OC, C/G, KH, KW)  b: (OC) or nullptr  y: (N, OC, OH, OW); groups and dilation
// as ConvGeometry says.
void conv2d_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                    float* y);
// dy: (N, OC, OH, OW) -> dx: (N, C, H, W), overwritten
void conv2d_backward_data(const ConvGeometry& g, int64_t N, const float* dy, const float* w, float* dx);
// accumulates dw: (OC, C/G, KH, KW) and db: (OC) (when not nullptr)
void conv2d_backward_weights(const ConvGeometry& g, int64_t N, const float* x, const float* dy, float* dw,
                             float* db);

}  // namespace lenz::reference
