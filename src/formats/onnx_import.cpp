// ONNX import through the ONNX project's own protobuf classes (libonnx). Constant subgraphs are
// folded (onnx_fold.h), subgraphs that spell out one operator are fused (onnx_fusion.h), and the
// computed nodes become a graph of Lenz layers: activations fused into the convolution, dense or
// add before them, zero pads into the window after them, and the normalisation at the input
// recovered. See include/lenz/onnx.h.
#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/files.h"
#include "formats/onnx_common.h"
#include "formats/onnx_fold.h"
#include "formats/onnx_fusion.h"
#include "layers/window.h"
#include "lenz/error.h"
#include "lenz/layers.h"
#include "lenz/model_text.h"
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
using onnx_io::spec_without_padding;
using onnx_io::window_numbers;

using Weights = std::map<std::string, std::vector<float>>;  // a layer's parameters by name

// A tensor computed from the graph's input, as ONNX sees it, and the Lenz value that holds it.
struct Tensor {
    int64_t value = 0;  // 0: the model's input; i + 1: layer i's output
    Shape shape{};      // the value's shape in Lenz: H x W x C
    int rank = 4;       // 4: (N, C, H, W); 2: (N, features)
    // Permuted to (N, H, W, C), as ConvNeXt does around its layer norms and linear layers; the
    // value itself stays as Lenz holds every value.
    bool channels_last = false;
    // Zero padding a Pad node added, still to go into the window that reads it: top, left, bottom, right.
    std::vector<int64_t> pads;
    const onnx::NodeProto* pad_node = nullptr;

    bool spatial() const { return rank == 4 && (shape.h > 1 || shape.w > 1); }
    // The axis ONNX indexes the channels by.
    int64_t channel_axis() const { return rank == 4 && channels_last ? 3 : 1; }
    // The dimensions as ONNX's Shape reports them, the batch (0 here) first.
    std::vector<int64_t> dims() const {
        if (rank == 2) return {0, shape.elements()};
        const int64_t h = shape.h + (pads.empty() ? 0 : pads[0] + pads[2]),
                      w = shape.w + (pads.empty() ? 0 : pads[1] + pads[3]);
        return channels_last ? std::vector<int64_t>{0, h, w, shape.c}
                             : std::vector<int64_t>{0, shape.c, h, w};
    }
};

// A tensor whose bytes ONNX keeps in a file beside the model (PyTorch does so above 2 GB), read
// into a copy that holds them: only from the model's own folder, since the path comes from a
// stranger (the onnx package itself once followed "../" out of it, CVE-2022-25882).
onnx::TensorProto with_external_data(const onnx::TensorProto& t, const std::string& name,
                                     const std::string& folder) {
    const auto refuse = [&](const std::string& why) -> onnx::TensorProto {
        throw FoldError("tensor '" + name + "' is stored in an external file " + why);
    };
    if (folder.empty()) refuse("(Lenz reads external data only beside a model it reads from a file)");
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& entry : t.external_data()) {
        try {
            if (entry.key() == "location") location = entry.value();
            if (entry.key() == "offset") offset = std::stoll(entry.value());
            if (entry.key() == "length") length = std::stoll(entry.value());
        } catch (const std::exception&) {
            refuse("whose " + entry.key() + " '" + entry.value() + "' is not a number");
        }
    }
    namespace fs = std::filesystem;
    const fs::path relative(location);
    if (location.empty() || relative.is_absolute() ||
        std::any_of(relative.begin(), relative.end(), [](const fs::path& part) { return part == ".."; }))
        refuse("at '" + location +
               "'; Lenz reads external data only from the model's own folder, by a relative "
               "path without '..'");
    std::error_code error;
    const fs::path base = fs::canonical(folder, error), file = fs::weakly_canonical(base / relative, error);
    const auto [outside, _] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
    if (error || outside != base.end() || !fs::is_regular_file(file, error))
        refuse("at '" + location + "', which is not a file in the model's folder");
    const auto size = static_cast<int64_t>(fs::file_size(file, error));
    if (length < 0) length = size - offset;
    if (error || offset < 0 || length < 0 || offset > size || length > size - offset)
        refuse("at '" + location + "', whose offset and length do not fit its " + std::to_string(size) +
               " bytes");
    std::ifstream in(file, std::ios::binary);
    in.seekg(offset);
    std::string bytes(static_cast<size_t>(length), '\0');
    if (!in.read(bytes.data(), length)) refuse("at '" + location + "', which could not be read");
    onnx::TensorProto inlined;
    inlined.set_name(t.name());
    inlined.set_data_type(t.data_type());
    *inlined.mutable_dims() = t.dims();
    inlined.set_raw_data(std::move(bytes));
    return inlined;
}

// Reads one ONNX graph into a Lenz model and its weights: folds what is constant, fuses what
// spells out one operator, then turns each computed node into a layer in the graph's order.
class GraphReader {
  public:
    // data_folder: where tensors stored outside the file may be read from ("": nowhere).
    GraphReader(const onnx::ModelProto& proto, const std::string& file, int64_t file_bytes,
                std::string data_folder)
        : proto_(proto),
          file_(file),
          data_folder_(std::move(data_folder)),
          folder_(file_bytes / 4 + (int64_t{1} << 22)),
          fused_(onnx_fusion::fuse(proto.graph())) {
        for (const auto& n : fused_.made) made_.insert(&n);
        for (const auto& op : proto.opset_import())
            if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
        for (const auto& t : proto.graph().initializer()) tensors_[t.name()] = &t;
    }

    struct Result {
        Model model{Shape{1, 1, 1}};
        std::vector<Weights> weights;                // per layer
        std::optional<Normalization> normalization;  // when the graph holds it
        std::map<int64_t, ValueRange> ranges;        // per value, from QuantizeLinear nodes
    };

    Result read() {
        // Older opsets gave BatchNormalization, Gemm and Reshape other meanings; reading them with
        // today's would be a silent wrong answer.
        if (opset_ < 9)
            throw FormatError(
                file_ + ": ONNX opset " + std::to_string(opset_) +
                " is older than 9, the oldest Lenz reads (convert it with onnx's version_converter)");
        const onnx::GraphProto& graph = proto_.graph();
        check_order(graph);
        read_input(graph);
        count_uses(graph);
        classify();
        for (const onnx::NodeProto* n : fused_.nodes) {
            node_ = n;
            const bool fused = n->domain() == onnx_fusion::kDomain && is_fused(n);
            if (!fused && !n->domain().empty() && n->domain() != "ai.onnx")
                fail("operator domain '" + n->domain() + "'");
            if (!std::any_of(n->output().begin(), n->output().end(),
                             [&](const std::string& o) { return uses(o); }))
                continue;  // dead: nothing leads from it to the graph's output
            if (computed_inputs(*n).empty()) {
                if (fused) fail("is a subgraph of constants that Lenz does not fold");
                fold(*n);
            } else {
                layer(*n, fused);
            }
        }
        read_output(graph);
        if (!scale_.empty()) result_.normalization = input_normalization();
        result_.ranges = ranges_;
        return std::move(result_);
    }

  private:
    [[noreturn]] void fail_at(const onnx::NodeProto& n, const std::string& what) const {
        throw FormatError(file_ + ": node '" + n.name() + "' (" + n.op_type() + "): " + what);
    }
    [[noreturn]] void fail(const std::string& what) const { fail_at(*node_, what); }

    bool is_fused(const onnx::NodeProto* n) const { return made_.count(n) > 0; }

    // ONNX keeps nodes in topological order: each reads what the graph's inputs, its initializers
    // or nodes before it wrote, and each tensor has one writer. A cycle breaks the first rule.
    void check_order(const onnx::GraphProto& graph) const {
        std::unordered_set<std::string> written;
        for (const auto& v : graph.input()) written.insert(v.name());
        for (const auto& t : graph.initializer()) written.insert(t.name());
        for (const auto& n : graph.node()) {
            if (n.output_size() < 1 || n.output(0).empty()) fail_at(n, "has no output");
            for (const std::string& in : n.input())
                if (!in.empty() && !written.count(in))
                    fail_at(n, "reads '" + in +
                                   "', which no node before it writes (the graph is not in topological "
                                   "order, has a cycle, or lacks that tensor)");
            for (const std::string& out : n.output())
                if (!out.empty() && !written.insert(out).second)
                    fail_at(n, "writes '" + out + "', which the graph already has from elsewhere");
        }
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
        const Shape shape{dims[2], dims[3], dims[1]};
        result_.model = Model(shape);
        input_name_ = input->name();
        Tensor in;
        in.shape = shape;
        computed_[input_name_] = in;
    }

