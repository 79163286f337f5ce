#include "formats/onnx_fusion.h"

#include <initializer_list>
#include <optional>
#include <unordered_map>

namespace lenz::onnx_fusion {
namespace {

class Matcher {
  public:
    Matcher(const onnx::GraphProto& graph, std::deque<onnx::NodeProto>& made)
        : graph_(graph), fused_(static_cast<size_t>(graph.node_size()), -1), made_(made) {
        for (int i = 0; i < graph.node_size(); ++i) {
            for (const std::string& out : graph.node(i).output())
                if (!out.empty()) producer_[out] = i;
            for (const std::string& in : graph.node(i).input())
                if (!in.empty()) ++uses_[in];
        }
        for (const auto& out : graph.output()) ++uses_[out.name()];
    }

    // The nodes in order, each fused subgraph as its node in `made`.
    std::vector<const onnx::NodeProto*> run() {
        for (int i = 0; i < graph_.node_size(); ++i)
            if (fused_[i] == -1) self_gated(i) || gelu(i) || layer_norm(i) || channel_shuffle(i);
        std::vector<const onnx::NodeProto*> nodes;
        for (int i = 0; i < graph_.node_size(); ++i)
            if (fused_[i] != kRemoved)
                nodes.push_back(fused_[i] >= 0 ? &made_[static_cast<size_t>(fused_[i])] : &graph_.node(i));
        return nodes;
    }

  private:
    static constexpr int kRemoved = -2;

    const onnx::NodeProto& node(int i) const { return graph_.node(i); }
    // An unfused node of the default domain with one output (what fusion replaces, or anchors on).
    bool is(int i, const char* op) const {
        const onnx::NodeProto& n = node(i);
        return n.op_type() == op && (n.domain().empty() || n.domain() == "ai.onnx") && fused_[i] == -1 &&
               n.output_size() == 1 && !n.output(0).empty();
    }
    int uses(const std::string& tensor) const {
        const auto it = uses_.find(tensor);
        return it == uses_.end() ? 0 : it->second;
    }
    // The node writing `tensor`, when it is an unfused `op` whose output only `readers` nodes read
    // (-1 otherwise): a node fusion may swallow.
    int inner(const std::string& tensor, const char* op, int readers = 1) const {
        const auto it = producer_.find(tensor);
        return it == producer_.end() || !is(it->second, op) || uses(tensor) != readers ? -1 : it->second;
    }
    // For a node of two inputs in either order: the index of the input an inner `op` writes (0 or 1,
    // or -1), and that node.
    int operand(int i, const char* op, int& producer) const {
        const onnx::NodeProto& n = node(i);
        if (n.input_size() != 2) return -1;
        for (int k : {0, 1})
            if ((producer = inner(n.input(k), op)) >= 0) return k;
        return -1;
    }

    onnx::NodeProto& make(int anchor, const char* op, std::initializer_list<std::string> inputs,
                          std::initializer_list<int> swallowed) {
        onnx::NodeProto& f = made_.emplace_back();
        f.set_name(node(anchor).name());
        f.set_op_type(op);
        f.set_domain(kDomain);
        for (const std::string& in : inputs) f.add_input(in);
        f.add_output(node(anchor).output(0));
        fused_[anchor] = static_cast<int>(made_.size() - 1);
        for (int i : swallowed) fused_[i] = kRemoved;
        return f;
    }

    // x * Sigmoid(x) is SiLU, x * HardSigmoid(x) hard-swish.
    bool self_gated(int i) {
        if (!is(i, "Mul") || node(i).input_size() != 2) return false;
        for (const char* gate_op : {"Sigmoid", "HardSigmoid"}) {
            int gate = -1;
            const int k = operand(i, gate_op, gate);
            if (k < 0 || node(gate).input_size() != 1 || node(gate).input(0) != node(i).input(1 - k))
                continue;
            const bool silu = std::string(gate_op) == "Sigmoid";
            onnx::NodeProto& f = make(i, silu ? "Silu" : "HardSwish", {node(gate).input(0)}, {gate});
            f.mutable_attribute()->CopyFrom(node(gate).attribute());
            return true;
        }
        return false;
    }

