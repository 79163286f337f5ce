// Convolution as GEMM over im2col tiles: a bounded workspace (never the whole image's im2col),
// threads spread over (image, tile) pairs, bias and activation applied while a tile is in cache.
#pragma once
#include "kernels/conv_geometry.h"
#include "kernels/cpu/image_gradient.h"
#include "lenz/layer.h"

namespace lenz::cpu {

// Output positions one im2col tile covers.
int64_t conv2d_tile_positions(const ConvGeometry& g);
int64_t conv2d_forward_workspace(const ConvGeometry& g, int threads);
int64_t conv2d_backward_workspace(const ConvGeometry& g, int threads);

// x: (N, C, H, W)  w: (OC, C*KH*KW)  b: (OC) or nullptr  y: (N, OC, OH, OW)
void conv2d_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                    const ActivationSpec& act, float* y, float* workspace, int threads);
// Accumulates dw (OC, C*KH*KW) and db (OC, or nullptr); hands each image of dx to store_dx unless it
// is empty. dy is the gradient before the activation.
void conv2d_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy, const float* w,
                     const ImageGradientSink& store_dx, float* dw, float* db, float* workspace, int threads);

}  // namespace lenz::cpu
