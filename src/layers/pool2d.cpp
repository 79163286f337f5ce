// Max and average pooling: a window slides over each channel on its own; no parameters.
#include "kernels/cpu/pool2d.h"

#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class Pool2d final : public Layer {
  public:
    explicit Pool2d(const Pool2dConfig& config) : config_(config) {
        if (config_.stride_h == 0) config_.stride_h = config_.kernel_h;
        if (config_.stride_w == 0) config_.stride_w = config_.kernel_w;
    }

    std::string kind() const override { return config_.kind == PoolKind::max ? "maxpool" : "avgpool"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        std::string s = kind() + " " + size_pair(config_.kernel_h, config_.kernel_w);
        if (config_.stride_h != config_.kernel_h || config_.stride_w != config_.kernel_w)
            s += " stride=" + (config_.stride_h == config_.stride_w
                                   ? std::to_string(config_.stride_h)
                                   : size_pair(config_.stride_h, config_.stride_w));
        if (config_.padding.mode != PaddingMode::valid) s += " padding=" + config_.padding.str();
        if (config_.ceil) s += " ceil";
        if (config_.count_padding) s += " count-padding";
        return s;
    }

    // One comparison (max) or addition (average) per window element, padded positions included.
    int64_t other_ops() const override {
        return checked_mul(output_shape().elements(), geometry_.KH * geometry_.KW, "operations");
    }

    void forward(const float* x, float* y, const Pass& pass) override {
        if (pass.int8_output)  // an int8 input, held so by the executor's plan (max pools only)
            cpu::maxpool_int8_forward(geometry_, pass.batch, x, y, pass.layouts.input,
                                      pass.int8_output->is_unsigned);
        else if (config_.kind == PoolKind::max)
            cpu::maxpool_forward(geometry_, pass.batch, x, y, pass.layouts.input, pass.output_stride);
        else
            cpu::avgpool_forward(geometry_, pass.batch, x, y, config_.count_padding, pass.layouts.input,
                                 pass.output_stride);
    }
    // Inception's reduction blocks concatenate a max pool with convolutions.
    bool writes_channel_slice() const override { return true; }
    // Channels-last between convolutions (a ResNet's stem), so that neither side reorders.
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }
    int64_t workspace_floats(const Pass& pass) const override {
        return pass.training ? threads() * input_shape().elements() : 0;
    }

    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        if (!dx) return;
        const cpu::ImageGradientSink store = [&](int64_t n, const float* image_dx) { dx.store(n, image_dx); };
        if (config_.kind == PoolKind::max)
            cpu::maxpool_backward(geometry_, pass.batch, x, dy, store, pass.workspace, threads(),
                                  pass.layouts.input);
        else
            cpu::avgpool_backward(geometry_, pass.batch, dy, store, pass.workspace, threads(),
                                  config_.count_padding, pass.layouts.input);
    }

  protected:
    Shape infer(Shape in) const override {
        if (config_.count_padding && (config_.kind != PoolKind::average || config_.ceil))
            throw ShapeError(kind() + ": count-padding is for average pooling without ceil");
        geometry_ = resolve_window({config_.kernel_h, config_.kernel_w, config_.stride_h, config_.stride_w,
                                    config_.padding, true, 1, 1, config_.ceil},
                                   in, in.c, kind());
        return {geometry_.OH, geometry_.OW, in.c};
    }

  private:
    Pool2dConfig config_;
    mutable ConvGeometry geometry_{};
};

}  // namespace

std::unique_ptr<Layer> make_pool2d(const Pool2dConfig& config) {
    return std::make_unique<Pool2d>(config);
}

}  // namespace lenz
