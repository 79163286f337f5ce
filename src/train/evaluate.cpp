// A model against a data set: the checks that it fits before any work, and the evaluation (loss,
// accuracy, confusion matrix), shared out across MPI ranks.
#include "lenz/evaluate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/ranks.h"

namespace lenz {

namespace {

// A segmentation set against a model whose output must be a map at the images' size, a channel
// per class.
void check_masks_fit(const Model& model, const ImageSet& set, const std::string& which) {
    const Shape out = model.output_shape();
    if (out.h != set.height || out.w != set.width)
        throw ShapeError("the " + which + " set has a mask per image (" + std::to_string(set.height) + "x" +
                         std::to_string(set.width) + ") but the model's output is " + out.str() +
                         ": a segmentation model ends in a map at its input's size with a channel per class");
    if (!set.class_names.empty() && static_cast<int64_t>(set.class_names.size()) != out.c)
        throw ShapeError("the data set has " + std::to_string(set.class_names.size()) +
                         " classes but the model's output map has " + std::to_string(out.c) +
                         " channels (--new-head sizes it for the data)");
    const int64_t plane = set.height * set.width;
    for (size_t i = 0; i < set.masks.size(); ++i)
        if (set.masks[i] != kIgnorePixel && set.masks[i] >= out.c)
            throw ShapeError("the " + which + " set's mask " +
                             std::to_string(static_cast<int64_t>(i) / plane) + " has class " +
                             std::to_string(set.masks[i]) + ", outside the model's " + std::to_string(out.c) +
                             " output channels");
}

}  // namespace

void check_data_fits(const Model& model, const ImageSet& set, const std::string& which) {
    const Shape in = model.input_shape();
    if (set.height != in.h || set.width != in.w || set.channels != in.c)
        throw ShapeError("the " + which + " images are " + Shape{set.height, set.width, set.channels}.str() +
                         " but the model's input is " + in.str());
    if (set.size() == 0) throw ShapeError("the " + which + " set is empty");
    if (set.segmentation()) return check_masks_fit(model, set, which);
    const int64_t outputs = class_count(model, "the " + which + " images have one label each");
    if (!set.class_names.empty() && static_cast<int64_t>(set.class_names.size()) != outputs)
        throw ShapeError("the data set has " + std::to_string(set.class_names.size()) +
                         " classes but the model's last layer has " + std::to_string(outputs) + " outputs");
    for (int64_t i = 0; i < set.size(); ++i)
        if (set.labels[static_cast<size_t>(i)] < 0 || set.labels[static_cast<size_t>(i)] >= outputs)
            throw ShapeError("the " + which + " set's image " + std::to_string(i) + " has label " +
                             std::to_string(set.labels[static_cast<size_t>(i)]) + ", outside the model's " +
                             std::to_string(outputs) + " outputs");
}

DataSplit load_dataset_for(const Model& model, const std::string& spec, double val_split, uint64_t seed) {
    DataOptions o;
    o.val_split = val_split;
    o.seed = seed;
    o.height = model.input_shape().h;
    o.width = model.input_shape().w;
    o.channels = model.input_shape().c;
    return load_dataset(spec, o);
}

// Under MPI each rank evaluates its share of the images; the sums are then added up across ranks,
// so every rank returns the whole set's figures.
EvalResult evaluate(Model& model, const ImageSet& set, const Normalization& norm, int64_t batch,
                    Precision precision) {
    check_data_fits(model, set, "test");
    Ranks& ranks = Ranks::world();
    const bool segmentation = set.segmentation();
    const int64_t K = segmentation ? model.output_shape().c : model.output_shape().elements();
    const int64_t image = set.image_elements(), plane = set.height * set.width;
    const int64_t first = set.size() * ranks.rank() / ranks.size(),
                  last = set.size() * (ranks.rank() + 1) / ranks.size();
    batch = std::max<int64_t>(1, std::min(batch, last - first));
    Inference inference(model, batch, precision);
    std::vector<float> input(static_cast<size_t>(batch * image));
    // The loss, the hits, the pixels and the confusion matrix ([true][predicted]), to add up across
    // ranks.
    std::vector<double> sums(static_cast<size_t>(3 + K * K), 0.0);
    double& loss = sums[0];
    double& correct = sums[1];
    double& pixels = sums[2];
    const auto score = [&](const float* scores, int64_t stride, int64_t target) {
        const std::vector<double> p = class_probabilities(model, scores, K, stride);
        const int64_t best = std::max_element(p.begin(), p.end()) - p.begin();
        loss -= std::log(std::max(p[static_cast<size_t>(target)], 1e-30));
        correct += best == target;
        pixels += 1;  // images, for a classifier
        sums[static_cast<size_t>(3 + target * K + best)] += 1;
    };
    for (int64_t start = first; start < last; start += batch) {
        const int64_t n = std::min(batch, last - start);
        for (int64_t i = 0; i < n; ++i)
            normalize_image(set.pixels.data() + (start + i) * image, set.channels, plane, norm,
                            input.data() + i * image);
        const float* out = inference.run(input.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            if (!segmentation) {
                score(out + i * K, 1, set.labels[static_cast<size_t>(start + i)]);
                continue;
            }
            // The output is (N, K, H, W): a pixel's scores lie a plane apart.
            const uint8_t* mask = set.masks.data() + (start + i) * plane;
            for (int64_t p = 0; p < plane; ++p)
                if (mask[p] != kIgnorePixel) score(out + i * K * plane + p, plane, mask[p]);
        }
    }
    ranks.sum(sums.data(), static_cast<int64_t>(sums.size()));
    EvalResult r;
    r.count = set.size();
    r.segmentation = segmentation;
    r.pixels = std::llround(pixels);
    r.loss = loss / std::max(pixels, 1.0);
    r.accuracy = correct / std::max(pixels, 1.0);
    r.confusion.assign(static_cast<size_t>(K), std::vector<int64_t>(static_cast<size_t>(K), 0));
    for (int64_t k = 0; k < K; ++k) {
        auto& row = r.confusion[static_cast<size_t>(k)];
        for (int64_t j = 0; j < K; ++j)
            row[static_cast<size_t>(j)] = std::llround(sums[static_cast<size_t>(3 + k * K + j)]);
        const int64_t total = std::accumulate(row.begin(), row.end(), int64_t{0});
        r.per_class_accuracy.push_back(total ? static_cast<double>(row[static_cast<size_t>(k)]) / total
                                             : 0.0);
    }
    if (segmentation) {
        r.per_class_iou = class_iou(r.confusion);
        r.mean_iou = mean_present(r.per_class_iou);
    }
    return r;
}

}  // namespace lenz