    // The model's output is the graph's one output, which must be what the last layer wrote.
    void read_output(const onnx::GraphProto& graph) {
        if (result_.model.size() == 0) throw FormatError(file_ + ": the graph has no layers");
        if (graph.output_size() != 1)
            throw FormatError(file_ + ": the graph has " + std::to_string(graph.output_size()) +
                              " outputs; Lenz models have one");
        const std::string& name = graph.output(0).name();
        const auto it = computed_.find(name);
        if (it == computed_.end())
            throw FormatError(file_ + ": the graph's output '" + name + "' is a constant");
        const Tensor& t = it->second;
        if (t.value != result_.model.size())
            throw FormatError(file_ + ": the graph's output '" + name +
                              "' is not what its last computed node writes, which Lenz needs");
        if (!t.pads.empty()) fail_at(*t.pad_node, "pads the graph's output, which Lenz does not do");
        if (t.channels_last && t.spatial())
            throw FormatError(file_ + ": the graph's output '" + name +
                              "' is permuted to (N, H, W, C); Lenz gives (N, C, H, W)");
    }

    // How many nodes read each tensor, counting only nodes that lead to the graph's output (the
    // output itself counts as a reader): walking backwards, a node is live when something reads
    // one of its outputs, and only then do its inputs count.
    void count_uses(const onnx::GraphProto& graph) {
        for (const auto& out : graph.output()) ++uses_[out.name()];
        for (auto it = fused_.nodes.rbegin(); it != fused_.nodes.rend(); ++it) {
            const onnx::NodeProto& n = **it;
            if (std::none_of(n.output().begin(), n.output().end(),
                             [&](const std::string& o) { return uses(o); }))
                continue;
            for (const std::string& in : n.input())
                if (!in.empty()) ++uses_[in];
            if (n.op_type() == "DequantizeLinear" && n.input_size() > 0) ++dequantized_[n.input(0)];
        }
    }

    // Which tensors are computed from the input (the rest are constants to fold). Shape's output
    // is not: it depends on sizes only, which import knows.
    void classify() {
        computed_names_.insert(input_name_);
        for (const onnx::NodeProto* n : fused_.nodes)
            if (n->op_type() != "Shape" && !computed_inputs(*n).empty())
                computed_names_.insert(n->output().begin(), n->output().end());
    }
    std::vector<std::string> computed_inputs(const onnx::NodeProto& n) const {
        std::vector<std::string> in;
        if (n.op_type() != "Shape")
            for (const std::string& name : n.input())
                if (computed_names_.count(name) && std::find(in.begin(), in.end(), name) == in.end())
                    in.push_back(name);
        return in;
    }
    int uses(const std::string& name) const {
        const auto it = uses_.find(name);
        return it == uses_.end() ? 0 : it->second;
    }

    // ---- constants

