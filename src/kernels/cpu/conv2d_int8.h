// Convolution in int8 for inference, through oneDNN's integer kernels (VNNI or AMX where the CPU
// has them): a float32 input is quantised on the way in (one scale, from calibration; an input held
// in int8 is read as it is), the weights once per runner (one scale per filter, after any folded
// batch norm), the products add up in int32, and the output is written scaled back, with the bias
// and the activation applied per tile, in float32 or, quantised again, in int8 (Int8Io). Layouts
// are as in conv2d.h; oneDNN's int8 kernels read channels-last.
#pragma once
#include "core/conv_geometry.h"
#include "core/layout.h"
#include "kernels/cpu/int8.h"
#include "lenz/activation.h"

namespace lenz::cpu {

// Floats the prepared weights take: the output scales and the bias, the int8 weights as (OC, C/G,
// KH, KW), then room for them as any primitive of this geometry reads them.
int64_t conv2d_int8_prepared_floats(const ConvGeometry& g);
// w: the layer's weights, b: its bias or nullptr, scale and shift: a per-channel map to fold in
// (or nullptr), as conv2d_prepare_weights.
void conv2d_int8_prepare(const ConvGeometry& g, int64_t N, const ActivationSpec& act, Layouts layouts,
                         const Int8Io& io, const float* w, const float* b, const float* scale,
                         const float* shift, float* prepared);
// Floats of workspace a call of batch N needs: the quantised input, oneDNN's scratchpad, and
// copies where a layout or a chunk's weights differ.
int64_t conv2d_int8_workspace(const ConvGeometry& g, int64_t N, const ActivationSpec& act, Layouts layouts,
                              const Int8Io& io);
// x: (N, C, H, W) in layouts.input, float32 or int8 (io.in_stored); y: (N, OC, OH, OW) in
// layouts.output, float32 or int8 (io.out);
// prepared: what conv2d_int8_prepare wrote for batch prepared_batch (at least N).
void conv2d_int8_forward(const ConvGeometry& g, int64_t N, const float* x, const ActivationSpec& act,
                         float* y, float* workspace, Layouts layouts, const Int8Io& io, const float* prepared,
                         int64_t prepared_batch);

}  // namespace lenz::cpu
