// Weight initialisation: He (Kaiming) uniform before ReLU-like activations, Glorot uniform otherwise,
// so that activations neither vanish nor explode at the start of training. Biases start at zero.
#pragma once
#include <cmath>

#include "lenz/buffer.h"
#include "lenz/layer.h"
#include "lenz/random.h"

namespace lenz {

inline void init_weights(Buffer& w, int64_t fan_in, int64_t fan_out, const ActivationSpec& act, Rng& rng) {
    const bool rectifier =
        act.kind == Activation::relu || act.kind == Activation::leaky_relu || act.kind == Activation::relu6;
    const double bound = rectifier ? std::sqrt(6.0 / static_cast<double>(fan_in))
                                   : std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    for (int64_t i = 0; i < w.size(); ++i)
        w[i] = rng.uniform(-static_cast<float>(bound), static_cast<float>(bound));
}

}  // namespace lenz
