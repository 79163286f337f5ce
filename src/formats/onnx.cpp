// ONNX through the ONNX project's own protobuf classes (libonnx): export and import of the layers
// Lenz has. See include/lenz/onnx.h for what maps to what.
#include "lenz/onnx.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/files.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

using nlohmann::json;

constexpr int64_t kOpset = 13;
constexpr int64_t kMaxOnnxBytes = int64_t{2} << 30;  // protobuf's own limit for one message
constexpr double kBatchNormEpsilon = 1e-5;           // Lenz's batchnorm; see src/layers/batchnorm.cpp

// ---------------------------------------------------------------------------------------------
// Export

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

// Kernel, stride and the four pads of a window layer, as Lenz resolved them for its input.
struct Window {
    std::vector<int64_t> kernel, strides, pads;  // pads: top, left, bottom, right
};
Window window_of(const Layer& layer, int64_t kh, int64_t kw, int64_t sh, int64_t sw, const Padding& padding,
                 bool pooling) {
    // Pixels: the same on every side, and ONNX's floor((n + 2P - k) / s) + 1 is Lenz's formula.
    if (padding.mode == PaddingMode::pixels)
        return {{kh, kw}, {sh, sw}, {padding.h, padding.w, padding.h, padding.w}};
    const Shape in = layer.input_shape();
    const ConvGeometry g = resolve_window({kh, kw, sh, sw, padding, pooling}, in, 1, layer.kind());
    const int64_t bottom = std::max<int64_t>((g.OH - 1) * sh + kh - in.h - g.PT, 0);
    const int64_t right = std::max<int64_t>((g.OW - 1) * sw + kw - in.w - g.PL, 0);
    return {{kh, kw}, {sh, sw}, {g.PT, g.PL, bottom, right}};
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
    }
    return out;
}

// The window of a convolution or pooling layer (empty for other layers), to compare two layers.
std::vector<int64_t> window_numbers(const Layer& layer) {
    const LayerConfig config = parse_layer_config(layer.spec());
    Window w;
    if (const auto* c = std::get_if<Conv2dConfig>(&config))
        w = window_of(layer, c->kernel_h, c->kernel_w, c->stride_h, c->stride_w, c->padding, false);
    else if (const auto* p = std::get_if<Pool2dConfig>(&config))
        w = window_of(layer, p->kernel_h, p->kernel_w, p->stride_h ? p->stride_h : p->kernel_h,
                      p->stride_w ? p->stride_w : p->kernel_w, p->padding, true);
    std::vector<int64_t> all = w.kernel;
    all.insert(all.end(), w.strides.begin(), w.strides.end());
    all.insert(all.end(), w.pads.begin(), w.pads.end());
    return all;
}

// A layer's model-file line without its padding, which ONNX holds as pads instead.
std::string spec_without_padding(const Layer& layer) {
    std::istringstream in(layer.spec());
    std::string word, out;
    while (in >> word)
        if (word.rfind("padding=", 0) != 0) out += (out.empty() ? "" : " ") + word;
    return out;
}

std::map<std::string, const Buffer*> params_of(Layer& layer) {
    std::map<std::string, const Buffer*> p;
    for (const ParamRef& r : layer.params()) p[r.name] = r.value;
    return p;
}

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------------
// Import

// Reads one ONNX graph, node by node, into Lenz layer settings and their weights.
class GraphReader {
  public:
    GraphReader(const onnx::ModelProto& proto, const std::string& file) : proto_(proto), file_(file) {
        for (const auto& op : proto.opset_import())
            if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
        for (const auto& t : proto.graph().initializer()) tensors_[t.name()] = &t;
    }

    struct Result {
        Shape input;
        std::vector<LayerConfig> layers;
        std::vector<std::map<std::string, std::vector<float>>> weights;  // per layer, by parameter name
    };

