// ONNX import through the ONNX project's own protobuf classes (libonnx): constant subgraphs folded
// (onnx_fold.h), the computed nodes read as a chain of Lenz layers, activations and pads fused into
// the layers before them, and the normalisation at the input recovered. See include/lenz/onnx.h.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/files.h"
#include "formats/onnx_common.h"
#include "formats/onnx_fold.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/onnx.h"

namespace lenz {
namespace {

using nlohmann::json;
using onnx_fold::dims_str;
using onnx_fold::Folded;
using onnx_fold::FoldError;
using onnx_fold::plain_ints;
using onnx_fold::Symbol;
using onnx_io::kBatchNormEpsilon;
using onnx_io::kMaxOnnxBytes;
using onnx_io::kOpset;
using onnx_io::spec_without_padding;
using onnx_io::window_numbers;

// Reads one ONNX graph into Lenz layer settings and their weights: folds what is constant, then
// walks what is computed from the input as a chain of layers.
class GraphReader {
  public:
    GraphReader(const onnx::ModelProto& proto, const std::string& file, int64_t file_bytes)
        : proto_(proto), file_(file), folder_(file_bytes / 4 + (int64_t{1} << 22)) {
        for (const auto& op : proto.opset_import())
            if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
        for (const auto& t : proto.graph().initializer()) tensors_[t.name()] = &t;
    }

    struct Result {
        Shape input;
        std::vector<LayerConfig> layers;
        std::vector<std::map<std::string, std::vector<float>>> weights;  // per layer, by parameter name
        std::optional<Normalization> normalization;                      // when the graph holds it
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
        classify(graph);
        for (int i = 0; i < graph.node_size(); ++i) {
            const onnx::NodeProto& n = graph.node(i);
            node_ = &n;
            if (!n.domain().empty() && n.domain() != "ai.onnx") fail("operator domain '" + n.domain() + "'");
            if (n.output_size() < 1 || n.output(0).empty()) fail("has no output");
            const std::vector<std::string> computed = computed_inputs(n);
            if (computed.empty()) {
                fold(n);
                continue;
            }
            if (computed.size() > 1) fail(joins(computed));
            if (computed[0] != current_) blame_branch(graph, i);
            layer(n);
            if (current_ == n.output(0) && !pad_) shapes_[current_] = running_dims();
        }
        if (pad_)
            fail_at(*pad_->node, "is not followed by Conv, MaxPool or AveragePool, which could take it");
        if (graph.output_size() != 1 || graph.output(0).name() != current_)
            throw FormatError(file_ + ": the graph's output must be the last layer's (" + current_ + ")");
        if (result_.layers.empty()) throw FormatError(file_ + ": the graph has no layers");
        if (!scale_.empty()) result_.normalization = input_normalization();
        return result_;
    }

  private:
    [[noreturn]] void fail_at(const onnx::NodeProto& n, const std::string& what) const {
        throw FormatError(file_ + ": node '" + n.name() + "' (" + n.op_type() + "): " + what);
    }
    [[noreturn]] void fail(const std::string& what) const { fail_at(*node_, what); }

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
        shapes_[current_] = running_dims();
    }

    // Which tensors are computed from the input (the rest are constants to fold). Shape's output
    // is not: it depends on sizes only, which import knows.
    void classify(const onnx::GraphProto& graph) {
        computed_.insert(current_);
        for (const auto& n : graph.node())
            if (n.op_type() != "Shape" && !computed_inputs(n).empty())
                computed_.insert(n.output().begin(), n.output().end());
    }
    std::vector<std::string> computed_inputs(const onnx::NodeProto& n) const {
        std::vector<std::string> in;
        if (n.op_type() != "Shape")
            for (const std::string& name : n.input())
                if (computed_.count(name) && std::find(in.begin(), in.end(), name) == in.end())
                    in.push_back(name);
        return in;
    }
    std::string joins(const std::vector<std::string>& computed) const {
        std::string names;
        for (size_t k = 0; k < computed.size(); ++k)
            names += (k == 0 ? "'" : k + 1 == computed.size() ? " and '" : ", '") + computed[k] + "'";
        return "joins the computed tensors " + names +
               " (a residual connection or branches): Lenz imports models that are one chain of layers";
    }
    // A node that reads another tensor than the chain's last one starts a branch; where the
    // branches join is what Lenz cannot do, so that node gets the blame.
    [[noreturn]] void blame_branch(const onnx::GraphProto& graph, int from) const {
        for (int j = from + 1; j < graph.node_size(); ++j) {
            const std::vector<std::string> computed = computed_inputs(graph.node(j));
            if (computed.size() > 1) fail_at(graph.node(j), joins(computed));
        }
        fail("does not take the previous layer's output (" + current_ +
             "): Lenz imports models that are one chain of layers");
    }

