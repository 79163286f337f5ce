// Fitting an image to a model's input: channel conversion, centre crop to the target aspect, and
// bilinear resampling; and a segmentation mask to the same window, by nearest neighbour.
//
// The resampling is a separable triangle (bilinear) filter whose radius grows with the reduction
// factor, as in Pillow's BILINEAR: upscaling is plain bilinear interpolation between the two nearest
// pixels, while downscaling averages every source pixel under the footprint, so a photo shrunk to
// 32x32 does not alias. Limit: the target is at most 1<<15 per side and 2^28 pixels.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

constexpr int64_t kMaxSide = int64_t{1} << 15;
constexpr int64_t kMaxPixels = int64_t{1} << 28;

std::string shape_text(int64_t height, int64_t width, int64_t channels) {
    return std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels);
}

// Source taps and weights of one output pixel along one axis.
struct Taps {
    int64_t first = 0;
    std::vector<float> weights;
};

// Maps dst_size outputs onto the source interval [start, start + length) of an axis of src_size.
// Taps stay inside the pixels that interval touches, so cropped-away pixels never blend in.
std::vector<Taps> axis_taps(int64_t src_size, int64_t dst_size, double start, double length) {
    const double scale = length / static_cast<double>(dst_size);
    const double radius = std::max(scale, 1.0);
    const int64_t window_lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(start)));
    const int64_t window_hi =
        std::min<int64_t>(src_size - 1, static_cast<int64_t>(std::ceil(start + length)) - 1);
    std::vector<Taps> taps(dst_size);
    for (int64_t i = 0; i < dst_size; ++i) {
        const double centre = start + (static_cast<double>(i) + 0.5) * scale;
        int64_t lo = std::max(window_lo, static_cast<int64_t>(std::floor(centre - radius)));
        int64_t hi = std::min(window_hi, static_cast<int64_t>(std::ceil(centre + radius)));
        std::vector<double> weights;
        double total = 0.0;
        for (int64_t j = lo; j <= hi; ++j) {
            double w = std::max(0.0, 1.0 - std::abs((static_cast<double>(j) + 0.5 - centre) / radius));
            weights.push_back(w);
            total += w;
        }
        // Drop zero weights at both ends, then normalise, which replicates the window's edge pixels.
        size_t begin = 0, end = weights.size();
        while (begin < end && weights[begin] == 0.0) ++begin;
        while (end > begin && weights[end - 1] == 0.0) --end;
        taps[i].first = lo + static_cast<int64_t>(begin);
        for (size_t k = begin; k < end; ++k) {
            taps[i].weights.push_back(static_cast<float>(weights[k] / total));
        }
    }
    return taps;
}

uint8_t to_byte(float v) {
    return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
}