    bool is_constant(const std::string& name) const { return folded_.count(name) || tensors_.count(name); }
    Folded value_of(const std::string& name) const {
        if (auto it = folded_.find(name); it != folded_.end()) return it->second;
        auto it = tensors_.find(name);
        if (it == tensors_.end()) fail("'" + name + "' is not a constant in the file");
        try {
            if (it->second->data_location() == onnx::TensorProto::EXTERNAL)
                return onnx_fold::decode(with_external_data(*it->second, name, data_folder_), name);
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
            if (op == "DequantizeLinear") {
                const std::optional<Folded> zero_point = input_value(n, 2);
                return store(n, folder_.dequantize(input(0), input(1), zero_point ? &*zero_point : nullptr,
                                                   int_attr("axis", 1)));
            }
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
        if (auto it = computed_.find(n.input(0)); it != computed_.end()) {
            v.i = it->second.dims();
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

    const Tensor& tensor(const std::string& name) const {
        const auto it = computed_.find(name);
        if (it == computed_.end()) fail("reads '" + name + "', which no layer Lenz made writes");
        return it->second;
    }
    // The node's one computed input, which must be its first; any others are constants.
    const Tensor& only_input(const onnx::NodeProto& n) const {
        const std::vector<std::string> computed = computed_inputs(n);
        if (computed.size() != 1)
            fail("reads " + std::to_string(computed.size()) + " computed tensors; Lenz reads one here");
        if (n.input(0) != computed[0])
            fail("reads the computed tensor '" + computed[0] +
                 "' where Lenz needs a constant (weights, a shape)");
        return tensor(n.input(0));
    }
    // The node's output is `t` under another name: a view, or an operator Lenz has nothing to do for.
    void alias(const Tensor& t) { computed_[node_->output(output_)] = t; }

    // Adds a layer reading `inputs`, checking that it fits them; its output is the node's output.
    void add(const LayerConfig& config, const std::vector<const Tensor*>& inputs, Weights weights = {},
             int rank = 0) {
        std::vector<int64_t> values;
        for (const Tensor* t : inputs) values.push_back(t->value);
        try {
            result_.model.add(make_layer(config), values);
        } catch (const ShapeError& e) {
            fail(e.what());
        }
        result_.weights.push_back(std::move(weights));
        last_config_ = config;
        const Tensor& first = *inputs.front();
        Tensor out;
        out.value = result_.model.size();
        out.shape = result_.model.output_shape();
        out.rank = rank ? rank : first.rank;
        out.channels_last = out.rank == 4 && first.channels_last;
        computed_[node_->output(output_)] = out;
    }
    // The layer that wrote `t`, when `t` is that layer's output, the last layer's, and nothing but
    // the node being read reads it: a layer whose activation, bias or padding can still change.
    LayerConfig* last_layer_writing(const std::string& name) {
        const Tensor& t = tensor(name);
        if (t.value == 0 || t.value != result_.model.size() || !t.pads.empty() || uses(name) != 1)
            return nullptr;
        return &last_config_;
    }
    // Puts the last layer's changed settings in place, and makes the node's output the same value.
    void replace_last(const Tensor& t) {
        try {
            result_.model.replace_layer(result_.model.size() - 1, make_layer(last_config_));
        } catch (const ShapeError& e) {
            fail(e.what());
        }
        alias(t);
    }
    // A computed tensor quantised and dequantised again (QDQ, as quantising tools write models for
    // int8 runtimes): the same value, whose range the scale and zero point give, which makes the
    // imported model a calibrated one (Model::value_ranges) where every int8 layer's input has one.
    void quantize(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        const Folded scale = value_of(n.input(1));
        const std::optional<Folded> zero_point = input_value(n, 2);
        if (!scale.is_float() || scale.size() != 1 || !(scale.f[0] > 0) || !std::isfinite(scale.f[0]))
            fail("Lenz reads one positive scale per quantised activation");
        const bool is_unsigned = !zero_point || zero_point->type == onnx::TensorProto::UINT8;
        if (zero_point && (zero_point->is_float() || zero_point->size() != 1))
            fail("the zero point must be one int8 or uint8 value");
        const int64_t zero = zero_point ? zero_point->i[0] : 0;
        // Symmetric int8 (zero point 0) reads as ±127 steps, as Lenz quantises, so that its own
        // export imports to the very same scales.
        const int64_t lowest = is_unsigned ? 0 : zero == 0 ? -127 : -128, highest = is_unsigned ? 255 : 127;
        const float s = scale.f[0];
        // Lenz holds the values, not the integers: what reads them must turn them back into values.
        if (const auto it = dequantized_.find(n.output(0));
            it == dequantized_.end() || it->second != uses(n.output(0)))
            fail(
                "its integers are read by something other than DequantizeLinear; Lenz reads quantisation as "
                "QuantizeLinear then DequantizeLinear (QDQ)");
        ranges_[in.value] = {static_cast<float>(lowest - zero) * s, static_cast<float>(highest - zero) * s};
        quantized_.insert(n.output(0));
        alias(in);
    }

    void activation(const onnx::NodeProto& n, const ActivationSpec& act) {
        const Tensor& in = only_input(n);
        // Right after a convolution, dense layer or addition without one, fused as the model file
        // writes it; activations whose derivative needs their input stay layers of their own.
        if (derivative_follows_from_output(act.kind))
            if (LayerConfig* last = last_layer_writing(n.input(0))) {
                ActivationSpec* slot = nullptr;
                if (auto* c = std::get_if<Conv2dConfig>(last)) slot = &c->activation;
                if (auto* t = std::get_if<ConvTransposeConfig>(last)) slot = &t->activation;
                if (auto* d = std::get_if<DenseConfig>(last)) slot = &d->activation;
                if (auto* a = std::get_if<AddConfig>(last)) slot = &a->activation;
                if (slot && slot->kind == Activation::none) {
                    *slot = act;
                    return replace_last(in);
                }
            }
        add(ActivationConfig{act}, {&in});
    }

    void layer(const onnx::NodeProto& n, bool fused) {
        const std::string& op = n.op_type();
        for (const std::string& name : computed_inputs(n))
            if (const Tensor& t = tensor(name); !t.pads.empty() && op != "Conv" && op != "AveragePool" &&
                                                op != "Pad" && op != "Identity" && op != "QuantizeLinear" &&
                                                op != "DequantizeLinear") {
                if (op == "MaxPool")
                    fail_at(
                        *t.pad_node,
                        "pads with zeros that the MaxPool after it takes as values; Lenz, like ONNX's own "
                        "pads, pads max pooling with -infinity");
                fail_at(*t.pad_node, "is followed by " + op + " '" + n.name() +
                                         "': Lenz takes zero padding only into the Conv or AveragePool right "
                                         "after it");
            }
        if (fused) return fused_layer(n);
        // The operators read by a method of their own.
        using Reader = void (GraphReader::*)(const onnx::NodeProto&);
        static const std::unordered_map<std::string, Reader> readers{
            {"Pad", &GraphReader::pad},
            {"Concat", &GraphReader::concat},
            {"Split", &GraphReader::split},
            {"Slice", &GraphReader::slice},
            {"Transpose", &GraphReader::transpose},
            {"Conv", &GraphReader::conv},
            {"ConvTranspose", &GraphReader::conv_transpose},
            {"MaxPool", &GraphReader::pool},
            {"AveragePool", &GraphReader::pool},
            {"ReduceMean", &GraphReader::reduce_mean},
            {"Reshape", &GraphReader::reshape},
            {"Gemm", &GraphReader::gemm},
            {"MatMul", &GraphReader::matmul},
            {"BatchNormalization", &GraphReader::batch_norm},
            {"Resize", &GraphReader::resize},
            {"Upsample", &GraphReader::resize},
            {"Clip", &GraphReader::clip}};
        if (const auto it = readers.find(op); it != readers.end()) {
            (this->*it->second)(n);
        } else if (op == "Identity") {
            alias(only_input(n));
        } else if (op == "DequantizeLinear") {
            if (!quantized_.count(n.input(0)))
                fail(
                    "dequantises a computed tensor that no QuantizeLinear wrote; Lenz reads quantisation as "
                    "QuantizeLinear then DequantizeLinear (QDQ)");
            alias(only_input(n));
        } else if (op == "QuantizeLinear") {
            quantize(n);
        } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
            // x + x and x * x read one computed tensor twice: a join all the same.
            const bool both_computed =
                n.input_size() == 2 && computed_names_.count(n.input(0)) && computed_names_.count(n.input(1));
            both_computed ? join(n) : by_constant(n);
        } else if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
            const Tensor& in = spatial_input(n);
            add(GlobalPoolConfig{op == "GlobalMaxPool" ? PoolKind::max : PoolKind::average}, {&in});
        } else if (op == "Flatten") {
            if (int_attr("axis", 1) != 1) fail("only axis 1 is supported");
            flatten(only_input(n));
        } else if (op == "LayerNormalization") {
            if (n.output_size() > 1 &&
                std::any_of(n.output().begin() + 1, n.output().end(),
                            [&](const std::string& o) { return !o.empty() && uses(o); }))
                fail("only the normalised output may be used (not the mean or inverse deviation)");
            layer_norm(n, int_attr("axis", -1), float_attr("epsilon", 1e-5f), false);
        } else if (op == "Dropout") {
            const Tensor& in = only_input(n);
            if (n.output_size() > 1 && !n.output(1).empty() && uses(n.output(1)))
                fail("the mask output is not supported");
            // Opset 12's training_mode input: true would drop values at run time, which a model
            // that Lenz runs for inference must not do silently.
            if (const std::optional<Folded> training = input_value(n, 2);
                training && (training->is_float() || training->i.size() != 1 || training->i[0] != 0))
                fail("training_mode must be false (inference); Lenz applies dropout only when it trains");
            double rate = float_attr("ratio", 0.5f);
            if (n.input_size() > 1 && !n.input(1).empty()) rate = floats(weight_input(1, "ratio"), {})[0];
            if (!(rate >= 0 && rate < 1)) fail("the ratio must be in [0, 1)");
            if (rate == 0)
                alias(in);
            else
                add(DropoutConfig{rate}, {&in});
        } else if (op == "Relu") {
            activation(n, {Activation::relu});
        } else if (op == "LeakyRelu") {
            activation(n, {Activation::leaky_relu, float_attr("alpha", 0.01f)});
        } else if (op == "Sigmoid") {
            activation(n, {Activation::sigmoid});
        } else if (op == "Tanh") {
            activation(n, {Activation::tanh});
        } else if (op == "HardSigmoid") {
            hard_sigmoid_attributes();
            activation(n, {Activation::hard_sigmoid});
        } else if (op == "HardSwish") {
            activation(n, {Activation::hard_swish});
        } else if (op == "Gelu") {
            const auto* approximate = attribute("approximate");
            if (approximate && approximate->s() != "none")
                fail("only the exact GELU is supported (approximate 'none')");
            activation(n, {Activation::gelu});
        } else if (op == "Softmax") {
            const Tensor& in = only_input(n);
            const int64_t axis = int_attr("axis", opset_ >= 13 ? -1 : 1);
            // Before opset 13 a softmax covered every axis from `axis` on.
            const bool channels_last_axis = in.rank == 2 || in.channels_last || !in.spatial();
            if (!is_channel_axis(in, axis) || (opset_ < 13 && !channels_last_axis))
                fail("only a softmax over the channels is supported");
            activation(n, {Activation::softmax});
        } else if (op == "LogSoftmax") {
            const Tensor& in = only_input(n);
            const int64_t axis = int_attr("axis", opset_ >= 13 ? -1 : 1);
            const bool channels_last_axis = in.rank == 2 || in.channels_last || !in.spatial();
            if (!is_channel_axis(in, axis) || (opset_ < 13 && !channels_last_axis))
                fail("only a log-softmax over the channels is supported");
            activation(n, {Activation::log_softmax});
        } else if (op == "Elu") {
            const float alpha = float_attr("alpha", 1.0f);
            // Lenz's ELU takes its derivative from its output, which needs it monotonic.
            if (!(alpha > 0.0f)) fail("only a positive alpha is supported");
            activation(n, elu(alpha));
        } else if (op == "PRelu") {
            prelu(n);
        } else {
            fail(
                "not supported; Lenz imports Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, "
                "GlobalMaxPool, "
                "ReduceMean over H and W, Flatten, Reshape, Gemm, MatMul, BatchNormalization, "
                "LayerNormalization, Dropout, Relu, LeakyRelu, Sigmoid, Tanh, Clip (ReLU6), HardSigmoid, "
                "HardSwish, Gelu, Elu, PRelu, Softmax, LogSoftmax, Resize and Upsample by whole factors, "
                "Add, Mul, Concat, Split and "
                "Slice on channels, Transpose to and "
                "from channels-last, zero Pad before Conv and AveragePool, and arithmetic with constants");
        }
    }

    void fused_layer(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        const auto scalar = [&](int index, const char* what) {
            const Folded v = value_of(weight_input(index, what));
            if (!v.is_float() || v.size() != 1) fail(std::string("its ") + what + " is not one float");
            return v.f[0];
        };
        if (op == "Silu") {
            activation(n, {Activation::silu});
        } else if (op == "HardSwish") {
            hard_sigmoid_attributes();
            activation(n, {Activation::hard_swish});
        } else if (op == "Gelu") {
            if (std::abs(scalar(1, "divisor") - std::sqrt(2.0f)) > 1e-6f || scalar(2, "one") != 1.0f ||
                scalar(3, "half") != 0.5f)
                fail("looks like GELU, x * (Erf(x / a) + b) * c, but a, b, c are not sqrt(2), 1, 0.5");
            activation(n, {Activation::gelu});
        } else if (op == "LayerNorm") {
            if (scalar(4, "exponent") != 2.0f)
                fail("looks like a layer norm but squares with another exponent");
            const float epsilon = scalar(3, "epsilon");
            if (!(epsilon >= 0)) fail("looks like a layer norm but its epsilon is negative");
            layer_norm(n, int_attr("axis", -1), epsilon, true);
        } else if (op == "ChannelShuffle") {
            channel_shuffle(n);
        } else {
            fail("is no operator fusion makes");
        }
    }

    // ---- one input: windows

    const Tensor& spatial_input(const onnx::NodeProto& n) const {
        const Tensor& in = only_input(n);
        if (in.rank != 4) fail("needs an (N, C, H, W) input");
        if (in.channels_last && in.spatial())
            fail("reads a tensor permuted to (N, H, W, C); it needs (N, C, H, W)");
        return in;
    }

    // ---- one input: upsampling

    // Resize (opset 10 on) and Upsample (opset 7 to 9) by whole factors of H and W, 1 on N and C, from
    // constant scales, or to constant sizes of any ratio (which may come from Shape of the input:
    // torchvision's F.interpolate).
    void resize(const onnx::NodeProto& n) {
        const Tensor& in = spatial_input(n);
        const bool upsample_op = n.op_type() == "Upsample";
        const auto text = [&](const char* name, const std::string& otherwise) {
            const auto* a = attribute(name);
            return a ? a->s() : otherwise;
        };
        UpsampleConfig c;
        bool nearest_half_pixel = false, pytorch_half_pixel = false;
        const std::string mode = text("mode", "nearest");
        if (mode == "linear" || mode == "bilinear")
            c.mode = UpsampleMode::bilinear;
        else if (mode != "nearest")
            fail("mode '" + mode + "' is not supported (nearest and linear are)");
        if (upsample_op) {
            // Upsample's linear reads x = o / scale (asymmetric), which PyTorch's bilinear never does.
            if (c.mode == UpsampleMode::bilinear)
                fail(
                    "mode linear of Upsample samples at o / scale (asymmetric), which Lenz's bilinear "
                    "(half_pixel or align_corners, as PyTorch) does not; export with opset 11 or later");
        } else {
            const std::string coordinates = text("coordinate_transformation_mode", "half_pixel");
            const std::string rounding = text("nearest_mode", "round_prefer_floor");
            const bool half_pixel = coordinates == "half_pixel" || coordinates == "pytorch_half_pixel";
            pytorch_half_pixel = coordinates == "pytorch_half_pixel";
            if (c.mode == UpsampleMode::nearest) {
                // By a whole factor S, half_pixel rounded either way reads floor(o / S) too: its
                // (o + 0.5) / S - 0.5 lies within 0.5 of it (sizes of another ratio are refused
                // below unless asymmetric with floor, PyTorch's nearest).
                nearest_half_pixel =
                    half_pixel && (rounding == "round_prefer_floor" || rounding == "round_prefer_ceil");
                const bool floor_of_quotient =
                    (coordinates == "asymmetric" && rounding == "floor") || nearest_half_pixel;
                if (!floor_of_quotient)
                    fail("nearest with coordinate_transformation_mode '" + coordinates +
                         "' and nearest_mode '" + rounding +
                         "' is not supported (asymmetric with floor, as PyTorch's nn.Upsample, is)");
            } else if (coordinates == "align_corners") {
                c.align_corners = true;
            } else if (!half_pixel) {
                fail("linear with coordinate_transformation_mode '" + coordinates +
                     "' is not supported (half_pixel, pytorch_half_pixel and align_corners are)");
            }
            if (const auto* policy = attribute("keep_aspect_ratio_policy");
                policy && policy->s() != "stretch")
                fail("keep_aspect_ratio_policy '" + policy->s() + "' is not supported (stretch is)");
        }
        // The four factors (N, C, H, W), from an attribute (Upsample before opset 9), the scales or the
        // sizes.
        std::vector<double> factors;
        const std::vector<int64_t> dims{0, in.shape.c, in.shape.h, in.shape.w};
        const auto* axes_attr = attribute("axes");
        const std::vector<int64_t> axes =
            axes_attr ? std::vector<int64_t>(axes_attr->ints().begin(), axes_attr->ints().end())
                      : std::vector<int64_t>{0, 1, 2, 3};
        const auto full = [&](const std::vector<double>& given, double missing) {
            if (given.size() != axes.size())
                fail("has " + std::to_string(given.size()) + " scales or sizes for " +
                     std::to_string(axes.size()) + " axes");
            std::vector<double> all(4, missing);
            for (size_t k = 0; k < axes.size(); ++k) {
                const int64_t axis = axes[k] < 0 ? axes[k] + 4 : axes[k];
                if (axis < 0 || axis > 3) fail("axis " + std::to_string(axes[k]) + " is out of range");
                all[static_cast<size_t>(axis)] = given[k];
            }
            return all;
        };
        if (const auto* scales_attr = attribute("scales"); upsample_op && scales_attr) {
            factors = full({scales_attr->floats().begin(), scales_attr->floats().end()}, 1);
        } else {
            const int scales_at = upsample_op || opset_ < 11 ? 1 : 2;
            const std::optional<Folded> scales = input_value(n, scales_at);
            if (scales && scales->size() > 0) {
                if (!scales->is_float()) fail("its scales are not float");
                factors = full({scales->f.begin(), scales->f.end()}, 1);
            } else {
                if (upsample_op || opset_ < 11 || n.input_size() <= 3 || n.input(3).empty())
                    fail("has neither scales nor sizes");
                if (!is_constant(n.input(3)))
                    fail("its sizes '" + n.input(3) + "' are not a constant in the file");
                const std::vector<int64_t> sizes = shape_values(n.input(3));
                if (sizes.size() != axes.size())
                    fail("has " + std::to_string(sizes.size()) + " scales or sizes for " +
                         std::to_string(axes.size()) + " axes");
                std::vector<double> given;
                std::vector<int64_t> sized(4, 0);  // H and W where a size is no whole multiple
                for (size_t k = 0; k < sizes.size(); ++k) {
                    const int64_t axis = k < axes.size() ? (axes[k] < 0 ? axes[k] + 4 : axes[k]) : -1;
                    if (axis == 0) {
                        if (sizes[k] == 0 || !keeps_batch(sizes[k])) fail("changes the batch size");
                        given.push_back(1);
                    } else if (axis > 0 && axis < 4) {
                        const int64_t from = dims[static_cast<size_t>(axis)];
                        if (sizes[k] < 1)
                            fail("size " + std::to_string(sizes[k]) + " of axis " + std::to_string(axis) +
                                 " is not positive");
                        if (sizes[k] % from != 0) {
                            if (axis == 1)
                                fail("changes the channels, from " + std::to_string(from) + " to " +
                                     std::to_string(sizes[k]));
                            sized[static_cast<size_t>(axis)] = sizes[k];
                            given.push_back(1);
                        } else {
                            given.push_back(static_cast<double>(sizes[k] / from));
                        }
                    } else {
                        given.push_back(0);  // an axis out of range, which full() names
                    }
                }
                factors = full(given, 1);
                if (sized[2] || sized[3]) {  // to a size of its own, both axes so (F.interpolate(size=))
                    if (c.mode == UpsampleMode::nearest && nearest_half_pixel)
                        fail(
                            "nearest by a ratio that is not whole reads other pixels with half_pixel than "
                            "PyTorch's nearest (asymmetric with floor), which Lenz computes");
                    c.size_h = sized[2] ? sized[2] : in.shape.h * static_cast<int64_t>(factors[2]);
                    c.size_w = sized[3] ? sized[3] : in.shape.w * static_cast<int64_t>(factors[3]);
                    if (pytorch_half_pixel && c.mode == UpsampleMode::bilinear &&
                        (c.size_h == 1 || c.size_w == 1))
                        fail(
                            "pytorch_half_pixel to a size of 1 reads the first pixel, where Lenz's bilinear "
                            "(and "
                            "PyTorch's) reads the middle");
                    if (c.size_h > kMaxDimension || c.size_w > kMaxDimension)
                        fail("size " + std::to_string(std::max(c.size_h, c.size_w)) +
                             " is larger than the limit " + std::to_string(kMaxDimension));
                    c.scale_h = c.scale_w = 1;
                    add(c, {&in});
                    return;
                }
            }
        }
        if (factors[0] != 1 || factors[1] != 1)
            fail("scales the batch or the channels (by " + std::to_string(factors[0]) + " and " +
                 std::to_string(factors[1]) + "); Lenz scales only H and W");
        for (size_t k = 2; k < 4; ++k)
            if (!(factors[k] >= 1 && factors[k] <= static_cast<double>(kMaxDimension) &&
                  factors[k] == std::floor(factors[k])))
                fail("scale " + std::to_string(factors[k]) + " of " + (k == 2 ? "H" : "W") +
                     " is not supported; Lenz upsamples by whole factors of 1 or more");
        c.scale_h = static_cast<int64_t>(factors[2]);
        c.scale_w = static_cast<int64_t>(factors[3]);
        if (c.scale_h == 1 && c.scale_w == 1) return alias(in);
        add(c, {&in});
    }

    // Kernel, strides and pads of Conv and the pools, as Lenz padding for the input's size.
    struct WindowSettings {
        int64_t kh, kw, sh, sw;
        Padding padding;
        int64_t dh = 1, dw = 1;         // dilation, convolutions only
        bool ceil = false;              // pools: ceil_mode
        bool pads_of_pad_node = false;  // the pads include zeros a Pad node before added
    };
    WindowSettings window(const Tensor& in, std::vector<int64_t> kernel, bool pooling) {
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
            if (!in.pads.empty())
                fail_at(*in.pad_node,
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
        if (!in.pads.empty()) {
            if (pooling && pads != std::vector<int64_t>{0, 0, 0, 0})
                fail_at(*in.pad_node, "pads before a pool that pads too, which Lenz cannot count apart");
            for (size_t k = 0; k < 4; ++k) pads[k] += in.pads[k];
            s.pads_of_pad_node = true;
        }
        if (pads == std::vector<int64_t>{0, 0, 0, 0}) return s;
        if (pads[0] == pads[2] && pads[1] == pads[3]) {
            s.padding = {PaddingMode::pixels, pads[0], pads[1]};
            return s;
        }
        if (ceil) fail("ceil_mode with uneven pads is not supported");
        const Padding same{PaddingMode::same};
        const ConvGeometry g = resolve_window({s.kh, s.kw, s.sh, s.sw, same, pooling, s.dh, s.dw}, in.shape,
                                              1, node_->op_type());
        const int64_t bottom = std::max<int64_t>((g.OH - 1) * s.sh + g.span_h() - in.shape.h - g.PT, 0);
        const int64_t right = std::max<int64_t>((g.OW - 1) * s.sw + g.span_w() - in.shape.w - g.PL, 0);
        if (pads != std::vector<int64_t>{g.PT, g.PL, bottom, right})
            fail("uneven pads that are not 'same' (the extra pixel at the bottom/right) are not supported");
        s.padding = same;
        return s;
    }

    // Conv's and ConvTranspose's "group", which must divide the input's channels.
    int64_t group_count(const Tensor& in) {
        const int64_t groups = int_attr("group", 1);
        if (groups <= 0 || in.shape.c % groups != 0)
            fail("group " + std::to_string(groups) + " does not divide the " + std::to_string(in.shape.c) +
                 " input channels");
        return groups;
    }

    void conv(const onnx::NodeProto& n) {
        const Tensor& in = spatial_input(n);
        const int64_t groups = group_count(in);
        const std::string& weight = weight_input(1, "weight");
        const std::vector<int64_t> wd = dims_of(weight);
        if (wd.size() != 4) fail("the weight must be (OC, C/group, KH, KW)");
        const int64_t oc = wd[0], kh = wd[2], kw = wd[3];
        const WindowSettings s = window(in, ints_attr("kernel_shape", {kh, kw}), false);
        if (s.kh != kh || s.kw != kw) fail("kernel_shape does not match the weight");
        Conv2dConfig c{oc,     kh,        kw,  s.sh,
                       s.sw,   s.padding, {},  n.input_size() > 2 && !n.input(2).empty(),
                       groups, s.dh,      s.dw};
        Weights w{{"weight", floats(weight, {oc, in.shape.c / groups, kh, kw})}};
        if (c.bias) w["bias"] = floats(weight_input(2, "bias"), {oc});
        Tensor unpadded = in;
        unpadded.pads.clear();
        add(c, {&unpadded}, std::move(w));
    }

    // ConvTranspose: Lenz crops P off the top and left and P - output_padding off the bottom and
    // right, so pads (b, e) and output_padding op read as padding b and output padding op + b - e,
    // where that is 0 or more; output_shape is read as the pads it implies (ONNX's rule).
    void conv_transpose(const onnx::NodeProto& n) {
        const Tensor& in = spatial_input(n);
        const int64_t groups = group_count(in);
        const std::string& weight = weight_input(1, "weight");
        const std::vector<int64_t> wd = dims_of(weight);
        if (wd.size() != 4) fail("the weight must be (C, OC/group, KH, KW)");
        if (wd[0] != in.shape.c)
            fail("the weight's first dimension " + std::to_string(wd[0]) + " is not the input's " +
                 std::to_string(in.shape.c) + " channels");
        const int64_t oc = wd[1] * groups, kh = wd[2], kw = wd[3];
        auto two = [&](const char* name, std::vector<int64_t> otherwise) {
            const std::vector<int64_t> v = ints_attr(name, std::move(otherwise));
            if (v.size() != 2) fail(std::string(name) + " must have two values (H and W)");
            return v;
        };
        const std::vector<int64_t> kernel = two("kernel_shape", {kh, kw}), strides = two("strides", {1, 1}),
                                   dilations = two("dilations", {1, 1}),
                                   extra = two("output_padding", {0, 0});
        if (kernel[0] != kh || kernel[1] != kw) fail("kernel_shape does not match the weight");
        const auto* auto_pad = attribute("auto_pad");
        const std::string mode = auto_pad ? auto_pad->s() : "NOTSET";
        std::vector<int64_t> pads = ints_attr("pads", {0, 0, 0, 0});
        if (pads.size() != 4) fail("pads must have four values (top, left, bottom, right)");
        const std::vector<int64_t> output_shape = ints_attr("output_shape", {});
        const int64_t in_size[2] = {in.shape.h, in.shape.w};
        if (!output_shape.empty()) {
            // The last two values are H and W (ONNX allows all four of N, C, H, W, or two).
            if (output_shape.size() != 2 && output_shape.size() != 4)
                fail("output_shape must give H and W (two values, or four with N and C)");
            const size_t first = output_shape.size() - 2;
            for (size_t a = 0; a < 2; ++a) {
                const int64_t span = dilations[a] * (kernel[a] - 1) + 1,
                              total =
                                  strides[a] * (in_size[a] - 1) + extra[a] + span - output_shape[first + a];
                if (total < 0) {
                    pads[a] = 0;
                    pads[a + 2] = total;  // a negative end pad: rows only the bias reaches, output padding
                } else {
                    const bool upper = mode == "SAME_UPPER";
                    pads[a] = upper ? total / 2 : total - total / 2;
                    pads[a + 2] = total - pads[a];
                }
            }
        } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
            fail("auto_pad " + mode + " without output_shape is not supported; explicit pads are");
        } else if (mode == "VALID") {
            pads = {0, 0, 0, 0};
        } else if (mode != "NOTSET") {
            fail("auto_pad " + mode + " is not supported");
        }
        ConvTransposeConfig c;
        c.filters = oc;
        c.kernel_h = kh;
        c.kernel_w = kw;
        c.stride_h = strides[0];
        c.stride_w = strides[1];
        c.dilation_h = dilations[0];
        c.dilation_w = dilations[1];
        c.groups = groups;
        c.padding_h = pads[0];
        c.padding_w = pads[1];
        c.output_padding_h = extra[0] + pads[0] - pads[2];
        c.output_padding_w = extra[1] + pads[1] - pads[3];
        if (c.output_padding_h < 0 || c.output_padding_w < 0)
            fail("asymmetric pads with more at the end (" + std::to_string(pads[0]) + ", " +
                 std::to_string(pads[1]) + ", " + std::to_string(pads[2]) + ", " + std::to_string(pads[3]) +
                 ") are not supported; Lenz crops the top and left at least as much as the bottom and right");
        if (c.output_padding_h >= std::max(c.stride_h, c.dilation_h) ||
            c.output_padding_w >= std::max(c.stride_w, c.dilation_w))
            fail("pads and output_padding give an output padding of " + std::to_string(c.output_padding_h) +
                 "x" + std::to_string(c.output_padding_w) +
                 ", which must be smaller than the stride or the dilation, as PyTorch's");
        c.bias = n.input_size() > 2 && !n.input(2).empty();
        Weights w{{"weight", floats(weight, {in.shape.c, oc / groups, kh, kw})}};
        if (c.bias) w["bias"] = floats(weight_input(2, "bias"), {oc});
        add(c, {&in}, std::move(w));
    }

    void pool(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        const Tensor& in = spatial_input(n);
        if (n.output_size() > 1 && !n.output(1).empty()) fail("the indices output is not supported");
        if (int_attr("storage_order", 0) != 0) fail("storage_order 1 is not supported");
        const WindowSettings s = window(in, ints_attr("kernel_shape", {}), true);
        Pool2dConfig p{
            op == "MaxPool" ? PoolKind::max : PoolKind::average, s.kh, s.kw, s.sh, s.sw, s.padding, s.ceil};
        const bool padded = s.padding.mode != PaddingMode::valid;
        if (op == "AveragePool" && padded && (s.pads_of_pad_node || int_attr("count_include_pad", 0) != 0)) {
            if (s.ceil) fail("counting the padding together with ceil_mode is not supported");
            p.count_padding = true;
        }
        Tensor unpadded = in;
        unpadded.pads.clear();
        add(p, {&unpadded});
    }

    // Zero padding, which the Conv or AveragePool after it takes into its own pads; no padding at
    // all is a no-op (PyTorch 1.13 writes one before every AveragePool).
    void pad(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        if (in.rank != 4 || (in.channels_last && in.spatial())) fail("needs an (N, C, H, W) input");
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
        if (begin == std::vector<int64_t>(4, 0) && end == std::vector<int64_t>(4, 0)) return alias(in);
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
        Tensor out = in;
        if (out.pads.empty()) {
            out.pads.assign(4, 0);
            out.pad_node = &n;
        }
        const std::vector<int64_t> more{begin[2], begin[3], end[2], end[3]};
        for (size_t k = 0; k < 4; ++k) out.pads[k] += more[k];
        alias(out);
    }

    // ---- one input: reshaping and reducing

    void flatten(const Tensor& in) {
        if (in.rank == 2) return alias(in);
        if (in.channels_last && in.spatial())
            fail("flattens a tensor permuted to (N, H, W, C), whose order Lenz does not keep");
        add(FlattenConfig{}, {&in}, {}, 2);
    }

    void reduce_mean(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        std::vector<int64_t> axes = opset_ >= 18 ? ints_input(n, 1, "axes") : ints_attr("axes", {});
        for (int64_t& a : axes)
            if (a < 0) a += in.rank;
        std::sort(axes.begin(), axes.end());
        const std::vector<int64_t> spatial =
            in.channels_last ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{2, 3};
        if (in.rank != 4 || axes != spatial)
            fail("only a mean over the height and width (a global average pool) is supported");
        add(GlobalPoolConfig{PoolKind::average}, {&in}, {}, int_attr("keepdims", 1) != 0 ? 4 : 2);
    }

    void reshape(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        if (n.input_size() < 2) fail("has no shape");
        const std::vector<int64_t> target = shape_values(n.input(1));
        const int64_t elements = in.shape.elements();
        if (target.size() == 4 && !in.spatial() && keeps_batch(target[0]) && target[1] == elements &&
            target[2] == 1 && target[3] == 1) {
            Tensor out = in;  // (N, E) -> (N, E, 1, 1): Lenz holds it as 1x1xE already
            out.rank = 4;
            out.channels_last = false;
            return alias(out);
        }
        const bool to_rows =
            target.size() == 2 && ((keeps_batch(target[0]) && (target[1] == -1 || target[1] == elements)) ||
                                   (target[0] == -1 && target[1] == elements));
        if (!to_rows) fail("only a reshape to (N, -1) or from (N, C) to (N, C, 1, 1) is supported");
        flatten(in);
    }

    void transpose(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        const std::vector<int64_t> perm = ints_attr("perm", {});
        Tensor out = in;
        if (in.rank == 4 && !in.channels_last && perm == std::vector<int64_t>{0, 2, 3, 1})
            out.channels_last = true;
        else if (in.rank == 4 && in.channels_last && perm == std::vector<int64_t>{0, 3, 1, 2})
            out.channels_last = false;
        else
            fail("only a permutation to channels-last (0, 2, 3, 1) and back (0, 3, 1, 2) is supported");
        alias(out);
    }

    // ShuffleNet's: (N, C, H, W) viewed as (N, g, C/g, H, W), its two group axes swapped, viewed back.
    void channel_shuffle(const onnx::NodeProto& n) {
        const Tensor& in = spatial_input(n);
        const std::vector<int64_t> split = shape_values(n.input(1)), merged = shape_values(n.input(2));
        const Shape s = in.shape;
        const bool splits = split.size() == 5 && keeps_batch(split[0]) && split[1] > 0 &&
                            s.c % split[1] == 0 && (split[2] == s.c / split[1] || split[2] == -1) &&
                            split[3] == s.h && split[4] == s.w;
        const bool merges = merged.size() == 4 && keeps_batch(merged[0]) &&
                            (merged[1] == s.c || merged[1] == -1) && merged[2] == s.h && merged[3] == s.w;
        if (!splits || !merges || ints_attr("perm", {}) != std::vector<int64_t>{0, 2, 1, 3, 4})
            fail(
                "a Reshape/Transpose/Reshape that is not a channel shuffle (N, g, C/g, H, W) -> (N, C/g, g, "
                "H, W)");
        add(ChannelShuffleConfig{split[1]}, {&in});
    }

    // ---- one input: dense layers and normalisation

    void gemm(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        if (float_attr("alpha", 1) != 1 || float_attr("beta", 1) != 1 || int_attr("transA", 0) != 0)
            fail("only alpha 1, beta 1 and transA 0 are supported");
        if (in.rank != 2) fail("needs an (N, features) input: flatten first");
        const std::string& weight = weight_input(1, "weight");
        const std::vector<int64_t> wd = dims_of(weight);
        if (wd.size() != 2) fail("the weight must be two-dimensional");
        const bool trans = int_attr("transB", 0) != 0;
        const int64_t units = trans ? wd[0] : wd[1], inputs = in.shape.elements();
        std::vector<float> w = trans ? floats(weight, {units, inputs})
                                     : transposed(floats(weight, {inputs, units}), inputs, units);
        DenseConfig d{units, {}, n.input_size() > 2 && !n.input(2).empty()};
        Weights weights{{"weight", std::move(w)}};
        if (d.bias) weights["bias"] = bias_floats(weight_input(2, "bias"), units);
        add(d, {&in}, std::move(weights));
    }

    // By a constant (inputs, units): a dense layer, or on a channels-last map a 1x1 convolution;
    // an Add right after gives it its bias.
    void matmul(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        const std::string& weight = weight_input(1, "weight");
        const std::vector<int64_t> wd = dims_of(weight);
        if (wd.size() != 2) fail("the weight must be two-dimensional");
        if (in.rank == 4 && in.channels_last) {
            const int64_t inputs = in.shape.c, units = wd[1];
            Conv2dConfig c{units, 1, 1, 1, 1, {}, {}, false};
            return add(c, {&in}, {{"weight", transposed(floats(weight, {inputs, units}), inputs, units)}});
        }
        if (in.rank != 2) fail("needs an (N, features) input, or a map permuted to (N, H, W, C)");
        const int64_t inputs = in.shape.elements(), units = wd[1];
        DenseConfig d{units, {}, false};
        add(d, {&in}, {{"weight", transposed(floats(weight, {inputs, units}), inputs, units)}});
    }

    void batch_norm(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        if (in.channels_last && in.spatial()) fail("normalises axis 1 of a tensor permuted to (N, H, W, C)");
        if (int_attr("training_mode", 0) != 0) fail("training_mode 1 is not supported");
        const int64_t ch = in.rank == 2 ? in.shape.elements() : in.shape.c;
        std::vector<float> var = floats(weight_input(4, "running variance"), {ch});
        // Lenz's epsilon is fixed: fold another into the variance, which gives the same outputs.
        const float extra = float_attr("epsilon", 1e-5f) - static_cast<float>(kBatchNormEpsilon);
        for (float& v : var) {
            v += extra;
            if (!(v > 0)) fail("a variance is not positive once epsilon is folded into it");
        }
        add(BatchNormConfig{}, {&in},
            {{"weight", floats(weight_input(1, "scale"), {ch})},
             {"bias", floats(weight_input(2, "bias"), {ch})},
             {"running_mean", floats(weight_input(3, "running mean"), {ch})},
             {"running_var", std::move(var)}});
    }

    // Over the channels alone, at each position. ONNX's LayerNormalization normalises every axis
    // from `axis` on: that is the channels where they come last (or are all that is left); the
    // fused subgraph reduces the one axis it names.
    void layer_norm(const onnx::NodeProto& n, int64_t axis, float epsilon, bool one_axis) {
        const Tensor& in = only_input(n);
        const bool channels_last_axis = in.rank == 2 || in.channels_last || !in.spatial();
        if (!is_channel_axis(in, axis) || (!one_axis && !channels_last_axis))
            fail("only a normalisation over the channels (the last axis, channels-last) is supported");
        const int64_t ch = channels(in);
        Weights w{{"weight", channel_floats(weight_input(1, "scale"), ch)}};
        w["bias"] = n.input_size() > 2 && !n.input(2).empty()
                        ? channel_floats(weight_input(2, "bias"), ch)
                        : std::vector<float>(static_cast<size_t>(ch), 0.0f);
        add(LayerNormConfig{shortest_decimal(epsilon)}, {&in}, std::move(w));
    }
    // One float per channel, in a tensor of any rank whose other dimensions are 1.
    std::vector<float> channel_floats(const std::string& name, int64_t ch) const {
        const std::vector<int64_t> dims = dims_of(name);
        std::vector<int64_t> want(dims.size(), 1);
        for (size_t k = 0; k < dims.size(); ++k)
            if (dims[k] != 1) want[k] = ch;
        return floats(name, dims.empty() ? std::vector<int64_t>{ch} : want);
    }

    // The slope broadcasts against x as ONNX does, from the last axis: one for all, or one per
    // channel where its only dimension other than 1 lines up with the channels ((C, 1, 1) or
    // (1, C, 1, 1) on a map, (C) after flatten). A (C) slope on a map would be one per column.
    void prelu(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        if (n.input_size() < 2) fail("has no slope");
        const std::string& name = weight_input(1, "slope");
        const std::vector<int64_t> dims = dims_of(name);
        int64_t count = 1;
        for (int64_t d : dims) count *= d;
        if (count == 1) {
            std::vector<float> slope = floats(name, dims);
            return add(PReluConfig{false}, {&in}, {{"weight", std::move(slope)}});
        }
        const int64_t ch = channels(in);
        const int64_t rank = static_cast<int64_t>(dims.size());
        bool per_channel = rank <= in.rank;
        for (int64_t k = 0; k < rank && per_channel; ++k)
            if (dims[static_cast<size_t>(k)] != 1)
                per_channel = in.rank - rank + k == in.channel_axis() && dims[static_cast<size_t>(k)] == ch;
        if (!per_channel)
            fail("slope of shape " + dims_str(dims) + " is neither one value nor one per channel (" +
                 std::to_string(ch) + ") along the channel axis");
        add(PReluConfig{true}, {&in}, {{"weight", floats(name, dims)}});
    }

    void clip(const onnx::NodeProto& n) {
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
        activation(n, {Activation::relu6});
    }
    void hard_sigmoid_attributes() const {
        if (std::abs(float_attr("alpha", 0.2f) - 1.0f / 6.0f) > 1e-6f ||
            std::abs(float_attr("beta", 0.5f) - 0.5f) > 1e-6f)
            fail("only HardSigmoid with alpha 1/6 and beta 0.5 (PyTorch's Hardsigmoid) is supported");
    }

    // ---- channels

    // The channel axis of `in` as ONNX numbers it, from a possibly negative axis.
    bool is_channel_axis(const Tensor& in, int64_t axis) const {
        return axis == in.channel_axis() || axis + in.rank == in.channel_axis();
    }
    int64_t channels(const Tensor& in) const { return in.rank == 2 ? in.shape.elements() : in.shape.c; }

    void concat(const onnx::NodeProto& n) {
        std::vector<const Tensor*> inputs;
        for (const std::string& name : n.input()) {
            if (!computed_names_.count(name)) fail("joins a constant '" + name + "' to computed tensors");
            inputs.push_back(&tensor(name));
        }
        for (const Tensor* t : inputs)
            if (t->rank != inputs[0]->rank || t->channels_last != inputs[0]->channels_last)
                fail("joins tensors of different ranks or orders");
        if (!attribute("axis") || !is_channel_axis(*inputs[0], int_attr("axis", 1)))
            fail("only a concatenation along the channels is supported");
        if (inputs.size() == 1) return alias(*inputs[0]);  // DenseNet's first layer joins its one input
        add(ConcatConfig{}, inputs);
    }

    // Channels [begin, end) of `in`, or `in` itself when that is all of them.
    void channel_slice(const Tensor& in, int64_t begin, int64_t end) {
        if (begin == 0 && end == channels(in)) return alias(in);
        if (in.rank != 4) fail("slices the features of a (N, features) tensor, which Lenz does not do");
        add(ChannelSliceConfig{begin, end}, {&in});
    }

    // Along the channels: each output that something reads becomes a channel slice.
    void split(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        if (!is_channel_axis(in, int_attr("axis", 0))) fail("only a split along the channels is supported");
        std::vector<int64_t> sizes = opset_ >= 13 ? ints_input(n, 1, "split") : ints_attr("split", {});
        const int64_t c = channels(in), parts = n.output_size();
        if (sizes.empty()) {
            if (c % parts != 0)
                fail(std::to_string(c) + " channels do not split into " + std::to_string(parts) +
                     " equal parts");
            sizes.assign(static_cast<size_t>(parts), c / parts);
        }
        int64_t total = 0;
        for (int64_t s : sizes) {
            if (s < 0) fail("a split size is negative");
            total += s;
        }
        if (static_cast<int64_t>(sizes.size()) != parts || total != c)
            fail("the split sizes do not add up to the " + std::to_string(c) + " channels over the outputs");
        const Tensor source = in;
        int64_t begin = 0;
        for (int k = 0; k < n.output_size(); ++k) {
            const int64_t end = begin + sizes[static_cast<size_t>(k)];
            if (!n.output(k).empty() && uses(n.output(k)) > 0) {
                output_ = k;
                channel_slice(source, begin, end);
                output_ = 0;
            }
            begin = end;
        }
    }

    void slice(const onnx::NodeProto& n) {
        const Tensor& in = only_input(n);
        const auto list = [&](int index, const char* attr) {
            return opset_ < 10 ? ints_attr(attr, {}) : ints_input(n, index, attr);
        };
        const std::vector<int64_t> starts = list(1, "starts"), ends = list(2, "ends"),
                                   steps = list(4, "steps");
        std::vector<int64_t> axes = list(3, "axes");
        if (axes.empty())
            for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
        if (starts.size() != ends.size() || axes.size() != starts.size() ||
            (!steps.empty() && steps.size() != starts.size()))
            fail("starts, ends, axes and steps differ in length");
        const std::vector<int64_t> dims = in.dims();
        int64_t begin = 0, end = channels(in);
        for (size_t k = 0; k < axes.size(); ++k) {
            const int64_t axis = axes[k] < 0 ? axes[k] + in.rank : axes[k];
            if (axis < 0 || axis >= in.rank) fail("axis " + std::to_string(axes[k]) + " is out of range");
            if (!steps.empty() && steps[k] != 1) fail("only a step of 1 is supported");
            const int64_t size =
                axis == 0 ? std::numeric_limits<int64_t>::max() : dims[static_cast<size_t>(axis)];
            const auto clamp = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + size : v, 0, size); };
            const int64_t from = clamp(starts[k]), to = std::max(from, clamp(ends[k]));
            if (axis == in.channel_axis()) {
                begin = from;
                end = to;
            } else if (from != 0 || to != size) {
                fail("only a slice of the channels is supported");
            }
        }
        if (begin >= end) fail("slices no channels");
        channel_slice(in, begin, end);
    }

    // ---- two computed inputs

    void join(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        const Tensor& a = tensor(n.input(0));
        const Tensor& b = tensor(n.input(1));
        if (a.rank != b.rank || (a.channels_last != b.channels_last && (a.spatial() || b.spatial())))
            fail("joins tensors of different ranks or orders");
        if (op == "Add") return add(AddConfig{}, {&a, &b});
        if (op == "Mul") {
            // Lenz's mul takes the map first and a per-channel gate second.
            const bool a_is_gate = !a.spatial() && b.spatial();
            return add(MulConfig{},
                       a_is_gate ? std::vector<const Tensor*>{&b, &a} : std::vector<const Tensor*>{&a, &b});
        }
        fail(op + " of two computed tensors is not supported (Add and Mul are)");
    }

    // ---- one computed input and a constant

    // Sub, Div, Mul or Add by a constant: at the graph's input, the pixels' normalisation (which
    // Lenz keeps beside the model, as training computed it); Add or Sub after a convolution or
    // dense layer, its bias; Mul or Div by a value per channel, a depthwise 1x1 convolution.
    void by_constant(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        if (n.input_size() != 2) fail("needs two inputs");
        const int constant_at = computed_names_.count(n.input(0)) ? 1 : 0;
        const std::string& input = n.input(1 - constant_at);
        const Tensor& in = tensor(input);
        if (in.value == 0 && result_.model.size() == 0 && uses(input) == 1 && in.rank == 4 &&
            !in.channels_last)
            return normalization(n, in, constant_at);
        const std::vector<double> k = per_channel(weight_input(constant_at, "operand"), in);
        if (op == "Add" || op == "Sub") {
            if (op == "Sub" && constant_at == 0) fail("subtracts a computed tensor from a constant");
            LayerConfig* last = last_layer_writing(input);
            Conv2dConfig* c = last ? std::get_if<Conv2dConfig>(last) : nullptr;
            DenseConfig* d = last ? std::get_if<DenseConfig>(last) : nullptr;
            if ((!c || c->activation.kind != Activation::none) &&
                (!d || d->activation.kind != Activation::none))
                fail(op +
                     " of a constant is supported at the graph's input (normalisation) and right after a "
                     "convolution or dense layer (its bias)");
            std::vector<float>& bias = result_.weights.back()["bias"];
            bias.resize(k.size(), 0.0f);
            for (size_t j = 0; j < k.size(); ++j) bias[j] += static_cast<float>(op == "Add" ? k[j] : -k[j]);
            (c ? c->bias : d->bias) = true;
            return replace_last(in);
        }
        if (op == "Div" && constant_at == 0) fail("divides a constant by a computed tensor");
        std::vector<float> scale(k.size());
        for (size_t j = 0; j < k.size(); ++j) {
            if (op == "Div" && k[j] == 0) fail("divides by zero");
            scale[j] = static_cast<float>(op == "Mul" ? k[j] : 1 / k[j]);
        }
        const int64_t ch = static_cast<int64_t>(k.size());
        add(Conv2dConfig{ch, 1, 1, 1, 1, {}, {}, false, ch}, {&in}, {{"weight", std::move(scale)}});
    }

    void normalization(const onnx::NodeProto& n, const Tensor& in, int constant_at) {
        const std::string& op = n.op_type();
        const std::vector<double> k = per_channel(weight_input(constant_at, "operand"), in);
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
        alias(in);
    }
    // A constant that broadcasts over `in` channel by channel: one value per channel, or one for all.
    std::vector<double> per_channel(const std::string& name, const Tensor& in) const {
        const Folded v = value_of(name);
        const int64_t rank = in.rank, channel_axis = in.channel_axis(), ch = channels(in);
        bool fits = v.is_float() && static_cast<int64_t>(v.dims.size()) <= rank;
        for (size_t k = 0; fits && k < v.dims.size(); ++k) {
            const int64_t axis = rank - static_cast<int64_t>(v.dims.size()) + static_cast<int64_t>(k);
            fits = v.dims[k] == 1 || (axis == channel_axis && v.dims[k] == ch);
        }
        if (!fits)
            fail("'" + name + "' (" + dims_str(v.dims) + ") is not a float32 value per channel of " +
                 dims_str(in.dims()) + " (e.g. (1, C, 1, 1)), nor one for all");
        std::vector<double> out(static_cast<size_t>(ch));
        for (size_t c = 0; c < out.size(); ++c) {
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
                        "the normalisation at the input must scale every channel by a positive number");
            norm.mean.push_back(mean);
            norm.stddev.push_back(stddev);
        }
        return norm;
    }

    // The double a float was written from (1e-5 rather than 9.99999974737875e-06), so that the model
    // file prints what the exporter's source said.
    static double shortest_decimal(float f) {
        char text[32];
        const auto end = std::to_chars(text, text + sizeof text, f).ptr;
        return std::strtod(std::string(text, end).c_str(), nullptr);
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
    std::string data_folder_;
    int64_t opset_ = 1;
    onnx_fold::Folder folder_;
    onnx_fusion::FusedGraph fused_;
    std::unordered_set<const onnx::NodeProto*> made_;          // the nodes fusion made
    std::map<std::string, const onnx::TensorProto*> tensors_;  // initializers, Constant values, Identity
    std::map<std::string, Folded> folded_;                     // what folding computed
    std::unordered_set<std::string> computed_names_;           // tensors computed from the input
    std::unordered_map<std::string, Tensor> computed_;         // those read so far, as Lenz holds them
    std::unordered_map<std::string, int> uses_;                // how many nodes (and outputs) read a tensor
    std::unordered_map<std::string, int> dequantized_;         // how many of those are DequantizeLinear
    std::unordered_set<std::string> quantized_;                // tensors a QuantizeLinear wrote
    std::string input_name_;
    int64_t fixed_batch_ = 0;  // the input's batch size when the graph fixes it
    const onnx::NodeProto* node_ = nullptr;
    int output_ = 0;           // which output of node_ a layer being added writes (Split has several)
    LayerConfig last_config_;  // the last layer's settings, while its activation or bias may change
    // The normalisation at the graph's input so far, per channel: x -> scale * x + shift.
    std::vector<double> scale_, shift_;
    const onnx::NodeProto* normalization_node_ = nullptr;
    Result result_;
    std::map<int64_t, ValueRange> ranges_;  // per value: what QuantizeLinear nodes say of it
};

}  // namespace

