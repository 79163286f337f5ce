// ONNX export through the ONNX project's own protobuf classes (libonnx): each layer's settings
// (Layer::config()) as opset-13 operators on the tensors of the values it reads, spelled as the
// importer reads them back, with explicit pads resolved by the layers' own resolve_window, behind
// the checkpoint's normalisation. See include/lenz/onnx.h.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/files.h"
#include "formats/onnx_common.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/onnx.h"
#include "lenz/precision.h"
#include "lenz/quantize.h"

namespace lenz {
namespace {

using nlohmann::json;
using onnx_io::kBatchNormEpsilon;
using onnx_io::kOpset;
using onnx_io::Window;
using onnx_io::window_of;

class GraphWriter {
  public:
    explicit GraphWriter(onnx::GraphProto& graph) : graph_(graph) {}

    onnx::NodeProto& node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                          const std::string& output) {
        onnx::NodeProto& n = *graph_.add_node();
        n.set_op_type(op);
        n.set_name(name);
        for (const std::string& in : inputs) n.add_input(in);
        n.add_output(output);
        return n;
    }
    void shape(const std::string& name, const std::vector<int64_t>& values) {
        onnx::TensorProto& t = *graph_.add_initializer();
        t.set_name(name);
        t.set_data_type(onnx::TensorProto::INT64);
        t.add_dims(static_cast<int64_t>(values.size()));
        for (int64_t v : values) t.add_int64_data(v);
    }
    void initializer(const std::string& name, const std::vector<int64_t>& dims, const float* data,
                     int64_t n) {
        onnx::TensorProto& t = *graph_.add_initializer();
        t.set_name(name);
        t.set_data_type(onnx::TensorProto::FLOAT);
        for (int64_t d : dims) t.add_dims(d);
        t.set_raw_data(
            std::string(reinterpret_cast<const char*>(data), sizeof(float) * static_cast<size_t>(n)));
    }
    // Integers of one byte: int8 (weights, their zero points) or uint8 (the zero point of an
    // input that is never negative).
    void byte_initializer(const std::string& name, const std::vector<int64_t>& dims, const int8_t* data,
                          int64_t n, bool is_unsigned = false) {
        onnx::TensorProto& t = *graph_.add_initializer();
        t.set_name(name);
        t.set_data_type(is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8);
        for (int64_t d : dims) t.add_dims(d);
        t.set_raw_data(std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
    }
    // A float scalar initializer; returns its name.
    const std::string& scalar(const std::string& name, float value) {
        initializer(name, {}, &value, 1);
        return name;
    }

  private:
    onnx::GraphProto& graph_;
};

void set_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a.add_ints(v);
}
void set_int(onnx::NodeProto& n, const std::string& name, int64_t value) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(value);
}
void set_string(onnx::NodeProto& n, const std::string& name, const std::string& value) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s(value);
}
void set_float(onnx::NodeProto& n, const std::string& name, float value) {
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(value);
}

void set_tensor_type(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& dims) {
    v.set_name(name);
    auto& type = *v.mutable_type()->mutable_tensor_type();
    type.set_elem_type(onnx::TensorProto::FLOAT);
    auto& shape = *type.mutable_shape();
    shape.add_dim()->set_dim_param("N");
    for (int64_t d : dims) shape.add_dim()->set_dim_value(d);
}

