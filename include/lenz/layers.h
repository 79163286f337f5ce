// The functions that make each layer type from its configuration (lenz/layer_config.h): the C++
// builder API. Each type is implemented in its own file under src/layers/.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "lenz/layer.h"

namespace lenz {

std::unique_ptr<Layer> make_layer(const LayerConfig& config);

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
std::unique_ptr<Layer> make_prelu(const PReluConfig& config);
std::unique_ptr<Layer> make_upsample(const UpsampleConfig& config);
std::unique_ptr<Layer> make_conv_transpose(const ConvTransposeConfig& config);

}  // namespace lenz
