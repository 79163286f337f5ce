// Constant folding for ONNX import: what a graph computes from initializers, Constant nodes and
// tensor shapes alone (PyTorch's shape arithmetic for view and pad, casts, reshapes of weights) is
// worked out before operators are matched, so that only the layers are left. Not a runtime: only
// the operators such subgraphs use, on float32 and integer tensors.
#pragma once
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lenz::onnx_fold {

// Shape reports the batch size, which a Lenz model leaves free: elements that come from it are
// marked, so that a reshape can keep the batch while nothing else depends on its value.
enum class Symbol : uint8_t { known, batch, unknown };

// A tensor whose values import knows. Integers (INT64, INT32, and the INT8 and UINT8 of quantised
// weights) are held as int64.
struct Folded {
    std::string name;  // for messages
    int32_t type = onnx::TensorProto::FLOAT;
    std::vector<int64_t> dims;
    std::vector<float> f;         // FLOAT
    std::vector<int64_t> i;       // INT64, INT32
    std::vector<Symbol> symbols;  // one per element of i, or empty when all are known

    bool is_float() const { return type == onnx::TensorProto::FLOAT; }
    int64_t size() const { return static_cast<int64_t>(is_float() ? f.size() : i.size()); }
    bool symbolic() const;
};

// What cannot be folded, in a few words; the importer adds the file and the node.
struct FoldError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "2x3", or "()" for a scalar.
std::string dims_str(const std::vector<int64_t>& dims);
// An initializer or a Constant node's value, called `name` in messages (a Constant's tensor often
// has none of its own); checks the byte count against the shape before allocating.
Folded decode(const onnx::TensorProto& t, const std::string& name);
// Integers that must not depend on the batch size: indices, axes, pads, target shapes.
const std::vector<int64_t>& plain_ints(const Folded& v, const std::string& what);

// The operators, each as ONNX defines it. Every result counts against a budget of values, so that
// no file can make import allocate without bound (repeated Concat doubles at each step).
class Folder {
  public:
    explicit Folder(int64_t budget) : budget_(budget) {}
    void claim(int64_t elements);

    Folded gather(const Folded& data, const Folded& indices, int64_t axis);
    Folded concat(const std::vector<Folded>& parts, int64_t axis);
    // axes and steps may be empty (every axis in order, step 1).
    Folded slice(const Folded& data, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                 std::vector<int64_t> axes, std::vector<int64_t> steps);
    Folded transpose(const Folded& data, std::vector<int64_t> perm);  // perm empty: reversed
    Folded reshape(Folded data, const std::vector<int64_t>& shape, bool allow_zero);
    Folded unsqueeze(Folded data, const std::vector<int64_t>& axes);
    Folded squeeze(Folded data, const std::vector<int64_t>& axes);  // axes empty: every 1
    Folded cast(Folded v, int64_t to);
    // op: Add, Sub, Mul or Div, with NumPy broadcasting.
    Folded arithmetic(const std::string& op, const Folded& a, const Folded& b);
    Folded constant_of_shape(const Folded& shape, const Folded& value);
    // DequantizeLinear of constant int8 or uint8 weights: (q - zero_point) · scale, per tensor or
    // per slice along `axis`; zero_point may be absent (0).
    Folded dequantize(const Folded& q, const Folded& scale, const Folded* zero_point, int64_t axis);

  private:
    int64_t budget_;
};

}  // namespace lenz::onnx_fold
