// Post-training static quantisation for int8 inference (lenz quantize): the range of every value
// from a few hundred calibration images, and the weights of convolutions and dense layers rounded
// to int8, one scale per output channel.
#pragma once
#include <cstdint>
#include <vector>

#include "lenz/model.h"

namespace lenz {

// Runs `count` images ((N, C, H, W), normalised as the model expects) through the model in float32,
// `batch` at a time, and returns the smallest and largest element of every value held in memory
// (Model::set_value_ranges takes them). Values folded away (a convolution's output that a batch
// norm folded into it reads) keep [0, 0]: no layer reads them at inference.
std::vector<ValueRange> calibrate(Model& model, const float* images, int64_t count, int64_t batch = 64);

// A (rows, cols) weight whose rows are output channels, in int8: w ≈ values · scales[row], with
// scales[row] = max |w_row| / 127, as the int8 kernels quantise it.
struct Int8Weights {
    std::vector<int8_t> values;
    std::vector<float> scales;
};
Int8Weights to_int8(const float* w, int64_t rows, int64_t cols);

// Replaces the "weight" of every layer that runs in int8 (Layer::runs_int8) by its int8 form read
// back as float32, so that a float32 run and an int8 run of the quantised model use the same weights.
void round_weights_to_int8(Model& model);

}  // namespace lenz
