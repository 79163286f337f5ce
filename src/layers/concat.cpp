// Concatenation along channels (DenseNet, GoogLeNet, ShuffleNet): inputs of the same height and
// width, one after another in each image's (C, H, W) block. It only copies.
#include <cstring>

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

    // xs[k]: (N, C_k, H, W) -> y: (N, sum C_k, H, W)
    void forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass) override {
        if (pass.layouts.output == Layout::nhwc) {
            for_each_slice(
                pass.batch,
                [&](size_t k, float* out, int64_t at, int64_t count) {
                    std::memcpy(out, xs[k] + at, sizeof(float) * static_cast<size_t>(count));
                },
                y);
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
            for_each_slice(
                pass.batch,
                [&](size_t k, float* slice, int64_t at, int64_t count) {
                    if (!dxs[k]) return;
                    float* dx = dxs[k].sum();
                    for (int64_t i = 0; i < count; ++i) dx[at + i] += slice[i];
                },
                dy);
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
    // Channels-last: visit(k, where input k's channels sit in `out`, their offset in input k, how many)
    // for every position of every image.
    template <class Visit>
    void for_each_slice(int64_t batch, Visit visit, float* out) const {
        const int64_t positions = batch * output_shape().h * output_shape().w, C = output_shape().c;
#pragma omp parallel for schedule(static) if (positions * C >= (1 << 16))
        for (int64_t p = 0; p < positions; ++p) {
            int64_t offset = 0;
            for (size_t k = 0; k < input_shapes().size(); ++k) {
                const int64_t ck = input_shapes()[k].c;
                visit(k, out + p * C + offset, p * ck, ck);
                offset += ck;
            }
        }
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