    // The running tensor's dimensions as Shape reports them, the batch first.
    std::vector<int64_t> running_dims() const {
        return rank_ == 4 ? std::vector<int64_t>{0, shape_.c, shape_.h, shape_.w}
                          : std::vector<int64_t>{0, shape_.elements()};
    }

    // ---- constants

    bool is_constant(const std::string& name) const { return folded_.count(name) || tensors_.count(name); }
    Folded value_of(const std::string& name) const {
        if (auto it = folded_.find(name); it != folded_.end()) return it->second;
        auto it = tensors_.find(name);
        if (it == tensors_.end()) fail("'" + name + "' is not a constant in the file");
        try {
            return onnx_fold::decode(*it->second, name);
        } catch (const FoldError& e) {
            fail(e.what());
        }
    }
    std::vector<int64_t> dims_of(const std::string& name) const {
        if (auto it = folded_.find(name); it != folded_.end()) return it->second.dims;
        const onnx::TensorProto& t = *tensors_.at(name);
        return {t.dims().begin(), t.dims().end()};
    }
    // An optional input, folded, or nothing when the node leaves it out.
    std::optional<Folded> input_value(const onnx::NodeProto& n, int index) const {
        if (n.input_size() <= index || n.input(index).empty()) return std::nullopt;
        return value_of(n.input(index));
    }

    void fold(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        try {
            if (op == "Constant") return constant(n);
            if (op == "Identity") {
                if (n.input_size() != 1) throw FoldError("needs one input");
                const std::string& in = n.input(0);
                if (tensors_.count(in)) {  // shares the tensor: nothing is copied
                    tensors_[n.output(0)] = tensors_.at(in);
                    return;
                }
                Folded v = value_of(in);
                folder_.claim(v.size());
                return store(n, std::move(v));
            }
            if (op == "Shape") return store(n, shape_of(n));
            const auto input = [&](int index) {
                std::optional<Folded> v = input_value(n, index);
                if (!v) throw FoldError("has no input " + std::to_string(index));
                return std::move(*v);
            };
            // Before opset 13 (Unsqueeze, Squeeze) and 10 (Slice), these lists were attributes.
            const auto ints_input_or_attr = [&](int index, const std::string& attr, int since) {
                if (opset_ < since) return ints_attr(attr, {});
                std::optional<Folded> v = input_value(n, index);
                return v ? plain_ints(*v, attr) : std::vector<int64_t>{};
            };
            if (op == "Gather") return store(n, folder_.gather(input(0), input(1), int_attr("axis", 0)));
            if (op == "Concat") {
                if (!attribute("axis")) throw FoldError("has no axis");
                std::vector<Folded> parts;
                for (int k = 0; k < n.input_size(); ++k) parts.push_back(input(k));
                return store(n, folder_.concat(parts, int_attr("axis", 0)));
            }
            if (op == "Unsqueeze")
                return store(n, folder_.unsqueeze(input(0), ints_input_or_attr(1, "axes", 13)));
            if (op == "Squeeze")
                return store(n, folder_.squeeze(input(0), ints_input_or_attr(1, "axes", 13)));
            if (op == "Reshape")
                return store(n, folder_.reshape(input(0), plain_ints(input(1), "the shape"),
                                                int_attr("allowzero", 0) != 0));
            if (op == "Slice")
                return store(
                    n, folder_.slice(input(0), ints_input_or_attr(1, "starts", 10),
                                     ints_input_or_attr(2, "ends", 10), ints_input_or_attr(3, "axes", 10),
                                     ints_input_or_attr(4, "steps", 10)));
            if (op == "Transpose") return store(n, folder_.transpose(input(0), ints_attr("perm", {})));
            if (op == "Cast") return store(n, folder_.cast(input(0), int_attr("to", 0)));
            if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div")
                return store(n, folder_.arithmetic(op, input(0), input(1)));
            if (op == "ConstantOfShape") {
                Folded zero{"value", onnx::TensorProto::FLOAT, {1}, {0.0f}, {}, {}};
                const auto* value = attribute("value");
                return store(n, folder_.constant_of_shape(
                                    input(0), value ? onnx_fold::decode(value->t(), "value") : zero));
            }
        } catch (const FoldError& e) {
            fail(e.what());
        }
        fail(
            "computes a constant with an operator Lenz does not fold (it folds Constant, Identity, Shape, "
            "Gather, Unsqueeze, Squeeze, Concat, Reshape, Slice, Transpose, Cast, ConstantOfShape, Add, Sub, "
            "Mul and Div)");
    }
    void store(const onnx::NodeProto& n, Folded v) {
        v.name = n.output(0);
        folded_[n.output(0)] = std::move(v);
    }

