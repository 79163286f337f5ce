// Softmax cross-entropy and soft Dice over the classes at every position of the logits. Per pixel:
// p = softmax(z) over the K classes, t the target, w the class weights (W their sum), e the label
// smoothing. The cross-entropy of a pixel is (1 - e)·w_t·(-log p_t) + (e / K)·Σ_k w_k·(-log p_k),
// its mean taken over Σ w_t (PyTorch's reduction='mean' with weight= and ignore_index=), and its
// gradient [p_j·((1 - e)·w_t + e·W / K) - (1 - e)·w_t·[j = t] - (e / K)·w_j] / Σ w_t.
// The Dice loss of a batch (segmentation_models_pytorch's multiclass DiceLoss, smooth 0): per class
// k, I_k = Σ p_k over the pixels of class k, C_k = Σ p_k + (pixels of class k), dice_k = 2·I_k / C_k,
// the loss the mean over all K classes of 1 - dice_k, classes absent from the batch's targets
// counting 0. Its gradient in p is a_k·[k = t] + b_k with a_k = -2 / (K·C_k), b_k = 2·I_k / (K·C_k²),
// and through the softmax dz_j = p_j·(g_j - Σ_k p_k·g_k).
#include "lenz/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lenz/error.h"

namespace lenz {

LossKind parse_loss(const std::string& name) {
    if (name == "ce") return LossKind::cross_entropy;
    if (name == "dice") return LossKind::dice;
    if (name == "ce+dice") return LossKind::cross_entropy_dice;
    throw ParseError("unknown loss '" + name + "' (expected ce, dice or ce+dice)");
}

std::string loss_name(LossKind kind) {
    switch (kind) {
        case LossKind::cross_entropy:
            return "ce";
        case LossKind::dice:
            return "dice";
        case LossKind::cross_entropy_dice:
            return "ce+dice";
    }
    return "ce";
}

void check_loss(const LossConfig& config, const Targets& targets, int64_t classes) {
    if (config.kind != LossKind::cross_entropy && !targets.masks)
        throw ShapeError("--loss " + loss_name(config.kind) +
                         " scores a class for every pixel: it is for segmentation sets (masks), and these "
                         "images have one label each");
    if (!config.class_weights.empty() && static_cast<int64_t>(config.class_weights.size()) != classes)
        throw ShapeError("--class-weights has " + std::to_string(config.class_weights.size()) +
                         " weights but there are " + std::to_string(classes) + " classes");
}

namespace {

// f'(x) from f(x), for the element-wise activations.
float derivative_from_output(const ActivationSpec& act, float y) {
    switch (act.kind) {
        case Activation::relu:
            return y > 0.0f ? 1.0f : 0.0f;
        case Activation::leaky_relu:
            return y > 0.0f ? 1.0f : act.alpha;
        case Activation::sigmoid:
            return y * (1.0f - y);
        case Activation::tanh:
            return 1.0f - y * y;
        case Activation::relu6:
            return y > 0.0f && y < 6.0f ? 1.0f : 0.0f;
        case Activation::hard_sigmoid:
            return y > 0.0f && y < 1.0f ? 1.0f / 6.0f : 0.0f;
        case Activation::elu:
            return y > 0.0f ? 1.0f : y + act.alpha;
        case Activation::none:
        case Activation::softmax:
        case Activation::log_softmax:  // the loss reads the logits: log-softmax is its own first step
        case Activation::hard_swish:   // never fused: their layers apply the derivative themselves
        case Activation::silu:
        case Activation::gelu:
            return 1.0f;
    }
    return 1.0f;
}

// One image's sums, added up across the batch in image order.
struct ImageSums {
    double loss = 0, weight = 0;  // the cross-entropy's Σ w_t·loss and Σ w_t
    int64_t correct = 0, counted = 0;
};

template <typename Target>
LossValue positions_loss(const LossConfig& config, const float* logits, int64_t K, int64_t P, int64_t width,
                         bool channels_last, const Target* targets, bool has_ignored, int64_t N,
                         float* gradient, const ActivationSpec& act) {
    const bool cross_entropy = config.kind != LossKind::dice, dice = config.kind != LossKind::cross_entropy;
    const int64_t class_stride = channels_last ? 1 : P, pixel_stride = channels_last ? K : 1;
    const std::vector<float> weights = config.class_weights.empty()
                                           ? std::vector<float>(static_cast<size_t>(K), 1.0f)
                                           : config.class_weights;
    float weight_total = 0;
    for (float w : weights) weight_total += w;
    const float e = config.label_smoothing, kept = 1.0f - e, spread = e / static_cast<float>(K);
    const auto ignored = [&](Target t) { return has_ignored && t == static_cast<Target>(kIgnorePixel); };
    for (int64_t i = 0; i < N * P; ++i) {
        const auto v = static_cast<int64_t>(targets[i]);
        if (ignored(targets[i]) || (v >= 0 && v < K)) continue;
        const int64_t n = i / P, p = i % P;
        throw ShapeError(P == 1 ? "label " + std::to_string(v) + " of image " + std::to_string(n) +
                                      " is outside the model's " + std::to_string(K) + " classes"
                                : "mask value " + std::to_string(v) + " at row " + std::to_string(p / width) +
                                      ", column " + std::to_string(p % width) + " of image " +
                                      std::to_string(n) + " is outside the model's " + std::to_string(K) +
                                      " classes (255 is ignored)");
    }

    // Per pixel, kept for the gradient: the top logit and the log of Σ exp(z - top).
    std::vector<float> tops(static_cast<size_t>(N * P)), log_sums(static_cast<size_t>(N * P));
    std::vector<ImageSums> sums(static_cast<size_t>(N));
    // Dice: per image and class, Σ p_k over its pixels of class k, Σ p_k, and its pixels of class k.
    std::vector<double> dice_sums(dice ? static_cast<size_t>(N * K * 3) : 0);
#pragma omp parallel for schedule(static) if (N * K * P >= (1 << 16))
    for (int64_t n = 0; n < N; ++n) {
        const float* z = logits + n * K * P;
        const Target* t = targets + n * P;
        float* top = tops.data() + n * P;
        float* log_sum = log_sums.data() + n * P;
        std::vector<int64_t> best(static_cast<size_t>(P), 0);
        for (int64_t p = 0; p < P; ++p) top[p] = z[p * pixel_stride];
        for (int64_t k = 1; k < K; ++k)
            for (int64_t p = 0; p < P; ++p)
                if (const float v = z[k * class_stride + p * pixel_stride]; v > top[p]) {
                    top[p] = v;
                    best[static_cast<size_t>(p)] = k;
                }
        std::fill_n(log_sum, P, 0.0f);
        for (int64_t k = 0; k < K; ++k)
            for (int64_t p = 0; p < P; ++p)
                log_sum[p] += std::exp(z[k * class_stride + p * pixel_stride] - top[p]);
        for (int64_t p = 0; p < P; ++p)
            log_sum[p] = static_cast<float>(std::log(static_cast<double>(log_sum[p])));
        ImageSums& s = sums[static_cast<size_t>(n)];
        // Σ_k w_k·(-log p_k) for label smoothing: W·log_sum - Σ_k w_k·(z_k - top).
        std::vector<double> smoothing(e > 0 ? static_cast<size_t>(P) : 0, 0.0);
        if (e > 0)
            for (int64_t k = 0; k < K; ++k)
                for (int64_t p = 0; p < P; ++p)
                    smoothing[static_cast<size_t>(p)] +=
                        weights[static_cast<size_t>(k)] * (z[k * class_stride + p * pixel_stride] - top[p]);
        for (int64_t p = 0; p < P; ++p) {
            if (ignored(t[p])) continue;
            const auto target = static_cast<int64_t>(t[p]);
            const float w = weights[static_cast<size_t>(target)];
            ++s.counted;
            s.correct += best[static_cast<size_t>(p)] == target;
            if (!cross_entropy) continue;
            const double minus_log_p =
                log_sum[p] - static_cast<double>(z[target * class_stride + p * pixel_stride] - top[p]);
            s.loss += static_cast<double>(kept * w) * minus_log_p;
            if (e > 0)
                s.loss += static_cast<double>(spread) * (static_cast<double>(weight_total) * log_sum[p] -
                                                         smoothing[static_cast<size_t>(p)]);
            s.weight += w;
        }
        if (!dice) continue;
        double* d = dice_sums.data() + n * K * 3;
        for (int64_t k = 0; k < K; ++k)
            for (int64_t p = 0; p < P; ++p) {
                if (ignored(t[p])) continue;
                const double pk = std::exp(z[k * class_stride + p * pixel_stride] - top[p] - log_sum[p]);
                const bool is_class = static_cast<int64_t>(t[p]) == k;
                d[k * 3] += is_class ? pk : 0.0;
                d[k * 3 + 1] += pk;
                d[k * 3 + 2] += is_class ? 1.0 : 0.0;
            }
    }

    ImageSums total;
    for (const ImageSums& s : sums) {
        total.loss += s.loss;
        total.weight += s.weight;
        total.correct += s.correct;
        total.counted += s.counted;
    }
    double mean = cross_entropy && total.weight > 0 ? total.loss / total.weight : 0.0;
    // Dice: the batch's I_k and C_k, and the gradient's a_k and b_k.
    std::vector<float> dice_a(dice ? static_cast<size_t>(K) : 0), dice_b(dice ? static_cast<size_t>(K) : 0);
    if (dice) {
        for (int64_t k = 0; k < K; ++k) {
            double intersection = 0, predicted = 0, truth = 0;
            for (int64_t n = 0; n < N; ++n) {
                const double* d = dice_sums.data() + (n * K + k) * 3;
                intersection += d[0];
                predicted += d[1];
                truth += d[2];
            }
            if (truth == 0) continue;
            const double c = predicted + truth, k_count = static_cast<double>(K);
            mean += (1.0 - 2.0 * intersection / c) / k_count;
            dice_a[static_cast<size_t>(k)] = static_cast<float>(-2.0 / (k_count * c));
            dice_b[static_cast<size_t>(k)] = static_cast<float>(2.0 * intersection / (k_count * c * c));
        }
    }
    LossValue value{mean * static_cast<double>(N), total.correct, total.counted};
    if (!gradient) return value;

    const float ce_scale = cross_entropy && total.weight > 0 ? static_cast<float>(1.0 / total.weight) : 0.0f;
#pragma omp parallel for schedule(static) if (N * K * P >= (1 << 16))
    for (int64_t n = 0; n < N; ++n) {
        const float* z = logits + n * K * P;
        float* g = gradient + n * K * P;  // may be z: each element is read before it is written
        const Target* t = targets + n * P;
        const float* top = tops.data() + n * P;
        const float* log_sum = log_sums.data() + n * P;
        // Dice: Σ_k p_k·g_k at each pixel, read before any of its gradients is written.
        std::vector<float> dice_dot(dice ? static_cast<size_t>(P) : 0, 0.0f);
        if (dice)
            for (int64_t k = 0; k < K; ++k)
                for (int64_t p = 0; p < P; ++p) {
                    if (ignored(t[p])) continue;
                    const float pk = std::exp(z[k * class_stride + p * pixel_stride] - top[p] - log_sum[p]);
                    const float a = static_cast<int64_t>(t[p]) == k ? dice_a[static_cast<size_t>(k)] : 0.0f;
                    dice_dot[static_cast<size_t>(p)] += pk * (a + dice_b[static_cast<size_t>(k)]);
                }
        for (int64_t k = 0; k < K; ++k) {
            const float w_k = weights[static_cast<size_t>(k)];
            for (int64_t p = 0; p < P; ++p) {
                const int64_t at = k * class_stride + p * pixel_stride;
                const float zk = z[at];
                float d = 0.0f;
                if (!ignored(t[p])) {
                    const auto target = static_cast<int64_t>(t[p]);
                    const float pk = std::exp(zk - top[p] - log_sum[p]);
                    const float w_t = weights[static_cast<size_t>(target)];
                    if (cross_entropy)
                        d = (pk * (kept * w_t + spread * weight_total) - (k == target ? kept * w_t : 0.0f) -
                             spread * w_k) *
                            ce_scale;
                    if (dice)
                        d += pk * ((k == target ? dice_a[static_cast<size_t>(k)] : 0.0f) +
                                   dice_b[static_cast<size_t>(k)] - dice_dot[static_cast<size_t>(p)]);
                    d *= derivative_from_output(act, zk);
                }
                g[at] = d;
            }
        }
    }
    return value;
}

}  // namespace

LossValue softmax_loss(const LossConfig& config, const float* logits, const Shape& shape, bool channels_last,
                       const Targets& targets, int64_t batch, float* gradient,
                       const ActivationSpec& output_activation) {
    const int64_t K = targets.masks ? shape.c : shape.elements(), P = targets.masks ? shape.h * shape.w : 1;
    check_loss(config, targets, K);
    if (!targets.masks && !targets.labels) throw ShapeError("a training batch needs labels or masks");
    if (targets.masks)
        return positions_loss(config, logits, K, P, shape.w, channels_last, targets.masks, true, batch,
                              gradient, output_activation);
    return positions_loss(config, logits, K, P, 1, false, targets.labels, false, batch, gradient,
                          output_activation);
}

}  // namespace lenz
