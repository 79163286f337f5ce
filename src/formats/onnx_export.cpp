// ONNX export through the ONNX project's own protobuf classes (libonnx): each layer's settings
// (Layer::config()) as opset-13 operators, with explicit pads resolved by the layers' own
// resolve_window, behind the checkpoint's normalisation. See include/lenz/onnx.h.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "formats/onnx_common.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/onnx.h"

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

// Writes the activation after `x` (fused into the layer before, or standalone); returns its output.
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
        case Activation::relu6:  // Clip's bounds are inputs since opset 11
            w.node("Clip", name, {x, w.scalar(name + ".min", 0.0f), w.scalar(name + ".max", 6.0f)}, out);
            break;
        case Activation::hard_sigmoid: {
            onnx::NodeProto& n = w.node("HardSigmoid", name, {x}, out);
            set_float(n, "alpha", 1.0f / 6.0f);
            set_float(n, "beta", 0.5f);
            break;
        }
        case Activation::hard_swish:  // opset 13 spells these out as subgraphs (the ONNX issue)
        case Activation::silu:
        case Activation::gelu:
            throw ShapeError("ONNX: exporting " + act.str() + " is not supported yet");
    }
    return out;
}

std::map<std::string, const Buffer*> params_of(Layer& layer) {
    std::map<std::string, const Buffer*> p;
    for (const ParamRef& r : layer.params()) p[r.name] = r.value;
    return p;
}

}  // namespace

std::string encode_onnx(Model& model, const CheckpointInfo& info) {
    if (model.size() == 0) throw ShapeError("ONNX: the model has no layers to export");
    if (!model.is_chain())
        throw ShapeError(
            "ONNX: exporting a graph (add, concat, mul or from=) is not supported yet; chains are");
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
    int rank = 4;  // of x, batch included
    for (int64_t i = 0; i < model.size(); ++i) {
        Layer& layer = model.layer(i);
        const std::string name = std::to_string(i + 1) + "." + layer.kind();
        const auto params = params_of(layer);
        const auto init = [&](const std::string& param, const std::vector<int64_t>& dims) {
            const Buffer& b = *params.at(param);
            w.initializer(name + "." + param, dims, b.data(), b.size());
            return name + "." + param;
        };
        const LayerConfig config = layer.config();
        const bool windowed = std::holds_alternative<Conv2dConfig>(config) ||
                              std::holds_alternative<Pool2dConfig>(config) ||
                              std::holds_alternative<GlobalPoolConfig>(config);
        if (windowed && rank == 2) {  // after flatten or dense: (N, C) -> (N, C, 1, 1), as Lenz holds it
            w.shape(name + ".unflatten.shape", {0, layer.input_shape().c, 1, 1});
            w.node("Reshape", name + ".unflatten", {x, name + ".unflatten.shape"}, name + ".unflatten");
            x = name + ".unflatten";
            rank = 4;
        }
        std::string y;
        if (const auto* c = std::get_if<Conv2dConfig>(&config)) {
            const Window win = window_of(layer, c->kernel_h, c->kernel_w, c->stride_h, c->stride_w,
                                         c->padding, false, c->dilation_h, c->dilation_w);
            std::vector<std::string> inputs{
                x, init("weight", {c->filters, layer.input_shape().c / c->groups, c->kernel_h, c->kernel_w})};
            if (c->bias) inputs.push_back(init("bias", {c->filters}));
            onnx::NodeProto& n = w.node("Conv", name, inputs, name);
            set_ints(n, "kernel_shape", win.kernel);
            set_ints(n, "strides", win.strides);
            set_ints(n, "pads", win.pads);
            set_ints(n, "dilations", {c->dilation_h, c->dilation_w});
            set_int(n, "group", c->groups);
            y = write_activation(w, c->activation, name + "." + c->activation.str(), name,
                                 name + "." + c->activation.str());
        } else if (const auto* p = std::get_if<Pool2dConfig>(&config)) {
            const int64_t sh = p->stride_h ? p->stride_h : p->kernel_h,
                          sw = p->stride_w ? p->stride_w : p->kernel_w;
            const Window win = window_of(layer, p->kernel_h, p->kernel_w, sh, sw, p->padding, true);
            onnx::NodeProto& n =
                w.node(p->kind == PoolKind::max ? "MaxPool" : "AveragePool", name, {x}, name);
            set_ints(n, "kernel_shape", win.kernel);
            set_ints(n, "strides", win.strides);
            set_ints(n, "pads", win.pads);
            if (p->kind == PoolKind::average) set_int(n, "count_include_pad", p->count_padding ? 1 : 0);
            // With 'same' the output is already rounded up; the pads written say so exactly.
            if (p->ceil && p->padding.mode != PaddingMode::same) set_int(n, "ceil_mode", 1);
            y = name;
        } else if (const auto* g = std::get_if<GlobalPoolConfig>(&config)) {
            w.node(g->kind == PoolKind::max ? "GlobalMaxPool" : "GlobalAveragePool", name, {x}, name);
            y = name;
        } else if (std::holds_alternative<FlattenConfig>(config)) {
            set_int(w.node("Flatten", name, {x}, name), "axis", 1);
            y = name;
            rank = 2;
        } else if (const auto* d = std::get_if<DenseConfig>(&config)) {
            if (rank != 2) {  // Gemm takes (N, inputs): flatten first, in (C, H, W) order as Lenz does
                set_int(w.node("Flatten", name + ".flatten", {x}, name + ".flatten"), "axis", 1);
                x = name + ".flatten";
                rank = 2;
            }
            const int64_t inputs = layer.input_shape().elements();
            std::vector<std::string> args{x, init("weight", {d->units, inputs})};
            if (d->bias) args.push_back(init("bias", {d->units}));
            set_int(w.node("Gemm", name, args, name), "transB", 1);
            y = write_activation(w, d->activation, name + "." + d->activation.str(), name,
                                 name + "." + d->activation.str());
        } else if (const auto* r = std::get_if<DropoutConfig>(&config)) {
            const float ratio = static_cast<float>(r->rate);
            w.initializer(name + ".ratio", {}, &ratio, 1);
            w.node("Dropout", name, {x, name + ".ratio"}, name);  // identity at inference
            y = name;
        } else if (std::holds_alternative<BatchNormConfig>(config)) {
            const int64_t ch = layer.input_shape().c;
            onnx::NodeProto& n = w.node("BatchNormalization", name,
                                        {x, init("weight", {ch}), init("bias", {ch}),
                                         init("running_mean", {ch}), init("running_var", {ch})},
                                        name);
            set_float(n, "epsilon", static_cast<float>(kBatchNormEpsilon));
            set_float(n, "momentum", 0.9f);  // ONNX keeps this much of the old estimate; PyTorch's 0.1
            y = name;
        } else if (const auto* a = std::get_if<ActivationConfig>(&config)) {
            y = write_activation(w, a->activation, name, x, name);
        } else {
            throw ShapeError("ONNX: exporting " + layer.kind() + " (layer " + std::to_string(i + 1) +
                             ") is not supported yet");
        }
        x = y;
    }
    // The last tensor is the graph's output, named "output".
    onnx::NodeProto& last = *graph.mutable_node(graph.node_size() - 1);
    last.set_output(0, "output");
    const Shape out = model.output_shape();
    if (rank == 2)
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