// Writes the activation after `x` (fused into the layer before, or standalone) as its last node,
// named `name` and writing `out`; returns its output. Those opset 13 has no operator for are the
// subgraphs PyTorch 1.13 writes, which import fuses back into one activation (onnx_fusion.h).
std::string write_activation(GraphWriter& w, const ActivationSpec& act, const std::string& name,
                             const std::string& x, const std::string& out) {
    switch (act.kind) {
        case Activation::none:
            return x;
        case Activation::relu:
            w.node("Relu", name, {x}, out);
            break;
        case Activation::leaky_relu:
            set_float(w.node("LeakyRelu", name, {x}, out), "alpha", act.alpha);
            break;
        case Activation::sigmoid:
            w.node("Sigmoid", name, {x}, out);
            break;
        case Activation::tanh:
            w.node("Tanh", name, {x}, out);
            break;
        case Activation::softmax:
            set_int(w.node("Softmax", name, {x}, out), "axis", 1);  // over the channels at each position
            break;
        case Activation::log_softmax:
            set_int(w.node("LogSoftmax", name, {x}, out), "axis", 1);
            break;
        case Activation::elu:
            set_float(w.node("Elu", name, {x}, out), "alpha", act.alpha);
            break;
        case Activation::relu6:  // Clip's bounds are inputs since opset 11
            w.node("Clip", name, {x, w.scalar(name + ".min", 0.0f), w.scalar(name + ".max", 6.0f)}, out);
            break;
        case Activation::hard_sigmoid:
        case Activation::hard_swish: {  // x * HardSigmoid(x): HardSwish is opset 14
            const bool swish = act.kind == Activation::hard_swish;
            onnx::NodeProto& n =
                w.node("HardSigmoid", swish ? name + ".gate" : name, {x}, swish ? name + ".gate" : out);
            set_float(n, "alpha", 1.0f / 6.0f);
            set_float(n, "beta", 0.5f);
            if (swish) w.node("Mul", name, {x, name + ".gate"}, out);
            break;
        }
        case Activation::silu:  // x * Sigmoid(x)
            w.node("Sigmoid", name + ".gate", {x}, name + ".gate");
            w.node("Mul", name, {x, name + ".gate"}, out);
            break;
        case Activation::gelu:  // (x * (Erf(x / sqrt 2) + 1)) * 0.5: Gelu is opset 20
            w.node("Div", name + ".scaled", {x, w.scalar(name + ".sqrt2", std::sqrt(2.0f))},
                   name + ".scaled");
            w.node("Erf", name + ".erf", {name + ".scaled"}, name + ".erf");
            w.node("Add", name + ".cdf", {name + ".erf", w.scalar(name + ".one", 1.0f)}, name + ".cdf");
            w.node("Mul", name + ".product", {x, name + ".cdf"}, name + ".product");
            w.node("Mul", name, {name + ".product", w.scalar(name + ".half", 0.5f)}, out);
            break;
    }
    return out;
}

std::map<std::string, const Buffer*> params_of(Layer& layer) {
    std::map<std::string, const Buffer*> p;
    for (const ParamRef& r : layer.params()) p[r.name] = r.value;
    return p;
}

// The ONNX tensor that holds a Lenz value. Lenz holds (N, features) as a 1x1xF map; ONNX tells them
// apart by rank: 2 after flatten and dense (Gemm needs it), 4 otherwise.
struct Tensor {
    std::string name;
    int rank = 4;
};

// Writes the model's layers in file order, each reading the tensors of the values it reads
// (Model::inputs), each spelled as the importer reads it back.
class LayerWriter {
  public:
    LayerWriter(Model& model, GraphWriter& w, const std::string& input)
        : model_(model), w_(w), values_(static_cast<size_t>(model.size() + 1)), readers_(values_.size()) {
        values_[0].name = input;
        for (int64_t i = 0; i < model.size(); ++i)
            for (int64_t v : model.inputs(i)) readers_[static_cast<size_t>(v)].push_back(i);
    }

