// ONNX in and out: a model with its weights as an ONNX graph (opset 13) that other runtimes load,
// and ONNX graphs from other tools (PyTorch's torch.onnx.export, tf2onnx) as Lenz models.
//
// Export writes every Lenz layer as the ONNX operators that compute the same thing: Conv with
// explicit pads, MaxPool/AveragePool (padding never counted), GlobalAveragePool/GlobalMaxPool,
// Flatten, Gemm, BatchNormalization, Dropout, Relu/LeakyRelu/Sigmoid/Tanh/Softmax(axis 1). The
// input is (N, C, H, W) with N free, holding pixel values / 255; the graph starts by normalising
// them as training did (Sub mean, Div std, per channel), so that every runtime computes what
// `lenz predict` does from the same image. Class names and the model text go in the metadata.
//
// Import first folds what depends only on initializers, Constant nodes and shapes (Identity,
// Shape, Gather, Unsqueeze, Squeeze, Concat, Reshape, Slice, Transpose, Cast, ConstantOfShape,
// arithmetic: e.g. PyTorch's x.view(x.size(0), -1) with a free batch, or nn.ZeroPad2d's pads).
// What is left must be a chain of the operators above (plus MatMul + Add as a dense layer, Reshape
// to (N, -1), zero Pad before Conv, and Sub/Div/Mul/Add by per-channel constants at the input,
// which become the normalisation); anything else is a one-line error naming the node in the way
// (for a branch, the node where it joins). Activations right after a convolution or dense layer
// are fused into it, as the model file writes them.
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

}  // namespace lenz