Image to_grey(const Image& image) {
    Image grey{image.height, image.width, 1, std::vector<uint8_t>(image.height * image.width)};
    for (size_t i = 0; i < grey.pixels.size(); ++i) {
        const uint8_t* p = &image.pixels[3 * i];
        // ITU-R BT.601 luminance, rounded to nearest, in integers so every platform agrees.
        grey.pixels[i] = static_cast<uint8_t>((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
    }
    return grey;
}

Image to_rgb(const Image& image) {
    Image rgb{image.height, image.width, 3, std::vector<uint8_t>(image.pixels.size() * 3)};
    for (size_t i = 0; i < image.pixels.size(); ++i) {
        std::fill_n(&rgb.pixels[3 * i], 3, image.pixels[i]);
    }
    return rgb;
}

// The centred window of the target's aspect in an image, which then scales to cover the target:
// where fit_image and fit_mask both read, so that a mask stays on its image.
struct CropWindow {
    double top, height, left, width;
};
CropWindow crop_window(const Image& image, int64_t height, int64_t width) {
    const double src_h = static_cast<double>(image.height), src_w = static_cast<double>(image.width);
    double crop_h = src_h, crop_w = src_w;
    if (image.height * width > image.width * height) {
        crop_h = src_w * static_cast<double>(height) / static_cast<double>(width);
    } else {
        crop_w = src_h * static_cast<double>(width) / static_cast<double>(height);
    }
    return {(src_h - crop_h) / 2, crop_h, (src_w - crop_w) / 2, crop_w};
}

// Resamples the window `crop` of `image` to height x width.
Image resize(const Image& image, int64_t height, int64_t width, const CropWindow& crop) {
    const std::vector<Taps> rows = axis_taps(image.height, height, crop.top, crop.height);
    const std::vector<Taps> cols = axis_taps(image.width, width, crop.left, crop.width);
    const int64_t c = image.channels;

    // Horizontal pass over the source rows that the vertical pass reads.
    const int64_t row_lo = rows.front().first;
    const int64_t row_hi = rows.back().first + static_cast<int64_t>(rows.back().weights.size());
    std::vector<float> wide((row_hi - row_lo) * width * c);
    for (int64_t y = row_lo; y < row_hi; ++y) {
        const uint8_t* src = &image.pixels[y * image.width * c];
        float* dst = &wide[(y - row_lo) * width * c];
        for (int64_t x = 0; x < width; ++x) {
            const Taps& t = cols[x];
            for (int64_t ch = 0; ch < c; ++ch) {
                float sum = 0.0f;
                for (size_t k = 0; k < t.weights.size(); ++k) {
                    sum += t.weights[k] * src[(t.first + k) * c + ch];
                }
                dst[x * c + ch] = sum;
            }
        }
    }

    Image out{height, width, c, std::vector<uint8_t>(height * width * c)};
    const int64_t row_elements = width * c;
    for (int64_t y = 0; y < height; ++y) {
        const Taps& t = rows[y];
        uint8_t* dst = &out.pixels[y * row_elements];
        for (int64_t e = 0; e < row_elements; ++e) {
            float sum = 0.0f;
            for (size_t k = 0; k < t.weights.size(); ++k) {
                sum += t.weights[k] * wide[(t.first - row_lo + k) * row_elements + e];
            }
            dst[e] = to_byte(sum);
        }
    }
    return out;
}

// The source pixel nearest the centre of each of `size` outputs over [start, start + length).
std::vector<int64_t> nearest_taps(int64_t src_size, int64_t size, double start, double length) {
    std::vector<int64_t> taps(static_cast<size_t>(size));
    const double scale = length / static_cast<double>(size);
    for (int64_t i = 0; i < size; ++i) {
        const auto j = static_cast<int64_t>(std::floor(start + (static_cast<double>(i) + 0.5) * scale));
        taps[static_cast<size_t>(i)] = std::clamp<int64_t>(j, 0, src_size - 1);
    }
    return taps;
}

}  // namespace

Image fit_mask(const Image& mask, int64_t height, int64_t width) {
    if (mask.channels != 1 || mask.height <= 0 || mask.width <= 0 ||
        mask.pixels.size() != static_cast<size_t>(mask.height * mask.width))
        throw ShapeError("fit_mask: source mask " + shape_text(mask.height, mask.width, mask.channels) +
                         " is invalid (expected one channel and H*W bytes)");
    if (height <= 0 || width <= 0 || height > kMaxSide || width > kMaxSide || height * width > kMaxPixels)
        throw ShapeError("fit_mask: target " + shape_text(height, width, 1) + " is invalid");
    if (mask.height == height && mask.width == width) return mask;
    const CropWindow crop = crop_window(mask, height, width);
    const std::vector<int64_t> rows = nearest_taps(mask.height, height, crop.top, crop.height);
    const std::vector<int64_t> cols = nearest_taps(mask.width, width, crop.left, crop.width);
    Image out{height, width, 1, std::vector<uint8_t>(static_cast<size_t>(height * width))};
    for (int64_t y = 0; y < height; ++y)
        for (int64_t x = 0; x < width; ++x)
            out.pixels[static_cast<size_t>(y * width + x)] = mask.pixels[static_cast<size_t>(
                rows[static_cast<size_t>(y)] * mask.width + cols[static_cast<size_t>(x)])];
    return out;
}

namespace {

void check_source(const Image& image) {
    if ((image.channels != 1 && image.channels != 3) || image.height <= 0 || image.width <= 0 ||
        image.height > kMaxSide || image.width > kMaxSide ||
        image.pixels.size() != static_cast<size_t>(image.height * image.width * image.channels)) {
        throw ShapeError("fit_image: source image " + shape_text(image.height, image.width, image.channels) +
                         " with " + std::to_string(image.pixels.size()) +
                         " bytes is invalid (expected 1 or 3 channels and H*W*C bytes)");
    }
}

void check_target(int64_t height, int64_t width, int64_t channels) {
    if ((channels != 1 && channels != 3) || height <= 0 || width <= 0 || height > kMaxSide ||
        width > kMaxSide || height * width > kMaxPixels) {
        throw ShapeError("fit_image: target " + shape_text(height, width, channels) +
                         " is invalid (expected 1 or 3 channels, 1.." + std::to_string(kMaxSide) +
                         " per side, at most " + std::to_string(kMaxPixels) + " pixels)");
    }
}

// The image in `channels`, resampled to height x width from its window `crop`.
Image convert(const Image& image, int64_t height, int64_t width, int64_t channels, const CropWindow& crop) {
    // Reduce channels before resampling and replicate after it, so the filter runs on one channel
    // where it can.
    const bool same_size = image.height == height && image.width == width;
    if (channels == 1 && image.channels == 3) {
        Image grey = to_grey(image);
        return same_size ? grey : resize(grey, height, width, crop);
    }
    Image sized = same_size ? image : resize(image, height, width, crop);
    return channels == 3 && sized.channels == 1 ? to_rgb(sized) : sized;
}

}  // namespace

Image fit_image(const Image& image, int64_t height, int64_t width, int64_t channels) {
    check_source(image);
    check_target(height, width, channels);
    return convert(image, height, width, channels, crop_window(image, height, width));
}

Letterboxed letterbox_image(const Image& image, int64_t height, int64_t width, int64_t channels,
                            const std::vector<uint8_t>& fill) {
    check_source(image);
    check_target(height, width, channels);
    if (fill.size() != static_cast<size_t>(channels))
        throw ShapeError("letterbox_image: " + std::to_string(fill.size()) + " fill values for " +
                         std::to_string(channels) + " channels");
    const double scale = std::min(static_cast<double>(height) / static_cast<double>(image.height),
                                  static_cast<double>(width) / static_cast<double>(image.width));
    Letterboxed out;
    out.height = std::clamp<int64_t>(std::llround(static_cast<double>(image.height) * scale), 1, height);
    out.width = std::clamp<int64_t>(std::llround(static_cast<double>(image.width) * scale), 1, width);
    out.top = (height - out.height) / 2;
    out.left = (width - out.width) / 2;
    const Image inner = convert(image, out.height, out.width, channels,
                                {0, static_cast<double>(image.height), 0, static_cast<double>(image.width)});
    out.image = {height, width, channels,
                 std::vector<uint8_t>(static_cast<size_t>(height * width * channels))};
    for (int64_t p = 0; p < height * width; ++p)
        std::copy(fill.begin(), fill.end(), out.image.pixels.begin() + p * channels);
    for (int64_t y = 0; y < out.height; ++y)
        std::copy_n(inner.pixels.begin() + y * out.width * channels, out.width * channels,
                    out.image.pixels.begin() + ((out.top + y) * width + out.left) * channels);
    return out;
}

}  // namespace lenz