    void constant(const onnx::NodeProto& n) {
        for (const auto& a : n.attribute()) {
            if (a.name() == "value" && a.has_t()) {
                tensors_[n.output(0)] = &a.t();
                return;
            }
            Folded v{n.output(0), onnx::TensorProto::FLOAT, {}, {}, {}, {}};
            if (a.name() == "value_float") {
                v.f = {a.f()};
            } else if (a.name() == "value_floats") {
                v.f.assign(a.floats().begin(), a.floats().end());
                v.dims = {a.floats_size()};
            } else if (a.name() == "value_int" || a.name() == "value_ints") {
                v.type = onnx::TensorProto::INT64;
                v.i = a.name() == "value_int" ? std::vector<int64_t>{a.i()}
                                              : std::vector<int64_t>(a.ints().begin(), a.ints().end());
                if (a.name() == "value_ints") v.dims = {a.ints_size()};
            } else {
                continue;
            }
            return store(n, std::move(v));
        }
        fail("only tensor, float and integer constants are supported");
    }

    // Shape of a tensor whose size import knows: a constant, or one of the chain's (batch first).
    Folded shape_of(const onnx::NodeProto& n) {
        if (n.input_size() != 1) throw FoldError("needs one input");
        Folded v{n.output(0), onnx::TensorProto::INT64, {}, {}, {}, {}};
        if (auto it = shapes_.find(n.input(0)); it != shapes_.end()) {
            v.i = it->second;
            v.symbols.assign(v.i.size(), Symbol::known);
            v.symbols[0] = Symbol::batch;
        } else if (is_constant(n.input(0))) {
            v.i = dims_of(n.input(0));
        } else {
            throw FoldError("takes the shape of '" + n.input(0) +
                            "', which Lenz does not know at this point");
        }
        // Opset 15's start and end pick a range of the dimensions, clamped as Slice clamps.
        const int64_t rank = static_cast<int64_t>(v.i.size());
        const auto clamp = [&](int64_t k) { return std::clamp<int64_t>(k < 0 ? k + rank : k, 0, rank); };
        const int64_t start = clamp(int_attr("start", 0)),
                      end = std::max(start, clamp(int_attr("end", rank)));
        v.i = {v.i.begin() + start, v.i.begin() + end};
        if (!v.symbols.empty()) v.symbols = {v.symbols.begin() + start, v.symbols.begin() + end};
        v.dims = {end - start};
        folder_.claim(v.size());
        return v;
    }

