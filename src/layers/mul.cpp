// Elementwise product of a value and a gate: of the same shape, or 1x1xC, one weight per channel
// broadcast over height and width (squeeze-and-excitation).
#include <algorithm>

#include "kernels/cpu/channel_runs.h"
#include "layers/merge_layer.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class Mul final : public MergeLayer {
  public:
    std::string kind() const override { return "mul"; }
    LayerConfig config() const override { return MulConfig{}; }
    std::string spec() const override { return "mul"; }
    int64_t other_ops() const override { return output_shape().elements(); }

    // x: (N, C, H, W), gate: (N, C, H, W) or (N, C, 1, 1) -> y: (N, C, H, W)
    bool in_place() const override { return true; }  // each value is read before it is written
    // A full-size gate is element by element; a per-channel one (1x1xC, the same in either layout)
    // is indexed by each value's channel.
    ChannelsLast channels_last() const override { return ChannelsLast::keeps; }

    void forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass) override {
        const Shape s = output_shape();
        const int64_t P = s.h * s.w, C = s.c;
        const float* x = xs[0];
        const float* gate = xs[1];
        const bool broadcast = gate_is_per_channel();
        if (broadcast && pass.layouts.input == Layout::nhwc) {
            // Each pixel's channels times its image's gate; a block of pixels may span two images.
            cpu::in_row_blocks(pass.batch * P, C, [&](int64_t first, int64_t rows) {
                for (int64_t end = first + rows; first < end;) {
                    const int64_t n = first / P, count = std::min(end, (n + 1) * P) - first;
                    cpu::scale_runs(x + first * C, gate + n * C, y + first * C, count, C);
                    first += count;
                }
            });
            return;
        }
#pragma omp parallel for schedule(static) if (pass.batch * C * P >= (1 << 16))
        for (int64_t nc = 0; nc < pass.batch * C; ++nc)
            for (int64_t p = 0; p < P; ++p)
                y[nc * P + p] = x[nc * P + p] * (broadcast ? gate[nc] : gate[nc * P + p]);
    }
    // dx = dy * gate; dgate = dy * x, summed over positions for a per-channel gate. Both add to what
    // their destinations hold. dgate is computed first: dx may be stored over x.
    void backward_inputs(const std::vector<const float*>& xs, const float*, float* dy,
                         const std::vector<InputGradient>& dxs, const Pass& pass) override {
        const Shape s = output_shape();
        const int64_t P = s.h * s.w, C = s.c;
        const float* x = xs[0];
        const float* gate = xs[1];
        const bool broadcast = gate_is_per_channel();
        float* dx = dxs[0] ? dxs[0].sum() : nullptr;
        float* dgate = dxs[1] ? dxs[1].sum() : nullptr;
        if (broadcast && pass.layouts.input == Layout::nhwc) {
#pragma omp parallel for schedule(static) if (pass.batch * C * P >= (1 << 16))
            for (int64_t nc = 0; nc < pass.batch * C; ++nc) {
                const int64_t n = nc / C, c = nc % C;
                const float* d = dy + n * P * C + c;  // channel c of image n: every C-th value
                const float* v = x + n * P * C + c;
                if (dgate) {
                    double sum = 0;
                    for (int64_t p = 0; p < P; ++p) sum += static_cast<double>(d[p * C]) * v[p * C];
                    dgate[nc] += static_cast<float>(sum);
                }
                if (dx)
                    for (int64_t p = 0; p < P; ++p) dx[n * P * C + p * C + c] += d[p * C] * gate[nc];
            }
            return;
        }
#pragma omp parallel for schedule(static) if (pass.batch * C * P >= (1 << 16))
        for (int64_t nc = 0; nc < pass.batch * C; ++nc) {
            const float* d = dy + nc * P;
            if (dgate) {
                if (broadcast) {
                    double sum = 0;
                    for (int64_t p = 0; p < P; ++p) sum += static_cast<double>(d[p]) * x[nc * P + p];
                    dgate[nc] += static_cast<float>(sum);
                } else {
                    for (int64_t p = 0; p < P; ++p) dgate[nc * P + p] += d[p] * x[nc * P + p];
                }
            }
            if (dx)
                for (int64_t p = 0; p < P; ++p)
                    dx[nc * P + p] += d[p] * (broadcast ? gate[nc] : gate[nc * P + p]);
        }
    }

  protected:
    Shape infer_inputs(const std::vector<Shape>& inputs) const override {
        if (inputs.size() != 2) throw ShapeError("mul: needs two inputs, a value and its gate");
        const Shape x = inputs[0], gate = inputs[1];
        check_input(x, "mul");
        check_input(gate, "mul");
        if (gate != x && gate != Shape{1, 1, x.c})
            throw ShapeError("mul: the gate " + gate.str() + " is neither " + x.str() + " nor 1x1x" +
                             std::to_string(x.c) + " (one weight per channel)");
        return x;
    }

  private:
    bool gate_is_per_channel() const {
        return input_shapes()[1] != input_shapes()[0];
    }
};

}  // namespace

std::unique_ptr<Layer> make_mul() {
    return std::make_unique<Mul>();
}

}  // namespace lenz