    Result read() {
        // Older opsets gave BatchNormalization, Gemm and Reshape other meanings; reading them with
        // today's would be a silent wrong answer.
        if (opset_ < 9)
            throw FormatError(
                file_ + ": ONNX opset " + std::to_string(opset_) +
                " is older than 9, the oldest Lenz reads (convert it with onnx's version_converter)");
        const onnx::GraphProto& graph = proto_.graph();
        read_input(graph);
        const int nodes = graph.node_size();
        for (int i = 0; i < nodes; ++i) {
            const onnx::NodeProto& n = graph.node(i);
            node_ = &n;
            const std::string& op = n.op_type();
            if (!n.domain().empty() && n.domain() != "ai.onnx") fail("operator domain '" + n.domain() + "'");
            if (n.output_size() < 1 || n.output(0).empty()) fail("has no output");
            if (op == "Constant") {
                constant(n);
                continue;
            }
            if (shape_arithmetic(n)) continue;
            if (n.input_size() == 0 || n.input(0) != current_)
                fail("does not take the previous layer's output (" + current_ +
                     "): Lenz imports models that are one chain of layers");
            if (op == "Identity") {
                if (fusable_output_ == current_) fusable_output_ = n.output(0);
                current_ = n.output(0);
                continue;
            }
            const onnx::NodeProto* next = i + 1 < nodes ? &graph.node(i + 1) : nullptr;
            if (op == "MatMul" && next && next->op_type() == "Add" && next->input_size() == 2 &&
                next->output_size() >= 1 && next->input(0) == n.output(0) && tensors_.count(next->input(1))) {
                matmul(next);
                ++i;
            } else {
                layer(n);
            }
        }
        if (graph.output_size() != 1 || graph.output(0).name() != current_)
            throw FormatError(file_ + ": the graph's output must be the last layer's (" + current_ + ")");
        if (result_.layers.empty()) throw FormatError(file_ + ": the graph has no layers");
        return result_;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const {
        throw FormatError(file_ + ": node '" + node_->name() + "' (" + node_->op_type() + "): " + what);
    }

    void read_input(const onnx::GraphProto& graph) {
        const onnx::ValueInfoProto* input = nullptr;
        for (const auto& v : graph.input())
            if (!tensors_.count(v.name())) {
                if (input) throw FormatError(file_ + ": the graph has more than one input");
                input = &v;
            }
        if (!input) throw FormatError(file_ + ": the graph has no input");
        const auto& type = input->type().tensor_type();
        if (type.elem_type() != onnx::TensorProto::FLOAT)
            throw FormatError(file_ + ": input '" + input->name() + "' is not float32");
        std::vector<int64_t> dims;
        for (const auto& d : type.shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
        if (dims.size() != 4 || dims[1] <= 0 || dims[2] <= 0 || dims[3] <= 0)
            throw FormatError(file_ + ": input '" + input->name() +
                              "' must be (N, C, H, W) with C, H and W known, e.g. (N, 3, 224, 224)");
        for (int64_t d : {dims[1], dims[2], dims[3]})
            if (d > kMaxDimension)
                throw FormatError(file_ + ": input size " + std::to_string(d) + " is too large");
        fixed_batch_ = dims[0] > 0 ? dims[0] : 0;
        result_.input = {dims[2], dims[3], dims[1]};
        shape_ = result_.input;
        current_ = input->name();
    }

    void constant(const onnx::NodeProto& n) {
        for (const auto& a : n.attribute())
            if (a.name() == "value" && a.has_t()) {
                constants_[n.output(0)] = a.t();
                return;
            }
        fail("only tensor constants are supported");
    }

    // PyTorch writes x.view(x.size(0), -1) as Shape -> Gather -> Unsqueeze -> Concat -> Reshape: the
    // shape of the running tensor, with the batch size kept symbolic, worked out here.
    static constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();
    bool shape_arithmetic(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        std::vector<int64_t> v;
        if (op == "Shape") {
            if (n.input_size() != 1 || n.input(0) != current_)
                fail("takes the shape of another tensor than the last layer's");
            if (attribute("start") || attribute("end")) fail("start and end are not supported");
            v = rank_ == 4 ? std::vector<int64_t>{kBatch, shape_.c, shape_.h, shape_.w}
                           : std::vector<int64_t>{kBatch, shape_.elements()};
        } else if (op == "Gather") {
            if (n.input_size() != 2 || int_attr("axis", 0) != 0)
                fail("only a gather along axis 0 of a shape is supported");
            const std::vector<int64_t> data = shape_values(n.input(0)), index = shape_values(n.input(1));
            for (int64_t i : index) {
                if (i < -static_cast<int64_t>(data.size()) || i >= static_cast<int64_t>(data.size()))
                    fail("index out of range");
                v.push_back(data[static_cast<size_t>(i < 0 ? i + static_cast<int64_t>(data.size()) : i)]);
            }
        } else if (op == "Unsqueeze") {
            if (n.input_size() < 1) fail("has no input");
            v = shape_values(n.input(0));
        } else if (op == "Concat") {
            if (int_attr("axis", 0) != 0) fail("only a concatenation along axis 0 of shapes is supported");
            for (const std::string& in : n.input()) {
                const std::vector<int64_t> part = shape_values(in);
                v.insert(v.end(), part.begin(), part.end());
                if (v.size() > 8) fail("too long a shape");
            }
        } else {
            return false;
        }
        if (v.size() > 8) fail("too long a shape");
        dims_[n.output(0)] = v;
        return true;
    }
    // A reshape's first dimension that leaves the batch as it is: 0 (copy), the batch worked out by
    // Shape, or the graph's own fixed batch size.
    bool keeps_batch(int64_t first) const {
        return first == 0 || first == kBatch || (fixed_batch_ > 0 && first == fixed_batch_);
    }
    std::vector<int64_t> shape_values(const std::string& name) const {
        if (auto it = dims_.find(name); it != dims_.end()) return it->second;
        if (const onnx::TensorProto* t = tensor(name)) return integers(*t);
        fail("'" + name + "' is neither a constant nor a shape");
    }

    const onnx::TensorProto* tensor(const std::string& name) const {
        if (auto it = tensors_.find(name); it != tensors_.end()) return it->second;
        if (auto it = constants_.find(name); it != constants_.end()) return &it->second;
        return nullptr;
    }
    const onnx::TensorProto& weight_input(int index, const std::string& what) const {
        if (node_->input_size() <= index || node_->input(index).empty()) fail("has no " + what);
        const onnx::TensorProto* t = tensor(node_->input(index));
        if (!t) fail("its " + what + " '" + node_->input(index) + "' is not a constant in the file");
        return *t;
    }

    std::vector<float> floats(const onnx::TensorProto& t, const std::vector<int64_t>& want) const {
        if (t.data_location() == onnx::TensorProto::EXTERNAL)
            fail("tensor '" + t.name() + "' is stored in an external file, which Lenz does not read");
        std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
        if (dims != want) {
            std::string w, g;
            for (int64_t d : want) w += (w.empty() ? "" : "x") + std::to_string(d);
            for (int64_t d : dims) g += (g.empty() ? "" : "x") + std::to_string(d);
            fail("tensor '" + t.name() + "' has shape " + (g.empty() ? "()" : g) + ", expected " + w);
        }
        int64_t n = 1;
        for (int64_t d : dims) n = checked_mul(n, d, "tensor size");
        // Sizes are checked against the bytes present before anything is allocated.
        std::vector<float> v;
        if (t.data_type() == onnx::TensorProto::FLOAT && t.has_raw_data()) {
            if (static_cast<int64_t>(t.raw_data().size()) != checked_mul(4, n, "tensor size"))
                fail("tensor '" + t.name() + "' holds " + std::to_string(t.raw_data().size()) +
                     " bytes, its shape needs " + std::to_string(4 * n));
            v.resize(static_cast<size_t>(n));
            std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
        } else if (t.data_type() == onnx::TensorProto::FLOAT && t.float_data_size() == n) {
            v.assign(t.float_data().begin(), t.float_data().end());
        } else {
            fail("tensor '" + t.name() + "' is not float32 data of its shape");
        }
        for (float f : v)
            if (!std::isfinite(f)) fail("tensor '" + t.name() + "' holds a value that is not finite");
        return v;
    }
    // A dense layer's bias: (units), or (1, units) as Gemm and Add broadcast it.
    std::vector<float> bias_floats(const onnx::TensorProto& t, int64_t units) const {
        return floats(t, t.dims_size() == 2 ? std::vector<int64_t>{1, units} : std::vector<int64_t>{units});
    }
    std::vector<int64_t> integers(const onnx::TensorProto& t) const {
        std::vector<int64_t> v;
        if (t.data_type() != onnx::TensorProto::INT64) fail("tensor '" + t.name() + "' is not int64");
        if (t.has_raw_data()) {
            if (t.raw_data().size() % 8 || t.raw_data().size() > 64)
                fail("tensor '" + t.name() + "' is malformed");
            v.resize(t.raw_data().size() / 8);
            std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
        } else {
            if (t.int64_data_size() > 8) fail("tensor '" + t.name() + "' is too long for a shape");
            v.assign(t.int64_data().begin(), t.int64_data().end());
        }
        return v;
    }

    const onnx::AttributeProto* attribute(const std::string& name) const {
        for (const auto& a : node_->attribute())
            if (a.name() == name) return &a;
        return nullptr;
    }
    int64_t int_attr(const std::string& name, int64_t otherwise) const {
        const auto* a = attribute(name);
        return a ? a->i() : otherwise;
    }
    float float_attr(const std::string& name, float otherwise) const {
        const auto* a = attribute(name);
        return a ? a->f() : otherwise;
    }
    std::vector<int64_t> ints_attr(const std::string& name, std::vector<int64_t> otherwise) const {
        const auto* a = attribute(name);
        return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : otherwise;
    }

    // Kernel, strides and pads of Conv and the pools, as Lenz padding for the current input size.
    struct WindowSettings {
        int64_t kh, kw, sh, sw;
        Padding padding;
    };
    WindowSettings window(std::vector<int64_t> kernel, bool pooling) const {
        if (kernel.size() != 2) fail("only 2-D windows are supported");
        const auto strides = ints_attr("strides", {1, 1});
        const auto dilations = ints_attr("dilations", {1, 1});
        if (strides.size() != 2) fail("strides must have two values");
        if (dilations != std::vector<int64_t>{1, 1}) fail("dilated windows are not supported");
        if (int_attr("ceil_mode", 0) != 0) fail("ceil_mode is not supported");
        for (int64_t v : {kernel[0], kernel[1], strides[0], strides[1]})
            if (v <= 0 || v > kMaxDimension) fail("kernel and strides must be positive");
        WindowSettings s{kernel[0], kernel[1], strides[0], strides[1], {}};
        const auto* auto_pad = attribute("auto_pad");
        const std::string mode = auto_pad ? auto_pad->s() : "NOTSET";
        if (mode == "SAME_UPPER") {
            s.padding.mode = PaddingMode::same;  // the odd pixel at the bottom/right, as Lenz and Keras
            return s;
        }
        if (mode == "VALID") return s;
        if (mode != "NOTSET") fail("auto_pad " + mode + " is not supported (SAME_UPPER, VALID and pads are)");
        const auto pads = ints_attr("pads", {0, 0, 0, 0});
        if (pads.size() != 4) fail("pads must have four values");
        for (int64_t p : pads)
            if (p < 0 || p > kMaxDimension) fail("pads must be between 0 and the size limit");
        if (pads == std::vector<int64_t>{0, 0, 0, 0}) return s;
        if (pads[0] == pads[2] && pads[1] == pads[3]) {
            s.padding = {PaddingMode::pixels, pads[0], pads[1]};
            return s;
        }
        const Padding same{PaddingMode::same};
        const ConvGeometry g =
            resolve_window({s.kh, s.kw, s.sh, s.sw, same, pooling}, shape_, 1, node_->op_type());
        const int64_t bottom = std::max<int64_t>((g.OH - 1) * s.sh + s.kh - shape_.h - g.PT, 0);
        const int64_t right = std::max<int64_t>((g.OW - 1) * s.sw + s.kw - shape_.w - g.PL, 0);
        if (pads != std::vector<int64_t>{g.PT, g.PL, bottom, right})
            fail("uneven pads that are not 'same' (the extra pixel at the bottom/right) are not supported");
        s.padding = same;
        return s;
    }

    // Adds a layer, checking that it fits the current input; the weights are checked on loading.
    void add(const LayerConfig& config, std::map<std::string, std::vector<float>> weights = {}) {
        try {
            std::unique_ptr<Layer> l = make_layer(config);
            l->connect(shape_);
            shape_ = l->output_shape();
        } catch (const ShapeError& e) {
            fail(e.what());
        }
        result_.layers.push_back(config);
        result_.weights.push_back(std::move(weights));
        current_ = node_->output(0);
    }

    void activation(const ActivationSpec& act) {
        // Right after a convolution or dense layer without one, fused as the model file writes it.
        if (!result_.layers.empty() && current_ == fusable_output_) {
            LayerConfig& last = result_.layers.back();
            if (auto* c = std::get_if<Conv2dConfig>(&last); c && c->activation.kind == Activation::none) {
                c->activation = act;
                current_ = node_->output(0);
                return;
            }
            if (auto* d = std::get_if<DenseConfig>(&last); d && d->activation.kind == Activation::none) {
                d->activation = act;
                current_ = node_->output(0);
                return;
            }
        }
        add(ActivationConfig{act});
    }

    void layer(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        const bool was_4d = rank_ == 4;
        if (op == "Conv") {
            if (!was_4d) fail("needs an (N, C, H, W) input");
            if (int_attr("group", 1) != 1) fail("grouped convolutions are not supported");
            const onnx::TensorProto& wt = weight_input(1, "weight");
            if (wt.dims_size() != 4) fail("the weight must be (OC, C, KH, KW)");
            const int64_t oc = wt.dims(0), kh = wt.dims(2), kw = wt.dims(3);
            const WindowSettings s = window(ints_attr("kernel_shape", {kh, kw}), false);
            if (s.kh != kh || s.kw != kw) fail("kernel_shape does not match the weight");
            Conv2dConfig c{oc, kh, kw, s.sh, s.sw, s.padding, {}, n.input_size() > 2 && !n.input(2).empty()};
            std::map<std::string, std::vector<float>> w{{"weight", floats(wt, {oc, shape_.c, kh, kw})}};
            if (c.bias) w["bias"] = floats(weight_input(2, "bias"), {oc});
            add(c, std::move(w));
            fusable_output_ = current_;
        } else if (op == "MaxPool" || op == "AveragePool") {
            if (!was_4d) fail("needs an (N, C, H, W) input");
            if (n.output_size() > 1 && !n.output(1).empty()) fail("the indices output is not supported");
            if (int_attr("storage_order", 0) != 0) fail("storage_order 1 is not supported");
            const auto kernel = ints_attr("kernel_shape", {});
            const WindowSettings s = window(kernel, true);
            if (op == "AveragePool" && int_attr("count_include_pad", 0) != 0 &&
                s.padding.mode != PaddingMode::valid)
                fail("count_include_pad=1 is not supported: Lenz averages over real pixels only");
            add(Pool2dConfig{op == "MaxPool" ? PoolKind::max : PoolKind::average, s.kh, s.kw, s.sh, s.sw,
                             s.padding});
        } else if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
            if (!was_4d) fail("needs an (N, C, H, W) input");
            add(GlobalPoolConfig{op == "GlobalMaxPool" ? PoolKind::max : PoolKind::average});
        } else if (op == "Flatten") {
            if (int_attr("axis", 1) != 1) fail("only axis 1 is supported");
            flatten();
        } else if (op == "Reshape") {
            if (n.input_size() < 2) fail("has no shape");
            std::vector<int64_t> target = shape_values(n.input(1));
            const int64_t elements = shape_.elements();
            if (target.size() == 4 && rank_ == 2 && keeps_batch(target[0]) && target[1] == elements &&
                target[2] == 1 && target[3] == 1) {
                current_ = n.output(0);  // (N, E) -> (N, E, 1, 1): Lenz holds it as 1x1xE already
                rank_ = 4;
            } else {
                const bool to_rows =
                    target.size() == 2 &&
                    ((keeps_batch(target[0]) && (target[1] == -1 || target[1] == elements)) ||
                     (target[0] == -1 && target[1] == elements));
                if (!to_rows) fail("only a reshape to (N, -1) or from (N, C) to (N, C, 1, 1) is supported");
                flatten();
            }
        } else if (op == "Gemm") {
            if (float_attr("alpha", 1) != 1 || float_attr("beta", 1) != 1 || int_attr("transA", 0) != 0)
                fail("only alpha 1, beta 1 and transA 0 are supported");
            if (rank_ != 2) fail("needs an (N, features) input: flatten first");
            const onnx::TensorProto& wt = weight_input(1, "weight");
            if (wt.dims_size() != 2) fail("the weight must be two-dimensional");
            const bool trans = int_attr("transB", 0) != 0;
            const int64_t units = trans ? wt.dims(0) : wt.dims(1), inputs = shape_.elements();
            std::vector<float> w =
                trans ? floats(wt, {units, inputs}) : transposed(floats(wt, {inputs, units}), inputs, units);
            DenseConfig d{units, {}, n.input_size() > 2 && !n.input(2).empty()};
            std::map<std::string, std::vector<float>> weights{{"weight", std::move(w)}};
            if (d.bias) {
                weights["bias"] = bias_floats(weight_input(2, "bias"), units);
            }
            add(d, std::move(weights));
            fusable_output_ = current_;
        } else if (op == "MatMul") {
            matmul(nullptr);
        } else if (op == "BatchNormalization") {
            if (int_attr("training_mode", 0) != 0) fail("training_mode 1 is not supported");
            const int64_t ch = shape_.c;
            std::vector<float> var = floats(weight_input(4, "running variance"), {ch});
            // Lenz's epsilon is fixed: fold another into the variance, which gives the same outputs.
            const float extra = float_attr("epsilon", 1e-5f) - static_cast<float>(kBatchNormEpsilon);
            for (float& v : var) {
                v += extra;
                if (!(v > 0)) fail("a variance is not positive once epsilon is folded into it");
            }
            add(BatchNormConfig{}, {{"weight", floats(weight_input(1, "scale"), {ch})},
                                    {"bias", floats(weight_input(2, "bias"), {ch})},
                                    {"running_mean", floats(weight_input(3, "running mean"), {ch})},
                                    {"running_var", std::move(var)}});
        } else if (op == "Dropout") {
            double rate = float_attr("ratio", 0.5f);
            if (n.input_size() > 1 && !n.input(1).empty()) {
                const std::vector<float> r = floats(weight_input(1, "ratio"), {});
                rate = r[0];
            }
            if (!(rate >= 0 && rate < 1)) fail("the ratio must be in [0, 1)");
            if (rate == 0) {
                current_ = n.output(0);  // no-op
            } else {
                add(DropoutConfig{rate});
            }
        } else if (op == "Relu") {
            activation({Activation::relu});
        } else if (op == "LeakyRelu") {
            activation({Activation::leaky_relu, float_attr("alpha", 0.01f)});
        } else if (op == "Sigmoid") {
            activation({Activation::sigmoid});
        } else if (op == "Tanh") {
            activation({Activation::tanh});
        } else if (op == "Softmax") {
            const int64_t axis = int_attr("axis", opset_ >= 13 ? -1 : 1);
            const bool over_channels = rank_ == 2 ? (axis == 1 || axis == -1) : (axis == 1 && opset_ >= 13);
            if (!over_channels) fail("only a softmax over the channels (axis 1) is supported");
            activation({Activation::softmax});
        } else {
            fail(
                "not supported; Lenz imports Conv, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, "
                "Flatten, Reshape to (N, -1), Gemm, MatMul (+ Add), BatchNormalization, Dropout, Identity, "
                "Constant, Relu, LeakyRelu, Sigmoid, Tanh and Softmax");
        }
    }

    void flatten() {
        if (rank_ == 4) add(FlattenConfig{});
        current_ = node_->output(0);
        rank_ = 2;
    }

    static std::vector<float> transposed(const std::vector<float>& v, int64_t rows, int64_t cols) {
        std::vector<float> t(v.size());
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c)
                t[static_cast<size_t>(c * rows + r)] = v[static_cast<size_t>(r * cols + c)];
        return t;
    }

