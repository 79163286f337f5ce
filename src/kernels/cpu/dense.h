// Fully connected layer as one matrix product per pass over the whole batch; the product threads
// itself. In float32 it is oneDNN's sgemm in training and its matmul on packed weights at
// inference; in bf16, oneDNN's matmul on bf16 copies of the operands (made in the workspace),
// adding up in float32.
#pragma once
#include <cstdint>

#include "kernels/cpu/int8.h"
#include "lenz/activation.h"
#include "lenz/precision.h"

namespace lenz::cpu {

// Floats of workspace the bf16 copies take (none in float32): x and w forward, dy too backward.
int64_t dense_workspace(int64_t N, int64_t I, int64_t U, bool training, Precision precision);

// Weights converted once for inference (bf16 only): floats they take, and writing them.
int64_t dense_prepared_floats(int64_t I, int64_t U, Precision precision);
void dense_prepare_weights(int64_t I, int64_t U, Precision precision, const float* w, float* prepared);

// float32 inference: oneDNN's matmul on weights packed once per runner, in the layout its primitive
// (one for every batch) reads, with the bias and activation fused. Against sgemm, which packs the
// weights at every call: 0.18 ms against 0.60 for a 1280 -> 1000 classifier at batch 16, 0.45
// against 0.61 for FMNIST-Net's 3136 -> 128 at 128 images. Floats the packed copy takes, and the
// workspace (oneDNN's scratchpad), packing w (U, I), and y (N, U) from x (N, I).
int64_t dense_packed_floats(int64_t I, int64_t U, bool bias, const ActivationSpec& act);
int64_t dense_packed_workspace(int64_t I, int64_t U, bool bias, const ActivationSpec& act);
void dense_pack_weights(int64_t I, int64_t U, bool bias, const ActivationSpec& act, const float* w,
                        float* packed);
void dense_packed_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* packed,
                          const float* b, const ActivationSpec& act, float* y, float* workspace);

// float32 inference in runners of at most kRowMajorImages images at once (the latency case): the
// weights stay row-major, (U, I), copied once per runner (permuted where the input is channels-last),
// and each unit's sums are read off its row. That product is bound by memory, which oneDNN's packed
// matmul read at 30 GB/s and these rows at 41 (the machine's limit) on VGG's 25088 -> 4096 at one
// image; with more images per pass the packed matmul's reuse of each weight wins. Each unit's sum is
// one thread's, in a fixed order, so the result does not depend on the thread count.
inline constexpr int64_t kRowMajorImages = 4;
inline bool dense_reads_rows(int64_t prepared_batch) {
    return prepared_batch <= kRowMajorImages;
}
// y (N, U) from x (N, I) and w (U, I), any N, plus b (U) or nullptr, then the activation.
void dense_rows_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* w, const float* b,
                        const ActivationSpec& act, float* y);

// x: (N, I)  w: (U, I)  b: (U) or nullptr  y: (N, U). In bf16, `prepared` (from
// dense_prepare_weights) saves converting w.
void dense_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* w, const float* b,
                   const ActivationSpec& act, float* y, float* workspace = nullptr,
                   Precision precision = Precision::f32, const float* prepared = nullptr);
// dy: (N, U) before the activation. Accumulates dw (U, I) and db (U) first, then writes dx (N, I)
// unless nullptr; dx may therefore be x itself.
void dense_backward(int64_t N, int64_t I, int64_t U, const float* x, const float* dy, const float* w,
                    float* dx, float* dw, float* db, float* workspace = nullptr,
                    Precision precision = Precision::f32);

// int8 inference (oneDNN's integer matmul): x quantised on the way in (`in`), w once per runner
// (one scale per unit), sums in int32, y in float32 with the bias and the activation.
int64_t dense_int8_prepared_floats(int64_t I, int64_t U);
void dense_int8_prepare(int64_t I, int64_t U, Int8Quant in, const float* w, const float* b, float* prepared);
int64_t dense_int8_workspace(int64_t N, int64_t I, int64_t U, bool is_unsigned);
// x: float32, or int8 where io.in_stored; y: float32.
void dense_int8_forward(int64_t N, int64_t I, int64_t U, const float* x, const ActivationSpec& act, float* y,
                        float* workspace, const Int8Io& io, const float* prepared);

}  // namespace lenz::cpu
