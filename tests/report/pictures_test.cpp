// The bitmap font, the tile grids and the per-layer outputs the pictures are made from.
#include <gtest/gtest.h>

#include <set>

#include "lenz/engine.h"
#include "lenz/model_text.h"
#include "lenz/report.h"

namespace lenz {
namespace {

std::set<std::tuple<int, int, int>> colours(const Image& image) {
    std::set<std::tuple<int, int, int>> seen;
    for (size_t i = 0; i + 2 < image.pixels.size(); i += 3)
        seen.insert({image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]});
    return seen;
}

bool has(const Image& image, Rgb c) {
    return colours(image).count({c.r, c.g, c.b}) > 0;
}

TEST(Font, EveryPrintableCharacterHasInkExceptSpace) {
    for (int c = 33; c <= 126; ++c) {
        const uint8_t* rows = glyph_rows(static_cast<char>(c));
        int ink = 0;
        for (int r = 0; r < 8; ++r) ink += rows[r] != 0;
        EXPECT_GT(ink, 0) << "glyph '" << static_cast<char>(c) << "'";
        for (int r = 0; r < 8; ++r) EXPECT_EQ(rows[r] & ~0x1F, 0) << "glyph wider than 5 columns";
    }
    for (int r = 0; r < 8; ++r) EXPECT_EQ(glyph_rows(' ')[r], 0);
    // Different characters look different (no copy-paste slips among letters and digits).
    std::set<std::vector<uint8_t>> shapes;
    for (const char c : std::string("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")) {
        const uint8_t* rows = glyph_rows(c);
        EXPECT_TRUE(shapes.insert(std::vector<uint8_t>(rows, rows + 8)).second) << c;
    }
}

TEST(Font, TextIsDrawnWithinItsWidth) {
    EXPECT_EQ(text_width(""), 0);
    EXPECT_EQ(text_width("ab"), 11);
    EXPECT_EQ(text_width("ab", 2), 22);
    Canvas canvas(40, 12);
    const int64_t w = canvas.draw_text(2, 2, "Hi!", {0, 0, 0});
    int64_t right = 0, ink = 0;
    for (int64_t y = 0; y < 12; ++y)
        for (int64_t x = 0; x < 40; ++x)
            if (canvas.get(x, y) == Rgb{0, 0, 0}) right = std::max(right, x), ++ink;
    EXPECT_GT(ink, 10);
    EXPECT_LE(right, 2 + w - 1);
}

TEST(Tiles, FeatureMapGridScalesEachTileToItsOwnRange) {
    // Channel 0 in [0, 1], channel 1 in [0, 1000], channel 2 constant: the first two both reach
    // the colour map's ends; the constant one is drawn dark, not as noise.
    const Shape shape{10, 10, 3};
    std::vector<float> x(300);
    for (int i = 0; i < 100; ++i) {
        x[static_cast<size_t>(i)] = static_cast<float>(i) / 99.0f;
        x[static_cast<size_t>(100 + i)] = static_cast<float>(i) * 10.0f;
        x[static_cast<size_t>(200 + i)] = 5.0f;
    }
    const Image one = feature_map_grid(x.data() + 100, {10, 10, 1}, "t");
    EXPECT_TRUE(has(one, viridis(0)));
    EXPECT_TRUE(has(one, viridis(1)));
    const Image grid = feature_map_grid(x.data(), shape, "layer 1: conv 3 3  ->  10 x 10 x 3");
    EXPECT_EQ(grid.channels, 3);
    // 10x10 maps are enlarged by whole pixels to at least 48: 5x, so each tile is 50 wide.
    EXPECT_GE(grid.width, 3 * 50);
    EXPECT_TRUE(has(grid, viridis(0)));
    EXPECT_TRUE(has(grid, viridis(1)));
}

// A global pool's 1x1 map used to be a blank tile per channel (each one pixel, its own range empty).
TEST(Tiles, OneByOneMapsAreBarsOfTheirChannels) {
    std::vector<float> x{0, 1, 2, 3, -4, 5, 6, 7};
    const Image bars = feature_map_grid(x.data(), {1, 1, 8}, "layer 7: globalavgpool");
    EXPECT_TRUE(has(bars, viridis(1)));           // the largest channel, at the top of the scale
    EXPECT_TRUE(has(bars, viridis(0)));           // the smallest, below the zero line
    EXPECT_TRUE(has(bars, viridis(4.0 / 11.0)));  // channel 0, value 0, on the scale from -4 to 7
    EXPECT_GE(bars.width, 8 * 12);
}

TEST(Tiles, LargeMapsAreShrunk) {
    std::vector<float> x(400 * 300, 1.0f);
    const Image grid = feature_map_grid(x.data(), {400, 300, 1}, "big");
    EXPECT_LE(grid.height, 160 + 60);
    EXPECT_LE(grid.width, 160 + 40);
}

TEST(Tiles, RgbFiltersShowTheirColour) {
    // One 1x1 filter over RGB: strongly red-positive, blue-negative.
    const float w[3] = {1.0f, 0.0f, -1.0f};
    const Image grid = filter_grid(w, 1, 3, 1, 1, "filters");
    EXPECT_TRUE(has(grid, Rgb{255, 128, 0}));
    // A grey filter uses the diverging map: +max is its red end, -max its blue end.
    const float g[2] = {2.0f, -2.0f};
    const Image grey = filter_grid(g, 1, 1, 1, 2, "filters");
    EXPECT_TRUE(has(grey, diverging(1)));
    EXPECT_TRUE(has(grey, diverging(0)));
}

TEST(Tiles, ProbabilityChartHighlightsTheBestClass) {
    const Image chart = probability_chart({0.1, 0.7, 0.2}, {"cat", "dog", "eel"}, "class probabilities");
    EXPECT_TRUE(has(chart, Rgb{33, 145, 140}));
    EXPECT_GT(chart.width, 200);
}

Model picture_model() {
    Model m = parse_model(
        "input 12x12x3\nconv 4 3 padding=same relu\nmaxpool 2\nbatchnorm\nconv 6 3 relu\n"
        "globalavgpool\nflatten\ndropout 0.5\ndense 5 softmax\n",
        "small.lenz");
    m.init_params(7);
    return m;
}

TEST(Activations, LastLayerOutputMatchesInference) {
    Model m = picture_model();
    std::vector<float> input(12 * 12 * 3);
    for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>((i * 37) % 11) / 5.0f - 1.0f;
    const auto outputs = layer_outputs(m, input.data());
    ASSERT_EQ(static_cast<int64_t>(outputs.size()), m.size());
    for (int64_t i = 0; i < m.size(); ++i)
        EXPECT_EQ(static_cast<int64_t>(outputs[static_cast<size_t>(i)].size()),
                  m.layer(i).output_shape().elements());
    Inference inference(m, 1);
    const float* expected = inference.run(input.data(), 1);
    for (int k = 0; k < 5; ++k) EXPECT_NEAR(outputs.back()[static_cast<size_t>(k)], expected[k], 1e-5);
    const auto p = class_probabilities(m, outputs.back().data(), static_cast<int64_t>(outputs.back().size()));
    double sum = 0;
    for (double v : p) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5);
}

TEST(Activations, PicturesOfEveryConvAndPoolingLayer) {
    Model m = picture_model();
    Image image{20, 16, 3, std::vector<uint8_t>(20 * 16 * 3)};
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 7);
    const Normalization norm{{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
    const ModelPictures p = picture_model(m, image, norm);
    ASSERT_EQ(p.feature_maps.size(), 4u);  // conv, maxpool, conv, globalavgpool
    EXPECT_EQ(p.feature_map_names[0], "01-conv-12x12x4");
    EXPECT_EQ(p.feature_map_names[3], "05-globalavgpool-1x1x6");
    ASSERT_TRUE(p.filters.has_value());
    EXPECT_EQ(p.probabilities.size(), 5u);
}

}  // namespace
}  // namespace lenz
