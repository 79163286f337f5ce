// Pictures of what a model sees and has learned: feature-map grids, filter grids and a bar chart
// of class probabilities, each labelled with the built-in font so that one PNG says what it shows.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "lenz/error.h"
#include "lenz/report.h"

namespace lenz {
namespace {

constexpr Rgb kInk{40, 40, 48};
constexpr Rgb kFaint{120, 120, 130};
constexpr Rgb kFrame{215, 215, 222};
constexpr int64_t kMargin = 10;
constexpr int64_t kGap = 6;
constexpr int64_t kTitleScale = 2;

// Grids wider than tall suit screens: the largest divisor of `count` (no ragged last row) between
// sqrt(count) and min(16, 2 sqrt(count)), else about sqrt(2 count) columns.
int64_t default_columns(int64_t count) {
    const double root = std::sqrt(static_cast<double>(count));
    const auto low = static_cast<int64_t>(std::ceil(root));
    for (auto c = std::min<int64_t>(16, static_cast<int64_t>(2 * root)); c >= low; --c)
        if (count % c == 0) return c;
    return std::min<int64_t>(16,
                             static_cast<int64_t>(std::ceil(std::sqrt(2.0 * static_cast<double>(count)))));
}

// Lays out `count` equal tiles under a title, each with its number underneath, and calls
// paint(canvas, i, x, y) to draw tile i with its top-left corner at (x, y).
template <typename Paint>
Image tile_grid(int64_t count, int64_t tile_w, int64_t tile_h, int64_t columns, const std::string& title,
                Paint paint) {
    if (columns <= 0) columns = default_columns(count);
    columns = std::max<int64_t>(1, std::min(columns, count));
    const int64_t rows = (count + columns - 1) / columns;
    const int64_t cell_w = std::max(tile_w, text_width(std::to_string(count - 1))) + kGap;
    const int64_t cell_h = tile_h + kLineHeight + kGap;
    const int64_t title_h = kLineHeight * kTitleScale + kGap;
    const int64_t width = std::max(columns * cell_w - kGap, text_width(title, kTitleScale)) + 2 * kMargin;
    const int64_t height = title_h + rows * cell_h - kGap + 2 * kMargin;
    Canvas canvas(width, height);
    canvas.draw_text(kMargin, kMargin, title, kInk, kTitleScale);
    for (int64_t i = 0; i < count; ++i) {
        const int64_t x = kMargin + (i % columns) * cell_w, y = kMargin + title_h + (i / columns) * cell_h;
        canvas.fill_rect(x - 1, y - 1, tile_w + 2, tile_h + 2, kFrame);
        paint(canvas, i, x, y);
        const std::string number = std::to_string(i);
        canvas.draw_text(x + (tile_w - text_width(number)) / 2, y + tile_h + 2, number, kFaint);
    }
    return canvas.to_image();
}

// The value at fraction q of the sorted values (nearest rank).
double quantile(std::vector<float>& values, double q) {
    const size_t k = static_cast<size_t>(std::lround(q * static_cast<double>(values.size() - 1)));
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
    return values[k];
}

// A 1x1 map (a global pool's output) as tiles would be one pixel each, its own range empty: blank.
// It shows as a bar per channel instead, from a zero line, on one scale for all channels, so that
// which channels the image lights up can be read off.
Image channel_bars(const float* values, int64_t channels, const std::string& title) {
    const int64_t bar_w = std::clamp<int64_t>(480 / channels, 1, 12), plot_h = 120;
    double lo = 0, hi = 0;
    for (int64_t c = 0; c < channels; ++c) {
        lo = std::min(lo, static_cast<double>(values[c]));
        hi = std::max(hi, static_cast<double>(values[c]));
    }
    const double span = hi - lo > 0 ? hi - lo : 1;
    char scale[64];
    std::snprintf(scale, sizeof scale, "%d channels, %.3g to %.3g", static_cast<int>(channels), lo, hi);
    const int64_t plot_w = channels * bar_w;
    const int64_t width = std::max({plot_w, text_width(title, kTitleScale), text_width(scale)}) + 2 * kMargin;
    const int64_t top = kMargin + kLineHeight * kTitleScale + kGap;
    Canvas canvas(width, top + plot_h + kGap + kLineHeight + kMargin);
    canvas.draw_text(kMargin, kMargin, title, kInk, kTitleScale);
    canvas.fill_rect(kMargin, top, plot_w, plot_h, {246, 246, 249});
    const int64_t zero = top + std::lround(hi / span * static_cast<double>(plot_h));
    canvas.fill_rect(kMargin, std::min(zero, top + plot_h - 1), plot_w, 1, kFaint);
    for (int64_t c = 0; c < channels; ++c) {
        const int64_t end = top + std::lround((hi - values[c]) / span * static_cast<double>(plot_h));
        const int64_t y0 = std::min(zero, end), h = std::max<int64_t>(1, std::abs(zero - end));
        canvas.fill_rect(kMargin + c * bar_w, y0, std::max<int64_t>(1, bar_w - (bar_w > 2)), h,
                         viridis((values[c] - lo) / span));
    }
    canvas.draw_text(kMargin, top + plot_h + kGap, scale, kFaint);
    return canvas.to_image();
}

}  // namespace

Image feature_map_grid(const float* chw, Shape shape, const std::string& title, const TileOptions& options) {
    const int64_t C = shape.c, H = shape.h, W = shape.w;
    if (C <= 0 || H <= 0 || W <= 0) throw ShapeError("feature map " + shape.str() + " is empty");
    if (H == 1 && W == 1) return channel_bars(chw, C, title);
    // Big maps are shrunk by a whole factor (area average); small ones enlarged by whole pixels.
    const int64_t side = std::max(H, W);
    const int64_t shrink = side > options.tile_max ? (side + options.tile_max - 1) / options.tile_max : 1;
    const int64_t th = (H + shrink - 1) / shrink, tw = (W + shrink - 1) / shrink;
    const int64_t scale = std::max<int64_t>(1, (options.tile_min + std::max(th, tw) - 1) / std::max(th, tw));
    std::vector<float> small(static_cast<size_t>(th * tw));
    return tile_grid(
        C, tw * scale, th * scale, options.columns, title,
        [&](Canvas& canvas, int64_t c, int64_t x, int64_t y) {
            const float* plane = chw + c * H * W;
            for (int64_t r = 0; r < th; ++r)
                for (int64_t q = 0; q < tw; ++q) {
                    double sum = 0;
                    int64_t n = 0;
                    for (int64_t i = r * shrink; i < std::min(H, (r + 1) * shrink); ++i)
                        for (int64_t j = q * shrink; j < std::min(W, (q + 1) * shrink); ++j, ++n)
                            sum += plane[i * W + j];
                    small[static_cast<size_t>(r * tw + q)] = static_cast<float>(sum / static_cast<double>(n));
                }
            // Each tile gets its own contrast: channels differ in scale by orders of magnitude, and
            // the 1st..99th percentile keeps one hot pixel from washing the rest out.
            std::vector<float> sorted = small;
            const double lo = quantile(sorted, 0.01), hi = quantile(sorted, 0.99);
            const double range = hi - lo;
            for (int64_t r = 0; r < th; ++r)
                for (int64_t q = 0; q < tw; ++q) {
                    const double v = small[static_cast<size_t>(r * tw + q)];
                    // A constant (dead) channel shows as the map's darkest colour.
                    const Rgb color =
                        viridis(range > 1e-12 * std::max(1.0, std::abs(hi)) ? (v - lo) / range : 0.0);
                    canvas.fill_rect(x + q * scale, y + r * scale, scale, scale, color);
                }
        });
}

Image filter_grid(const float* weights, int64_t out_channels, int64_t in_channels, int64_t kh, int64_t kw,
                  const std::string& title) {
    if (out_channels <= 0 || in_channels <= 0 || kh <= 0 || kw <= 0) throw ShapeError("no filters to draw");
    const int64_t scale = std::max<int64_t>(1, (40 + std::max(kh, kw) - 1) / std::max(kh, kw));
    const int64_t plane = kh * kw, per_filter = in_channels * plane;
    return tile_grid(out_channels, kw * scale, kh * scale, 0, title,
                     [&](Canvas& canvas, int64_t o, int64_t x, int64_t y) {
                         const float* f = weights + o * per_filter;
                         // Symmetric scaling keeps zero at the middle colour, so the sign of each weight
                         // shows.
                         double peak = 0;
                         for (int64_t i = 0; i < per_filter; ++i)
                             peak = std::max(peak, std::abs(static_cast<double>(f[i])));
                         if (peak <= 0) peak = 1;
                         for (int64_t r = 0; r < kh; ++r)
                             for (int64_t q = 0; q < kw; ++q) {
                                 Rgb color;
                                 if (in_channels == 3) {
                                     auto level = [&](int64_t ch) {
                                         return static_cast<uint8_t>(
                                             std::lround(127.5 + 127.5 * f[ch * plane + r * kw + q] / peak));
                                     };
                                     color = {level(0), level(1), level(2)};
                                 } else {
                                     double mean = 0;
                                     for (int64_t ch = 0; ch < in_channels; ++ch)
                                         mean += f[ch * plane + r * kw + q];
                                     mean /= static_cast<double>(in_channels);
                                     color = diverging(0.5 + 0.5 * mean / peak);
                                 }
                                 canvas.fill_rect(x + q * scale, y + r * scale, scale, scale, color);
                             }
                     });
}

Image probability_chart(const std::vector<double>& probabilities, const std::vector<std::string>& class_names,
                        const std::string& title) {
    const int64_t K = static_cast<int64_t>(probabilities.size());
    if (K == 0) throw ShapeError("no probabilities to draw");
    auto name = [&](int64_t k) {
        return k < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(k)]
                                                            : "class " + std::to_string(k);
    };
    const int64_t s = 2, row = kLineHeight * s + 6, bar_max = 240;
    int64_t name_w = 0;
    for (int64_t k = 0; k < K; ++k) name_w = std::max(name_w, text_width(name(k), s));
    const int64_t best = std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin();
    const int64_t bar_x = kMargin + name_w + 10;
    const int64_t width =
        std::max(bar_x + bar_max + 10 + text_width("100.0%", s), text_width(title, s)) + kMargin;
    const int64_t top = kMargin + kLineHeight * s + 8;
    Canvas canvas(width, top + K * row + kMargin);
    canvas.draw_text(kMargin, kMargin, title, kInk, s);
    for (int64_t k = 0; k < K; ++k) {
        const int64_t y = top + k * row;
        const double p = std::clamp(probabilities[static_cast<size_t>(k)], 0.0, 1.0);
        canvas.draw_text(bar_x - 10 - text_width(name(k), s), y + 2, name(k), k == best ? kInk : kFaint, s);
        canvas.fill_rect(bar_x, y, bar_max, row - 4, {240, 240, 244});
        canvas.fill_rect(bar_x, y, std::lround(p * bar_max), row - 4,
                         k == best ? Rgb{33, 145, 140} : Rgb{150, 170, 200});
        char pct[16];
        std::snprintf(pct, sizeof pct, "%.1f%%", 100 * p);
        canvas.draw_text(bar_x + bar_max + 10, y + 2, pct, k == best ? kInk : kFaint, s);
    }
    return canvas.to_image();
}

Image image_from_set(const ImageSet& set, int64_t index) {
    if (index < 0 || index >= set.size())
        throw ShapeError("image " + std::to_string(index) + " is outside the set's 0.." +
                         std::to_string(set.size() - 1));
    Image img{set.height, set.width, set.channels, {}};
    const int64_t plane = set.height * set.width;
    img.pixels.resize(static_cast<size_t>(set.image_elements()));
    const uint8_t* src = set.pixels.data() + index * set.image_elements();
    for (int64_t c = 0; c < set.channels; ++c)
        for (int64_t p = 0; p < plane; ++p)
            img.pixels[static_cast<size_t>(p * set.channels + c)] = src[c * plane + p];
    return img;
}

}  // namespace lenz