    // Writes layer i; returns the tensor of its output, which its last node writes.
    const Tensor& write(int64_t i) {
        Layer& layer = model_.layer(i);
        const std::string name = std::to_string(i + 1) + "." + layer.kind();
        const auto params = params_of(layer);
        const auto init = [&](const std::string& param, const std::vector<int64_t>& dims) {
            const Buffer& b = *params.at(param);
            w_.initializer(name + "." + param, dims, b.data(), b.size());
            return name + "." + param;
        };
        const LayerConfig config = layer.config();
        const int64_t first = model_.inputs(i)[0];
        const Tensor& in = value(first);
        Tensor& out = values_[static_cast<size_t>(i + 1)];
        out.rank = in.rank;
        const int64_t ch = layer.input_shape().c;
        if (const auto* c = std::get_if<Conv2dConfig>(&config)) {
            const Window win = window_of(layer, c->kernel_h, c->kernel_w, c->stride_h, c->stride_w,
                                         c->padding, false, c->dilation_h, c->dilation_w);
            const std::vector<int64_t> dims{c->filters, ch / c->groups, c->kernel_h, c->kernel_w};
            std::vector<std::string> inputs{
                quantized(first, map(first, name + ".unflatten"), layer),
                quantized_weight(layer, name, dims) ? name + ".weight" : init("weight", dims)};
            if (c->bias) inputs.push_back(init("bias", {c->filters}));
            onnx::NodeProto& n = w_.node("Conv", name, inputs, name);
            set_ints(n, "kernel_shape", win.kernel);
            set_ints(n, "strides", win.strides);
            set_ints(n, "pads", win.pads);
            set_ints(n, "dilations", {c->dilation_h, c->dilation_w});
            set_int(n, "group", c->groups);
            out = {activation(c->activation, name), 4};
        } else if (const auto* p = std::get_if<Pool2dConfig>(&config)) {
            const int64_t sh = p->stride_h ? p->stride_h : p->kernel_h,
                          sw = p->stride_w ? p->stride_w : p->kernel_w;
            const Window win = window_of(layer, p->kernel_h, p->kernel_w, sh, sw, p->padding, true);
            onnx::NodeProto& n = w_.node(p->kind == PoolKind::max ? "MaxPool" : "AveragePool", name,
                                         {map(first, name + ".unflatten")}, name);
            set_ints(n, "kernel_shape", win.kernel);
            set_ints(n, "strides", win.strides);
            set_ints(n, "pads", win.pads);
            if (p->kind == PoolKind::average) set_int(n, "count_include_pad", p->count_padding ? 1 : 0);
            // With 'same' the output is already rounded up; the pads written say so exactly.
            if (p->ceil && p->padding.mode != PaddingMode::same) set_int(n, "ceil_mode", 1);
            out = {name, 4};
        } else if (const auto* g = std::get_if<GlobalPoolConfig>(&config)) {
            const std::string x = map(first, name + ".unflatten");
            if (g->kind == PoolKind::average && feeds_dense(i + 1)) {
                // x.mean([2, 3]) as PyTorch writes it: (N, C) for the dense layer, and no flatten
                // between them that import would read as a layer of its own.
                onnx::NodeProto& n = w_.node("ReduceMean", name, {x}, name);
                set_ints(n, "axes", {2, 3});
                set_int(n, "keepdims", 0);
                out = {name, 2};
            } else {
                w_.node(g->kind == PoolKind::max ? "GlobalMaxPool" : "GlobalAveragePool", name, {x}, name);
                out = {name, 4};
            }
        } else if (std::holds_alternative<FlattenConfig>(config)) {
            set_int(w_.node("Flatten", name, {in.name}, name), "axis", 1);
            out = {name, 2};
        } else if (const auto* d = std::get_if<DenseConfig>(&config)) {
            std::string x = in.name;
            if (in.rank != 2) {  // Gemm takes (N, inputs): flatten first, in (C, H, W) order as Lenz does
                set_int(w_.node("Flatten", name + ".flatten", {x}, name + ".flatten"), "axis", 1);
                x = name + ".flatten";
            }
            const std::vector<int64_t> dims{d->units, layer.input_shape().elements()};
            std::vector<std::string> args{quantized(first, x, layer), quantized_weight(layer, name, dims)
                                                                          ? name + ".weight"
                                                                          : init("weight", dims)};
            if (d->bias) args.push_back(init("bias", {d->units}));
            set_int(w_.node("Gemm", name, args, name), "transB", 1);
            out = {activation(d->activation, name), 2};
        } else if (const auto* r = std::get_if<DropoutConfig>(&config)) {
            w_.node("Dropout", name, {in.name, w_.scalar(name + ".ratio", static_cast<float>(r->rate))},
                    name);  // identity at inference
            out.name = name;
        } else if (std::holds_alternative<BatchNormConfig>(config)) {
            onnx::NodeProto& n = w_.node("BatchNormalization", name,
                                         {in.name, init("weight", {ch}), init("bias", {ch}),
                                          init("running_mean", {ch}), init("running_var", {ch})},
                                         name);
            set_float(n, "epsilon", static_cast<float>(kBatchNormEpsilon));
            set_float(n, "momentum", 0.9f);  // ONNX keeps this much of the old estimate; PyTorch's 0.1
            out.name = name;
        } else if (const auto* a = std::get_if<ActivationConfig>(&config)) {
            out.name = write_activation(w_, a->activation, name, in.name, name);
        } else if (const auto* pr = std::get_if<PReluConfig>(&config)) {
            // The slope as torch.onnx.export writes it: (C, 1, 1) broadcasts over a map's H and W,
            // (C) over (N, C); one slope is (1).
            const std::vector<int64_t> dims = !pr->per_channel ? std::vector<int64_t>{1}
                                              : in.rank == 4   ? std::vector<int64_t>{ch, 1, 1}
                                                               : std::vector<int64_t>{ch};
            w_.node("PRelu", name, {in.name, init("weight", dims)}, name);
            out.name = name;
        } else if (const auto* norm = std::get_if<LayerNormConfig>(&config)) {
            const std::vector<int64_t> per_channel =
                in.rank == 4 ? std::vector<int64_t>{1, ch, 1, 1} : std::vector<int64_t>{1, ch};
            out.name =
                layer_norm(name, in, norm->epsilon, init("weight", per_channel), init("bias", per_channel));
        } else if (const auto* slice = std::get_if<ChannelSliceConfig>(&config)) {
            w_.shape(name + ".starts", {slice->begin});
            w_.shape(name + ".ends", {slice->end});
            w_.shape(name + ".axes", {1});
            w_.node("Slice", name,
                    {map(first, name + ".unflatten"), name + ".starts", name + ".ends", name + ".axes"},
                    name);
            out = {name, 4};
        } else if (const auto* shuffle = std::get_if<ChannelShuffleConfig>(&config)) {
            out = {
                channel_shuffle(name, map(first, name + ".unflatten"), layer.input_shape(), shuffle->groups),
                4};
        } else if (const auto* up = std::get_if<UpsampleConfig>(&config)) {
            // Resize by constant scales, as torch.onnx.export writes nn.Upsample (no region of interest);
            // to a size of its own by sizes, the batch and channels taken from the input's shape, as
            // it writes F.interpolate(size=...).
            const bool bilinear = up->mode == UpsampleMode::bilinear;
            const std::string x = map(first, name + ".unflatten");
            std::vector<std::string> inputs{x, "", name + ".scales"};
            if (up->size_h > 0) {
                w_.node("Shape", name + ".shape", {x}, name + ".shape");
                w_.shape(name + ".begin", {0});
                w_.shape(name + ".end", {2});
                w_.node("Slice", name + ".nc", {name + ".shape", name + ".begin", name + ".end"},
                        name + ".nc");
                w_.shape(name + ".hw", {up->size_h, up->size_w});
                onnx::NodeProto& sizes =
                    w_.node("Concat", name + ".sizes", {name + ".nc", name + ".hw"}, name + ".sizes");
                set_int(sizes, "axis", 0);
                inputs = {x, "", "", name + ".sizes"};
            } else {
                const float scales[4] = {1.0f, 1.0f, static_cast<float>(up->scale_h),
                                         static_cast<float>(up->scale_w)};
                w_.initializer(name + ".scales", {4}, scales, 4);
            }
            onnx::NodeProto& n = w_.node("Resize", name, inputs, name);
            set_string(n, "mode", bilinear ? "linear" : "nearest");
            set_string(n, "coordinate_transformation_mode",
                       !bilinear           ? "asymmetric"
                       : up->align_corners ? "align_corners"
                                           : "half_pixel");
            if (!bilinear) set_string(n, "nearest_mode", "floor");
            out = {name, 4};
        } else if (const auto* t = std::get_if<ConvTransposeConfig>(&config)) {
            // Weights (C, F/G, KH, KW) as ONNX and PyTorch keep them; the output padding is explicit,
            // so that the importer need not work it out from output_shape.
            const std::vector<int64_t> dims{ch, t->filters / t->groups, t->kernel_h, t->kernel_w};
            std::vector<std::string> inputs{map(first, name + ".unflatten"), init("weight", dims)};
            if (t->bias) inputs.push_back(init("bias", {t->filters}));
            onnx::NodeProto& n = w_.node("ConvTranspose", name, inputs, name);
            set_ints(n, "kernel_shape", {t->kernel_h, t->kernel_w});
            set_ints(n, "strides", {t->stride_h, t->stride_w});
            set_ints(n, "pads", {t->padding_h, t->padding_w, t->padding_h, t->padding_w});
            set_ints(n, "output_padding", {t->output_padding_h, t->output_padding_w});
            set_ints(n, "dilations", {t->dilation_h, t->dilation_w});
            set_int(n, "group", t->groups);
            out = {activation(t->activation, name), 4};
        } else if (const auto* add = std::get_if<AddConfig>(&config)) {
            // A chain of two-input Adds, as PyTorch writes x + y + z; import reads two inputs at a time.
            const std::vector<std::string> xs = joined(i, name, out.rank);
            std::string sum = xs[0];
            for (size_t k = 1; k < xs.size(); ++k) {
                const std::string partial = k + 1 == xs.size() ? name : name + ".sum" + std::to_string(k);
                w_.node("Add", partial, {sum, xs[k]}, partial);
                sum = partial;
            }
            out.name = activation(add->activation, name);
        } else if (std::holds_alternative<ConcatConfig>(config)) {
            set_int(w_.node("Concat", name, joined(i, name, out.rank), name), "axis", 1);
            out.name = name;
        } else {  // mul: every other kind of layer is above
            static_assert(std::variant_size_v<LayerConfig> == 17,
                          "a new kind of layer needs its ONNX spelling");
            w_.node("Mul", name, joined(i, name, out.rank), name);  // a (N, C, 1, 1) gate broadcasts
            out.name = name;
        }
        return out;
    }

