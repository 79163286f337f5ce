// What a training batch is scored against: a class for each image, or a class for each pixel.
#pragma once
#include <cstdint>

namespace lenz {

// The mask value that no loss or metric counts (Pascal VOC's object borders; PyTorch's
// ignore_index=255 in its segmentation references).
constexpr uint8_t kIgnorePixel = 255;

// A batch's targets, one of the two: labels (N), each in [0, classes), or masks (N, H, W) at the
// output's height and width, each pixel a class or kIgnorePixel.
struct Targets {
    const int32_t* labels = nullptr;
    const uint8_t* masks = nullptr;
};

}  // namespace lenz
