// Pooling works on each channel on its own. Padded positions never win a max, and an average
// counts them only with count_padding (PyTorch's count_include_pad=True; Keras never does).
#pragma once
#include "core/conv_geometry.h"
#include "core/layout.h"
#include "kernels/cpu/image_gradient.h"
#include "lenz/activation.h"

namespace lenz::cpu {

// x: (N, C, H, W) -> y: (N, C, OH, OW), or both channels-last (N, H, W, C); g.OC == g.C.
// Channels-last, y_stride: floats from one pixel of y to the next (0: C), so that y can be a run of
// channels inside a concatenation's rows.
void maxpool_forward(const ConvGeometry& g, int64_t N, const float* x, float* y, Layout layout,
                     int64_t y_stride = 0);
void avgpool_forward(const ConvGeometry& g, int64_t N, const float* x, float* y, bool count_padding,
                     Layout layout, int64_t y_stride = 0);
// int8 inference: x and y int8 (u8 where is_unsigned), one byte an element, as above.
void maxpool_int8_forward(const ConvGeometry& g, int64_t N, const void* x, void* y, Layout layout,
                          bool is_unsigned);
// Backward: each image of dx, in x's layout, goes to `sink`; scratch: threads * C*H*W floats.
// Max routes each dy to the first maximum of its window (in row-major scan order), recomputed from x.
void maxpool_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                      const ImageGradientSink& sink, float* workspace, int threads, Layout layout);
void avgpool_backward(const ConvGeometry& g, int64_t N, const float* dy, const ImageGradientSink& sink,
                      float* workspace, int threads, bool count_padding, Layout layout);

// x: (N, C, P), or (N, P, C) channels-last -> y: (N, C), the same either way
void global_avgpool_forward(int64_t N, int64_t C, int64_t P, const float* x, float* y, Layout layout);
void global_maxpool_forward(int64_t N, int64_t C, int64_t P, const float* x, float* y, Layout layout);
// Inference, a global average pool fused into the layer that writes its input: applies `act` to
// y: (N, C, P) or channels-last (N, P, C), in place, and writes each image's channel means,
// (N, C), in the same pass over y. Channels-last images are cut into pieces of about 64 KB, fixed
// by the shape, whose sums in double add up in order: the result does not depend on the thread
// count. workspace: channel_means_workspace(N, C, P) floats.
int64_t channel_means_workspace(int64_t N, int64_t C, int64_t P);
void activate_and_average(const ActivationSpec& act, float* y, int64_t N, int64_t C, int64_t P, Layout layout,
                          float* means, float* workspace);
// Each image of dx, in x's layout, goes to `sink`; scratch: threads * C*P floats.
void global_avgpool_backward(int64_t N, int64_t C, int64_t P, const float* dy, const ImageGradientSink& sink,
                             float* workspace, int threads, Layout layout);
void global_maxpool_backward(int64_t N, int64_t C, int64_t P, const float* x, const float* dy,
                             const ImageGradientSink& sink, float* workspace, int threads, Layout layout);

}  // namespace lenz::cpu
