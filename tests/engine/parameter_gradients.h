// Every trainable parameter's gradient, as a training step left it, against central differences of
// the step's loss: the check the graph and loss tests share.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "lenz/model.h"

namespace lenz::testing {

// `loss` runs a training step and returns its mean loss, filling the model's gradients. About 16
// entries of each tensor are checked, spread over it; an entry where two step sizes disagree (a
// kink: a ReLU or a max-pool tie within the step) is skipped, and more than `share` of them must
// be checked.
inline void expect_parameter_gradients_match(Model& m, const std::function<double()>& loss,
                                             double share = 0.9) {
    loss();
    std::vector<std::vector<float>> analytic;
    for (Model::NamedParam& p : m.named_params())
        if (p.ref.trainable)
            analytic.emplace_back(p.ref.grad->data(), p.ref.grad->data() + p.ref.grad->size());
    int checked = 0, total = 0;
    size_t k = 0;
    for (Model::NamedParam& p : m.named_params()) {
        if (!p.ref.trainable) continue;  // batch norm's running statistics
        Buffer& value = *p.ref.value;
        const int64_t stride = std::max<int64_t>(1, value.size() / 16);
        for (int64_t i = 0; i < value.size(); i += stride, ++total) {
            const float saved = value[i];
            auto at = [&](double delta) {
                value[i] = static_cast<float>(saved + delta);
                const double l = loss();
                value[i] = saved;
                return l;
            };
            const double h = 3e-3;
            const double big = (at(h) - at(-h)) / (2 * h), small = (at(h / 4) - at(-h / 4)) / (h / 2);
            if (std::abs(big - small) > 0.02 * (std::abs(small) + 1e-2)) continue;
            ++checked;
            ASSERT_NEAR(small, analytic[k][static_cast<size_t>(i)], 0.03 * std::abs(small) + 2e-4)
                << p.name << "[" << i << "]";
        }
        ++k;
    }
    EXPECT_GT(checked, static_cast<int>(total * share));
}

}  // namespace lenz::testing
