// What this CPU runs, asked of oneDNN so that DNNL_MAX_CPU_ISA limits Lenz's own loops too.
#include "kernels/cpu/vector_isa.h"

#include <dnnl.hpp>

namespace lenz::cpu {
namespace {

// oneDNN's instruction-set levels are nested bit masks: a level includes every bit of those below it.
bool has(dnnl::cpu_isa effective, dnnl::cpu_isa wanted) {
    const auto e = static_cast<unsigned>(effective), w = static_cast<unsigned>(wanted);
    return (e & w) == w;
}

}  // namespace

VectorIsa vector_isa() {
    static const VectorIsa isa = [] {
        const dnnl::cpu_isa effective = dnnl::get_effective_cpu_isa();
        if (has(effective, dnnl::cpu_isa::avx512_core)) return VectorIsa::avx512;
        if (has(effective, dnnl::cpu_isa::avx2)) return VectorIsa::avx2;
        return VectorIsa::baseline;
    }();
    return isa;
}

bool has_bf16_kernels() {
    return has(dnnl::get_effective_cpu_isa(), dnnl::cpu_isa::avx512_core_bf16);
}

bool has_int8_kernels() {
    return has(dnnl::get_effective_cpu_isa(), dnnl::cpu_isa::sse41);
}

const char* isa_description() {
    using dnnl::cpu_isa;
    const cpu_isa isa = dnnl::get_effective_cpu_isa();
    if (has(isa, cpu_isa::avx512_core_amx)) return "AMX";
    if (has(isa, cpu_isa::avx512_core_bf16)) return "AVX512-BF16";
    if (has(isa, cpu_isa::avx512_core_vnni)) return "AVX-512 with VNNI, without BF16";
    if (has(isa, cpu_isa::avx512_core)) return "AVX-512, without BF16";
    if (has(isa, cpu_isa::avx2)) return "AVX2";
    if (has(isa, cpu_isa::avx)) return "AVX";
    if (has(isa, cpu_isa::sse41)) return "SSE4.1";
    return "no vector extension oneDNN uses";
}

}  // namespace lenz::cpu
