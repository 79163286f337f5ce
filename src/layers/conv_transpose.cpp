// Transposed convolution (ConvTranspose2d): each input value is spread, times each of its filters'
// weights, over a K_h x K_w window of the output at stride S; a decoder's learned upsampling.
// It is the input gradient of a convolution, so its own backward is a convolution of dy.
#include "kernels/cpu/conv_transpose.h"

#include "layers/init.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

std::string pair_or_one(int64_t h, int64_t w) {
    return h == w ? std::to_string(h) : size_pair(h, w);
}

class ConvTranspose final : public Layer {
  public:
    explicit ConvTranspose(const ConvTransposeConfig& config) : config_(config) {
        if (config.filters <= 0 || config.filters > kMaxDimension)
            throw ShapeError("convtranspose: the number of filters must be between 1 and 2^24, got " +
                             std::to_string(config.filters));
        if (config.groups <= 0 || config.filters % config.groups != 0)
            throw ShapeError("convtranspose: groups=" + std::to_string(config.groups) +
                             " does not divide the " + std::to_string(config.filters) + " filters");
    }

    std::string kind() const override { return "convtranspose"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        const ConvTransposeConfig& c = config_;
        std::string s =
            "convtranspose " + std::to_string(c.filters) + " " + size_pair(c.kernel_h, c.kernel_w);
        if (c.stride_h != 1 || c.stride_w != 1) s += " stride=" + pair_or_one(c.stride_h, c.stride_w);
        if (c.padding_h != 0 || c.padding_w != 0) s += " padding=" + pair_or_one(c.padding_h, c.padding_w);
        if (c.output_padding_h != 0 || c.output_padding_w != 0)
            s += " output-padding=" + pair_or_one(c.output_padding_h, c.output_padding_w);
        if (c.groups != 1) s += " groups=" + std::to_string(c.groups);
        if (c.dilation_h != 1 || c.dilation_w != 1)
            s += " dilation=" + pair_or_one(c.dilation_h, c.dilation_w);
        if (c.activation.kind != Activation::none) s += " " + c.activation.str();
        if (!c.bias) s += " nobias";
        return s;
    }

    int64_t param_count() const override {
        return checked_add(weight_count(), config_.bias ? config_.filters : 0, "parameters");
    }
    // Every input value times each weight it meets: H·W·C · (KH·KW·F/G), products that land in the
    // cropped padding included. The input gradient (a convolution of dy with the same weights) and
    // the weight gradient form the same products.
    int64_t mult_count() const override {
        return checked_mul(input_shape().elements(), g_.KH * g_.KW * (g_.OC / g_.G), "multiplications");
    }
    int64_t input_grad_mults() const override { return mult_count(); }
    int64_t weight_grad_mults() const override { return mult_count(); }
    int64_t other_ops() const override { return config_.bias ? output_shape().elements() : 0; }
    std::string param_formula() const override {
        const std::string w = std::to_string(g_.C) + "·" + std::to_string(g_.OC / g_.G) + "·" +
                              std::to_string(g_.KH) + "·" + std::to_string(g_.KW);
        return config_.bias ? w + " + " + std::to_string(g_.OC) : w;
    }
    std::string mult_formula() const override {
        const Shape i = input_shape();
        return std::to_string(i.h) + "·" + std::to_string(i.w) + "·" + std::to_string(i.c) + " · (" +
               std::to_string(g_.KH) + "·" + std::to_string(g_.KW) + "·" + std::to_string(g_.OC / g_.G) + ")";
    }

    // Runs in float32 in every precision: bf16 training and bf16 or int8 inference compute it in
    // float32 (runs_int8 stays false, so the engine hands it float32 values).
    int64_t workspace_floats(const Pass& pass) const override {
        int64_t floats = cpu::conv_transpose_forward_workspace(
            g_, pass.batch, config_.bias, pass.final_activation(config_.activation), pass.layouts);
        if (pass.training)
            floats = std::max(
                floats, cpu::conv_transpose_backward_workspace(g_, pass.batch, config_.bias, pass.layouts));
        return floats;
    }
    // A softmax or logsoftmax over channels is computed on (N, C, H, W).
    ChannelsLast channels_last() const override {
        return over_channels(config_.activation.kind) ? ChannelsLast::no : ChannelsLast::converts;
    }

    std::vector<ParamRef> params() override {
        std::vector<ParamRef> p{{"weight", {g_.C, g_.OC / g_.G, g_.KH, g_.KW}, &weight_, &dweight_, true}};
        if (config_.bias) p.push_back({"bias", {g_.OC}, &bias_, &dbias_, true});
        return p;
    }
    // PyTorch reads a transposed convolution's fan-in from dimension 1 of its weights, (F/G)·KH·KW,
    // and its fan-out from dimension 0, C·KH·KW; the rule is conv's.
    void init_params(Rng& rng) override {
        weight_ = Buffer(weight_count());
        bias_ = Buffer(config_.bias ? g_.OC : 0);
        init_weights(weight_, g_.OC / g_.G * g_.KH * g_.KW, g_.C * g_.KH * g_.KW, config_.activation, rng);
    }
    void allocate_gradients() override {
        dweight_ = Buffer(weight_.size());
        dbias_ = Buffer(bias_.size());
    }

    // x: (N, C, H, W) -> y: (N, F, OH, OW), or channels-last.
    void forward(const float* x, float* y, const Pass& pass) override {
        cpu::conv_transpose_forward(g_, pass.batch, x, weight_.data(), config_.bias ? bias_.data() : nullptr,
                                    pass.final_activation(config_.activation), y, pass.workspace,
                                    pass.layouts);
    }
    // dy: (N, F, OH, OW) -> dw, db accumulated; dx: (N, C, H, W) image by image.
    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        cpu::ImageGradientSink store;
        if (dx) store = [&](int64_t n, const float* image_dx) { dx.store(n, image_dx); };
        cpu::conv_transpose_backward(g_, pass.batch, x, dy, weight_.data(), store, dweight_.data(),
                                     config_.bias ? dbias_.data() : nullptr, pass.workspace, pass.layouts);
    }

    ActivationSpec activation() const override { return config_.activation; }

  protected:
    Shape infer(Shape in) const override {
        g_ = resolve_conv_transpose(config_, in);
        return {g_.OH, g_.OW, g_.OC};
    }

  private:
    int64_t weight_count() const {
        return checked_mul(checked_mul(g_.C, g_.OC / g_.G, "parameters"), g_.KH * g_.KW, "parameters");
    }

    ConvTransposeConfig config_;
    mutable ConvGeometry g_{};
    Buffer weight_, bias_, dweight_, dbias_;  // weight: (C, F/G, KH, KW)
};

}  // namespace

std::unique_ptr<Layer> make_conv_transpose(const ConvTransposeConfig& config) {
    return std::make_unique<ConvTranspose>(config);
}

}  // namespace lenz
