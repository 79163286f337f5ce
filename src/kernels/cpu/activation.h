// Element-wise activations and channel softmax, forward in place and backward from the output,
// which is all that layers with a fused activation keep. hardswish, silu and gelu need the input.
#pragma once
#include <cstdint>

#include "lenz/activation.h"

namespace lenz::cpu {

// y: (count) in place. Not for softmax or log_softmax.
void activation_forward(const ActivationSpec& act, float* y, int64_t count);
// dpre = dy * f'(from y). dpre may alias dy. Not for softmax, nor for those that need the input.
void activation_backward(const ActivationSpec& act, const float* y, const float* dy, float* dpre,
                         int64_t count);
// dpre = dy * f'(x), for hardswish, silu and gelu. dpre may alias dy.
void activation_backward_from_input(const ActivationSpec& act, const float* x, const float* dy, float* dpre,
                                    int64_t count);

// y: (N, C, P): softmax over C at each of the P positions, in place, max-subtracted for stability.
void softmax_forward(float* y, int64_t N, int64_t C, int64_t P);
// dpre_c = y_c * (dy_c - sum_j dy_j y_j). dpre may alias dy.
void softmax_backward(const float* y, const float* dy, float* dpre, int64_t N, int64_t C, int64_t P);

// y: (N, C, P): log(softmax) over C at each position, in place: x - max - log(sum exp(x - max)).
void log_softmax_forward(float* y, int64_t N, int64_t C, int64_t P);
// dpre_c = dy_c - exp(y_c) * sum_j dy_j. dpre may alias dy.
void log_softmax_backward(const float* y, const float* dy, float* dpre, int64_t N, int64_t C, int64_t P);

// Applies `act` to y: (N, C, P), including softmax and log_softmax.
void apply_activation(const ActivationSpec& act, float* y, int64_t N, int64_t C, int64_t P);
void apply_activation_backward(const ActivationSpec& act, const float* y, const float* dy, float* dpre,
                               int64_t N, int64_t C, int64_t P);

}  // namespace lenz::cpu
