#!/usr/bin/python3
"""Golden values for Lenz's training losses (lenz/loss.h), computed with PyTorch.

Run from the repository root:  /usr/bin/python3 tools/make_loss_goldens.py
It rewrites tests/golden/loss/softmax_losses.json, which tests/engine/loss_test.cpp reads.

The cross-entropy is PyTorch's own F.cross_entropy (weight=, ignore_index=255, label_smoothing=).
The Dice loss is segmentation_models_pytorch's multiclass DiceLoss (from_logits, smooth 0,
eps 1e-7, the ignored pixels left out, classes absent from the targets counting 0), written out
here in torch since that package is not in Debian. Gradients are torch.autograd's, in float64.
Logits are drawn with a fixed seed, rounded to 4 decimals and then to float32.
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "loss", "softmax_losses.json")


def drawn(generator, *shape):
    x = torch.randn(*shape, generator=generator, dtype=torch.float64) * 2
    return torch.round(x * 1e4) / 1e4


def dice(logits, target, classes):
    p = logits.softmax(dim=1)
    keep = (target != 255).unsqueeze(1)
    onehot = F.one_hot(torch.where(target == 255, 0, target), classes).permute(0, 3, 1, 2)
    p = p * keep
    onehot = onehot * keep
    dims = (0, 2, 3)
    intersection = (p * onehot).sum(dims)
    cardinality = (p + onehot).sum(dims)
    score = (2 * intersection) / cardinality.clamp_min(1e-7)
    loss = (1 - score) * (onehot.sum(dims) > 0)
    return loss.mean()


def case(name, generator, n, k, h, w, kind, weights=None, smoothing=0.0, absent=None):
    logits = drawn(generator, n, k, h, w).float().double().requires_grad_()
    target = torch.randint(0, k, (n, h, w), generator=generator)
    if absent is not None:  # a class no pixel has: Dice counts it 0
        target = torch.where(target == absent, (absent + 1) % k, target)
    ignored = torch.rand(n, h, w, generator=generator) < 0.2
    target = torch.where(ignored, 255, target)
    weight = None if weights is None else torch.tensor(weights, dtype=torch.float64)
    loss = 0
    if kind in ("ce", "ce+dice"):
        loss = loss + F.cross_entropy(logits, target, weight=weight, ignore_index=255, label_smoothing=smoothing)
    if kind in ("dice", "ce+dice"):
        loss = loss + dice(logits, target, k)
    loss.backward()
    return {
        "name": name, "loss": kind, "shape": [n, k, h, w], "class_weights": weights or [],
        "label_smoothing": smoothing, "logits": [float(v) for v in logits.detach().flatten()],
        "masks": [int(v) for v in target.flatten()], "value": float(loss),
        "gradient": [float(v) for v in logits.grad.flatten()],
    }


def main():
    generator = torch.Generator().manual_seed(31)
    cases = [
        case("ce", generator, 2, 3, 3, 4, "ce"),
        case("ce_weighted_smoothed", generator, 2, 4, 2, 5, "ce", [0.5, 2.0, 1.0, 0.25], 0.1),
        case("dice", generator, 2, 3, 3, 3, "dice"),
        case("dice_absent_class", generator, 1, 4, 4, 4, "dice", absent=2),
        case("ce_dice", generator, 3, 5, 2, 3, "ce+dice", [1.0, 1.5, 0.5, 1.0, 2.0], 0.05),
    ]
    with open(OUT, "w") as f:
        json.dump(cases, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
