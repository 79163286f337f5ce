// Any layer from its settings: the model file's parser and format importers go through here.
#include <type_traits>

#include "lenz/layers.h"

namespace lenz {

std::unique_ptr<Layer> make_layer(const LayerConfig& config) {
    return std::visit(
        [](const auto& c) -> std::unique_ptr<Layer> {
            using T = std::decay_t<decltype(c)>;
            if constexpr (std::is_same_v<T, Conv2dConfig>) return make_conv2d(c);
            if constexpr (std::is_same_v<T, Pool2dConfig>) return make_pool2d(c);
            if constexpr (std::is_same_v<T, GlobalPoolConfig>) return make_global_pool(c.kind);
            if constexpr (std::is_same_v<T, FlattenConfig>) return make_flatten();
            if constexpr (std::is_same_v<T, DenseConfig>) return make_dense(c);
            if constexpr (std::is_same_v<T, DropoutConfig>) return make_dropout(c.rate);
            if constexpr (std::is_same_v<T, BatchNormConfig>) return make_batchnorm();
            if constexpr (std::is_same_v<T, ActivationConfig>) return make_activation(c.activation);
            if constexpr (std::is_same_v<T, AddConfig>) return make_add(c);
            if constexpr (std::is_same_v<T, ConcatConfig>) return make_concat();
            if constexpr (std::is_same_v<T, MulConfig>) return make_mul();
            if constexpr (std::is_same_v<T, ChannelShuffleConfig>) return make_channel_shuffle(c);
            if constexpr (std::is_same_v<T, ChannelSliceConfig>) return make_channel_slice(c);
            if constexpr (std::is_same_v<T, LayerNormConfig>) return make_layernorm(c);
            if constexpr (std::is_same_v<T, UpsampleConfig>) return make_upsample(c);
            if constexpr (std::is_same_v<T, PReluConfig>) return make_prelu(c);
            if constexpr (std::is_same_v<T, ConvTransposeConfig>) return make_conv_transpose(c);
        },
        config);
}

}  // namespace lenz
