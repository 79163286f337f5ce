// The training loss: softmax cross-entropy of a class per image, or per pixel with an ignored value,
// class weights and label smoothing as PyTorch's nn.CrossEntropyLoss has them, and the soft Dice
// loss of segmentation (alone or added to the cross-entropy). One implementation serves both: an
// image's logits (K) are a map of one pixel.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lenz/activation.h"
#include "lenz/shape.h"
#include "lenz/targets.h"

namespace lenz {

enum class LossKind : uint8_t { cross_entropy, dice, cross_entropy_dice };
// "ce", "dice" or "ce+dice"; throws ParseError naming the choices.
LossKind parse_loss(const std::string& name);
std::string loss_name(LossKind kind);

struct LossConfig {
    LossKind kind = LossKind::cross_entropy;
    // The cross-entropy's target is (1 - e) on the class and e / K on every class (Szegedy et al.).
    float label_smoothing = 0;
    // One per class (empty: all 1). The cross-entropy's mean is then Σ w_t·loss / Σ w_t over what
    // counts, as PyTorch's weight= gives it; the Dice loss is unweighted.
    std::vector<float> class_weights;
};

// What a batch adds to a run's figures.
struct LossValue {
    // The batch's mean loss times its images, so that a run's loss is the sum over its batches
    // divided by its images (for one label per image: the sum of the images' losses).
    double loss_sum = 0;
    int64_t correct = 0;  // images (pixels) whose top class is their target
    int64_t counted = 0;  // images (pixels not ignored) scored
};

// The logits of `batch` images, each `shape` (1x1xK for a label per image, HxWxK for masks of H x W),
// stored (N, K, H, W), or (N, H, W, K) where channels_last, against `targets`. Where `gradient` is
// not null, writes there (it may be the logits themselves) the gradient of the batch's mean loss,
// times the derivative of output_activation (the element-wise activation the logits' layer applied,
// none for plain logits), which is what backward reads. Targets outside [0, K) (a mask's
// kIgnorePixel aside) are a ShapeError naming the image, and the pixel. Images run in parallel; the
// sums are added in image order, so the result does not depend on the thread count.
LossValue softmax_loss(const LossConfig& config, const float* logits, const Shape& shape, bool channels_last,
                       const Targets& targets, int64_t batch, float* gradient,
                       const ActivationSpec& output_activation = {});

// Whether `config` fits targets of this kind, else a ShapeError in one line (the Dice loss and
// labels per image; class weights of another count than the K classes).
void check_loss(const LossConfig& config, const Targets& targets, int64_t classes);

}  // namespace lenz
