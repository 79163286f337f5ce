// Channel shuffle (ShuffleNet): the channels, seen as G groups of C / G, are read group-interleaved,
// so that the next grouped convolution mixes every group. Output channel j·G + g is input channel
// g·(C / G) + j, as PyTorch's ChannelShuffle. No parameters; it only copies.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/image_gradient.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

class ChannelShuffle final : public Layer {
  public:
    explicit ChannelShuffle(const ChannelShuffleConfig& config) : groups_(config.groups) {}

    std::string kind() const override { return "shuffle"; }
    LayerConfig config() const override { return ChannelShuffleConfig{groups_}; }
    std::string spec() const override { return "shuffle " + std::to_string(groups_); }

    // Channels-last too: each pixel's channels are permuted in place of each channel's plane.
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }

    // At inference it can read a concatenation's inputs in its place (ShuffleNet's concatenation of
    // the two halves, then the shuffle), so the concatenation is never written.
    bool reads_channel_runs() const override { return true; }

    void forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass) override {
        if (!pass.input_runs) return forward(xs.at(0), y, pass);
        if (pass.training || pass.layouts.input != Layout::nhwc || xs.size() != pass.input_runs->size())
            throw Error("internal: shuffle reads runs of channels only at inference, channels-last");
        forward_channels_last(xs.data(), pass.input_runs->data(), xs.size(), y, pass.batch);
    }
    void forward(const float* x, float* y, const Pass& pass) override {
        const Shape s = input_shape();
        if (pass.layouts.input == Layout::nhwc) return forward_channels_last(&x, &s.c, 1, y, pass.batch);
        const int64_t per_group = s.c / groups_, plane = s.h * s.w;
#pragma omp parallel for schedule(static) if (pass.batch * s.elements() >= (1 << 16))
        for (int64_t n = 0; n < pass.batch; ++n)
            for (int64_t g = 0; g < groups_; ++g)
                for (int64_t j = 0; j < per_group; ++j)
                    std::memcpy(y + (n * s.c + j * groups_ + g) * plane,
                                x + (n * s.c + g * per_group + j) * plane,
                                sizeof(float) * static_cast<size_t>(plane));
    }
    int64_t workspace_floats(const Pass& pass) const override {
        return pass.training ? threads() * input_shape().elements() : 0;
    }
    // The inverse permutation, one image at a time (dx may be x's memory).
    void backward(const float*, const float*, float* dy, const InputGradient& dx, const Pass& pass) override {
        if (!dx) return;
        const Shape s = input_shape();
        const int64_t per_group = s.c / groups_, plane = s.h * s.w;
        const cpu::ImageGradientSink store = [&](int64_t n, const float* image_dx) { dx.store(n, image_dx); };
        const bool channels_last = pass.layouts.input == Layout::nhwc;
        cpu::for_each_image_gradient(
            pass.batch, s.elements(), pass.workspace, threads(), store, [&](int64_t n, float* image_dx) {
                if (channels_last) {
                    const float* d = dy + n * s.elements();
                    for (int64_t p = 0; p < plane; ++p)
                        for (int64_t g = 0; g < groups_; ++g)
                            for (int64_t j = 0; j < per_group; ++j)
                                image_dx[p * s.c + g * per_group + j] = d[p * s.c + j * groups_ + g];
                    return;
                }
                for (int64_t g = 0; g < groups_; ++g)
                    for (int64_t j = 0; j < per_group; ++j)
                        std::memcpy(image_dx + (g * per_group + j) * plane,
                                    dy + (n * s.c + j * groups_ + g) * plane,
                                    sizeof(float) * static_cast<size_t>(plane));
            });
    }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, kind());
        if (groups_ < 1 || in.c % groups_ != 0)
            throw ShapeError("shuffle: " + std::to_string(groups_) + " groups do not divide the input's " +
                             std::to_string(in.c) + " channels");
        return in;
    }

  private:
    // Channels-last, the input given as `inputs` runs of channels at every pixel (runs[k] channels of
    // xs[k]; one run of all of them for a single input): input channel c = g·(C / G) + j goes to j·G + g.
    void forward_channels_last(const float* const* xs, const int64_t* runs, size_t inputs, float* y,
                               int64_t batch) const {
        const Shape s = input_shape();
        const int64_t per_group = s.c / groups_, pixels = batch * s.h * s.w;
#pragma omp parallel for schedule(static) if (batch * s.elements() >= (1 << 16))
        for (int64_t r = 0; r < pixels; ++r) {
            float* out = y + r * s.c;
            int64_t start = 0;  // the input channel where run k starts
            for (size_t k = 0; k < inputs; start += runs[k], ++k) {
                const float* in = xs[k] + r * runs[k] - start;              // in[c]: input channel c
                for (int64_t c = start, end = start + runs[k]; c < end;) {  // a group's part at a time
                    const int64_t g = c / per_group, stop = std::min(end, (g + 1) * per_group);
                    for (; c < stop; ++c) out[(c - g * per_group) * groups_ + g] = in[c];
                }
            }
        }
    }

    int64_t groups_;
};

}  // namespace

std::unique_ptr<Layer> make_channel_shuffle(const ChannelShuffleConfig& config) {
    return std::make_unique<ChannelShuffle>(config);
}

}  // namespace lenz
