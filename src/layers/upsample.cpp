// Upsampling by whole factors of the height and width (nn.Upsample, ONNX Resize), or resampling to a
// size of any ratio (F.interpolate(size=...)): nearest copies the input pixel under each output
// pixel (by a factor S: into an S_h x S_w block); bilinear blends the four nearest. No parameters.
#include "kernels/cpu/upsample.h"

#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class Upsample final : public Layer {
  public:
    explicit Upsample(const UpsampleConfig& config) : config_(config) {}

    std::string kind() const override { return "upsample"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        std::string s = "upsample " + (sized() ? "size=" + size_pair(config_.size_h, config_.size_w)
                                       : config_.scale_h == config_.scale_w
                                           ? std::to_string(config_.scale_h)
                                           : size_pair(config_.scale_h, config_.scale_w));
        if (bilinear()) s += " bilinear";
        if (config_.align_corners) s += " align-corners";
        return s;
    }

    // Bilinear: each output value is a weighted sum of four input values, 4 multiplications (and
    // their additions, as a MAC), weights of 0 or 1 included; backward hands each output gradient to
    // the same four with the same weights. Nearest only copies.
    int64_t mult_count() const override {
        return bilinear() ? checked_mul(output_shape().elements(), 4, "multiplications") : 0;
    }
    int64_t input_grad_mults() const override { return mult_count(); }
    std::string mult_formula() const override {
        if (!bilinear()) return "";
        const Shape o = output_shape();
        return std::to_string(o.h) + "·" + std::to_string(o.w) + "·" + std::to_string(o.c) + " · 4";
    }

    // Channels-last between convolutions (a decoder's upsample, conv), so that neither side reorders.
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }
    int64_t workspace_floats(const Pass& pass) const override {
        return pass.training ? threads() * input_shape().elements() : 0;
    }

    // x: (N, C, H, W) -> y: (N, C, H·S_h, W·S_w) (or the size given), or both channels-last.
    void forward(const float* x, float* y, const Pass& pass) override {
        cpu::upsample_forward(geometry(), pass.batch, x, y, pass.layouts.input);
    }
    // dy: (N, C, OH, OW) -> dx: (N, C, H, W); x is not read.
    void backward(const float*, const float*, float* dy, const InputGradient& dx, const Pass& pass) override {
        if (!dx) return;
        const cpu::ImageGradientSink store = [&](int64_t n, const float* image_dx) { dx.store(n, image_dx); };
        cpu::upsample_backward(geometry(), pass.batch, dy, store, pass.workspace, threads(),
                               pass.layouts.input);
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        if (!sized() && (config_.scale_h < 1 || config_.scale_w < 1))
            throw ShapeError("upsample: the scale must be a positive whole number, got " +
                             size_pair(config_.scale_h, config_.scale_w));
        if (sized() && (config_.size_h < 1 || config_.size_w < 1))
            throw ShapeError("upsample: the size must be positive, got " +
                             size_pair(config_.size_h, config_.size_w));
        if (config_.align_corners && !bilinear())
            throw ShapeError("upsample: align-corners is for bilinear upsampling");
        const Shape out = sized() ? Shape{config_.size_h, config_.size_w, in.c}
                                  : Shape{checked_mul(in.h, config_.scale_h, "upsample height"),
                                          checked_mul(in.w, config_.scale_w, "upsample width"), in.c};
        if (out.h > kMaxDimension || out.w > kMaxDimension)
            throw ShapeError("upsample: the output " + size_pair(out.h, out.w) +
                             " is larger than the limit " + std::to_string(kMaxDimension));
        rows_ = cpu::upsample_taps(in.h, out.h, bilinear(), config_.align_corners);
        columns_ = cpu::upsample_taps(in.w, out.w, bilinear(), config_.align_corners);
        return out;
    }

  private:
    bool bilinear() const { return config_.mode == UpsampleMode::bilinear; }
    bool sized() const { return config_.size_h > 0; }
    cpu::UpsampleGeometry geometry() const {
        const Shape in = input_shape(), out = output_shape();
        return {in.c, in.h, in.w, out.h, out.w, bilinear(), rows_.data(), columns_.data()};
    }

    UpsampleConfig config_;
    // Which input rows and columns each output row and column reads, for the connected shape.
    mutable std::vector<cpu::UpsampleTap> rows_, columns_;
};

}  // namespace

std::unique_ptr<Layer> make_upsample(const UpsampleConfig& config) {
    return std::make_unique<Upsample>(config);
}

}  // namespace lenz
