#include "kernels/cpu/dense.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/onednn.h"
#include "kernels/cpu/vector_isa.h"

namespace lenz::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32, bf16 = memory::data_type::bf16;

// A row-major (rows, cols) matrix, or read transposed: (cols, rows) over the same memory.
memory::desc matrix(int64_t rows, int64_t cols, memory::data_type type, bool transposed = false) {
    return transposed ? memory::desc({cols, rows}, type, tag::ba) : memory::desc({rows, cols}, type, tag::ab);
}

// A cached matrix product: what it was built for (its weights' layout, its scratchpad) and the primitive.
struct Matmul {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul primitive;
};
Matmul matmul_of(const dnnl::matmul::desc& d, const dnnl::primitive_attr& attr) {
    dnnl::matmul::primitive_desc pd(d, attr, cpu_engine());
    return Matmul{pd, dnnl::matmul(pd)};
}

// C (M, N) = A (M, K) · B (K, N) on bf16 operands, into float32 C, plus C's old value when
// `accumulate`. A and B are given as the bf16 matrices' descriptors (possibly transposed views).
std::shared_ptr<Matmul> matmul_for(const memory::desc& a, const memory::desc& b, const memory::desc& c,
                                   bool bias, bool accumulate) {
    const auto dims = [](const memory::desc& d) {
        std::string s;
        for (auto v : d.dims()) s += std::to_string(v) + "x";
        return s + std::to_string(d.get_size());
    };
    // Two descriptors of the same dimensions differ only in their strides: the sizes and whether a
    // view is transposed (its first stride is 1) tell them apart.
    const auto strides = [](const memory::desc& d) { return d.data.format_desc.blocking.strides[0]; };
    const std::string key = "matmul " + dims(a) + " " + std::to_string(strides(a)) + " " + dims(b) + " " +
                            std::to_string(strides(b)) + " " + dims(c) + (bias ? " bias" : "") +
                            (accumulate ? " sum" : "");
    return cached<Matmul>(key, [&] {
        dnnl::primitive_attr attr;
        if (accumulate) {
            dnnl::post_ops ops;
            ops.append_sum(1.0f);
            attr.set_post_ops(ops);
        }
        const memory::dim U = c.dims()[1];
        const auto d = bias ? dnnl::matmul::desc(a, b, memory::desc({1, U}, f32, tag::ab), c)
                            : dnnl::matmul::desc(a, b, c);
        return matmul_of(d, attr);
    });
}

// float32 inference: y (M, U) = x (M, I) · w^T, with M left to run time, so that one primitive and
// one packing of the weights serve every batch; the bias and the activation are fused.
std::shared_ptr<Matmul> packed_matmul_for(int64_t I, int64_t U, bool bias, const ActivationSpec& act) {
    const std::string key =
        "matmul packed " + std::to_string(I) + "x" + std::to_string(U) + (bias ? " bias " : " ") + act.str();
    return cached<Matmul>(key, [&] {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // so that streams can run it at once
        if (fusable(act) && !applied_after(act)) attr.set_post_ops(post_ops_of(act));
        const memory::desc x({DNNL_RUNTIME_DIM_VAL, I}, f32, tag::ab), w({I, U}, f32, tag::any),
            y({DNNL_RUNTIME_DIM_VAL, U}, f32, tag::ab);
        const auto d = bias ? dnnl::matmul::desc(x, w, memory::desc({1, U}, f32, tag::ab), y)
                            : dnnl::matmul::desc(x, w, y);
        return matmul_of(d, attr);
    });
}

// A bf16 copy of a row-major float32 matrix, at `copy`.
memory to_bf16(const float* data, int64_t rows, int64_t cols, void* copy) {
    memory from(matrix(rows, cols, f32), cpu_engine(), const_cast<float*>(data));
    memory to(matrix(rows, cols, bf16), cpu_engine(), copy);
    dnnl::reorder(from, to).execute(cpu_stream(), from, to);
    return to;
}

// bf16 values take half a float each; each copy starts on a 64-byte boundary.
int64_t bf16_floats(int64_t values) {
    return ((values + 1) / 2 + 15) / 16 * 16;
}

// Prepared for int8: the output scales, the bias divided by them (oneDNN scales the bias with the
// sums), then the int8 weights as (U, I).
struct Int8Prepared {
    int64_t bias, weights, floats;
};
Int8Prepared int8_prepared(int64_t I, int64_t U) {
    const int64_t per_unit = (U + 15) / 16 * 16;
    return {per_unit, 2 * per_unit, 2 * per_unit + int8_floats(U * I)};
}

