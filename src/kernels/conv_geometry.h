// The sizes one 2-D window operation (convolution or pooling) works with, once padding is resolved.
#pragma once
#include <cstdint>

namespace lenz {

struct ConvGeometry {
    int64_t C, H, W;         // input channels and size
    int64_t OC, OH, OW;      // output channels (filters) and size
    int64_t KH, KW, SH, SW;  // kernel and stride
    int64_t PT, PL;          // padding before the first row / column (bottom/right follow from OH, OW)

    int64_t patch() const { return C * KH * KW; }  // one filter's weights: K of the GEMM
    int64_t positions() const { return OH * OW; }
};

}  // namespace lenz
