// Concatenation along channels (DenseNet, GoogLeNet, ShuffleNet): inputs of the same height and
// width, one after another in each image's (C, H, W) block. It only copies.
#include <cstring>

#include "kernels/cpu/channel_runs.h"
#include "layers/merge_layer.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class Concat final : public MergeLayer {
  public:
    std::string kind() const override { return "concat"; }
    LayerConfig config() const override { return ConcatConfig{}; }
    std::string spec() const override { return "concat"; }

    // Channels-last: each position's channels are the inputs' channels there, one after another.
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }

    // Inside an outer concatenation's output too (Inception's blocks concatenate concatenations).
    bool writes_channel_slice() const override { return true; }

    // xs[k]: (N, C_k, H, W) -> y: (N, sum C_k, H, W)
    void forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass) override {
        if (pass.layouts.output == Layout::nhwc) {
            const int64_t C = pass.output_stride > 0 ? pass.output_stride : output_shape().c;
            for_each_slice(pass.batch, [&](size_t k, int64_t first, int64_t rows, int64_t offset) {
                // An input its writer wrote in its place already (Layer::writes_channel_slice) is not copied.
                if (xs[k] == y + offset) return;
                const int64_t ck = input_shapes()[k].c;
                cpu::copy_runs(xs[k] + first * ck, ck, y + first * C + offset, C, rows, ck);
            });
            return;
        }
        const int64_t out_image = output_shape().elements();
#pragma omp parallel for schedule(static) if (pass.batch * out_image >= (1 << 16))
        for (int64_t n = 0; n < pass.batch; ++n) {
            int64_t offset = 0;
            for (size_t k = 0; k < xs.size(); ++k) {
                const int64_t image = input_shapes()[k].elements();
                std::memcpy(y + n * out_image + offset, xs[k] + n * image,
                            sizeof(float) * static_cast<size_t>(image));
                offset += image;
            }
        }
    }
    // Each input's gradient is its slice of dy, added to what its destination holds.
    void backward_inputs(const std::vector<const float*>&, const float*, float* dy,
                         const std::vector<InputGradient>& dxs, const Pass& pass) override {
        if (pass.layouts.output == Layout::nhwc) {
            for_each_slice(pass.batch, [&](size_t k, int64_t first, int64_t rows, int64_t offset) {
                if (!dxs[k]) return;
                const int64_t ck = input_shapes()[k].c, C = output_shape().c;
                cpu::add_runs(dy + first * C + offset, C, dxs[k].sum() + first * ck, ck, rows, ck);
            });
            return;
        }
        const int64_t out_image = output_shape().elements();
#pragma omp parallel for schedule(static) if (pass.batch * out_image >= (1 << 16))
        for (int64_t n = 0; n < pass.batch; ++n) {
            int64_t offset = 0;
            for (size_t k = 0; k < dxs.size(); ++k) {
                const int64_t image = input_shapes()[k].elements();
                if (dxs[k]) dxs[k].store(n, dy + n * out_image + offset);
                offset += image;
            }
        }
    }

  private:
    // Channels-last: visit(k, first position, positions, offset of input k's channels in a position's
    // row of all of them), over every position of every image, in blocks shared among the threads.
    template <class Visit>
    void for_each_slice(int64_t batch, Visit visit) const {
        const int64_t positions = batch * output_shape().h * output_shape().w;
        cpu::in_row_blocks(positions, output_shape().c, [&](int64_t first, int64_t rows) {
            int64_t offset = 0;
            for (size_t k = 0; k < input_shapes().size(); ++k) {
                visit(k, first, rows, offset);
                offset += input_shapes()[k].c;
            }
        });
    }

  protected:
    Shape infer_inputs(const std::vector<Shape>& inputs) const override {
        if (inputs.size() < 2) throw ShapeError("concat: needs two or more inputs");
        Shape out{inputs[0].h, inputs[0].w, 0};
        for (const Shape& s : inputs) {
            check_input(s, "concat");
            if (s.h != out.h || s.w != out.w)
                throw ShapeError("concat: inputs of different sizes, " + inputs[0].str() + " and " + s.str() +
                                 " (height and width must match)");
            out.c = checked_add(out.c, s.c, "channels");
        }
        if (out.c > kMaxDimension) throw ShapeError("concat: more than 2^24 channels");
        return out;
    }
};

}  // namespace

std::unique_ptr<Layer> make_concat() {
    return std::make_unique<Concat>();
}

}  // namespace lenz
