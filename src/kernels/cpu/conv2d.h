// Convolution on the CPU through oneDNN, which picks the best kernel for this processor at run
// time (AVX-512, AVX2, SSE4.1, or its portable code). Activations come as the engine lays them out,
// (N, C, H, W) or channels-last (N, H, W, C) (`layouts`: x and dx as input, y and dy as output);
// weights are (OC, C/G, KH, KW) for G groups (G = C: depthwise); kernels may be dilated. When oneDNN prefers
// another layout the data is reordered through the workspace, which the memory plan counts.
#pragma once
#include <optional>

#include "core/conv_geometry.h"
#include "core/layout.h"
#include "kernels/cpu/image_gradient.h"
#include "lenz/activation.h"
#include "lenz/precision.h"

namespace lenz::cpu {

// Floats of workspace a call needs (reordered copies and oneDNN's scratchpad), for batch N.
// folded: the weights come from prepared ones with a map folded in (reordered from those, never
// from the layer's own, when a chunk's primitive wants another layout). residual: as in conv2d_forward.
// inference: for a call with prepared weights, which may take Winograd's algorithm (conv2d_forward).
int64_t conv2d_forward_workspace(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                                 Layouts layouts, Precision precision = Precision::f32, bool folded = false,
                                 bool residual = false, bool inference = false);
int64_t conv2d_backward_workspace(const ConvGeometry& g, int64_t N, bool bias, Layouts layouts,
                                  Precision precision = Precision::f32);

// Whether the forward pass can apply `act` to each tile as it computes it (every activation but softmax).
bool conv2d_fuses(const ActivationSpec& act);

// The memory a call may use: `floats` of it at `data`, planned from the *_workspace functions
// above for the batch the caller planned. A smaller batch can get a primitive of another kind,
// with larger reordered copies or scratchpad (int8 met one); such a call then works in memory of its
// own rather than past the end of the caller's.
struct Workspace {
    float* data = nullptr;
    int64_t floats = 0;
};
// How many calls in this process so far have had to work in memory of their own; the engine's
// tests expect none at the batches it planned for.
int64_t workspace_shortfalls();

// Weights converted once for inference, laid out as the primitive for batch N wants them (oneDNN's
// blocked layouts; bf16 copies), which every call would otherwise reorder: how many floats they take
// (none when the primitive reads them as the layer keeps them), and writing them. `folded`: a
// per-channel map scale·y + shift is folded in, into the weights and a bias kept after them.
int64_t conv2d_prepared_floats(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                               Layouts layouts, Precision precision, bool folded, bool residual = false);
// b: the layer's bias or nullptr; scale and shift: the map to fold in, or nullptr.
void conv2d_prepare_weights(const ConvGeometry& g, int64_t N, bool bias, const ActivationSpec& act,
                            Layouts layouts, Precision precision, const float* w, const float* b,
                            const float* scale, const float* shift, float* prepared, bool residual = false);
// Weights that conv2d_prepare_weights wrote for batch `batch` (data nullptr: none).
struct PreparedWeights {
    const float* data = nullptr;
    int64_t batch = 0;
    bool folded = false;  // a map is folded in: the layer's own weights no longer apply
};

// Which of oneDNN's Winograd kernels inference may use for 3x3 convolutions of stride 1 in float32:
// none; F(2x2, 3x3) on layers of 256 channels or more on each side (the default); both F(2x2, 3x3)
// and F(4x4, 3x3), wherever they pay (conv2d.cpp has the measurements). For the whole process, from
// LENZ_WINOGRAD (0: none, 1: any) unless chosen here (nullopt: the environment decides again).
// Choose before planning: a runner's plan and packed weights are made for the choice of the moment.
enum class WinogradUse : int64_t { none, small_tiles, any };
void set_winograd_use(std::optional<WinogradUse> use);

// x: (N, C, H, W)  w: (OC, C/G, KH, KW)  b: (OC) or nullptr  y: (N, OC, OH, OW), activation fused
// (a softmax over channels only with y in (N, C, H, W)). Prepared weights are used where this call's
// primitive wants them as they are; otherwise w is converted in the workspace, as without them.
// Folded ones bring their own bias: w and b are not read then.
// residual: y holds a value of its shape on entry, which is added to the convolution's result
// before the activation (a residual connection's add, fused: y = act(conv(x) + b + y)).
// With prepared weights (inference only), a 3x3 convolution of stride 1 in float32 runs Winograd's
// algorithm where oneDNN has it and it pays, which is faster and rounds differently from the direct
// kernel: F(2x2, 3x3) on 256 channels or more by default, also F(4x4, 3x3) and smaller layers with
// WinogradUse::any, neither with WinogradUse::none (set_winograd_use, LENZ_WINOGRAD).
// channel_means: inference, a global average pool of y fused in: each image's channel means go
// there, (N, OC), computed in the pass that applies the activations oneDNN does not. Its workspace
// comes after conv2d_forward_workspace's: channel_means_workspace(N, OC, OH·OW) floats (pool2d.h).
void conv2d_forward(const ConvGeometry& g, int64_t N, const float* x, const float* w, const float* b,
                    const ActivationSpec& act, float* y, Workspace workspace, Layouts layouts = {},
                    Precision precision = Precision::f32, PreparedWeights prepared = {},
                    bool residual = false, float* channel_means = nullptr);
// dy: (N, OC, OH, OW), the gradient before the activation. Accumulates dw and db (unless nullptr)
// first, then hands each image of dx to store_dx (unless empty); x may be overwritten from then on.
void conv2d_backward(const ConvGeometry& g, int64_t N, const float* x, const float* dy, const float* w,
                     const ImageGradientSink& store_dx, float* dw, float* db, Workspace workspace,
                     Layouts layouts = {}, Precision precision = Precision::f32);

}  // namespace lenz::cpu
