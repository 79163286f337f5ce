// Pooling works on each channel on its own. Padded positions never win a max and are not counted
// in an average (Keras semantics; PyTorch's count_include_pad=False).
#pragma once
#include "kernels/conv_geometry.h"

namespace lenz::cpu {

// x: (N, C, H, W) -> y: (N, C, OH, OW); g.OC == g.C
void maxpool_forward(const ConvGeometry& g, int64_t N, const float* x, float* y);
void avgpool_forward(const ConvGeometry& g, int64_t N, const float* x, float* y);
// dx (N, C, H, W) is overwritten. Max routes each dy to the first maximum of its window.
void maxpool_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy, float* dx);
void avgpool_backward(const ConvGeometry& g, int64_t N, const float* dy, float* dx);

// x: (N, C, P) -> y: (N, C)
void global_avgpool_forward(int64_t N, int64_t C, int64_t P, const float* x, float* y);
void global_maxpool_forward(int64_t N, int64_t C, int64_t P, const float* x, float* y);
void global_avgpool_backward(int64_t N, int64_t C, int64_t P, const float* dy, float* dx);
void global_maxpool_backward(int64_t N, int64_t C, int64_t P, const float* x, const float* dy, float* dx);

}  // namespace lenz::cpu
