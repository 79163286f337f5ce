// Dense (fully connected): every output unit sees every input value. Takes any input shape and
// reads it flattened (C, H, W order), so `flatten` before it is optional.
#include "kernels/cpu/dense.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/activation.h"
#include "layers/init.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

class Dense final : public Layer {
  public:
    explicit Dense(const DenseConfig& config) : config_(config) {
        if (config.units <= 0 || config.units > kMaxDimension)
            throw ShapeError("dense: the number of units must be between 1 and 2^24, got " +
                             std::to_string(config.units));
    }

    std::string kind() const override { return "dense"; }
    LayerConfig config() const override { return config_; }
    std::string spec() const override {
        std::string s = "dense " + std::to_string(config_.units);
        if (config_.activation.kind != Activation::none) s += " " + config_.activation.str();
        if (!config_.bias) s += " nobias";
        return s;
    }

    int64_t inputs() const { return input_shape().elements(); }
    int64_t param_count() const override {
        return checked_mul(checked_add(inputs(), config_.bias ? 1 : 0), config_.units, "parameters");
    }
    int64_t mult_count() const override { return checked_mul(inputs(), config_.units, "multiplications"); }
    int64_t input_grad_mults() const override { return mult_count(); }
    int64_t weight_grad_mults() const override { return mult_count(); }
    int64_t other_ops() const override { return config_.bias ? config_.units : 0; }
    std::string param_formula() const override {
        return (config_.bias ? "(" + std::to_string(inputs()) + " + 1)" : std::to_string(inputs())) + " · " +
               std::to_string(config_.units);
    }
    std::string mult_formula() const override {
        return std::to_string(inputs()) + " · " + std::to_string(config_.units);
    }

    // Training builds dx in the workspace's start; bf16 copies of the operands follow.
    int64_t workspace_floats(const Pass& pass) const override {
        if (pass.precision == Precision::int8)
            return cpu::dense_int8_workspace(pass.batch, inputs(), config_.units,
                                             pass.int8_input.is_unsigned);
        if (reads_rows(pass)) return 0;
        if (pass.precision == Precision::f32 && !pass.training)
            return cpu::dense_packed_workspace(inputs(), config_.units, config_.bias,
                                               pass.final_activation(config_.activation));
        return checked_add(
            pass.training ? checked_mul(pass.batch, inputs(), "dense workspace") : 0,
            cpu::dense_workspace(pass.batch, inputs(), config_.units, pass.training, pass.precision));
    }

    int64_t prepared_floats(const Pass& pass) const override {
        if (pass.precision == Precision::int8)
            return cpu::dense_int8_prepared_floats(inputs(), config_.units);
        if (reads_rows(pass)) return checked_mul(inputs(), config_.units, "dense weights");
        if (pass.precision == Precision::f32)
            return cpu::dense_packed_floats(inputs(), config_.units, config_.bias,
                                            pass.final_activation(config_.activation));
        return cpu::dense_prepared_floats(inputs(), config_.units, pass.precision);
    }
    void prepare(float* prepared, const Pass& pass, const float*, const float*) override {
        const std::vector<float> permuted =
            channels_last(pass) ? permuted_weights(pass.flattened_from) : std::vector<float>{};
        const float* w = permuted.empty() ? weight_.data() : permuted.data();
        if (pass.precision == Precision::int8)
            return cpu::dense_int8_prepare(inputs(), config_.units, pass.int8_input, w,
                                           config_.bias ? bias_.data() : nullptr, prepared);
        if (reads_rows(pass)) return (void)std::copy(w, w + weight_.size(), prepared);
        if (pass.precision == Precision::f32)
            return cpu::dense_pack_weights(inputs(), config_.units, config_.bias,
                                           pass.final_activation(config_.activation), w, prepared);
        cpu::dense_prepare_weights(inputs(), config_.units, pass.precision, w, prepared);
    }
    bool reads_flattened() const override { return true; }

