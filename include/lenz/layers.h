// Configurations of the layer types and the functions that make them: the C++ builder API.
// Each type is implemented in its own file under src/layers/.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "lenz/layer.h"

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

// Any layer's settings: what one line of the model file says.
using LayerConfig = std::variant<Conv2dConfig, Pool2dConfig, GlobalPoolConfig, FlattenConfig, DenseConfig,
                                 DropoutConfig, BatchNormConfig, ActivationConfig, AddConfig, ConcatConfig,
                                 MulConfig, ChannelShuffleConfig, ChannelSliceConfig, LayerNormConfig>;

std::unique_ptr<Layer> make_layer(const LayerConfig& config);
// The settings of one layer line of the model file, e.g. layer.spec(): "conv 32 3x3 padding=same relu".
LayerConfig parse_layer_config(const std::string& line);

std::unique_ptr<Layer> make_conv2d(const Conv2dConfig& config);
std::unique_ptr<Layer> make_pool2d(const Pool2dConfig& config);
std::unique_ptr<Layer> make_global_pool(PoolKind kind);
std::unique_ptr<Layer> make_flatten();
std::unique_ptr<Layer> make_dense(const DenseConfig& config);
std::unique_ptr<Layer> make_dropout(double rate);
std::unique_ptr<Layer> make_batchnorm();
std::unique_ptr<Layer> make_activation(const ActivationSpec& activation);
std::unique_ptr<Layer> make_add(const AddConfig& config);
std::unique_ptr<Layer> make_concat();
std::unique_ptr<Layer> make_mul();
std::unique_ptr<Layer> make_channel_shuffle(const ChannelShuffleConfig& config);
std::unique_ptr<Layer> make_channel_slice(const ChannelSliceConfig& config);
std::unique_ptr<Layer> make_layernorm(const LayerNormConfig& config);

}  // namespace lenz
