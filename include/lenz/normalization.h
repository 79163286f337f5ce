// The normalisation of a model's input: every channel of an 8-bit image mapped to
// (pixel / 255 - mean) / stddev. Checkpoints store it, so that prediction normalises images exactly
// as training did.
#pragma once
#include <cstdint>
#include <vector>

namespace lenz {

struct Normalization {
    std::vector<float> mean, stddev;  // (C), on the 0..1 scale of pixel / 255
};

// pixels (C, H, W) u8 -> out (C, H, W) float, normalised.
void normalize_image(const uint8_t* pixels, int64_t channels, int64_t plane, const Normalization& norm,
                     float* out);

}  // namespace lenz