// y (N, U) = x (N, I) · w^T in integers, times per-unit scales given at run time. Its scratchpad is
// the caller's, so that streams can run it at once.
std::shared_ptr<Matmul> int8_matmul_for(int64_t N, int64_t I, int64_t U, bool is_unsigned) {
    const std::string key = "matmul8 " + std::to_string(N) + "x" + std::to_string(I) + "x" +
                            std::to_string(U) + (is_unsigned ? " u8" : " s8");
    return cached<Matmul>(key, [&] {
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        attr.set_output_scales(1 << 1, {DNNL_RUNTIME_F32_VAL});
        const dnnl::matmul::desc d(matrix(N, I, is_unsigned ? memory::data_type::u8 : memory::data_type::s8),
                                   matrix(U, I, memory::data_type::s8, true),
                                   memory::desc({1, U}, f32, tag::ab), matrix(N, U, f32));
        return matmul_of(d, attr);
    });
}

// x (N, I) float32 to int8, divided by the input's scale.
std::shared_ptr<dnnl::reorder> quantize_for(int64_t N, int64_t I, Int8Quant in) {
    uint32_t scale_bits;  // the exact scale: two layers' scales may print alike
    std::memcpy(&scale_bits, &in.scale, sizeof scale_bits);
    const std::string key = std::to_string(N) + "x" + std::to_string(I) + (in.is_unsigned ? " u8 " : " s8 ") +
                            std::to_string(scale_bits);
    return cached<dnnl::reorder>(key, [&] {
        dnnl::primitive_attr quantize;
        quantize.set_output_scales(0, {1.0f / in.scale});
        return dnnl::reorder(dnnl::reorder::primitive_desc(
            cpu_engine(), matrix(N, I, f32), cpu_engine(),
            matrix(N, I, in.is_unsigned ? memory::data_type::u8 : memory::data_type::s8), quantize));
    });
}

// Row-major products, kImages images by kUnits rows at a time: 16 lanes of partial sums per pair,
// in GCC's generic vectors (an AVX-512 register each, two AVX2 or four SSE ones), over I in steps of
// 16; the lanes are then added in a fixed order and the remainder of I after them.
using Lanes = float __attribute__((vector_size(64)));

// Rows start anywhere: a memcpy is the unaligned load that every compiler accepts (clang's UBSan
// rejects an under-aligned vector typedef) and compiles to one vmovups. Through a reference, not
// returned: clang warns that returning a 64-byte vector from code built for the baseline ISA
// changes the ABI, although it is always inlined.
[[gnu::always_inline]] inline void load_lanes(Lanes& lanes, const float* from) {
    std::memcpy(&lanes, from, sizeof lanes);
}

template <int kImages, int kUnits>
[[gnu::always_inline]] inline void dot_block(int64_t I, int64_t U, const float* x, const float* w, float* y) {
    Lanes sum[kImages][kUnits] = {};
    const int64_t whole = I / 16 * 16;
    for (int64_t i = 0; i < whole; i += 16) {
        Lanes xs[kImages];
        for (int n = 0; n < kImages; ++n) load_lanes(xs[n], x + n * I + i);
        for (int u = 0; u < kUnits; ++u) {
            Lanes ws;
            load_lanes(ws, w + u * I + i);
            for (int n = 0; n < kImages; ++n) sum[n][u] += ws * xs[n];
        }
    }
    for (int n = 0; n < kImages; ++n)
        for (int u = 0; u < kUnits; ++u) {
            float total = 0.0f;
            for (int k = 0; k < 16; ++k) total += sum[n][u][k];
            for (int64_t i = whole; i < I; ++i) total += w[u * I + i] * x[n * I + i];
            y[n * U + u] = total;
        }
}

// Units [first, last) of kImages images, four rows at a time.
template <int kImages>
[[gnu::always_inline]] inline void dot_units(int64_t I, int64_t U, const float* x, const float* w, float* y,
                                             int64_t first, int64_t last) {
    int64_t u = first;
    for (; u + 4 <= last; u += 4) dot_block<kImages, 4>(I, U, x, w + u * I, y + u);
    for (; u < last; ++u) dot_block<kImages, 1>(I, U, x, w + u * I, y + u);
}

}  // namespace

int64_t dense_int8_prepared_floats(int64_t I, int64_t U) {
    return int8_prepared(I, U).floats;
}

void dense_int8_prepare(int64_t I, int64_t U, Int8Quant in, const float* w, const float* b, float* prepared) {
    const Int8Prepared p = int8_prepared(I, U);
    std::vector<float> weight_scales(static_cast<size_t>(U));
    int8_row_scales(w, U, I, weight_scales.data(), int8_weight_levels());
    quantize_rows(w, U, I, weight_scales.data(), reinterpret_cast<int8_t*>(prepared + p.weights));
    for (int64_t u = 0; u < U; ++u) {
        prepared[u] = in.scale * weight_scales[static_cast<size_t>(u)];
        prepared[p.bias + u] = (b ? b[u] : 0.0f) / prepared[u];
    }
}