    std::vector<ParamRef> params() override {
        std::vector<ParamRef> p{{"weight", {config_.units, inputs()}, &weight_, &dweight_, true}};
        if (config_.bias) p.push_back({"bias", {config_.units}, &bias_, &dbias_, true});
        return p;
    }
    void init_params(Rng& rng) override {
        weight_ = Buffer(checked_mul(config_.units, inputs(), "dense weights"));
        bias_ = Buffer(config_.bias ? config_.units : 0);
        init_weights(weight_, inputs(), config_.units, config_.activation, rng);
    }
    void allocate_gradients() override {
        dweight_ = Buffer(weight_.size());
        dbias_ = Buffer(bias_.size());
    }

    void forward(const float* x, float* y, const Pass& pass) override {
        if (pass.precision == Precision::int8)
            return cpu::dense_int8_forward(pass.batch, inputs(), config_.units, x,
                                           pass.final_activation(config_.activation), y, pass.workspace,
                                           pass.int8_io(), pass.required_prepared());
        const float* b = config_.bias ? bias_.data() : nullptr;
        // Inference in float32 reads the weights prepared for it (permuted first where the input is
        // channels-last): row by row in small runners, packed in the others.
        if (reads_rows(pass) && pass.prepared)
            return cpu::dense_rows_forward(pass.batch, inputs(), config_.units, x, pass.prepared, b,
                                           pass.final_activation(config_.activation), y);
        if (pass.precision == Precision::f32 && !pass.training && pass.prepared)
            return cpu::dense_packed_forward(pass.batch, inputs(), config_.units, x, pass.prepared, b,
                                             pass.final_activation(config_.activation), y, pass.workspace);
        if (channels_last(pass) && !pass.prepared)
            throw std::logic_error("dense: channels-last input without prepared weights");
        cpu::dense_forward(pass.batch, inputs(), config_.units, x, weight_.data(), b,
                           pass.final_activation(config_.activation), y, pass.workspace, pass.precision,
                           pass.prepared);
    }
    void backward(const float* x, const float*, float* dy, const InputGradient& dx,
                  const Pass& pass) override {
        // dx is built in the workspace, then stored image by image (dx may be x itself).
        cpu::dense_backward(pass.batch, inputs(), config_.units, x, dy, weight_.data(),
                            dx ? pass.workspace : nullptr, dweight_.data(),
                            config_.bias ? dbias_.data() : nullptr, pass.workspace + pass.batch * inputs(),
                            pass.precision);
        if (dx)
            for (int64_t n = 0; n < pass.batch; ++n) dx.store(n, pass.workspace + n * inputs());
    }

    ActivationSpec activation() const override { return config_.activation; }
    bool runs_int8() const override { return true; }

  protected:
    Shape infer(Shape in) const override {
        check_input(in, "dense");
        return {1, 1, config_.units};
    }

  private:
    // float32 inference in a runner small enough to read the weights row-major (dense.h).
    static bool reads_rows(const Pass& pass) {
        return pass.precision == Precision::f32 && !pass.training &&
               cpu::dense_reads_rows(pass.prepared_batch);
    }
    // Inference reading (H, W, C) memory (Pass::flattened_from).
    static bool channels_last(const Pass& pass) { return pass.flattened_from.c > 0; }
    // Each row's columns from (C, H, W) order to the (H, W, C) order of channels-last memory.
    std::vector<float> permuted_weights(Shape held) const {
        const int64_t I = inputs(), plane = held.h * held.w;
        if (held.elements() != I) throw ShapeError("dense: channels-last input of the wrong size");
        std::vector<float> out(static_cast<size_t>(weight_.size()));
        for (int64_t u = 0; u < config_.units; ++u)
            for (int64_t c = 0; c < held.c; ++c)
                for (int64_t p = 0; p < plane; ++p)
                    out[static_cast<size_t>(u * I + p * held.c + c)] = weight_[u * I + c * plane + p];
        return out;
    }

    DenseConfig config_;
    Buffer weight_, bias_, dweight_, dbias_;  // weight: (U, I) as PyTorch's nn.Linear
};

}  // namespace

std::unique_ptr<Layer> make_dense(const DenseConfig& config) {
    return std::make_unique<Dense>(config);
}

}  // namespace lenz
