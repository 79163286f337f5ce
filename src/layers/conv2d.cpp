// Convolution: filters of KH x KW x C slide over the input with a stride; one output channel
// (feature map) per filter; bias and activation fused.
#include "kernels/cpu/conv2d.h"

#include <cmath>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/conv2d_int8.h"
#include "kernels/cpu/pool2d.h"
#include "layers/init.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class Conv2d final : public Layer {
  public:
    explicit Conv2d(const Conv2dConfig& config) : config_(config) {
        if (config.filters <= 0 || config.filters > kMaxDimension)
            throw ShapeError("conv: the number of filters must be between 1 and 2^24, got " +
                             std::to_string(config.filters));
        if (config.groups <= 0 || config.filters % config.groups != 0)
            throw ShapeError("conv: groups=" + std::to_string(config.groups) + " does not divide the " +
                             std::to_string(config.filters) + " filters");
    }

    std::string kind() const override { return "conv"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        std::string s =
            "conv " + std::to_string(config_.filters) + " " + size_pair(config_.kernel_h, config_.kernel_w);
        if (config_.stride_h != 1 || config_.stride_w != 1)
            s += " stride=" + (config_.stride_h == config_.stride_w
                                   ? std::to_string(config_.stride_h)
                                   : size_pair(config_.stride_h, config_.stride_w));
        if (config_.padding.mode != PaddingMode::valid) s += " padding=" + config_.padding.str();
        if (config_.groups != 1) s += " groups=" + std::to_string(config_.groups);
        if (config_.dilation_h != 1 || config_.dilation_w != 1)
            s += " dilation=" + (config_.dilation_h == config_.dilation_w
                                     ? std::to_string(config_.dilation_h)
                                     : size_pair(config_.dilation_h, config_.dilation_w));
        if (config_.activation.kind != Activation::none) s += " " + config_.activation.str();
        if (!config_.bias) s += " nobias";
        return s;
    }

    int64_t param_count() const override {
        return checked_mul(checked_add(geometry_.patch(), config_.bias ? 1 : 0), config_.filters,
                           "parameters");
    }
    int64_t mult_count() const override {
        return checked_mul(output_shape().elements(), geometry_.patch(), "multiplications");
    }
    int64_t input_grad_mults() const override { return mult_count(); }
    int64_t weight_grad_mults() const override { return mult_count(); }
    int64_t other_ops() const override { return config_.bias ? output_shape().elements() : 0; }
    // With groups, a filter's depth is its group's channels, C/G: that is what the formulas show.
    std::string param_formula() const override {
        const std::string patch = std::to_string(geometry_.KH) + "·" + std::to_string(geometry_.KW) + "·" +
                                  std::to_string(geometry_.group_channels());
        return (config_.bias ? "(" + patch + " + 1)" : "(" + patch + ")") + " · " +
               std::to_string(config_.filters);
    }
    std::string mult_formula() const override {
        const Shape o = output_shape();
        return std::to_string(o.h) + "·" + std::to_string(o.w) + "·" + std::to_string(o.c) + " · (" +
               std::to_string(geometry_.KH) + "·" + std::to_string(geometry_.KW) + "·" +
               std::to_string(geometry_.group_channels()) + ")";
    }

    // At inference with what it absorbed; training also runs the forward without a fused softmax
    // (logits for the loss), and the backward.
    int64_t workspace_floats(const Pass& pass) const override {
        const Absorption& a = pass.absorbed;
        if (pass.precision == Precision::int8)
            return cpu::conv2d_int8_workspace(geometry_, pass.batch, activation_with(a), pass.layouts,
                                              pass.int8_io());
        int64_t floats =
            cpu::conv2d_forward_workspace(geometry_, pass.batch, has_bias(a), activation_with(a),
                                          pass.layouts, pass.precision, a.affine, a.residual, !pass.training);
        if (a.channel_means)
            floats += cpu::channel_means_workspace(pass.batch, geometry_.OC, geometry_.positions());
        if (pass.training) {
            floats = std::max(floats, cpu::conv2d_forward_workspace(geometry_, pass.batch, config_.bias, {},
                                                                    pass.layouts, pass.precision));
            floats = std::max(floats, cpu::conv2d_backward_workspace(geometry_, pass.batch, config_.bias,
                                                                     pass.layouts, pass.precision));
        }
        return floats;
    }
    // At inference a convolution without an activation of its own takes over a batch norm after it
    // (folded into its weights and a bias), a residual connection's add (oneDNN's sum post-op) and an
    // activation (applied per tile), and a global average pool of its output. The planner asks for
    // the add and the pool in float32 and bf16 only.
    bool can_absorb(const Absorption& a) const override {
        return config_.activation.kind == Activation::none && cpu::conv2d_fuses(a.activation);
    }
    // A 1x1 depthwise convolution without an activation (ConvNeXt's layer scale, as imported) is a
    // per-channel map, which inference folds into the convolution before it.
    bool per_channel_affine() const override {
        const ConvGeometry& g = geometry_;
        return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT == 0 && g.PL == 0 && g.G == g.C &&
               g.OC == g.C && config_.activation.kind == Activation::none;
    }
    void affine_map(float* scale, float* shift) const override {
        for (int64_t c = 0; c < geometry_.OC; ++c) {
            scale[c] = weight_[c];
            shift[c] = config_.bias ? bias_[c] : 0.0f;
        }
    }
    int64_t prepared_floats(const Pass& pass) const override {
        const Absorption& a = pass.absorbed;
        if (pass.precision == Precision::int8) return cpu::conv2d_int8_prepared_floats(geometry_);
        return cpu::conv2d_prepared_floats(geometry_, pass.batch, has_bias(a), activation_with(a),
                                           pass.layouts, pass.precision, a.affine, a.residual);
    }
    void prepare(float* prepared, const Pass& pass, const float* scale, const float* shift) override {
        const Absorption& a = pass.absorbed;
        if (pass.precision == Precision::int8)
            return cpu::conv2d_int8_prepare(geometry_, pass.batch, activation_with(a), pass.layouts,
                                            pass.int8_io(), weight_.data(),
                                            config_.bias ? bias_.data() : nullptr, scale, shift, prepared);
        cpu::conv2d_prepare_weights(geometry_, pass.batch, has_bias(a), activation_with(a), pass.layouts,
                                    pass.precision, weight_.data(), config_.bias ? bias_.data() : nullptr,
                                    scale, shift, prepared, a.residual);
    }
    // A softmax over channels is computed on (N, C, H, W).
    ChannelsLast channels_last() const override {
        return over_channels(config_.activation.kind) ? ChannelsLast::no : ChannelsLast::converts;
    }

    std::vector<ParamRef> params() override {
        std::vector<ParamRef> p{{"weight",
                                 {geometry_.OC, geometry_.group_channels(), geometry_.KH, geometry_.KW},
                                 &weight_,
                                 &dweight_,
                                 true}};
        if (config_.bias) p.push_back({"bias", {geometry_.OC}, &bias_, &dbias_, true});
        return p;
    }
    void init_params(Rng& rng) override {
        weight_ = Buffer(geometry_.OC * geometry_.patch());
        bias_ = Buffer(config_.bias ? geometry_.OC : 0);
        init_weights(weight_, geometry_.patch(), geometry_.OC * geometry_.KH * geometry_.KW,
                     config_.activation, rng);
    }
    void allocate_gradients() override {
        dweight_ = Buffer(weight_.size());
        dbias_ = Buffer(bias_.size());
    }

    void forward(const float* x, float* y, const Pass& pass) override {
        if (pass.precision == Precision::int8)
            return cpu::conv2d_int8_forward(
                geometry_, pass.batch, x, pass.final_activation(config_.activation), y, pass.workspace,
                pass.layouts, pass.int8_io(), pass.required_prepared(), pass.prepared_batch);
        const bool folded = pass.absorbed.affine && pass.prepared, residual = pass.absorbed.residual;
        cpu::conv2d_forward(geometry_, pass.batch, x, weight_.data(), config_.bias ? bias_.data() : nullptr,
                            pass.final_activation(config_.activation), y,
                            {pass.workspace, pass.workspace_capacity}, pass.layouts, pass.precision,
                            {pass.prepared, pass.prepared_batch, folded}, residual,
                            pass.absorbed.channel_means ? pass.channel_means : nullptr);
    }
    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        cpu::ImageGradientSink store;
        if (dx) store = [&](int64_t n, const float* image_dx) { dx.store(n, image_dx); };
        cpu::conv2d_backward(geometry_, pass.batch, x, dy, weight_.data(), store, dweight_.data(),
                             config_.bias ? dbias_.data() : nullptr,
                             {pass.workspace, pass.workspace_capacity}, pass.layouts, pass.precision);
    }

    ActivationSpec activation() const override { return config_.activation; }
    bool runs_int8() const override { return true; }

  protected:
    Shape infer(Shape in) const override {
        if (in.c % config_.groups != 0)
            throw ShapeError("conv: groups=" + std::to_string(config_.groups) + " does not divide the " +
                             std::to_string(in.c) + " input channels");
        geometry_ = resolve_window({config_.kernel_h, config_.kernel_w, config_.stride_h, config_.stride_w,
                                    config_.padding, false, config_.dilation_h, config_.dilation_w},
                                   in, config_.filters, "conv");
        geometry_.G = config_.groups;
        return {geometry_.OH, geometry_.OW, config_.filters};
    }

  private:
    // What inference computes with `a` absorbed: a bias where a map is folded in, its activation.
    bool has_bias(const Absorption& a) const { return config_.bias || a.affine; }
    ActivationSpec activation_with(const Absorption& a) const {
        return a.activation.kind != Activation::none ? a.activation : config_.activation;
    }

    Conv2dConfig config_;
    mutable ConvGeometry geometry_{};
    Buffer weight_, bias_, dweight_, dbias_;  // weight: (OC, C/G, KH, KW)
};

}  // namespace

std::unique_ptr<Layer> make_conv2d(const Conv2dConfig& config) {
    return std::make_unique<Conv2d>(config);
}

}  // namespace lenz
