// What a run measures: an epoch's figures (as text, as metrics.jsonl and as Python's history, from
// one list), and an evaluation's loss, accuracy and confusion matrix.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lenz {

struct EpochMetrics {
    int64_t epoch = 0;  // 1-based
    double train_loss = 0, train_accuracy = 0;
    double test_loss = 0, test_accuracy = 0;  // segmentation: the accuracy is over pixels
    double test_mean_iou = std::nan("");      // segmentation only
    double learning_rate = 0;
    double seconds = 0, images_per_second = 0;
    // The best test accuracy (segmentation: mean IoU) of the run so far (written to best.safetensors).
    bool best = false;
};

// An epoch's figures by name, in the order metrics.jsonl and Python's fit history give them: epoch,
// train_loss, train_accuracy, test_loss, test_accuracy, test_mean_iou (segmentation) and best (only
// with a test set),
// learning_rate, seconds, images_per_second. Both are written from this list alone.
struct MetricValue {
    enum class Kind { count, real, flag };  // as JSON and Python show it: an integer, a float, a bool
    const char* name;
    double value;
    Kind kind = Kind::real;
};
std::vector<MetricValue> epoch_values(const EpochMetrics& m);

// One line on an epoch, as lenz train prints it: "epoch 1/5  train loss 0.5123  acc 81.20%  |  test
// loss ...". Without a test set (NaN test figures) the test part is left out.
std::string epoch_line(const EpochMetrics& m, int64_t epochs);
// "42s", "3m05s", "1h02m".
std::string duration_text(double seconds);

// For segmentation the figures are over pixels (those of kIgnorePixel left out): the accuracy is
// the pixel accuracy, the confusion counts pixels, and the IoUs are set.
struct EvalResult {
    double loss = 0, accuracy = 0;
    std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
    std::vector<double> per_class_accuracy;
    int64_t count = 0;  // images
    bool segmentation = false;
    int64_t pixels = 0;                 // segmentation: the pixels scored
    std::vector<double> per_class_iou;  // NaN for a class in neither the truth nor the prediction
    double mean_iou = std::nan("");     // over the classes whose IoU is a number
};

// Each class's intersection over union from a confusion matrix ([true][predicted]): the pixels of
// class k predicted k over those of class k or predicted k; NaN where there are none.
std::vector<double> class_iou(const std::vector<std::vector<int64_t>>& confusion);
// The mean of the values that are not NaN (torchmetrics' JaccardIndex leaves such classes out); NaN
// if none is.
double mean_present(const std::vector<double>& values);

}  // namespace lenz