  private:
    const Tensor& value(int64_t v) const { return values_[static_cast<size_t>(v)]; }

    // A quantised model (lenz quantize) in the QDQ form ONNX runtimes run in int8: each int8
    // layer reads its input through QuantizeLinear and DequantizeLinear with the scale Lenz's
    // int8 inference uses (once per tensor), and its weights as int8 through DequantizeLinear,
    // one scale per output channel. Returns the tensor the layer reads.
    std::string quantized(int64_t v, const std::string& x, const Layer& layer) {
        if (!model_.calibrated() || !layer.runs_int8()) return x;
        const std::string out = x + ".dequantized";
        if (!quantized_.insert(x).second) return out;
        const ValueRange r = model_.value_ranges()[static_cast<size_t>(v)];
        const Int8Quant in = int8_quant(r.min, r.max);
        const int8_t zero = 0;
        w_.byte_initializer(x + ".zero_point", {}, &zero, 1, in.is_unsigned);
        const std::vector<std::string> params{w_.scalar(x + ".scale", in.scale), x + ".zero_point"};
        w_.node("QuantizeLinear", x + ".quantize", {x, params[0], params[1]}, x + ".quantized");
        w_.node("DequantizeLinear", x + ".dequantize", {x + ".quantized", params[0], params[1]}, out);
        return out;
    }
    // Writes name.weight as DequantizeLinear of int8 weights, where the model is quantised.
    bool quantized_weight(Layer& layer, const std::string& name, const std::vector<int64_t>& dims) {
        if (!model_.calibrated() || !layer.runs_int8()) return false;
        const Buffer& w = *params_of(layer).at("weight");
        const Int8Weights q = to_int8(w.data(), dims[0], w.size() / dims[0]);
        const std::vector<int8_t> zeros(static_cast<size_t>(dims[0]), 0);
        w_.byte_initializer(name + ".weight_int8", dims, q.values.data(), w.size());
        w_.initializer(name + ".weight_scale", {dims[0]}, q.scales.data(), dims[0]);
        w_.byte_initializer(name + ".weight_zero_point", {dims[0]}, zeros.data(), dims[0]);
        set_int(w_.node("DequantizeLinear", name + ".weight_dequantize",
                        {name + ".weight_int8", name + ".weight_scale", name + ".weight_zero_point"},
                        name + ".weight"),
                "axis", 0);
        return true;
    }

