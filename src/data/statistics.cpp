// What the data says of itself before training: the input normalisation's statistics, and the
// random images that calibrate an int8 model.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "lenz/data.h"

namespace lenz {

Normalization compute_normalization(const ImageSet& set) {
    Normalization norm;
    const int64_t plane = set.height * set.width;
    for (int64_t c = 0; c < set.channels; ++c) {
        double sum = 0, sq = 0;
        for (int64_t n = 0; n < set.size(); ++n) {
            const uint8_t* p = set.pixels.data() + (n * set.channels + c) * plane;
            for (int64_t i = 0; i < plane; ++i) {
                sum += p[i];
                sq += static_cast<double>(p[i]) * p[i];
            }
        }
        const double count = std::max<double>(1.0, static_cast<double>(set.size() * plane));
        const double mean = sum / count;
        const double var = std::max(0.0, sq / count - mean * mean);
        norm.mean.push_back(static_cast<float>(mean / 255.0));
        norm.stddev.push_back(static_cast<float>(std::max(std::sqrt(var) / 255.0, 1e-3)));
    }
    return norm;
}

std::vector<float> calibration_images(const ImageSet& set, const Normalization& norm, int64_t count,
                                      uint64_t seed) {
    std::vector<int64_t> order(static_cast<size_t>(set.size()));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    count = std::min(count, set.size());
    const int64_t image = set.image_elements();
    std::vector<float> images(static_cast<size_t>(count * image));
    for (int64_t i = 0; i < count; ++i)
        normalize_image(set.pixels.data() + order[static_cast<size_t>(i)] * image, set.channels,
                        set.height * set.width, norm, images.data() + i * image);
    return images;
}

}  // namespace lenz
