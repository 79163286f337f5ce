// Lenz's own loops (activations, pooling, copies) are built for AVX-512, AVX2 and the baseline, and
// each call site picks the CPU's best once. The library as a whole is built for the baseline, so a
// loop gets wide vectors only inside a function that carries a target attribute. Not with
// target_clones: its ifunc resolvers run before the sanitizers' runtimes start, and crashed every
// sanitizer build. OpenMP's outlined loops do not inherit a target either, so the unit a caller
// hands its threads is the targeted function itself.
#pragma once

namespace lenz::cpu {

enum class VectorIsa { baseline, avx2, avx512 };

// The level oneDNN runs at, which DNNL_MAX_CPU_ISA lowers: the kernel tests run at AVX2 and SSE4.1
// too, and cover each version so.
VectorIsa vector_isa();
// Whether oneDNN runs bf16 convolutions and matrix products in hardware here (AVX512-BF16 or AMX),
// and int8 ones (SSE4.1 and up, fastest with VNNI or AMX); the CPU's best level, in words.
bool has_bf16_kernels();
bool has_int8_kernels();
const char* isa_description();

// One of three builds of the same function, for vector_isa().
template <class Fn>
Fn for_this_cpu(Fn avx512, Fn avx2, Fn baseline) {
    switch (vector_isa()) {
        case VectorIsa::avx512:
            return avx512;
        case VectorIsa::avx2:
            return avx2;
        case VectorIsa::baseline:
            break;
    }
    return baseline;
}

// The three builds of Body, a function marked [[gnu::always_inline]] (so that each build compiles
// it for its own target): VectorBuilds<&body>::best() is the one for this CPU.
template <auto Body>
struct VectorBuilds;
template <class... Args, void (*Body)(Args...)>
struct VectorBuilds<Body> {
    using Fn = void (*)(Args...);
    __attribute__((target("avx512f,avx512bw,fma"))) static void avx512(Args... args) { Body(args...); }
    __attribute__((target("avx2,fma"))) static void avx2(Args... args) { Body(args...); }
    static void baseline(Args... args) { Body(args...); }
    static Fn best() { return for_this_cpu<Fn>(&avx512, &avx2, &baseline); }
};

}  // namespace lenz::cpu
