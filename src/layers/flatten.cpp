// Flatten: H x W x C becomes 1 x 1 x (H·W·C) in memory order (C, H, W), as PyTorch flattens NCHW.
// Only the shape changes: the engine hands the same memory on and never calls forward.
#include <cstring>

#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class Flatten final : public Layer {
  public:
    std::string kind() const override { return "flatten"; }
    LayerConfig config() const override { return FlattenConfig{}; }
    std::string spec() const override { return "flatten"; }
    bool reshape_only() const override { return true; }

    void forward(const float* x, float* y, const Pass& pass) override {
        if (x != y)
            std::memcpy(y, x, sizeof(float) * static_cast<size_t>(pass.batch * input_shape().elements()));
    }
    void backward(const float*, const float*, float* dy, const InputGradient& dx, const Pass& pass) override {
        if (!dx) return;
        for (int64_t n = 0; n < pass.batch; ++n) dx.store(n, dy + n * input_shape().elements());
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, "flatten");
        return {1, 1, in.elements()};
    }
};

}  // namespace

std::unique_ptr<Layer> make_flatten() {
    return std::make_unique<Flatten>();
}

}  // namespace lenz