int64_t dense_int8_workspace(int64_t N, int64_t I, int64_t U, bool is_unsigned) {
    return int8_floats(N * I) + floats_of(int8_matmul_for(N, I, U, is_unsigned)->pd.scratchpad_desc());
}

void dense_int8_forward(int64_t N, int64_t I, int64_t U, const float* x, const ActivationSpec& act, float* y,
                        float* workspace, const Int8Io& io, const float* prepared) {
    const Int8Prepared p = int8_prepared(I, U);
    const Int8Quant& in = io.in;
    const auto type = in.is_unsigned ? memory::data_type::u8 : memory::data_type::s8;
    memory xq(matrix(N, I, type), cpu_engine(), io.in_stored ? const_cast<float*>(x) : workspace);
    if (!io.in_stored) {
        memory from(matrix(N, I, f32), cpu_engine(), const_cast<float*>(x));
        quantize_for(N, I, in)->execute(cpu_stream(), from, xq);
    }
    const auto constant = [](const memory::desc& d, const float* data) {
        return memory(d, cpu_engine(), const_cast<float*>(data));
    };
    const auto m = int8_matmul_for(N, I, U, in.is_unsigned);
    m->primitive.execute(
        cpu_stream(),
        {{DNNL_ARG_SRC, xq},
         {DNNL_ARG_SCRATCHPAD, memory(m->pd.scratchpad_desc(), cpu_engine(), workspace + int8_floats(N * I))},
         {DNNL_ARG_WEIGHTS, constant(matrix(U, I, memory::data_type::s8, true), prepared + p.weights)},
         {DNNL_ARG_BIAS, constant(memory::desc({1, U}, f32, tag::ab), prepared + p.bias)},
         {DNNL_ARG_DST, memory(matrix(N, U, f32), cpu_engine(), y)},
         {DNNL_ARG_ATTR_OUTPUT_SCALES, constant(memory::desc({U}, f32, tag::x), prepared)}});
    cpu_stream().wait();
    apply_activation(act, y, N, U, 1);
}

int64_t dense_packed_floats(int64_t I, int64_t U, bool bias, const ActivationSpec& act) {
    return floats_of(packed_matmul_for(I, U, bias, act)->pd.weights_desc());
}

int64_t dense_packed_workspace(int64_t I, int64_t U, bool bias, const ActivationSpec& act) {
    return floats_of(packed_matmul_for(I, U, bias, act)->pd.scratchpad_desc());
}

void dense_pack_weights(int64_t I, int64_t U, bool bias, const ActivationSpec& act, const float* w,
                        float* packed) {
    memory plain(matrix(U, I, f32, true), cpu_engine(), const_cast<float*>(w)),
        to(packed_matmul_for(I, U, bias, act)->pd.weights_desc(), cpu_engine(), packed);
    dnnl::reorder(plain, to).execute(cpu_stream(), plain, to);
    cpu_stream().wait();
}

void dense_packed_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* packed,
                          const float* b, const ActivationSpec& act, float* y, float* workspace) {
    const auto m = packed_matmul_for(I, U, b != nullptr, act);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(matrix(N, I, f32), cpu_engine(), const_cast<float*>(x))},
        {DNNL_ARG_SCRATCHPAD, memory(m->pd.scratchpad_desc(), cpu_engine(), workspace)},
        {DNNL_ARG_WEIGHTS, memory(m->pd.weights_desc(), cpu_engine(), const_cast<float*>(packed))},
        {DNNL_ARG_DST, memory(matrix(N, U, f32), cpu_engine(), y)}};
    if (b) args.emplace(DNNL_ARG_BIAS, memory({{1, U}, f32, tag::ab}, cpu_engine(), const_cast<float*>(b)));
    m->primitive.execute(cpu_stream(), args);
    cpu_stream().wait();
    if (!fusable(act) || applied_after(act)) apply_activation(act, y, N, U, 1);
}

void dense_rows_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* w, const float* b,
                        const ActivationSpec& act, float* y) {
    // Blocks of 64 units: a unit's row is read once per pass over the images it is given.
    constexpr int64_t kBlock = 64;
    const int64_t blocks = (U + kBlock - 1) / kBlock;
    for (int64_t n0 = 0; n0 < N; n0 += kRowMajorImages) {
        const int64_t images = std::min(kRowMajorImages, N - n0);
        const auto dot = images == 1   ? VectorBuilds<&dot_units<1>>::best()
                         : images == 2 ? VectorBuilds<&dot_units<2>>::best()
                         : images == 3 ? VectorBuilds<&dot_units<3>>::best()
                                       : VectorBuilds<&dot_units<4>>::best();
        const float* xs = x + n0 * I;
        float* ys = y + n0 * U;
#pragma omp parallel for schedule(static) if (I * U >= (1 << 16))
        for (int64_t block = 0; block < blocks; ++block)
            dot(I, U, xs, w, ys, block * kBlock, std::min(U, (block + 1) * kBlock));
    }
    if (b)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t u = 0; u < U; ++u) y[n * U + u] += b[u];
    apply_activation(act, y, N, U, 1);
}

