// Inverted dropout: in training each value is zeroed with probability `rate` and the survivors are
// scaled by 1 / (1 - rate), so inference is the identity and costs nothing.
#include <cstring>
#include <sstream>

#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class Dropout final : public Layer {
  public:
    explicit Dropout(double rate) : rate_(rate) {
        if (!(rate >= 0.0 && rate < 1.0))
            throw ShapeError("dropout: rate must be in [0, 1), got " + std::to_string(rate));
    }

    std::string kind() const override { return "dropout"; }
    LayerConfig config() const override { return DropoutConfig{rate_}; }
    std::string spec() const override {
        std::ostringstream s;
        s << "dropout " << rate_;
        return s.str();
    }
    bool in_place() const override { return true; }
    // The mask, one float per value, kept from forward to backward.
    int64_t saved_floats(int64_t batch) const override {
        return checked_mul(batch, input_shape().elements());
    }
    void prepare_training(int64_t batch) override {
        if (mask_.size() != saved_floats(batch)) mask_ = Buffer(saved_floats(batch));
    }

    void forward(const float* x, float* y, const Pass& pass) override {
        const int64_t count = pass.batch * input_shape().elements();
        if (!pass.training || rate_ == 0.0) {
            if (x != y) std::memcpy(y, x, sizeof(float) * static_cast<size_t>(count));
            return;
        }
        Rng rng(pass.seed);
        const float keep_scale = static_cast<float>(1.0 / (1.0 - rate_));
        const float rate = static_cast<float>(rate_);
        for (int64_t i = 0; i < count; ++i) {
            mask_[i] = rng.uniform() < rate ? 0.0f : keep_scale;
            y[i] = x[i] * mask_[i];
        }
    }
    void backward(const float*, const float*, float* dy, const InputGradient& dx, const Pass& pass) override {
        if (!dx) return;
        const int64_t image = input_shape().elements();
        for (int64_t n = 0; n < pass.batch; ++n) {
            float* g = dy + n * image;  // dy is scratch: the gradient is formed in place
            for (int64_t i = 0; i < image; ++i) g[i] *= mask_[n * image + i];
            dx.store(n, g);
        }
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, "dropout");
        return in;
    }

  private:
    double rate_;
    Buffer mask_;  // (N, C, H, W): 0 or 1 / (1 - rate)
};

}  // namespace

std::unique_ptr<Layer> make_dropout(double rate) {
    return std::make_unique<Dropout>(rate);
}

}  // namespace lenz