namespace {

[[noreturn]] void not_onnx(const std::string& name) {
    throw FormatError(name + ": not an ONNX model (the protobuf does not parse)");
}

// The model a parsed file describes, with its weights.
// torch.onnx.export in eval mode (its default) folds each batch norm into the convolution before it
// and names the folded weights after their reader ("onnx::Conv_123"), where a module's own weights
// keep their parameter names ("layer1.0.conv1.weight"). Such convolutions are what the graph holds;
// the note says why their count and their biases are not PyTorch's, and how to keep batch norm.
std::string folded_batchnorm_note(const onnx::GraphProto& graph) {
    std::set<std::string> initializers;
    for (const auto& t : graph.initializer()) initializers.insert(t.name());
    int64_t convs = 0, folded = 0;
    for (const auto& node : graph.node()) {
        if (node.op_type() != "Conv" || node.input_size() < 2) continue;
        ++convs;
        folded += initializers.count(node.input(1)) && node.input(1).rfind("onnx::Conv_", 0) == 0;
    }
    if (folded == 0) return "";
    return std::to_string(folded) + " of " + std::to_string(convs) +
           " convolutions carry a batch norm that PyTorch's export folded into them (their weights are named "
           "onnx::Conv_*), so parameters and biases differ from PyTorch's model and fine-tuning trains "
           "without "
           "batch norm; to keep it, export with training=torch.onnx.TrainingMode.PRESERVE, "
           "do_constant_folding=False (docs/onnx.md)";
}

LoadedModel load_proto(const onnx::ModelProto& proto, const std::string& name, int64_t file_bytes,
                       const std::string& data_folder) {
    if (!proto.has_graph()) throw FormatError(name + ": the ONNX model has no graph");
    GraphReader::Result r;
    try {
        r = GraphReader(proto, name, file_bytes, data_folder).read();
    } catch (const ShapeError& e) {  // sizes that overflow
        throw FormatError(name + ": " + e.what());
    }
    std::map<std::string, std::string> meta;
    for (const auto& e : proto.metadata_props()) meta[e.key()] = e.value();
    Model& model = r.model;
    // A file Lenz wrote says how the model file put it ("padding=same" rather than the pixels the
    // graph holds, and its names); that text is taken when it describes the very layers the graph holds.
    if (meta.count("lenz.model")) try {
            Model described = parse_model(meta["lenz.model"], name + " (lenz.model metadata)");
            bool same = described.size() == model.size() && described.input_shape() == model.input_shape();
            for (int64_t i = 0; same && i < model.size(); ++i)
                same = described.inputs(i) == model.inputs(i) &&
                       described.layer(i).output_shape() == model.layer(i).output_shape() &&
                       spec_without_padding(described.layer(i)) == spec_without_padding(model.layer(i)) &&
                       window_numbers(described.layer(i)) == window_numbers(model.layer(i));
            if (same) model = std::move(described);
        } catch (const Error&) {
            // Metadata that does not parse is ignored: the graph itself is the model.
        }
    // Layer by layer, each layer's imported weights freed once copied, so that the file's weights
    // are never held three times over (the protobuf, the imported copies and the model's).
    for (int64_t i = 0; i < model.size(); ++i) {
        model.init_layer_params(i, 1);
        auto& w = r.weights[static_cast<size_t>(i)];
        for (ParamRef& p : model.layer(i).params()) {
            auto it = w.find(p.name);
            if (it == w.end()) continue;  // batchnorm statistics a format leaves out keep their start values
            if (static_cast<int64_t>(it->second.size()) != p.value->size())
                throw FormatError(name + ": layer " + std::to_string(i + 1) + " (" + model.layer(i).spec() +
                                  "): " + p.name + " has " + std::to_string(it->second.size()) +
                                  " values, the layer needs " + std::to_string(p.value->size()));
            std::copy(it->second.begin(), it->second.end(), p.value->data());
        }
        Weights().swap(w);
    }
    // A QDQ file whose every int8 layer reads a quantised input is a calibrated model, run in int8.
    bool calibrated = !r.ranges.empty();
    for (int64_t i = 0; calibrated && i < model.size(); ++i)
        calibrated = !model.layer(i).runs_int8() || r.ranges.count(model.inputs(i)[0]);
    if (calibrated) {
        std::vector<ValueRange> ranges(static_cast<size_t>(model.size() + 1));
        for (const auto& [v, range] : r.ranges) ranges[static_cast<size_t>(v)] = range;
        // What a max pool or a flatten reads has the range of what it writes (the largest of values
        // is one of them), so that int8 inference can hold a convolution's output in int8 before them.
        for (int64_t i = model.size() - 1; i >= 0; --i) {
            const LayerConfig config = model.layer(i).config();
            const auto* pool = std::get_if<Pool2dConfig>(&config);
            const bool passes_range = (pool && pool->kind == PoolKind::max) || model.layer(i).reshape_only();
            ValueRange& in = ranges[static_cast<size_t>(model.inputs(i)[0])];
            if (passes_range && !(in.min < in.max)) in = ranges[static_cast<size_t>(i + 1)];
        }
        model.set_value_ranges(std::move(ranges));
    }
    LoadedModel loaded{std::move(model), {}, {}};
    if (const std::string note = folded_batchnorm_note(proto.graph()); !note.empty())
        loaded.notes.push_back(note);
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

}  // namespace

LoadedModel parse_onnx(const std::string& bytes, const std::string& name) {
    onnx::ModelProto proto;
    if (bytes.empty() || !proto.ParseFromString(bytes)) not_onnx(name);
    return load_proto(proto, name, static_cast<int64_t>(bytes.size()), "");
}

// Parsed straight from the file, which is never held in memory as a whole next to its parse.
LoadedModel read_onnx(const std::string& path) {
    const int64_t size =
        file_size_at_most(path, kMaxOnnxBytes, "the ONNX file", "2 GB, the limit of one ONNX protobuf");
    onnx::ModelProto proto;
    {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw IoError(path + ": cannot open the ONNX file: " + std::strerror(errno));
        google::protobuf::io::FileInputStream stream(fd);
        stream.SetCloseOnDelete(true);
        if (size == 0 || !proto.ParseFromZeroCopyStream(&stream)) not_onnx(path);
    }
    const std::filesystem::path folder = std::filesystem::path(path).parent_path();
    return load_proto(proto, path, size, folder.empty() ? "." : folder.string());
}

}  // namespace lenz
