// Which precisions this CPU runs in hardware, asked of oneDNN so that DNNL_MAX_CPU_ISA limits it too.
#include "lenz/precision.h"

#include <dnnl.hpp>

#include "kernels/cpu/vector_isa.h"
#include "lenz/error.h"

namespace lenz {
namespace {

// oneDNN's instruction-set levels are nested bit masks: a level includes every bit of those below it.
bool has(dnnl::cpu_isa effective, dnnl::cpu_isa wanted) {
    const auto e = static_cast<unsigned>(effective), w = static_cast<unsigned>(wanted);
    return (e & w) == w;
}

const char* isa_name(dnnl::cpu_isa isa) {
    using dnnl::cpu_isa;
    if (has(isa, cpu_isa::avx512_core_amx)) return "AMX";
    if (has(isa, cpu_isa::avx512_core_bf16)) return "AVX512-BF16";
    if (has(isa, cpu_isa::avx512_core_vnni)) return "AVX-512 with VNNI, without BF16";
    if (has(isa, cpu_isa::avx512_core)) return "AVX-512, without BF16";
    if (has(isa, cpu_isa::avx2)) return "AVX2";
    if (has(isa, cpu_isa::avx)) return "AVX";
    if (has(isa, cpu_isa::sse41)) return "SSE4.1";
    return "no vector extension oneDNN uses";
}

}  // namespace

const char* precision_name(Precision precision) {
    switch (precision) {
        case Precision::bf16:
            return "bf16";
        case Precision::int8:
            return "int8";
        case Precision::f32:
            break;
    }
    return "float32";
}

Precision parse_precision(const std::string& name) {
    if (name == "float32" || name == "f32") return Precision::f32;
    if (name == "bf16" || name == "bfloat16") return Precision::bf16;
    if (name == "int8") return Precision::int8;
    throw Error("unknown precision '" + name + "' (expected float32, bf16 or int8)");
}

bool cpu_supports(Precision precision) {
    switch (precision) {
        case Precision::f32:
            return true;
        case Precision::bf16:
            return has(dnnl::get_effective_cpu_isa(), dnnl::cpu_isa::avx512_core_bf16);
        case Precision::int8:
            return has(dnnl::get_effective_cpu_isa(), dnnl::cpu_isa::sse41);
    }
    return false;
}

void require_precision(Precision precision) {
    if (cpu_supports(precision)) return;
    throw Error(std::string(precision_name(precision)) +
                (precision == Precision::int8 ? " needs a CPU with SSE4.1 or later"
                                              : " needs a CPU with AVX512-BF16 or AMX") +
                "; this one goes up to " + isa_name(dnnl::get_effective_cpu_isa()) +
                " (use --dtype float32)");
}

}  // namespace lenz

namespace lenz::cpu {

VectorIsa vector_isa() {
    static const VectorIsa isa = [] {
        const dnnl::cpu_isa effective = dnnl::get_effective_cpu_isa();
        if (has(effective, dnnl::cpu_isa::avx512_core)) return VectorIsa::avx512;
        if (has(effective, dnnl::cpu_isa::avx2)) return VectorIsa::avx2;
        return VectorIsa::baseline;
    }();
    return isa;
}

}  // namespace lenz::cpu
