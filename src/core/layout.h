// Memory layouts of activations: what the engine plans, the layer contract passes on and the kernels
// are told. Below all three, in core, so that the contract needs no kernel header; the public
// headers do not carry it (a model never chooses its layout).
#pragma once

namespace lenz {

// How the engine lays out an activation (and its gradient) in memory: (N, C, H, W), the layout of
// every layer's contract, or channels-last (N, H, W, C). The engine uses channels-last only where
// the layer that writes a value and every layer that reads it take it: between convolutions,
// through the batch norm, activations and residual additions between them, oneDNN's kernels then
// read and write it directly, with no reordering on either side.
enum class Layout { nchw, nhwc };
struct Layouts {
    Layout input = Layout::nchw, output = Layout::nchw;
};

}  // namespace lenz
