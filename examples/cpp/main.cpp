// Lenz from a C++ program (docs/cpp.md): load a model, print what it costs, train it for a few
// steps on synthetic images, then classify an image.
//   lenz-example MODEL [IMAGE]
// MODEL: a model file (.lenz, fresh weights from seed 1) or a trained model (.onnx, .safetensors).
// IMAGE: a PNG or JPEG, fitted to the model's input; without it, one of the synthetic images.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lenz/data.h"           // Image, ImageSet, DataSplit, read_image, fit_image
#include "lenz/engine.h"         // Inference
#include "lenz/error.h"          // lenz::Error, what every function here throws
#include "lenz/normalization.h"  // normalize_image
#include "lenz/onnx.h"           // load_with_weights
#include "lenz/summary.h"        // summarize, format_summary
#include "lenz/train.h"          // train, TrainConfig

// n images of the model's input shape, whose brightness tells their class apart.
lenz::ImageSet synthetic_images(const lenz::Shape& in, int64_t classes, int64_t n, unsigned seed) {
    lenz::ImageSet set;
    set.height = in.h, set.width = in.w, set.channels = in.c;
    std::mt19937 random(seed);
    std::uniform_int_distribution<int> noise(0, 30);
    for (int64_t i = 0; i < n; ++i) {
        const int64_t label = i % classes;
        set.labels.push_back(static_cast<int32_t>(label));
        for (int64_t p = 0; p < set.image_elements(); ++p)
            set.pixels.push_back(static_cast<uint8_t>(20 + 200 * label / classes + noise(random)));
    }
    for (int64_t k = 0; k < classes; ++k) set.class_names.push_back("level " + std::to_string(k));
    return set;
}

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s MODEL [IMAGE]\n", argv[0]);
        return 2;
    }
    try {
        lenz::LoadedModel loaded = lenz::load_with_weights(argv[1], 1);
        lenz::Model& model = loaded.model;
        // What it costs (parameters, multiplications, memory): the table `lenz summary` prints.
        std::fputs(lenz::format_summary(lenz::summarize(model, {.batch = 1}), argv[1], false).c_str(),
                   stdout);

        // Five epochs of four steps: 128 training images in batches of 32, and 32 test images.
        const lenz::Shape in = model.input_shape();
        const int64_t classes = model.output_shape().elements();
        lenz::DataSplit data;
        data.train = synthetic_images(in, classes, 128, 1);
        data.test = synthetic_images(in, classes, 32, 2);
        data.description = "synthetic images";
        lenz::TrainConfig config;
        config.epochs = 5;
        config.batch = 32;
        config.schedule.base_lr = 0.002;  // Adam, cosine schedule (TrainConfig lists the rest)
        config.out_dir = (std::filesystem::temp_directory_path() / "lenz-example").string();
        config.on_epoch = [&](const lenz::EpochMetrics& m, const lenz::EvalResult&) {
            std::printf("%s\n", lenz::epoch_line(m, config.epochs).c_str());
            return true;  // false would stop training here
        };
        lenz::train(model, data, config);  // checkpoints and metrics.jsonl in out_dir
        std::filesystem::remove_all(config.out_dir);

        // Prediction: pixels (C, H, W), normalised as training did, through the inference engine.
        const int64_t plane = in.h * in.w;
        std::vector<uint8_t> pixels(data.test.pixels.begin(), data.test.pixels.begin() + in.elements());
        if (argc == 3) {  // files hold (H, W, C): interleaved, where the model reads planes
            const lenz::Image image = lenz::fit_image(lenz::read_image(argv[2]), in.h, in.w, in.c);
            for (int64_t c = 0; c < in.c; ++c)
                for (int64_t p = 0; p < plane; ++p) pixels[c * plane + p] = image.pixels[p * in.c + c];
        }
        std::vector<float> input(pixels.size());
        lenz::normalize_image(pixels.data(), in.c, plane, lenz::compute_normalization(data.train),
                              input.data());
        lenz::Inference inference(model, 1);
        const float* out = inference.run(input.data(), 1);
        const int64_t best = std::max_element(out, out + classes) - out;
        std::printf("%s: %s (output %.3f)\n", argc == 3 ? argv[2] : "first test image",
                    data.train.class_names[best].c_str(), out[best]);
        return 0;
    } catch (const lenz::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
