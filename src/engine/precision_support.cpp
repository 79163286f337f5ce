// Which precisions this CPU runs, as the kernels see it.
#include <string>

#include "kernels/cpu/vector_isa.h"
#include "lenz/engine.h"
#include "lenz/error.h"

namespace lenz {

bool cpu_supports(Precision precision) {
    switch (precision) {
        case Precision::f32:
            return true;
        case Precision::bf16:
            return cpu::has_bf16_kernels();
        case Precision::int8:
            return cpu::has_int8_kernels();
    }
    return false;
}

void require_precision(Precision precision) {
    if (cpu_supports(precision)) return;
    throw Error(std::string(precision_name(precision)) +
                (precision == Precision::int8 ? " needs a CPU with SSE4.1 or later"
                                              : " needs a CPU with AVX512-BF16 or AMX") +
                "; this one goes up to " + cpu::isa_description() + " (use --dtype float32)");
}

}  // namespace lenz
