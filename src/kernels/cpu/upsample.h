// Upsampling (or resampling to any size): nearest copies, bilinear blends the two nearest rows and
// columns. Each output row and column reads at most two input ones (its taps), worked out once per
// shape.
#pragma once
#include <cstdint>
#include <vector>

#include "core/layout.h"
#include "kernels/cpu/image_gradient.h"

namespace lenz::cpu {

// Output index o of one axis reads input indices i0 and i1 with weights l0 and l1 (l0 + l1 = 1;
// nearest: i0 with weight 1).
struct UpsampleTap {
    int64_t i0 = 0, i1 = 0;
    float l0 = 1, l1 = 0;
};
// The taps of the `out` outputs of one axis of `in`, as PyTorch computes them with r = in / out:
// nearest floor(o · r) (o / S exactly for a whole factor S); bilinear at (o + 0.5) · r - 0.5
// clamped at 0 (align_corners=False, ONNX half_pixel), or at o · (in - 1) / (out - 1)
// (align_corners=True).
std::vector<UpsampleTap> upsample_taps(int64_t in, int64_t out, bool bilinear, bool align_corners);

struct UpsampleGeometry {
    int64_t C, H, W, OH, OW;
    bool bilinear;
    const UpsampleTap* rows;     // OH taps
    const UpsampleTap* columns;  // OW taps
};

// x: (N, C, H, W) -> y: (N, C, OH, OW), or both channels-last (N, H, W, C) -> (N, OH, OW, C).
void upsample_forward(const UpsampleGeometry& g, int64_t N, const float* x, float* y, Layout layout);
// Backward: each dy is added to the input pixels it was read from, times the same weights, in a
// fixed order per image (one image a thread), so the result does not depend on the thread count.
// Each image of dx, in x's layout, goes to `sink`; workspace: threads * C*H*W floats.
void upsample_backward(const UpsampleGeometry& g, int64_t N, const float* dy, const ImageGradientSink& sink,
                       float* workspace, int threads, Layout layout);

}  // namespace lenz::cpu
