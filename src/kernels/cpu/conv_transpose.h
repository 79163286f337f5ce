// Transposed convolution (PyTorch's ConvTranspose2d, ONNX ConvTranspose) on the CPU through oneDNN's
// deconvolution primitives: the gradient of a convolution with respect to its input, run forward.
// The geometry is the transposed convolution's own: C, H, W its input, OC, OH, OW its output (OH
// holds the output padding), PT and PL the padding P taken off the output's top and left.
// Weights as PyTorch keeps them, (C, OC/G, KH, KW). Activations in either layout (`layouts`).
#pragma once
#include "core/conv_geometry.h"
#include "core/layout.h"
#include "kernels/cpu/image_gradient.h"
#include "lenz/activation.h"

namespace lenz::cpu {

// Floats of workspace one call needs: oneDNN's scratchpad, the weights in the layout its kernel
// wants, and in training the weight gradient's copies and a chunk of images of dx.
int64_t conv_transpose_forward_workspace(const ConvGeometry& g, int64_t N, bool bias,
                                         const ActivationSpec& act, Layouts layouts);
int64_t conv_transpose_backward_workspace(const ConvGeometry& g, int64_t N, bool bias, Layouts layouts);

// x: (N, C, H, W) -> y: (N, OC, OH, OW); b: (OC) or nullptr; `act` applied to each tile (not softmax).
void conv_transpose_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                            const ActivationSpec& act, float* y, float* workspace, Layouts layouts = {});
// dy: (N, OC, OH, OW), the gradient before the activation. Accumulates dw (and db unless nullptr),
// then hands each image of dx to store_dx (unless empty).
void conv_transpose_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy,
                             const float* w, const ImageGradientSink& store_dx, float* dw, float* db,
                             float* workspace, Layouts layouts = {});

}  // namespace lenz::cpu
