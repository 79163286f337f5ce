#include "kernels/cpu/dense.h"

#include <string>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/onednn.h"

namespace lenz::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32, bf16 = memory::data_type::bf16;

// A row-major (rows, cols) matrix, or read transposed: (cols, rows) over the same memory.
memory::desc matrix(int64_t rows, int64_t cols, memory::data_type type, bool transposed = false) {
    return transposed ? memory::desc({cols, rows}, type, tag::ba) : memory::desc({rows, cols}, type, tag::ab);
}

// C (M, N) = A (M, K) · B (K, N) on bf16 operands, into float32 C, plus C's old value when
// `accumulate`. A and B are given as the bf16 matrices' descriptors (possibly transposed views).
struct Matmul {
    dnnl::matmul primitive;
};
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
        return Matmul{dnnl::matmul(dnnl::matmul::primitive_desc(d, attr, cpu_engine()))};
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

}  // namespace

int64_t dense_workspace(int64_t N, int64_t I, int64_t U, bool training, Precision precision) {
    if (precision == Precision::f32) return 0;
    return bf16_floats(N * I) + bf16_floats(U * I) + (training ? bf16_floats(N * U) : 0);
}

int64_t dense_prepared_floats(int64_t I, int64_t U, Precision precision) {
    return precision == Precision::bf16 ? bf16_floats(U * I) : 0;
}

void dense_prepare_weights(int64_t I, int64_t U, Precision precision, const float* w, float* prepared) {
    if (precision == Precision::f32) return;
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