    // A shape input (Reshape's target): the batch as it came from Shape is kBatch.
    static constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();
    std::vector<int64_t> shape_values(const std::string& name) const {
        const Folded v = value_of(name);
        if (v.type != onnx::TensorProto::INT64 || v.dims.size() != 1 || v.size() > 8)
            fail("'" + name + "' is not a shape (int64, at most 8 values)");
        std::vector<int64_t> out = v.i;
        for (size_t k = 0; k < out.size(); ++k) {
            const Symbol s = v.symbols.empty() ? Symbol::known : v.symbols[k];
            if (s == Symbol::unknown) fail("the shape '" + name + "' is worked out from the batch size");
            if (s == Symbol::batch) out[k] = kBatch;
            if (s == Symbol::known && out[k] < -1) fail("the shape '" + name + "' has a negative dimension");
        }
        return out;
    }
    // A reshape's first dimension that leaves the batch as it is: 0 (copy), the batch worked out by
    // Shape, or the graph's own fixed batch size.
    bool keeps_batch(int64_t first) const {
        return first == 0 || first == kBatch || (fixed_batch_ > 0 && first == fixed_batch_);
    }

    // A constant input of the node being read (a weight, a bias): its name.
    const std::string& weight_input(int index, const std::string& what) const {
        if (node_->input_size() <= index || node_->input(index).empty()) fail("has no " + what);
        const std::string& name = node_->input(index);
        if (!is_constant(name)) fail("its " + what + " '" + name + "' is not a constant in the file");
        return name;
    }
    std::vector<float> floats(const std::string& name, const std::vector<int64_t>& want) const {
        const std::vector<int64_t> dims = dims_of(name);
        if (dims != want)
            fail("tensor '" + name + "' has shape " + dims_str(dims) + ", expected " + dims_str(want));
        Folded v = value_of(name);
        if (!v.is_float()) fail("tensor '" + name + "' is not float32");
        for (float f : v.f)
            if (!std::isfinite(f)) fail("tensor '" + name + "' holds a value that is not finite");
        return std::move(v.f);
    }
    // A dense layer's bias: (units), or (1, units) as Gemm and Add broadcast it.
    std::vector<float> bias_floats(const std::string& name, int64_t units) const {
        return floats(
            name, dims_of(name).size() == 2 ? std::vector<int64_t>{1, units} : std::vector<int64_t>{units});
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
    // The integers of a constant input (pads, axes).
    std::vector<int64_t> ints_input(const onnx::NodeProto& n, int index, const std::string& what) const {
        const std::optional<Folded> v = input_value(n, index);
        if (!v) return {};
        try {
            return plain_ints(*v, what);
        } catch (const FoldError& e) {
            fail(e.what());
        }
    }

    // ---- layers

    // Kernel, strides and pads of Conv and the pools, as Lenz padding for the current input size.
    struct WindowSettings {
        int64_t kh, kw, sh, sw;
        Padding padding;
        int64_t dh = 1, dw = 1;  // dilation, convolutions only
        bool ceil = false;       // pools: ceil_mode
    };
    WindowSettings window(std::vector<int64_t> kernel, bool pooling) {
        if (kernel.size() != 2) fail("only 2-D windows are supported");
        const auto strides = ints_attr("strides", {1, 1});
        const auto dilations = ints_attr("dilations", {1, 1});
        if (strides.size() != 2) fail("strides must have two values");
        if (dilations.size() != 2) fail("dilations must have two values");
        if (pooling && dilations != std::vector<int64_t>{1, 1}) fail("dilated pooling is not supported");
        const bool ceil = int_attr("ceil_mode", 0) != 0;
        if (ceil && !pooling) fail("ceil_mode is for pooling");
        for (int64_t v : {kernel[0], kernel[1], strides[0], strides[1], dilations[0], dilations[1]})
            if (v <= 0 || v > kMaxDimension) fail("kernel, strides and dilations must be positive");
        WindowSettings s{kernel[0], kernel[1], strides[0], strides[1], {}, dilations[0], dilations[1], ceil};
        const auto* auto_pad = attribute("auto_pad");
        const std::string mode = auto_pad ? auto_pad->s() : "NOTSET";
        std::vector<int64_t> pads{0, 0, 0, 0};
        if (mode == "SAME_UPPER") {
            if (ceil) fail("ceil_mode with auto_pad SAME_UPPER is not supported");
            if (pad_)
                fail_at(*pad_->node,
                        "comes before a window with auto_pad SAME_UPPER, which Lenz cannot add it to");
            s.padding.mode = PaddingMode::same;  // the odd pixel at the bottom/right, as Lenz and Keras
            return s;
        }
        if (mode == "NOTSET")
            pads = ints_attr("pads", pads);
        else if (mode != "VALID")
            fail("auto_pad " + mode + " is not supported (SAME_UPPER, VALID and pads are)");
        if (pads.size() != 4) fail("pads must have four values");
        for (int64_t p : pads)
            if (p < 0 || p > kMaxDimension) fail("pads must be between 0 and the size limit");
        if (pad_) {  // zero padding before a convolution is the convolution's own
            for (size_t k = 0; k < 4; ++k) pads[k] += pad_->pads[k];
            pad_.reset();
        }
        if (pads == std::vector<int64_t>{0, 0, 0, 0}) return s;
        if (pads[0] == pads[2] && pads[1] == pads[3]) {
            s.padding = {PaddingMode::pixels, pads[0], pads[1]};
            return s;
        }
        if (ceil) fail("ceil_mode with uneven pads is not supported");
        const Padding same{PaddingMode::same};
        const ConvGeometry g =
            resolve_window({s.kh, s.kw, s.sh, s.sw, same, pooling, s.dh, s.dw}, shape_, 1, node_->op_type());
        const int64_t bottom = std::max<int64_t>((g.OH - 1) * s.sh + g.span_h() - shape_.h - g.PT, 0);
        const int64_t right = std::max<int64_t>((g.OW - 1) * s.sw + g.span_w() - shape_.w - g.PL, 0);
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
        const bool elementwise_op = op == "Add" || op == "Sub" || op == "Mul" || op == "Div";
        if (!elementwise_op && n.input(0) != current_)
            fail("takes the previous layer's output (" + current_ + ") as another input than its first");
        if (pad_ && op != "Conv" && op != "Pad" && op != "Identity") {
            if (op == "AveragePool")
                fail_at(
                    *pad_->node,
                    "pads with zeros that the AveragePool after it counts in its averages (PyTorch's "
                    "count_include_pad=True); Lenz averages real pixels only: use count_include_pad=False");
            if (op == "MaxPool")
                fail_at(
                    *pad_->node,
                    "pads with zeros that the MaxPool after it takes as values; Lenz, like ONNX's own pads, "
                    "pads max pooling with -infinity");
            fail_at(*pad_->node, "is followed by " + op + " '" + n.name() +
                                     "': Lenz takes zero padding only into the Conv right after it");
        }
        if (op == "Identity") {
            if (fusable_output_ == current_) fusable_output_ = n.output(0);
            current_ = n.output(0);
        } else if (op == "Pad") {
            pad(n);
        } else if (elementwise_op) {
            elementwise(n);
        } else if (op == "Conv") {
            if (!was_4d) fail("needs an (N, C, H, W) input");
            const int64_t groups = int_attr("group", 1);
            if (groups <= 0 || shape_.c % groups != 0)
                fail("group " + std::to_string(groups) + " does not divide the " + std::to_string(shape_.c) +
                     " input channels");
            const std::string& weight = weight_input(1, "weight");
            const std::vector<int64_t> wd = dims_of(weight);
            if (wd.size() != 4) fail("the weight must be (OC, C/group, KH, KW)");
            const int64_t oc = wd[0], kh = wd[2], kw = wd[3];
            const WindowSettings s = window(ints_attr("kernel_shape", {kh, kw}), false);
            if (s.kh != kh || s.kw != kw) fail("kernel_shape does not match the weight");
            Conv2dConfig c{oc,     kh,        kw,  s.sh,
                           s.sw,   s.padding, {},  n.input_size() > 2 && !n.input(2).empty(),
                           groups, s.dh,      s.dw};
            std::map<std::string, std::vector<float>> w{
                {"weight", floats(weight, {oc, shape_.c / groups, kh, kw})}};
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
                             s.padding, s.ceil});
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
            const std::string& weight = weight_input(1, "weight");
            const std::vector<int64_t> wd = dims_of(weight);
            if (wd.size() != 2) fail("the weight must be two-dimensional");
            const bool trans = int_attr("transB", 0) != 0;
            const int64_t units = trans ? wd[0] : wd[1], inputs = shape_.elements();
            std::vector<float> w = trans ? floats(weight, {units, inputs})
                                         : transposed(floats(weight, {inputs, units}), inputs, units);
            DenseConfig d{units, {}, n.input_size() > 2 && !n.input(2).empty()};
            std::map<std::string, std::vector<float>> weights{{"weight", std::move(w)}};
            if (d.bias) weights["bias"] = bias_floats(weight_input(2, "bias"), units);
            add(d, std::move(weights));
            fusable_output_ = current_;
        } else if (op == "MatMul") {
            // By a constant (inputs, units): a dense layer; an Add right after gives it its bias.
            if (rank_ != 2) fail("needs an (N, features) input: flatten first");
            const std::string& weight = weight_input(1, "weight");
            const std::vector<int64_t> wd = dims_of(weight);
            if (wd.size() != 2) fail("the weight must be two-dimensional");
            const int64_t inputs = shape_.elements(), units = wd[1];
            add(DenseConfig{units, {}, false},
                {{"weight", transposed(floats(weight, {inputs, units}), inputs, units)}});
            fusable_output_ = current_;
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
            if (n.input_size() > 1 && !n.input(1).empty()) rate = floats(weight_input(1, "ratio"), {})[0];
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
        } else if (op == "Clip") {
            // The bounds are inputs since opset 11 (attributes before); ReLU6 is Clip to [0, 6].
            const auto bound = [&](int index, const char* attr, float missing) {
                if (opset_ < 11) return float_attr(attr, missing);
                const std::optional<Folded> v = input_value(n, index);
                if (!v) return missing;
                if (!v->is_float() || v->f.size() != 1)
                    fail(std::string("the ") + attr + " bound must be one float");
                return v->f[0];
            };
            if (bound(1, "min", -1e30f) != 0.0f || bound(2, "max", 1e30f) != 6.0f)
                fail("only Clip to [0, 6] (ReLU6) is supported");
            activation({Activation::relu6});
        } else if (op == "HardSigmoid") {
            if (std::abs(float_attr("alpha", 0.2f) - 1.0f / 6.0f) > 1e-6f ||
                std::abs(float_attr("beta", 0.5f) - 0.5f) > 1e-6f)
                fail("only HardSigmoid with alpha 1/6 and beta 0.5 (PyTorch's Hardsigmoid) is supported");
            activation({Activation::hard_sigmoid});
        } else if (op == "Softmax") {
            const int64_t axis = int_attr("axis", opset_ >= 13 ? -1 : 1);
            const bool over_channels = rank_ == 2 ? (axis == 1 || axis == -1) : (axis == 1 && opset_ >= 13);
            if (!over_channels) fail("only a softmax over the channels (axis 1) is supported");
            activation({Activation::softmax});
        } else {
            fail(
                "not supported; Lenz imports Conv, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, "
                "Flatten, Reshape to (N, -1), Gemm, MatMul (+ Add), BatchNormalization, Dropout, Relu, "
                "LeakyRelu, Sigmoid, Tanh and Softmax, zero Pad before Conv, and Sub, Div, Mul and Add by "
                "constants at the input (normalisation)");
        }
    }