    // The activation fused into the layer `name`, whose node wrote `name`.
    std::string activation(const ActivationSpec& act, const std::string& name) {
        return write_activation(w_, act, name + "." + act.str(), name, name + "." + act.str());
    }

    // Value v as (N, C, H, W): one of rank 2 reshaped to (N, C, 1, 1), as Lenz holds it anyway
    // (import reads the Reshape as a view).
    std::string map(int64_t v, const std::string& reshape) {
        const Tensor& t = value(v);
        if (t.rank == 4) return t.name;
        w_.shape(reshape + ".shape", {0, model_.value_shape(v).c, 1, 1});
        w_.node("Reshape", reshape, {t.name, reshape + ".shape"}, reshape);
        return reshape;
    }

    // The inputs of add, concat or mul at one rank: 2 if all are (N, features), else 4, with the
    // others reshaped, so that ONNX broadcasts a gate (N, C, 1, 1) over the channels and never a
    // (N, C) over the width. A value read twice (x + x) is read the second time through an
    // Identity: import takes the operands of an Add or Mul that are one tensor for a tensor and a
    // constant.
    std::vector<std::string> joined(int64_t i, const std::string& name, int& rank) {
        const std::vector<int64_t>& inputs = model_.inputs(i);
        rank =
            std::all_of(inputs.begin(), inputs.end(), [&](int64_t v) { return value(v).rank == 2; }) ? 2 : 4;
        std::vector<std::string> names;
        for (size_t k = 0; k < inputs.size(); ++k) {
            const std::string operand = name + ".operand" + std::to_string(k + 1);
            std::string x = rank == 2 ? value(inputs[k]).name : map(inputs[k], operand);
            if (std::find(names.begin(), names.end(), x) != names.end()) {
                w_.node("Identity", operand, {x}, operand);
                x = operand;
            }
            names.push_back(x);
        }
        return names;
    }

