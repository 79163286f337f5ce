// An epoch's figures as one list (metrics.jsonl and Python's history are written from it) and as
// the line lenz train prints.
#include "lenz/metrics.h"

#include <cmath>
#include <cstdio>

namespace lenz {

std::string duration_text(double s) {
    char buf[32];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 3600)
        std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600,
                      static_cast<int>(s) % 3600 / 60);
    return buf;
}

std::vector<MetricValue> epoch_values(const EpochMetrics& m) {
    using Kind = MetricValue::Kind;
    std::vector<MetricValue> values{{"epoch", static_cast<double>(m.epoch), Kind::count},
                                    {"train_loss", m.train_loss},
                                    {"train_accuracy", m.train_accuracy}};
    if (!std::isnan(m.test_accuracy)) {  // evaluated
        values.push_back({"test_loss", m.test_loss});
        values.push_back({"test_accuracy", m.test_accuracy});
        if (!std::isnan(m.test_mean_iou)) values.push_back({"test_mean_iou", m.test_mean_iou});
        values.push_back({"best", m.best ? 1.0 : 0.0, Kind::flag});
    }
    values.push_back({"learning_rate", m.learning_rate});
    values.push_back({"seconds", m.seconds});
    values.push_back({"images_per_second", m.images_per_second});
    return values;
}

std::string epoch_line(const EpochMetrics& m, int64_t epochs) {
    char buf[256];
    int n = std::snprintf(buf, sizeof buf, "epoch %lld/%lld  train loss %.4f  acc %.2f%%  |  ",
                          static_cast<long long>(m.epoch), static_cast<long long>(epochs), m.train_loss,
                          100 * m.train_accuracy);
    if (!std::isnan(m.test_mean_iou))
        n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n),
                           "test loss %.4f  acc %.2f%%  mIoU %.2f%%%s  |  ", m.test_loss,
                           100 * m.test_accuracy, 100 * m.test_mean_iou, m.best ? " (best)" : "");
    else if (!std::isnan(m.test_accuracy))
        n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "test loss %.4f  acc %.2f%%%s  |  ",
                           m.test_loss, 100 * m.test_accuracy, m.best ? " (best)" : "");
    std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "%.0f img/s  %s  lr %.2g",
                  m.images_per_second, duration_text(m.seconds).c_str(), m.learning_rate);
    return buf;
}

std::vector<double> class_iou(const std::vector<std::vector<int64_t>>& confusion) {
    const size_t K = confusion.size();
    std::vector<double> iou(K, std::nan(""));
    for (size_t k = 0; k < K; ++k) {
        int64_t truth = 0, predicted = 0;
        for (size_t j = 0; j < K; ++j) {
            truth += confusion[k][j];
            predicted += confusion[j][k];
        }
        const int64_t both = confusion[k][k], either = truth + predicted - both;
        if (either > 0) iou[k] = static_cast<double>(both) / static_cast<double>(either);
    }
    return iou;
}

double mean_present(const std::vector<double>& values) {
    double sum = 0;
    int64_t count = 0;
    for (double v : values)
        if (!std::isnan(v)) {
            sum += v;
            ++count;
        }
    return count ? sum / static_cast<double>(count) : std::nan("");
}

}  // namespace lenz
