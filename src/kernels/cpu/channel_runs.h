// Runs of channels in channels-last memory, one run a pixel: copied between rows of different
// lengths (concatenation and slicing, where one operand's channels at a pixel are a run inside the
// longer row of all of them), or scaled per channel (squeeze-and-excitation's gate). One call is
// one thread's work; the layers cut the rows among threads.
#pragma once
#include <cstdint>

namespace lenz::cpu {

// `rows` runs of `width` floats: from src, rows src_stride floats apart, to dst, dst_stride apart.
void copy_runs(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
               int64_t width);
// The same, added to what dst holds (a gradient's slices).
void add_runs(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows,
              int64_t width);
// y (rows, width) = x (rows, width) times scale (width) at every row; y may be x.
void scale_runs(const float* x, const float* scale, float* y, int64_t rows, int64_t width);

// rows of width floats in blocks of about 16 KB: block(first row, count), shared among the threads
// when there are enough of them to pay for a team.
template <class Block>
void in_row_blocks(int64_t rows, int64_t width, Block block) {
    const int64_t per_block = width >= 4096 ? 1 : 4096 / width;
    const int64_t blocks = (rows + per_block - 1) / per_block;
#pragma omp parallel for schedule(static) if (rows * width >= (1 << 16))
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t first = b * per_block;
        block(first, rows - first < per_block ? rows - first : per_block);
    }
}

}  // namespace lenz::cpu