    // A dense layer reads value v, and no flatten does (which import would drop after a (N, C)).
    bool feeds_dense(int64_t v) const {
        bool dense = false;
        for (int64_t j : readers_[static_cast<size_t>(v)]) {
            const LayerConfig c = model_.layer(j).config();
            if (std::holds_alternative<FlattenConfig>(c)) return false;
            dense = dense || std::holds_alternative<DenseConfig>(c);
        }
        return dense;
    }

    // Over the channels (axis 1, of (N, C, H, W) or (N, C)) as PyTorch 1.13 spells LayerNorm at
    // opset 13 (LayerNormalization is opset 17): the structure onnx_fusion.cpp fuses.
    std::string layer_norm(const std::string& name, const Tensor& in, double epsilon,
                           const std::string& scale, const std::string& bias) {
        const auto mean = [&](const std::string& x, const std::string& out) {
            onnx::NodeProto& n = w_.node("ReduceMean", out, {x}, out);
            set_ints(n, "axes", {1});
            set_int(n, "keepdims", 1);
        };
        mean(in.name, name + ".mean");
        w_.node("Sub", name + ".centred", {in.name, name + ".mean"}, name + ".centred");
        w_.node("Pow", name + ".squared", {name + ".centred", w_.scalar(name + ".two", 2.0f)},
                name + ".squared");
        mean(name + ".squared", name + ".variance");
        w_.node("Add", name + ".variance_eps",
                {name + ".variance", w_.scalar(name + ".epsilon", static_cast<float>(epsilon))},
                name + ".variance_eps");
        w_.node("Sqrt", name + ".deviation", {name + ".variance_eps"}, name + ".deviation");
        w_.node("Div", name + ".normalized", {name + ".centred", name + ".deviation"}, name + ".normalized");
        w_.node("Mul", name + ".scaled", {name + ".normalized", scale}, name + ".scaled");
        w_.node("Add", name, {name + ".scaled", bias}, name);
        return name;
    }

    // ShuffleNet's as PyTorch writes it: (N, C, H, W) viewed as (N, g, C/g, H, W), the two group axes
    // swapped, viewed back. A 0 copies the batch.
    std::string channel_shuffle(const std::string& name, const std::string& x, Shape s, int64_t groups) {
        w_.shape(name + ".split.shape", {0, groups, s.c / groups, s.h, s.w});
        w_.node("Reshape", name + ".split", {x, name + ".split.shape"}, name + ".split");
        set_ints(w_.node("Transpose", name + ".swap", {name + ".split"}, name + ".swap"), "perm",
                 {0, 2, 1, 3, 4});
        w_.shape(name + ".shape", {0, s.c, s.h, s.w});
        w_.node("Reshape", name, {name + ".swap", name + ".shape"}, name);
        return name;
    }