    // MatMul by a constant (inputs, units), with the bias of a following Add: a dense layer.
    void matmul(const onnx::NodeProto* add_bias) {
        if (rank_ != 2) fail("needs an (N, features) input: flatten first");
        const onnx::TensorProto& wt = weight_input(1, "weight");
        if (wt.dims_size() != 2) fail("the weight must be two-dimensional");
        const int64_t inputs = shape_.elements(), units = wt.dims(1);
        std::map<std::string, std::vector<float>> weights{
            {"weight", transposed(floats(wt, {inputs, units}), inputs, units)}};
        DenseConfig d{units, {}, add_bias != nullptr};
        if (add_bias) {
            const onnx::TensorProto& b = *tensor(add_bias->input(1));
            weights["bias"] = bias_floats(b, units);
        }
        add(d, std::move(weights));
        if (add_bias) current_ = add_bias->output(0);
        fusable_output_ = current_;
    }

    const onnx::ModelProto& proto_;
    std::string file_;
    int64_t opset_ = 1;
    std::map<std::string, const onnx::TensorProto*> tensors_;
    std::map<std::string, onnx::TensorProto> constants_;
    std::map<std::string, std::vector<int64_t>> dims_;  // shape arithmetic: see shape_arithmetic
    int64_t fixed_batch_ = 0;                           // the input's batch size when the graph fixes it
    const onnx::NodeProto* node_ = nullptr;
    std::string current_;
    Shape shape_{};
    int rank_ = 4;
    // What the last convolution or dense layer wrote: an activation reading it joins that layer.
    std::string fusable_output_;
    Result result_;
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
    meta("lenz.normalization",
         json{{"mean", info.normalization.mean}, {"std", info.normalization.stddev}}.dump());

