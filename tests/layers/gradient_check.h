// Finite-difference gradient check for one layer: loss = sum(r * y) for a fixed random r, so
// dL/dy = r; the analytic dx and parameter gradients are compared with central differences.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "layers/fold_activation.h"
#include "layers/pass.h"
#include "lenz/buffer.h"
#include "lenz/layer.h"
#include "lenz/model.h"
#include "lenz/model_text.h"

namespace lenz::testing {

struct GradCheckOptions {
    int64_t batch = 2;
    bool training = true;
    double step = 4e-3;
    double tolerance = 2e-2;  // relative, with an absolute floor below
    // Move every trainable parameter off its initial value (a scale of exactly 1 would hide a
    // backward that forgets it).
    bool perturb_params = false;
};

class LayerHarness {
  public:
    LayerHarness(const std::string& spec, Shape in, int64_t batch, uint64_t seed = 7,
                 bool perturb_params = false)
        : model_(parse_model("input " + in.str() + "\n" + spec + "\n", "<test>")), batch_(batch) {
        model_.init_params(seed);
        Rng noise(seed + 2);
        for (ParamRef& p : layer().params())
            if (perturb_params && p.trainable)
                for (int64_t i = 0; i < p.value->size(); ++i) (*p.value)[i] += noise.uniform(-0.5f, 0.5f);
        layer().allocate_gradients();
        layer().prepare_training(batch);
        workspace_ = Buffer(std::max<int64_t>(layer().workspace_floats(pass(true)), 1));
        Rng rng(seed + 1);
        x_ = Buffer(batch * in.elements());
        for (int64_t i = 0; i < x_.size(); ++i) x_[i] = rng.uniform(-1.0f, 1.0f);
        y_ = Buffer(batch * layer().output_shape().elements());
    }
    Layer& layer() { return model_.layer(0); }
    Buffer& x() { return x_; }
    Buffer& y() { return y_; }
    int64_t batch() const { return batch_; }

    Pass pass(bool training) {
        Pass p;
        p.batch = batch_;
        p.training = training;
        p.workspace = workspace_.data();
        p.workspace_capacity = workspace_.size();
        p.seed = 99;
        return p;
    }
    const Buffer& forward(bool training) {
        layer().forward(x_.data(), y_.data(), pass(training));
        return y_;
    }

  private:
    Model model_;
    int64_t batch_;
    Buffer workspace_, x_, y_;
};

inline double weighted_sum(const Buffer& y, const Buffer& r) {
    double s = 0;
    for (int64_t i = 0; i < y.size(); ++i) s += static_cast<double>(y[i]) * r[i];
    return s;
}

// Checks d(sum r*y)/d(value[i]) against the analytic gradient; skips points where a kink (ReLU at 0,
// a max changing hands) lies within the step, detected by two step sizes disagreeing.
inline void expect_matches_finite_differences(LayerHarness& h, Buffer& value, const Buffer& analytic,
                                              const Buffer& r, const std::string& what,
                                              const GradCheckOptions& o) {
    int checked = 0;
    for (int64_t i = 0; i < value.size(); ++i) {
        const float saved = value[i];
        auto loss_at = [&](double delta) {
            value[i] = static_cast<float>(saved + delta);
            const double l = weighted_sum(h.forward(o.training), r);
            value[i] = saved;
            return l;
        };
        const double big = (loss_at(o.step) - loss_at(-o.step)) / (2 * o.step);
        const double small = (loss_at(o.step / 4) - loss_at(-o.step / 4)) / (o.step / 2);
        if (std::abs(big - small) > 0.02 * (std::abs(small) + 1e-1)) continue;  // kink inside the step
        ++checked;
        const double err = std::abs(small - analytic[i]);
        ASSERT_LE(err, o.tolerance * (std::abs(small) + 0.05))
            << what << "[" << i << "]: finite difference " << small << " vs analytic " << analytic[i];
    }
    EXPECT_GT(checked, value.size() / 2) << what << ": too few points away from kinks to trust the check";
}

inline void check_gradients(const std::string& spec, Shape in, GradCheckOptions o = {}) {
    SCOPED_TRACE("layer '" + spec + "' on input " + in.str());
    LayerHarness h(spec, in, o.batch, 7, o.perturb_params);
    Rng rng(123);
    Buffer r(h.y().size());
    for (int64_t i = 0; i < r.size(); ++i) r[i] = rng.uniform(-1.0f, 1.0f);

    h.forward(o.training);
    Buffer dy(r.size());
    for (int64_t i = 0; i < r.size(); ++i) dy[i] = r[i];
    Buffer dx(h.x().size());
    for (ParamRef& p : h.layer().params())
        if (p.grad) p.grad->zero();
    fold_own_activation(h.layer(), h.y().data(), dy.data(), h.batch());
    h.layer().backward(h.x().data(), h.y().data(), dy.data(),
                       InputGradient::overwriting(dx.data(), h.layer().input_shape()), h.pass(o.training));

    expect_matches_finite_differences(h, h.x(), dx, r, "dx", o);
    for (ParamRef& p : h.layer().params()) {
        if (!p.trainable) continue;
        Buffer analytic(p.grad->size());
        for (int64_t i = 0; i < analytic.size(); ++i) analytic[i] = (*p.grad)[i];
        expect_matches_finite_differences(h, *p.value, analytic, r, "d" + p.name, o);
    }
}

}  // namespace lenz::testing