    Model& model_;
    GraphWriter& w_;
    std::vector<Tensor> values_;                 // per value: 0 the input, i + 1 layer i's output
    std::vector<std::vector<int64_t>> readers_;  // per value: the layers that read it
    std::set<std::string> quantized_;            // tensors already read through QDQ
};

}  // namespace

std::string encode_onnx(Model& model, const CheckpointInfo& info) {
    if (model.size() == 0) throw ShapeError("ONNX: the model has no layers to export");
    onnx::ModelProto proto;
    proto.set_ir_version(7);
    proto.set_producer_name("lenz");
    proto.set_producer_version("1");
    onnx::OperatorSetIdProto& opset = *proto.add_opset_import();
    opset.set_domain("");
    opset.set_version(kOpset);
    const auto meta = [&](const std::string& key, const std::string& value) {
        onnx::StringStringEntryProto& e = *proto.add_metadata_props();
        e.set_key(key);
        e.set_value(value);
    };
    meta("lenz.model", model.to_text());
    meta("lenz.classes", json(info.class_names).dump());

    onnx::GraphProto& graph = *proto.mutable_graph();
    graph.set_name("lenz");
    const Shape in = model.input_shape();
    onnx::ValueInfoProto& input = *graph.add_input();
    set_tensor_type(input, "input", {in.c, in.h, in.w});
    input.set_doc_string("pixel values / 255 (0 to 1), channels first: the graph normalises them itself");
    GraphWriter w(graph);
    std::string x = "input";
    // The normalisation training computed goes in the graph, so that any runtime computes what
    // `lenz predict` does from the same pixels: (x - mean) / std per channel.
    const Normalization& norm = info.normalization;
    const auto channels = static_cast<size_t>(in.c);
    if (!norm.mean.empty() || !norm.stddev.empty()) {
        if (norm.mean.size() != channels || norm.stddev.size() != channels)
            throw ShapeError("ONNX: the normalisation has " + std::to_string(norm.mean.size()) +
                             " means and " + std::to_string(norm.stddev.size()) +
                             " deviations for a model with " + std::to_string(channels) + " input channels");
        for (size_t c = 0; c < channels; ++c)
            if (!(norm.stddev[c] > 0) || !std::isfinite(norm.stddev[c]) || !std::isfinite(norm.mean[c]))
                throw ShapeError(
                    "ONNX: the normalisation's deviations must be positive and its means finite");
        const bool identity =
            std::all_of(norm.mean.begin(), norm.mean.end(), [](float m) { return m == 0; }) &&
            std::all_of(norm.stddev.begin(), norm.stddev.end(), [](float s) { return s == 1; });
        if (!identity) {
            w.initializer("normalize.mean", {1, in.c, 1, 1}, norm.mean.data(), in.c);
            w.initializer("normalize.std", {1, in.c, 1, 1}, norm.stddev.data(), in.c);
            w.node("Sub", "normalize.sub", {x, "normalize.mean"}, "normalize.centred");
            w.node("Div", "normalize.div", {"normalize.centred", "normalize.std"}, "normalize");
            x = "normalize";
        }
    }
    LayerWriter layers(model, w, x);
    Tensor last;
    for (int64_t i = 0; i < model.size(); ++i) last = layers.write(i);
    // The last layer's output is the graph's output, named "output"; its last node writes it.
    onnx::NodeProto& node = *graph.mutable_node(graph.node_size() - 1);
    node.set_output(0, "output");
    const Shape out = model.output_shape();
    if (last.rank == 2)
        set_tensor_type(*graph.add_output(), "output", {out.elements()});
    else
        set_tensor_type(*graph.add_output(), "output", {out.c, out.h, out.w});
    std::string bytes;
    if (!proto.SerializeToString(&bytes)) throw FormatError("ONNX: cannot serialise the model");
    return bytes;
}

void write_onnx(const std::string& path, Model& model, const CheckpointInfo& info) {
    const std::string bytes = encode_onnx(model, info);
    write_atomically(path, "the ONNX file",
                     [&](int fd, const std::string& tmp) { write_all(fd, bytes.data(), bytes.size(), tmp); });
}

}  // namespace lenz