    // Zero padding, which the Conv after it takes into its own pads; no padding at all is a no-op
    // (PyTorch 1.13 writes one before every AveragePool).
    void pad(const onnx::NodeProto& n) {
        if (rank_ != 4) fail("needs an (N, C, H, W) input");
        const std::vector<int64_t> pads = opset_ < 11 ? ints_attr("pads", {}) : ints_input(n, 1, "pads");
        std::vector<int64_t> axes = opset_ >= 18 ? ints_input(n, 3, "axes") : std::vector<int64_t>{};
        if (axes.empty()) axes = {0, 1, 2, 3};
        if (pads.size() != 2 * axes.size()) fail("pads must have a begin and an end for each padded axis");
        std::vector<int64_t> begin(4, 0), end(4, 0);
        for (size_t j = 0; j < axes.size(); ++j) {
            if (axes[j] < -4 || axes[j] >= 4) fail("axis " + std::to_string(axes[j]) + " is out of range");
            const auto a = static_cast<size_t>(axes[j] < 0 ? axes[j] + 4 : axes[j]);
            for (int64_t p : {pads[j], pads[j + axes.size()]})
                if (p < 0 || p > kMaxDimension)
                    fail("pads must be between 0 and the size limit (no cropping)");
            begin[a] += pads[j];
            end[a] += pads[j + axes.size()];
        }
        current_ = n.output(0);
        if (begin == std::vector<int64_t>(4, 0) && end == std::vector<int64_t>(4, 0)) return;
        if (begin[0] || begin[1] || end[0] || end[1]) fail("only the height and width can be padded");
        const auto* mode = attribute("mode");
        if (mode && mode->s() != "constant")
            fail("mode '" + mode->s() + "' is not supported; zero padding (mode constant) is");
        float value = float_attr("value", 0.0f);
        if (opset_ >= 11) {
            const std::optional<Folded> v = input_value(n, 2);
            if (v && (!v->is_float() || v->size() != 1)) fail("the padding value must be one float");
            if (v) value = v->f[0];
        }
        if (value != 0) fail("pads with " + std::to_string(value) + "; only zero padding is supported");
        const std::vector<int64_t> more{begin[2], begin[3], end[2], end[3]};
        if (!pad_) pad_ = PendingPad{&n, {0, 0, 0, 0}};
        for (size_t k = 0; k < 4; ++k) pad_->pads[k] += more[k];
    }

