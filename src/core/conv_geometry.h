// The sizes one 2-D window operation (convolution or pooling) works with, once padding is resolved.
#pragma once
#include <cstdint>

namespace lenz {

struct ConvGeometry {
    int64_t C, H, W;         // input channels and size
    int64_t OC, OH, OW;      // output channels (filters) and size
    int64_t KH, KW, SH, SW;  // kernel and stride
    int64_t PT, PL;          // padding before the first row / column (bottom/right follow from OH, OW)
    int64_t G = 1;           // groups: filter f sees input channels [f / (OC/G) * C/G, ... + C/G)
    int64_t DH = 1, DW = 1;  // dilation: kernel taps DH rows and DW columns apart

    int64_t group_channels() const { return C / G; }              // input channels one filter sees
    int64_t patch() const { return group_channels() * KH * KW; }  // one filter's weights: K of the GEMM
    int64_t positions() const { return OH * OW; }
    // The rows and columns a dilated kernel spans.
    int64_t span_h() const { return DH * (KH - 1) + 1; }
    int64_t span_w() const { return DW * (KW - 1) + 1; }
};

}  // namespace lenz
