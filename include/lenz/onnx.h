// ONNX in and out: a model with its weights as an ONNX graph (opset 13) that other runtimes load,
// and ONNX graphs from other tools (PyTorch's torch.onnx.export, tf2onnx) as Lenz models.
//
// Export writes every Lenz model, chain or graph, each layer reading the tensors of the values it
// reads, as the ONNX operators that compute the same thing, spelled as PyTorch 1.13 writes them at
// opset 13 so that import reads each back as the same layer: Conv with explicit pads,
// MaxPool/AveragePool (count_include_pad as the layer says), GlobalAveragePool/GlobalMaxPool (a global
// average that a dense layer reads as ReduceMean over H and W), Flatten, Gemm, BatchNormalization,
// Dropout, Relu/LeakyRelu/Sigmoid/Tanh/Clip/HardSigmoid/Softmax(axis 1); add as Add (a chain of
// them for more than two inputs), concat as Concat, mul as Mul with a gate of (N, C, 1, 1), slice as
// Slice on axis 1, shuffle as Reshape/Transpose/Reshape; and what opset 13 has no operator for as
// PyTorch's subgraphs: layer norm (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add over
// axis 1), hard-swish and SiLU (x * HardSigmoid(x), x * Sigmoid(x)), GELU (x * (Erf(x / sqrt 2) + 1)
// * 0.5). A value of (N, features) from flatten or dense is reshaped to (N, C, 1, 1) where a layer
// needs a map. The input is (N, C, H, W) with N free, holding pixel values / 255; the graph starts
// by normalising them as training did (Sub mean, Div std, per channel), so that every runtime
// computes what `lenz predict` does from the same image. Class names and the model text go in the
// metadata.
//
// Import first folds what depends only on initializers, Constant nodes and shapes (Identity,
// Shape, Gather, Unsqueeze, Squeeze, Concat, Reshape, Slice, Transpose, Cast, ConstantOfShape,
// arithmetic: e.g. PyTorch's x.view(x.size(0), -1) with a free batch, or nn.ZeroPad2d's pads).
// Then it fuses the subgraphs exporters write for one operator (SiLU, hard-swish, GELU, layer norm,
// channel shuffle; onnx_fusion.h), and reads what is left as a graph of Lenz layers: the operators
// above, plus ReduceMean over H and W, LayerNormalization, HardSwish, Gelu, Add/Mul/Concat joins,
// Split and Slice on channels, permutes to channels-last and back (ConvNeXt), MatMul (+ Add) as a
// dense layer or a 1x1 convolution, zero Pad before Conv and AveragePool, and arithmetic with
// per-channel constants (the normalisation at the input, biases, a depthwise scale). Anything else
// is a one-line error naming the node. Activations right after a convolution, dense layer or add
// are fused into it, as the model file writes them; nodes that lead nowhere are left out.
#pragma once
#include <string>

#include "lenz/checkpoint.h"

namespace lenz {

std::string encode_onnx(Model& model, const CheckpointInfo& info);
// Atomically, like checkpoints.
void write_onnx(const std::string& path, Model& model, const CheckpointInfo& info);

// Builds the model and loads its weights. The normalisation is the graph's own (its front nodes),
// else that of the lenz.normalization metadata older Lenz exports wrote, else pixels / 255 as they
// are. Without Lenz metadata, the classes are named 0..K-1.
LoadedModel parse_onnx(const std::string& bytes, const std::string& name);
LoadedModel read_onnx(const std::string& path);

// A model file by its extension: .onnx, .safetensors (a checkpoint) or the text format.
Model load_any_model(const std::string& path);
// A trained model by its extension: an .onnx file, or else a checkpoint.
LoadedModel load_trained_model(const std::string& path);
// A model with weights: a trained one's own (a checkpoint, an .onnx file, with the normalisation it
// holds), or for a model file (.lenz) those init_params(seed) gives, as lenz train starts from.
LoadedModel load_with_weights(const std::string& path, uint64_t seed);

}  // namespace lenz
