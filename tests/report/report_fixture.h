// A report's worth of data without training: a small model with fixed weights, a synthetic test
// set of simple shapes, and made-up epochs. Evaluation, mistakes and pictures are computed for real.
#pragma once
#include <cmath>

#include "lenz/model_text.h"
#include "lenz/report.h"

namespace lenz::testing {

inline ImageSet synthetic_test_set(int64_t count) {
    ImageSet set;
    set.height = set.width = 28;
    set.channels = 1;
    set.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    for (int64_t n = 0; n < count; ++n) {
        const int32_t label = static_cast<int32_t>(n % 10);
        set.labels.push_back(label);
        // A blob whose place and size depend on the class, with some texture: enough for feature maps.
        const double cy = 8 + 1.3 * label, cx = 20 - 1.2 * label, r = 5 + label % 4;
        for (int64_t y = 0; y < 28; ++y)
            for (int64_t x = 0; x < 28; ++x) {
                const double d = std::hypot(y - cy, x - cx);
                const double v =
                    d < r ? 200 + 40 * std::sin(0.9 * x + 0.4 * n) : 20 * std::cos(0.5 * (x + y + n));
                set.pixels.push_back(static_cast<uint8_t>(std::clamp(v, 0.0, 255.0)));
            }
    }
    return set;
}

struct ReportFixture {
    Model model = parse_model(
        "input 28x28x1\nconv 8 3 padding=same relu\nmaxpool 2\nconv 16 3 relu\nmaxpool 2\n"
        "dense 10 softmax\n",
        "tiny.lenz");
    ImageSet test = synthetic_test_set(120);
    ReportData data;

    ReportFixture() {
        model.init_params(3);
        data.model_name = "tiny";
        data.data_name = "synthetic shapes";
        data.status = "after epoch 5 of 5";
        data.class_names = test.class_names;
        data.summary = summarize(model, {.batch = 64});
        for (int64_t e = 1; e <= 5; ++e) {
            EpochMetrics m;
            m.epoch = e;
            m.train_loss = 1.2 / static_cast<double>(e) + 0.2;
            m.test_loss = 1.1 / static_cast<double>(e) + 0.28;
            m.train_accuracy = 0.70 + 0.05 * static_cast<double>(e) - 0.004 * static_cast<double>(e * e);
            m.test_accuracy = 0.69 + 0.045 * static_cast<double>(e) - 0.0041 * static_cast<double>(e * e);
            m.learning_rate = 0.002 / static_cast<double>(e);
            m.seconds = 60;
            m.images_per_second = 1000;
            data.history.push_back(m);
        }
        const Normalization norm{{0.2f}, {0.3f}};
        add_evaluation(data, model, test, norm, 9);
    }
};

}  // namespace lenz::testing
