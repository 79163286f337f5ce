// The RGB canvas the pictures are drawn on, and the colour maps that turn values into colours.
#include <algorithm>
#include <array>
#include <cmath>

#include "lenz/error.h"
#include "lenz/report.h"

namespace lenz {

Canvas::Canvas(int64_t width, int64_t height, Rgb background) : width_(width), height_(height) {
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
        throw ShapeError("cannot make a " + std::to_string(width) + "x" + std::to_string(height) +
                         " picture (each side must be 1..16384)");
    pixels_.resize(static_cast<size_t>(width * height * 3));
    for (size_t i = 0; i < pixels_.size(); i += 3) {
        pixels_[i] = background.r;
        pixels_[i + 1] = background.g;
        pixels_[i + 2] = background.b;
    }
}

void Canvas::set(int64_t x, int64_t y, Rgb color) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    uint8_t* p = &pixels_[static_cast<size_t>((y * width_ + x) * 3)];
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
}

Rgb Canvas::get(int64_t x, int64_t y) const {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return {};
    const uint8_t* p = &pixels_[static_cast<size_t>((y * width_ + x) * 3)];
    return {p[0], p[1], p[2]};
}

void Canvas::fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb color) {
    const int64_t x0 = std::max<int64_t>(x, 0), y0 = std::max<int64_t>(y, 0);
    const int64_t x1 = std::min(x + w, width_), y1 = std::min(y + h, height_);
    for (int64_t yy = y0; yy < y1; ++yy)
        for (int64_t xx = x0; xx < x1; ++xx) set(xx, yy, color);
}

void Canvas::draw_image(const Image& image, int64_t x, int64_t y, int64_t scale) {
    for (int64_t r = 0; r < image.height; ++r)
        for (int64_t c = 0; c < image.width; ++c) {
            const uint8_t* p = &image.pixels[static_cast<size_t>((r * image.width + c) * image.channels)];
            const Rgb color = image.channels >= 3 ? Rgb{p[0], p[1], p[2]} : Rgb{p[0], p[0], p[0]};
            fill_rect(x + c * scale, y + r * scale, scale, scale, color);
        }
}

Image Canvas::to_image() const {
    return Image{height_, width_, 3, pixels_};
}

namespace {

// Linear interpolation between evenly spaced colour stops.
template <size_t N>
Rgb interpolate(const std::array<Rgb, N>& stops, double t) {
    if (!std::isfinite(t)) t = 0;
    t = std::clamp(t, 0.0, 1.0) * static_cast<double>(N - 1);
    const size_t i = std::min(static_cast<size_t>(t), N - 2);
    const double f = t - static_cast<double>(i);
    auto mix = [f](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * f)); };
    return {mix(stops[i].r, stops[i + 1].r), mix(stops[i].g, stops[i + 1].g),
            mix(stops[i].b, stops[i + 1].b)};
}

}  // namespace

Rgb viridis(double t) {
    // Matplotlib's viridis sampled at nine points: perceptually even, readable in grey print too.
    static constexpr std::array<Rgb, 9> stops = {{{68, 1, 84},
                                                  {72, 40, 120},
                                                  {59, 82, 139},
                                                  {44, 114, 142},
                                                  {33, 145, 140},
                                                  {40, 174, 128},
                                                  {94, 201, 98},
                                                  {173, 220, 48},
                                                  {253, 231, 37}}};
    return interpolate(stops, t);
}

Rgb diverging(double t) {
    // ColorBrewer RdBu, reversed: negative blue, zero near-white, positive red.
    static constexpr std::array<Rgb, 5> stops = {
        {{33, 102, 172}, {103, 169, 207}, {247, 247, 247}, {239, 138, 98}, {178, 24, 43}}};
    return interpolate(stops, t);
}

}  // namespace lenz
