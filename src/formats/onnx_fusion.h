// Operators that exporters spell out as small subgraphs, recognised whole before import reads the
// graph. PyTorch 1.13 writes
//   SiLU as x * Sigmoid(x), hard-swish (before opset 14) as x * HardSigmoid(x),
//   GELU as (x * (Erf(x / sqrt 2) + 1)) * 0.5,
//   layer normalisation (before opset 17) as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add,
//   ShuffleNet's channel shuffle as Reshape to (N, g, C/g, H, W), Transpose, Reshape back.
// Matching is structural: a subgraph is fused only when nothing outside it reads its inner tensors.
// Each fused node keeps the subgraph's constant inputs, and the importer checks their values (that
// the 2 is 2) when it reads the node, where constants are known.
#pragma once
#include <onnx/onnx_pb.h>

#include <deque>
#include <string>
#include <vector>

namespace lenz::onnx_fusion {

// The domain of the nodes fusion makes, so that the importer tells them from the file's own.
inline constexpr const char* kDomain = "lenz.fused";

// The fused nodes, named after the subgraph's last node, whose output they write:
//   Silu(x)
//   HardSwish(x), with HardSigmoid's attributes alpha and beta
//   Gelu(x, divisor, one, half)                      the constants of x * (Erf(x / divisor) + one) * half
//   LayerNorm(x, scale, bias, epsilon, exponent), attribute axis: the axis both ReduceMeans reduce
//   ChannelShuffle(x, split_shape, merged_shape), with the Transpose's attribute perm
struct FusedGraph {
    std::vector<const onnx::NodeProto*> nodes;  // the graph's nodes in order, each subgraph as one node
    std::deque<onnx::NodeProto> made;           // the fused nodes (a deque: pointers stay valid)
};

// The graph's nodes must each read only tensors written before them, and write each tensor once:
// check that first.
FusedGraph fuse(const onnx::GraphProto& graph);

}  // namespace lenz::onnx_fusion
