#include "lenz/normalization.h"

#include <cstddef>

namespace lenz {

void normalize_image(const uint8_t* pixels, int64_t channels, int64_t plane, const Normalization& norm,
                     float* out) {
    for (int64_t c = 0; c < channels; ++c) {
        const float scale = 1.0f / (255.0f * norm.stddev[static_cast<size_t>(c)]);
        const float shift = norm.mean[static_cast<size_t>(c)] / norm.stddev[static_cast<size_t>(c)];
        for (int64_t i = 0; i < plane; ++i)
            out[c * plane + i] = static_cast<float>(pixels[c * plane + i]) * scale - shift;
    }
}

}  // namespace lenz
