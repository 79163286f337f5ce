// Data augmentation: each training image as a step sees it.
#include "train/augment.h"

#include <algorithm>
#include <cmath>

namespace lenz {

void erase_rectangle(float* image, int64_t C, int64_t H, int64_t W, Rng& rng) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        const double area = rng.uniform(0.02f, 0.4f) * static_cast<double>(H * W);
        const double aspect = std::exp(rng.uniform(std::log(0.3f), std::log(1 / 0.3f)));
        const auto h = static_cast<int64_t>(std::lround(std::sqrt(area * aspect))),
                   w = static_cast<int64_t>(std::lround(std::sqrt(area / aspect)));
        if (h < 1 || w < 1 || h > H || w > W) continue;
        const auto top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(H - h + 1))),
                   left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(W - w + 1)));
        for (int64_t c = 0; c < C; ++c)
            for (int64_t y = top; y < top + h; ++y) std::fill_n(image + (c * H + y) * W + left, w, 0.0f);
        return;
    }
}

void load_example(const ImageSet& set, int64_t index, const Normalization& norm, const AugmentConfig& aug,
                  Rng& rng, float* out, uint8_t* mask_out) {
    const int64_t C = set.channels, H = set.height, W = set.width, plane = H * W;
    const uint8_t* src = set.pixels.data() + index * C * plane;
    const uint8_t* mask = set.segmentation() ? set.masks.data() + index * plane : nullptr;
    if (aug.erase_probability > 0 && rng.uniform() < aug.erase_probability) {
        AugmentConfig rest = aug;
        rest.erase_probability = 0;
        load_example(set, index, norm, rest, rng, out, mask_out);
        erase_rectangle(out, C, H, W, rng);  // the pixels' classes stay: the network must infer them
        return;
    }
    if (aug.crop_padding == 0 && !aug.horizontal_flip) {
        normalize_image(src, C, plane, norm, out);
        if (mask_out) std::copy(mask, mask + plane, mask_out);
        return;
    }
    const int64_t p = aug.crop_padding;
    const int64_t dy = p ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1))) - p : 0;
    const int64_t dx = p ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1))) - p : 0;
    const bool flip = aug.horizontal_flip && rng.below(2) == 1;
    // The source pixel of (h, w), or -1 in the padding.
    const auto source = [&](int64_t h, int64_t w) -> int64_t {
        const int64_t sh = h + dy, sw = (flip ? W - 1 - w : w) + dx;
        return sh >= 0 && sh < H && sw >= 0 && sw < W ? sh * W + sw : -1;
    };
    for (int64_t c = 0; c < C; ++c) {
        // Padding is zero in normalised units (the mean), so it adds no artificial edge brightness.
        for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w) {
                const int64_t from = source(h, w);
                out[c * plane + h * W + w] = from < 0 ? 0.0f
                                                      : (static_cast<float>(src[c * plane + from]) / 255.0f -
                                                         norm.mean[static_cast<size_t>(c)]) /
                                                            norm.stddev[static_cast<size_t>(c)];
            }
    }
    if (!mask_out) return;
    // The mask moves with its image; padding is ignored, as torchvision's references pad it with 255.
    for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
            const int64_t from = source(h, w);
            mask_out[h * W + w] = from < 0 ? kIgnorePixel : mask[from];
        }
}

}  // namespace lenz