    // (x * (Erf(x / divisor) + one)) * half
    bool gelu(int i) {
        int product = -1, sum = -1, erf = -1, quotient = -1;
        const int p = is(i, "Mul") ? operand(i, "Mul", product) : -1;
        if (p < 0) return false;
        const int s = operand(product, "Add", sum);
        if (s < 0) return false;
        const int e = operand(sum, "Erf", erf);
        if (e < 0 || node(erf).input_size() != 1) return false;
        quotient = inner(node(erf).input(0), "Div");
        if (quotient < 0 || node(quotient).input_size() != 2) return false;
        const std::string& x = node(product).input(1 - s);
        if (node(quotient).input(0) != x) return false;
        make(i, "Gelu", {x, node(quotient).input(1), node(sum).input(1 - e), node(i).input(1 - p)},
             {product, sum, erf, quotient});
        return true;
    }

    // A ReduceMean over one axis, keeping it: that axis, or nothing.
    std::optional<int64_t> reduced_axis(int i) const {
        int64_t axis = 0, keep = 1;
        bool has_axes = false;
        for (const auto& a : node(i).attribute()) {
            if (a.name() == "keepdims") keep = a.i();
            if (a.name() == "axes") {
                if (a.ints_size() != 1) return std::nullopt;
                axis = a.ints(0);
                has_axes = true;
            }
        }
        if (!has_axes || keep == 0 || node(i).input_size() != 1) return std::nullopt;
        return axis;
    }

    // (x - mean) / Sqrt(mean((x - mean) ^ exponent) + epsilon) * scale + bias, the means over one axis.
    bool layer_norm(int i) {
        int scaled = -1, normalized = -1;
        const int b = is(i, "Add") ? operand(i, "Mul", scaled) : -1;
        if (b < 0) return false;
        const int g = operand(scaled, "Div", normalized);
        if (g < 0 || node(normalized).input_size() != 2) return false;
        const int deviation = inner(node(normalized).input(0), "Sub", 2),
                  root = inner(node(normalized).input(1), "Sqrt");
        if (deviation < 0 || root < 0 || node(deviation).input_size() != 2 || node(root).input_size() != 1)
            return false;
        int variance_plus = inner(node(root).input(0), "Add"), variance = -1;
        if (variance_plus < 0) return false;
        const int v = operand(variance_plus, "ReduceMean", variance);
        if (v < 0 || node(variance).input_size() != 1) return false;
        const int power = inner(node(variance).input(0), "Pow");
        const int mean = inner(node(deviation).input(1), "ReduceMean");
        if (power < 0 || mean < 0 || node(power).input_size() != 2 || node(mean).input_size() != 1)
            return false;
        const std::string& x = node(deviation).input(0);
        if (node(power).input(0) != node(deviation).output(0) || node(mean).input(0) != x) return false;
        const std::optional<int64_t> axis = reduced_axis(mean);
        if (!axis || reduced_axis(variance) != axis) return false;
        onnx::NodeProto& f =
            make(i, "LayerNorm",
                 {x, node(scaled).input(1 - g), node(i).input(1 - b), node(variance_plus).input(1 - v),
                  node(power).input(1)},
                 {scaled, normalized, deviation, root, variance_plus, variance, power, mean});
        onnx::AttributeProto& a = *f.add_attribute();
        a.set_name("axis");
        a.set_type(onnx::AttributeProto::INT);
        a.set_i(*axis);
        return true;
    }

    // Reshape(Transpose(Reshape(x, split_shape)), merged_shape)
    bool channel_shuffle(int i) {
        if (!is(i, "Reshape") || node(i).input_size() != 2) return false;
        const int transpose = inner(node(i).input(0), "Transpose");
        if (transpose < 0 || node(transpose).input_size() != 1) return false;
        const int split = inner(node(transpose).input(0), "Reshape");
        if (split < 0 || node(split).input_size() != 2) return false;
        onnx::NodeProto& f =
            make(i, "ChannelShuffle", {node(split).input(0), node(split).input(1), node(i).input(1)},
                 {transpose, split});
        f.mutable_attribute()->CopyFrom(node(transpose).attribute());
        return true;
    }

    const onnx::GraphProto& graph_;
    std::unordered_map<std::string, int> producer_, uses_;
    std::vector<int> fused_;  // per node: -1 as it is, kRemoved swallowed, else its fused node in made_
    std::deque<onnx::NodeProto>& made_;
};

}  // namespace

FusedGraph fuse(const onnx::GraphProto& graph) {
    FusedGraph fused;
    fused.nodes = Matcher(graph, fused.made).run();
    return fused;
}

}  // namespace lenz::onnx_fusion