int64_t dense_workspace(int64_t N, int64_t I, int64_t U, bool training, Precision precision) {
    if (precision != Precision::bf16) return 0;
    return bf16_floats(N * I) + bf16_floats(U * I) + (training ? bf16_floats(N * U) : 0);
}

int64_t dense_prepared_floats(int64_t I, int64_t U, Precision precision) {
    return precision == Precision::bf16 ? bf16_floats(U * I) : 0;
}

void dense_prepare_weights(int64_t I, int64_t U, Precision precision, const float* w, float* prepared) {
    if (precision != Precision::bf16) return;
    to_bf16(w, U, I, prepared);
    cpu_stream().wait();
}

void dense_forward(int64_t N, int64_t I, int64_t U, const float* x, const float* w, const float* b,
                   const ActivationSpec& act, float* y, float* workspace, Precision precision,
                   const float* prepared) {
    if (precision == Precision::bf16) {
        float* w_copy = prepared ? const_cast<float*>(prepared) : workspace + bf16_floats(N * I);
        const memory xb = to_bf16(x, N, I, workspace);
        if (!prepared) to_bf16(w, U, I, w_copy);
        const memory::desc w_t = matrix(U, I, bf16, true), y_desc = matrix(N, U, f32);
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xb},
                                             {DNNL_ARG_WEIGHTS, memory(w_t, cpu_engine(), w_copy)},
                                             {DNNL_ARG_DST, memory(y_desc, cpu_engine(), y)}};
        if (b)
            args.emplace(DNNL_ARG_BIAS, memory({{1, U}, f32, tag::ab}, cpu_engine(), const_cast<float*>(b)));
        matmul_for(xb.get_desc(), w_t, y_desc, b != nullptr, false)->primitive.execute(cpu_stream(), args);
        cpu_stream().wait();
    } else {
        // y = x w^T, with the bias broadcast in first so the GEMM adds onto it (beta = 1).
        for (int64_t n = 0; n < N; ++n)
            for (int64_t u = 0; u < U; ++u) y[n * U + u] = b ? b[u] : 0.0f;
        gemm(false, true, N, U, I, 1.0f, x, I, w, I, 1.0f, y, U);
    }
    apply_activation(act, y, N, U, 1);
}

void dense_backward(int64_t N, int64_t I, int64_t U, const float* x, const float* dy, const float* w,
                    float* dx, float* dw, float* db, float* workspace, Precision precision) {
    if (db)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t u = 0; u < U; ++u) db[u] += dy[n * U + u];
    if (precision == Precision::f32) {
        gemm(true, false, U, I, N, 1.0f, dy, U, x, I, 1.0f, dw, I);  // dw += dy^T x
        if (dx)
            gemm(false, false, N, I, U, 1.0f, dy, U, w, I, 0.0f, dx, I);  // dx = dy w, after dw has read x
        return;
    }
    float* w_copy = workspace + bf16_floats(N * I);
    float* dy_copy = w_copy + bf16_floats(U * I);
    const memory xb = to_bf16(x, N, I, workspace), dyb = to_bf16(dy, N, U, dy_copy);
    const memory::desc dy_t = matrix(N, U, bf16, true), dw_desc = matrix(U, I, f32);
    memory dw_mem(dw_desc, cpu_engine(), dw);
    matmul_for(dy_t, xb.get_desc(), dw_desc, false, true)
        ->primitive.execute(cpu_stream(), {{DNNL_ARG_SRC, memory(dy_t, cpu_engine(), dy_copy)},
                                           {DNNL_ARG_WEIGHTS, xb},
                                           {DNNL_ARG_DST, dw_mem}});
    if (dx) {  // dx = dy w, after dw has read x (the bf16 copy of it, in fact)
        const memory wb = to_bf16(w, U, I, w_copy);
        const memory::desc dx_desc = matrix(N, I, f32);
        matmul_for(dyb.get_desc(), wb.get_desc(), dx_desc, false, false)
            ->primitive.execute(cpu_stream(), {{DNNL_ARG_SRC, dyb},
                                               {DNNL_ARG_WEIGHTS, wb},
                                               {DNNL_ARG_DST, memory(dx_desc, cpu_engine(), dx)}});
    }
    cpu_stream().wait();
}

}  // namespace lenz::cpu
