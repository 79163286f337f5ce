// Seeing inside a model: raster pictures (feature-map and filter grids, labelled with a built-in
// bitmap font), SVG line charts, and one self-contained HTML report of a training run or an
// evaluation. Everything is drawn here, with no fonts, scripts or network access needed.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lenz/data.h"
#include "lenz/model.h"
#include "lenz/summary.h"
#include "lenz/train.h"

namespace lenz {

// ---- Raster drawing (src/report/canvas.cpp, font.cpp) ----

struct Rgb {
    uint8_t r = 0, g = 0, b = 0;
    bool operator==(const Rgb&) const = default;
};

// An RGB picture to draw on; converts to an Image for write_png / encode_png.
class Canvas {
  public:
    Canvas(int64_t width, int64_t height, Rgb background = {255, 255, 255});
    int64_t width() const { return width_; }
    int64_t height() const { return height_; }
    void set(int64_t x, int64_t y, Rgb color);  // ignores points outside
    Rgb get(int64_t x, int64_t y) const;
    void fill_rect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb color);
    // Draws `image` (grey or RGB) with its top-left corner at (x, y), each pixel as scale x scale.
    void draw_image(const Image& image, int64_t x, int64_t y, int64_t scale);
    // Draws text with the built-in 5x7 font; each font pixel becomes scale x scale. Returns the width.
    int64_t draw_text(int64_t x, int64_t y, std::string_view text, Rgb color, int64_t scale = 1);
    Image to_image() const;

  private:
    int64_t width_, height_;
    std::vector<uint8_t> pixels_;  // (H, W, 3)
};

// The built-in font: 5x7 glyphs (lower-case descenders use an 8th row) on a 6x9 cell.
inline constexpr int64_t kGlyphAdvance = 6;
inline constexpr int64_t kLineHeight = 9;
int64_t text_width(std::string_view text, int64_t scale = 1);
// Rows of the glyph for `c`, top to bottom, bit 4 = leftmost column; unknown characters get a box.
const uint8_t* glyph_rows(char c);

// Colour maps for values in [0, 1]: viridis (feature maps) and a blue-white-red diverging map
// (signed weights, 0.5 = zero).
Rgb viridis(double t);
Rgb diverging(double t);

// ---- Pictures of a model (src/report/tiles.cpp) ----

struct TileOptions {
    int64_t tile_min = 48;   // small maps are enlarged (whole pixels) to at least this side
    int64_t tile_max = 160;  // large maps are shrunk (area average) to at most this side
    int64_t columns = 0;     // 0: about square, at most 16
};

// One tile per channel of a (C, H, W) activation, each with its own contrast (1st..99th
// percentile mapped through viridis), a title line above, and the channel number under each tile.
Image feature_map_grid(const float* chw, Shape shape, const std::string& title,
                       const TileOptions& options = {});
// One tile per filter of a conv weight (OC, C, KH, KW): RGB for 3 input channels (each filter
// scaled symmetrically around grey = 0), the diverging map for one channel (or the channels' mean).
Image filter_grid(const float* weights, int64_t out_channels, int64_t in_channels, int64_t kh, int64_t kw,
                  const std::string& title);
// Horizontal bars of class probabilities, with the class names and percentages.
Image probability_chart(const std::vector<double>& probabilities, const std::vector<std::string>& class_names,
                        const std::string& title);
// An image of a data set (planar C, H, W) as an interleaved Image.
Image image_from_set(const ImageSet& set, int64_t index);

// ---- Running a model to look at it (src/report/activations.cpp) ----

// The index of the first conv layer, or -1.
int64_t first_conv_layer(Model& model);
// Feature-map grids of every conv and pooling layer, plus the first layer's filters, for one image.
struct ModelPictures {
    std::optional<Image> filters;
    std::vector<Image> feature_maps;
    std::vector<std::string> feature_map_names;  // "03-conv-14x14x64" for file names
    std::vector<double> probabilities;
};
ModelPictures picture_model(Model& model, const Image& input, const Normalization& norm);

// What `lenz visualize` draws for one image (src/report/visualize.cpp), in order, each named as its
// file without ".png": "input" (the image as the model sees it, enlarged), "probabilities",
// "filters" (when the model has a convolution), a grid per conv and pooling layer
// ("03-conv-14x14x64"), and "overview" (all of these stacked).
struct NamedPicture {
    std::string name;
    Image image;
};
struct Visualization {
    std::vector<NamedPicture> pictures;
    std::vector<double> probabilities;
};
Visualization visualize(Model& model, const Image& source, const Normalization& norm,
                        const std::vector<std::string>& class_names);

