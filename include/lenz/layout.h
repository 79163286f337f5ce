// Memory layouts of activations: what the engine plans and the kernels are told.
#pragma once

namespace lenz {

// How the engine lays out an activation (and its gradient) in memory: (N, C, H, W), the layout of
// every layer's contract, or channels-last (N, H, W, C). The engine uses channels-last only between
// two layers that both take it (convolutions): oneDNN's kernels then read and write it directly,
// with no reordering on either side.
enum class Layout { nchw, nhwc };
struct Layouts {
    Layout input = Layout::nchw, output = Layout::nchw;
};

}  // namespace lenz
