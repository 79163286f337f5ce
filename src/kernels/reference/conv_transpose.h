// Naive transposed-convolution loops: the oracle the oneDNN kernels are tested against. Geometry as
// cpu/conv_transpose.h: C, H, W the input, OC, OH, OW the output, PT and PL the padding P.
#pragma once
#include "core/conv_geometry.h"

namespace lenz::reference {

// x: (N, C, H, W)  w: (C, OC/G, KH, KW)  b: (OC) or nullptr  y: (N, OC, OH, OW), overwritten. Each
// input value is scattered, times each weight, to output (ih·SH - PT + kh·DH, iw·SW - PL + kw·DW).
void conv_transpose_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                            float* y);
// dy: (N, OC, OH, OW) -> dx: (N, C, H, W), overwritten
void conv_transpose_backward_data(const ConvGeometry& g, int64_t N, const float* dy, const float* w,
                                  float* dx);
// accumulates dw: (C, OC/G, KH, KW) and db: (OC) (when not nullptr)
void conv_transpose_backward_weights(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                                     float* dw, float* db);

}  // namespace lenz::reference