    onnx::GraphProto& graph = *proto.mutable_graph();
    graph.set_name("lenz");
    const Shape in = model.input_shape();
    set_tensor_type(*graph.add_input(), "input", {in.c, in.h, in.w});
    GraphWriter w(graph);
    std::string x = "input";
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
        const LayerConfig config = parse_layer_config(layer.spec());
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
            const Window win =
                window_of(layer, c->kernel_h, c->kernel_w, c->stride_h, c->stride_w, c->padding, false);
            std::vector<std::string> inputs{
                x, init("weight", {c->filters, layer.input_shape().c, c->kernel_h, c->kernel_w})};
            if (c->bias) inputs.push_back(init("bias", {c->filters}));
            onnx::NodeProto& n = w.node("Conv", name, inputs, name);
            set_ints(n, "kernel_shape", win.kernel);
            set_ints(n, "strides", win.strides);
            set_ints(n, "pads", win.pads);
            set_ints(n, "dilations", {1, 1});
            set_int(n, "group", 1);
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
            if (p->kind == PoolKind::average)
                set_int(n, "count_include_pad", 0);  // Lenz never counts padding
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

}  // namespace lenz

namespace lenz {

LoadedModel parse_onnx(const std::string& bytes, const std::string& name) {
    onnx::ModelProto proto;
    if (bytes.empty() || !proto.ParseFromString(bytes))
        throw FormatError(name + ": not an ONNX model (the protobuf does not parse)");
    if (!proto.has_graph()) throw FormatError(name + ": the ONNX model has no graph");
    GraphReader::Result r;
    try {
        r = GraphReader(proto, name).read();
    } catch (const ShapeError& e) {  // sizes that overflow
        throw FormatError(name + ": " + e.what());
    }
    std::map<std::string, std::string> meta;
    for (const auto& e : proto.metadata_props()) meta[e.key()] = e.value();
    Model model(r.input);
    for (const LayerConfig& c : r.layers) model.add(make_layer(c));
    // A file Lenz wrote says how the model file put it ("padding=same" rather than the pixels the
    // graph holds); that text is taken when it describes the very layers the graph holds.
    if (meta.count("lenz.model")) try {
            Model described = parse_model(meta["lenz.model"], name + " (lenz.model metadata)");
            bool same = described.size() == model.size() && described.input_shape() == model.input_shape();
            for (int64_t i = 0; same && i < model.size(); ++i) {
                same = described.layer(i).output_shape() == model.layer(i).output_shape() &&
                       spec_without_padding(described.layer(i)) == spec_without_padding(model.layer(i)) &&
                       window_numbers(described.layer(i)) == window_numbers(model.layer(i));
                if (same) r.layers[static_cast<size_t>(i)] = parse_layer_config(described.layer(i).spec());
            }
            if (same) model = std::move(described);
        } catch (const Error&) {
            // Metadata that does not parse is ignored: the graph itself is the model.
        }
    model.init_params(1);
    for (int64_t i = 0; i < model.size(); ++i)
        for (ParamRef& p : model.layer(i).params()) {
            auto& w = r.weights[static_cast<size_t>(i)];
            auto it = w.find(p.name);
            if (it == w.end()) continue;  // batchnorm statistics a format leaves out keep their start values
            if (static_cast<int64_t>(it->second.size()) != p.value->size())
                throw FormatError(name + ": layer " + std::to_string(i + 1) + " (" + model.layer(i).spec() +
                                  "): " + p.name + " has " + std::to_string(it->second.size()) +
                                  " values, the layer needs " + std::to_string(p.value->size()));
            std::copy(it->second.begin(), it->second.end(), p.value->data());
        }
    LoadedModel loaded{std::move(model), {}};
    CheckpointInfo& info = loaded.info;
    const int64_t classes = loaded.model.output_shape().elements();
    try {
        if (meta.count("lenz.classes"))
            info.class_names = json::parse(meta["lenz.classes"]).get<std::vector<std::string>>();
        if (meta.count("lenz.normalization")) {
            const json n = json::parse(meta["lenz.normalization"]);
            info.normalization.mean = n.at("mean").get<std::vector<float>>();
            info.normalization.stddev = n.at("std").get<std::vector<float>>();
        }
    } catch (const json::exception&) {
        throw FormatError(name + ": the Lenz metadata (lenz.classes, lenz.normalization) is malformed");
    }
    if (static_cast<int64_t>(info.class_names.size()) != classes) {
        info.class_names.clear();
        for (int64_t k = 0; k < classes; ++k) info.class_names.push_back(std::to_string(k));
    }
    const size_t channels = static_cast<size_t>(loaded.model.input_shape().c);
    if (info.normalization.mean.size() != channels || info.normalization.stddev.size() != channels ||
        std::any_of(info.normalization.stddev.begin(), info.normalization.stddev.end(),
                    [](float s) { return !(s > 0); })) {
        info.normalization.mean.assign(channels, 0.0f);  // pixels / 255: [0, 1]
        info.normalization.stddev.assign(channels, 1.0f);
    }
    return loaded;
}

LoadedModel read_onnx(const std::string& path) {
    return parse_onnx(
        read_whole_file(path, kMaxOnnxBytes, "the ONNX file", "2 GB, the limit of one ONNX protobuf"), path);
}

void write_onnx(const std::string& path, Model& model, const CheckpointInfo& info) {
    const std::string bytes = encode_onnx(model, info);
    write_atomically(path, "the ONNX file",
                     [&](int fd, const std::string& tmp) { write_all(fd, bytes.data(), bytes.size(), tmp); });
}

LoadedModel load_trained_model(const std::string& path) {
    if (std::filesystem::path(path).extension() == ".onnx") return read_onnx(path);
    return load_model(path);
}

Model load_any_model(const std::string& path) {
    const std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".onnx") return read_onnx(path).model;
    if (ext == ".safetensors") return load_model(path).model;
    return load_model_file(path);
}

}  // namespace lenz
