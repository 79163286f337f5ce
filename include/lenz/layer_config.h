// Configurations of the layer types: what one line of the model file says, as a value. The parser
// produces them, Layer::config() gives them back, and format importers and exporters work on them.
#pragma once
#include <cstdint>
#include <string>
#include <variant>

#include "lenz/activation.h"

namespace lenz {

enum class PaddingMode { valid, same, pixels };

struct Padding {
    PaddingMode mode = PaddingMode::valid;
    int64_t h = 0, w = 0;     // pixels on each side, for PaddingMode::pixels
    std::string str() const;  // "same", "valid", "1", "1x2"
};

struct Conv2dConfig {
    int64_t filters = 1;
    int64_t kernel_h = 3, kernel_w = 3;
    int64_t stride_h = 1, stride_w = 1;
    Padding padding;
    ActivationSpec activation;
    bool bias = true;
    // Filters and input channels split into this many groups; each filter sees only its group's
    // channels. groups = input channels (and filters a multiple of them) is a depthwise convolution.
    int64_t groups = 1;
    int64_t dilation_h = 1, dilation_w = 1;  // kernel taps this many pixels apart
};

enum class PoolKind { max, average };

struct Pool2dConfig {
    PoolKind kind = PoolKind::max;
    int64_t kernel_h = 2, kernel_w = 2;
    int64_t stride_h = 0, stride_w = 0;  // 0: the kernel size
    Padding padding;
    // Round the output size up, as ONNX's and PyTorch's ceil_mode: a last window that starts inside
    // the input (or its padding before) but runs past its end still counts, over its real pixels.
    bool ceil = false;
    // Average pooling divides by the whole window, padding included, as PyTorch's
    // count_include_pad=True (its default, which Inception v3 relies on); otherwise by the real
    // pixels only, as Keras. Not together with ceil.
    bool count_padding = false;
};

struct DenseConfig {
    int64_t units = 1;
    ActivationSpec activation;
    bool bias = true;
};

struct GlobalPoolConfig {
    PoolKind kind = PoolKind::average;
};
struct FlattenConfig {};
struct DropoutConfig {
    double rate = 0.5;
};
struct BatchNormConfig {};
struct ActivationConfig {
    ActivationSpec activation;
};
// The layers that read several values; which values is the model's business (Model::add).
struct AddConfig {
    ActivationSpec activation;
};
struct ConcatConfig {};
struct MulConfig {};
// ShuffleNet's reordering: channels in `groups` groups, read group-interleaved.
struct ChannelShuffleConfig {
    int64_t groups = 2;
};
// Channels begin (inclusive) to end (exclusive).
struct ChannelSliceConfig {
    int64_t begin = 0, end = 1;
};
// Normalisation over the channels at each position (ConvNeXt), with a scale and shift per channel.
struct LayerNormConfig {
    double epsilon = 1e-5;  // PyTorch's default; ConvNeXt uses 1e-6
};

// Scales the height and width by whole factors (nn.Upsample, ONNX Resize). Nearest copies
// input pixel floor(o / S) (PyTorch's default); bilinear blends the four nearest input pixels, at
// (o + 0.5) / S - 0.5 (align_corners=False), or o · (H - 1) / (OH - 1) with the corners aligned.
enum class UpsampleMode { nearest, bilinear };
struct UpsampleConfig {
    int64_t scale_h = 2, scale_w = 2;
    UpsampleMode mode = UpsampleMode::nearest;
    bool align_corners = false;  // bilinear only
    // An output size of its own instead of the scale (0: H·S_h x W·S_w), whatever its ratio to the
    // input's, as F.interpolate(size=...) and ONNX Resize's sizes give it: DeepLab's and LR-ASPP's
    // 33 to 65 at 520x520.
    int64_t size_h = 0, size_w = 0;
};

// Transposed convolution (ConvTranspose2d, ONNX ConvTranspose), the gradient of a convolution with
// respect to its input: each input value is spread, times a K_h x K_w filter, over the output at
// stride S. Output (H - 1)·S - 2P + D·(K - 1) + output_padding + 1; weights (C, F/G, K_h, K_w).
struct ConvTransposeConfig {
    int64_t filters = 1;
    int64_t kernel_h = 3, kernel_w = 3;
    int64_t stride_h = 1, stride_w = 1;
    int64_t padding_h = 0, padding_w = 0;                // taken off each side of the output
    int64_t output_padding_h = 0, output_padding_w = 0;  // added at the bottom and right only
    int64_t groups = 1;
    int64_t dilation_h = 1, dilation_w = 1;
    ActivationSpec activation;
    bool bias = true;
};

// nn.PReLU: y = x for x > 0, a · x otherwise, with one learned slope a for the whole tensor
// (num_parameters=1) or one per channel (num_parameters=C); every slope starts at 0.25, as PyTorch.
struct PReluConfig {
    bool per_channel = false;
};

// Any layer's settings: what one line of the model file says.
using LayerConfig =
    std::variant<Conv2dConfig, Pool2dConfig, GlobalPoolConfig, FlattenConfig, DenseConfig, DropoutConfig,
                 BatchNormConfig, ActivationConfig, AddConfig, ConcatConfig, MulConfig, ChannelShuffleConfig,
                 ChannelSliceConfig, LayerNormConfig, UpsampleConfig, ConvTransposeConfig, PReluConfig>;

}  // namespace lenz
