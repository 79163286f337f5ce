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

namespace {

// load_example with a random scale: the image resampled by s, log-uniform in [1/max, max], then
// an H x W window of it taken at a random place (larger: a crop; smaller: the image placed in a
// frame of padding), as torchvision's segmentation references do with RandomResize and RandomCrop;
// then shifted by the crop padding and flipped, as without a scale. Pixels bilinearly, the mask by
// its nearest pixel; padding is 0 (the mean) in the image and ignored in the mask.
void load_scaled(const ImageSet& set, int64_t index, const Normalization& norm, const AugmentConfig& aug,
                 Rng& rng, float* out, uint8_t* mask_out) {
    const int64_t C = set.channels, H = set.height, W = set.width, plane = H * W;
    const uint8_t* src = set.pixels.data() + index * C * plane;
    const uint8_t* mask = set.segmentation() ? set.masks.data() + index * plane : nullptr;
    const auto log_max = static_cast<float>(std::log(aug.max_scale));
    const double s = std::exp(static_cast<double>(rng.uniform(-log_max, log_max)));
    // The window's offset in the scaled image: anywhere from 0 to the size difference, either sign.
    const auto offset = [&](int64_t size) {
        const double spare = static_cast<double>(size) * s - static_cast<double>(size);
        return std::min(0.0, spare) + static_cast<double>(rng.uniform()) * std::abs(spare);
    };
    const double oy = offset(H), ox = offset(W);
    const int64_t p = aug.crop_padding;
    const int64_t dy = p ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1))) - p : 0;
    const int64_t dx = p ? static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1))) - p : 0;
    const bool flip = aug.horizontal_flip && rng.below(2) == 1;
    for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
            // The source position of this pixel's centre, in source pixel coordinates.
            const double y = (static_cast<double>(h + dy) + oy + 0.5) / s - 0.5,
                         x = (static_cast<double>((flip ? W - 1 - w : w) + dx) + ox + 0.5) / s - 0.5;
            const bool inside =
                y > -0.5 && y < static_cast<double>(H) - 0.5 && x > -0.5 && x < static_cast<double>(W) - 0.5;
            if (mask_out)
                mask_out[h * W + w] = inside ? mask[std::llround(std::clamp(y, 0.0, H - 1.0)) * W +
                                                    std::llround(std::clamp(x, 0.0, W - 1.0))]
                                             : kIgnorePixel;
            const double cy = std::clamp(y, 0.0, H - 1.0), cx = std::clamp(x, 0.0, W - 1.0);
            const auto y0 = static_cast<int64_t>(cy), x0 = static_cast<int64_t>(cx);
            const int64_t y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
            const auto ty = static_cast<float>(cy - static_cast<double>(y0)),
                       tx = static_cast<float>(cx - static_cast<double>(x0));
            for (int64_t c = 0; c < C; ++c) {
                float v = 0.0f;
                if (inside) {
                    const uint8_t* q = src + c * plane;
                    const float top = q[y0 * W + x0] + tx * (q[y0 * W + x1] - q[y0 * W + x0]);
                    const float bottom = q[y1 * W + x0] + tx * (q[y1 * W + x1] - q[y1 * W + x0]);
                    v = ((top + ty * (bottom - top)) / 255.0f - norm.mean[static_cast<size_t>(c)]) /
                        norm.stddev[static_cast<size_t>(c)];
                }
                out[c * plane + h * W + w] = v;
            }
        }
}

}  // namespace

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
    if (aug.max_scale > 1) return load_scaled(set, index, norm, aug, rng, out, mask_out);
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