    // Sub, Div, Mul or Add by a constant: a dense layer's bias right after MatMul, or at the graph's
    // input, the pixels' normalisation (which Lenz keeps beside the model, as training computed it).
    void elementwise(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        if (n.input_size() != 2) fail("needs two inputs");
        const int constant_at = n.input(0) == current_ ? 1 : 0;
        if (op == "Add" && !result_.layers.empty() && current_ == fusable_output_)
            if (auto* d = std::get_if<DenseConfig>(&result_.layers.back());
                d && !d->bias && d->activation.kind == Activation::none) {
                result_.weights.back()["bias"] = bias_floats(weight_input(constant_at, "bias"), d->units);
                d->bias = true;
                current_ = fusable_output_ = n.output(0);
                return;
            }
        if (!result_.layers.empty() || rank_ != 4)
            fail(op + " by a constant is supported only at the graph's input, as normalisation" +
                 (op == "Add" ? ", or as the bias after MatMul" : ""));
        const std::vector<double> k = per_channel(weight_input(constant_at, "operand"));
        if (scale_.empty()) {
            scale_.assign(k.size(), 1.0);
            shift_.assign(k.size(), 0.0);
        }
        for (size_t c = 0; c < k.size(); ++c) {  // the input so far is scale * x + shift
            if (op == "Add") {
                shift_[c] += k[c];
            } else if (op == "Sub" && constant_at == 1) {
                shift_[c] -= k[c];
            } else if (op == "Sub") {
                scale_[c] = -scale_[c];
                shift_[c] = k[c] - shift_[c];
            } else if (op == "Mul") {
                scale_[c] *= k[c];
                shift_[c] *= k[c];
            } else if (constant_at == 1 && k[c] != 0) {
                scale_[c] /= k[c];
                shift_[c] /= k[c];
            } else {
                fail("divides by the input or by zero, which is no normalisation");
            }
        }
        normalization_node_ = &n;
        current_ = n.output(0);
    }
    // A constant that broadcasts over (N, C, H, W) channel by channel, one value per channel.
    std::vector<double> per_channel(const std::string& name) const {
        const Folded v = value_of(name);
        const auto channels = static_cast<size_t>(shape_.c);
        bool fits = v.is_float() && v.dims.size() <= 4;
        for (size_t k = 0; fits && k < v.dims.size(); ++k)
            fits = v.dims[k] == 1 || (4 - v.dims.size() + k == 1 && v.dims[k] == shape_.c);
        if (!fits)
            fail("'" + name + "' (" + dims_str(v.dims) +
                 ") is not a float32 value per channel, shaped (1, C, 1, 1) or (C, 1, 1), or one for all");
        std::vector<double> out(channels);
        for (size_t c = 0; c < channels; ++c) {
            out[c] = v.f[v.size() == 1 ? 0 : c];
            if (!std::isfinite(out[c])) fail("'" + name + "' holds a value that is not finite");
        }
        return out;
    }
    // Lenz feeds a graph pixels / 255; the affine map at its front is the normalisation
    // (x - mean) / std, that is scale = 1 / std and shift = -mean / std.
    Normalization input_normalization() const {
        Normalization norm;
        for (size_t c = 0; c < scale_.size(); ++c) {
            const auto stddev = static_cast<float>(1 / scale_[c]),
                       mean = static_cast<float>(-shift_[c] / scale_[c]);
            if (!(scale_[c] > 0) || !(stddev > 0) || !std::isfinite(stddev) || !std::isfinite(mean))
                fail_at(*normalization_node_,
                        "the normalisation at the input must scale every channel by a "
                        "positive number");
            norm.mean.push_back(mean);
            norm.stddev.push_back(stddev);
        }
        return norm;
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

    const onnx::ModelProto& proto_;
    std::string file_;
    int64_t opset_ = 1;
    onnx_fold::Folder folder_;
    std::map<std::string, const onnx::TensorProto*> tensors_;  // initializers, Constant values, Identity
    std::map<std::string, Folded> folded_;                     // what folding computed
    std::set<std::string> computed_;                           // tensors computed from the input
    std::map<std::string, std::vector<int64_t>> shapes_;       // of the chain's tensors, as Shape gives them
    int64_t fixed_batch_ = 0;  // the input's batch size when the graph fixes it
    const onnx::NodeProto* node_ = nullptr;
    std::string current_;
    Shape shape_{};
    int rank_ = 4;
    // What the last convolution or dense layer wrote: an activation reading it joins that layer.
    std::string fusable_output_;
    // Zero padding read from Pad nodes, waiting for the Conv it goes into (top, left, bottom, right).
    struct PendingPad {
        const onnx::NodeProto* node;
        std::vector<int64_t> pads;
    };
    std::optional<PendingPad> pad_;
    // The normalisation at the graph's input so far, per channel: x -> scale * x + shift.
    std::vector<double> scale_, shift_;
    const onnx::NodeProto* normalization_node_ = nullptr;
    Result result_;
};

}  // namespace

LoadedModel parse_onnx(const std::string& bytes, const std::string& name) {
    onnx::ModelProto proto;
    if (bytes.empty() || !proto.ParseFromString(bytes))
        throw FormatError(name + ": not an ONNX model (the protobuf does not parse)");
    if (!proto.has_graph()) throw FormatError(name + ": the ONNX model has no graph");
    GraphReader::Result r;
    try {
        r = GraphReader(proto, name, static_cast<int64_t>(bytes.size())).read();
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
                if (same) r.layers[static_cast<size_t>(i)] = described.layer(i).config();
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
        // Files Lenz wrote before the graph held the normalisation kept it here.
        if (r.normalization) {
            info.normalization = *r.normalization;
        } else if (meta.count("lenz.normalization")) {
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

}  // namespace lenz
