// Data augmentation for training: random crops after padding, horizontal flips and random erasing,
// drawn from the step's own random stream so that a resumed run replays them exactly.
#pragma once
#include <cstdint>

#include "lenz/data.h"
#include "lenz/random.h"
#include "lenz/train.h"

namespace lenz {

// Random erasing on a normalised image (C, H, W): a rectangle of 2-40 % of the area, of aspect ratio
// 0.3-3.3 (Zhong et al., 2017), retried until it fits (their 100 tries, then nothing), set to 0,
// the data set's mean after normalisation.
void erase_rectangle(float* image, int64_t C, int64_t H, int64_t W, Rng& rng);

// Fills `out` (C, H, W) with image `index` of `set`, normalised and, as `aug` asks, randomly scaled,
// cropped, flipped and erased; and for a segmentation set `mask_out` (H, W), where not null, with its mask,
// cropped and flipped alike (erasing leaves the mask as it is).
void load_example(const ImageSet& set, int64_t index, const Normalization& norm, const AugmentConfig& aug,
                  Rng& rng, float* out, uint8_t* mask_out = nullptr);

}  // namespace lenz
