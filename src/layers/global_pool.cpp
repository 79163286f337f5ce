// Global average and global max pooling: each channel becomes one number (H x W x C -> 1 x 1 x C).
#include "kernels/cpu/pool2d.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class GlobalPool final : public Layer {
  public:
    explicit GlobalPool(PoolKind kind) : kind_(kind) {}

    std::string kind() const override { return kind_ == PoolKind::max ? "globalmaxpool" : "globalavgpool"; }
    LayerConfig config() const override { return GlobalPoolConfig{kind_}; }
    std::string spec() const override { return kind(); }
    int64_t other_ops() const override { return input_shape().elements(); }
    // Either layout in; the output has one pixel, the same in memory either way.
    ChannelsLast channels_last() const override { return ChannelsLast::converts; }

    void forward(const float* x, float* y, const Pass& pass) override {
        const Shape in = input_shape();
        if (kind_ == PoolKind::max)
            cpu::global_maxpool_forward(pass.batch, in.c, in.h * in.w, x, y, pass.layouts.input);
        else
            cpu::global_avgpool_forward(pass.batch, in.c, in.h * in.w, x, y, pass.layouts.input);
    }
    int64_t workspace_floats(const Pass& pass) const override {
        return pass.training ? threads() * input_shape().elements() : 0;
    }

    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        if (!dx) return;
        const Shape in = input_shape();
        const cpu::ImageGradientSink store = [&](int64_t n, const float* image_dx) { dx.store(n, image_dx); };
        if (kind_ == PoolKind::max)
            cpu::global_maxpool_backward(pass.batch, in.c, in.h * in.w, x, dy, store, pass.workspace,
                                         threads(), pass.layouts.input);
        else
            cpu::global_avgpool_backward(pass.batch, in.c, in.h * in.w, dy, store, pass.workspace, threads(),
                                         pass.layouts.input);
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        return {1, 1, in.c};
    }

  private:
    PoolKind kind_;
};

}  // namespace

std::unique_ptr<Layer> make_global_pool(PoolKind kind) {
    return std::make_unique<GlobalPool>(kind);
}

}  // namespace lenz
