// A slice of the channels, begin (inclusive) to end (exclusive): how ShuffleNet v2 splits a feature
// map in two (two slices read the same value). No parameters; it only copies.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/channel_runs.h"
#include "kernels/cpu/image_gradient.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class ChannelSlice final : public Layer {
  public:
    explicit ChannelSlice(const ChannelSliceConfig& config) : config_(config) {}

    std::string kind() const override { return "slice"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        return "slice " + std::to_string(config_.begin) + ":" + std::to_string(config_.end);
    }

    // Channels-last too, so that ShuffleNet's units stay channels-last between their convolutions.
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }

    // ShuffleNet's half that passes by goes straight into the concatenation after its branch.
    bool writes_channel_slice() const override { return true; }

    void forward(const float* x, float* y, const Pass& pass) override {
        const int64_t in_image = input_shape().elements(), out_image = output_shape().elements();
        if (pass.layouts.input == Layout::nhwc) {  // each pixel's run of the sliced channels
            const int64_t rows = pass.batch * input_shape().h * input_shape().w, in_c = input_shape().c,
                          out_c = output_shape().c,
                          out_stride = pass.output_stride > 0 ? pass.output_stride : out_c;
            cpu::in_row_blocks(rows, in_c, [&](int64_t first, int64_t count) {
                cpu::copy_runs(x + first * in_c + config_.begin, in_c, y + first * out_stride, out_stride,
                               count, out_c);
            });
            return;
        }
        const int64_t skip = config_.begin * input_shape().h * input_shape().w;
#pragma omp parallel for schedule(static) if (pass.batch * out_image >= (1 << 16))
        for (int64_t n = 0; n < pass.batch; ++n)
            std::memcpy(y + n * out_image, x + n * in_image + skip,
                        sizeof(float) * static_cast<size_t>(out_image));
    }
    int64_t workspace_floats(const Pass& pass) const override {
        return pass.training ? threads() * input_shape().elements() : 0;
    }
    // Zero outside the slice, dy inside it.
    void backward(const float*, const float*, float* dy, const InputGradient& dx, const Pass& pass) override {
        if (!dx) return;
        const Shape s = input_shape();
        const int64_t out_image = output_shape().elements(), skip = config_.begin * s.h * s.w;
        const cpu::ImageGradientSink store = [&](int64_t n, const float* image_dx) { dx.store(n, image_dx); };
        const bool channels_last = pass.layouts.input == Layout::nhwc;
        const int64_t pixels = s.h * s.w, out_c = output_shape().c;
        cpu::for_each_image_gradient(
            pass.batch, s.elements(), pass.workspace, threads(), store, [&](int64_t n, float* image_dx) {
                std::fill(image_dx, image_dx + s.elements(), 0.0f);
                if (!channels_last) {
                    std::memcpy(image_dx + skip, dy + n * out_image,
                                sizeof(float) * static_cast<size_t>(out_image));
                    return;
                }
                cpu::copy_runs(dy + n * out_image, out_c, image_dx + config_.begin, s.c, pixels, out_c);
            });
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        if (config_.begin < 0 || config_.begin >= config_.end || config_.end > in.c)
            throw ShapeError("slice: channels " + std::to_string(config_.begin) + ":" +
                             std::to_string(config_.end) + " are not a range inside the input's " +
                             std::to_string(in.c) +
                             " channels (begin:end, 0 <= begin < end <= " + std::to_string(in.c) + ")");
        return {in.h, in.w, config_.end - config_.begin};
    }

  private:
    ChannelSliceConfig config_;
};

}  // namespace

std::unique_ptr<Layer> make_channel_slice(const ChannelSliceConfig& config) {
    return std::make_unique<ChannelSlice>(config);
}

}  // namespace lenz