// ---- Encoding (src/report/encode.cpp) ----

std::string base64(std::string_view bytes);
std::string png_data_uri(const Image& image);  // "data:image/png;base64,..."

// ---- SVG and HTML pieces (src/report/svg_chart.cpp, html.cpp) ----

struct ChartSeries {
    std::string name;
    std::string color;  // CSS colour
    std::vector<double> x, y;
    bool dashed = false;
};
struct LineChart {
    std::string title, x_label, y_label;
    std::vector<ChartSeries> series;
    bool percent = false;   // y values in [0, 1] shown as percentages
    bool integer_x = true;  // x is a count (epochs): ticks at whole numbers only
    int64_t width = 520, height = 300;
};
// An inline <svg> with axes, ticks, grid lines, axis labels, a legend, and a point per value.
std::string svg_line_chart(const LineChart& chart);

std::string html_escape(std::string_view text);
// "92.13 %" with two decimals
std::string percent_text(double fraction);
// The summary table: each layer's output, parameters, MACs and output bytes, then the memory figures.
std::string summary_table_html(const Summary& summary);
// Rows: true class, columns: predicted; each cell a count, shaded by its share of the row.
std::string confusion_matrix_html(const std::vector<std::vector<int64_t>>& confusion,
                                  const std::vector<std::string>& class_names);
std::string per_class_html(const std::vector<double>& accuracy, const std::vector<std::string>& class_names);

// ---- The report (src/report/report.cpp) ----

struct Misclassified {
    Image image;
    int32_t truth = 0, predicted = 0;
    double confidence = 0;  // the predicted class's probability
};
// Up to `limit` test images the model gets wrong, in order (stops scanning once it has them).
std::vector<Misclassified> find_misclassified(Model& model, const ImageSet& set, const Normalization& norm,
                                              int64_t limit);

// A test image of a segmentation set beside its true mask and the model's, in class colours.
struct SegmentedImage {
    Image image, truth, predicted;
};
// The first `limit` images of a segmentation set with their masks.
std::vector<SegmentedImage> segment_examples(Model& model, const ImageSet& set, const Normalization& norm,
                                             int64_t limit);
// A mask (one channel, a class per pixel) in colour: Pascal VOC's palette (class 0 black), ignored
// pixels white.
Image colour_mask(const Image& mask);

struct ReportData {
    std::string model_name;  // "fashion"
    std::string data_name;   // "Fashion-MNIST (/usr/share/...)"
    std::string status;      // "epoch 3 of 5", "evaluation of best.safetensors"
    std::vector<std::string> class_names;
    std::optional<Summary> summary;
    std::vector<EpochMetrics> history;  // training curves; none for a bare evaluation
    std::optional<EvalResult> evaluation;
    std::vector<Misclassified> misclassified;
    std::vector<SegmentedImage> segmented;  // segmentation sets: test images and their masks
    std::optional<ModelPictures> pictures;
    std::string picture_caption;  // what the feature maps show, e.g. "test image 0 (Ankle boot)"
    std::optional<Image> picture_input;
};

// The whole page: header, summary, curves, confusion matrix, per-class accuracy, mistakes, pictures.
// Sections without data are left out.
std::string render_report(const ReportData& data);
// Writes the page atomically (a temporary file in the same folder, then rename).
void write_report(const std::string& path, const ReportData& data);
// The epochs of a run's metrics.jsonl (the last line for each epoch wins; a missing file gives none).
std::vector<EpochMetrics> read_metrics_jsonl(const std::string& path);
// What lenz train writes after each epoch, as TrainConfig::on_epoch: config.out_dir/report.html,
// with the curves so far, the trainer's evaluation of the epoch (confusion matrix, per-class
// accuracy), then the mistakes and feature maps of the current weights on the same test images
// (config.limit_test of them). Throws Error for a data split without test images.
std::function<bool(const EpochMetrics&, const EvalResult&)> epoch_report_writer(
    Model& model, const DataSplit& data, const TrainConfig& config, const std::string& model_name);
// Fills evaluation (unless the caller already has it), misclassified (segmentation: segmented) and
// pictures (of test image `picture_index`) from a model and a test set.
void add_evaluation(ReportData& data, Model& model, const ImageSet& test, const Normalization& norm,
                    int64_t picture_index = 0);

}  // namespace lenz
