// The arithmetic precision the engine runs convolutions and matrix products in.
#pragma once
#include <string>

namespace lenz {

// bf16: mixed precision. Convolutions and dense layers multiply bf16 copies of their inputs and
// weights and add up in float32; everything else (activations in memory, batch norm, softmax,
// the loss, weights and optimizer state) stays float32.
// int8: inference only, on a calibrated model (lenz quantize). Convolutions and dense layers
// multiply int8 copies of their inputs (one scale per tensor, from the calibrated range) and of
// their weights (one scale per output channel), add up in int32, and write float32.
enum class Precision { f32, bf16, int8 };

// "float32", "bf16" or "int8", as the command line and checkpoints spell them.
const char* precision_name(Precision precision);
// Reads "float32"/"f32", "bf16"/"bfloat16" or "int8"; throws Error naming the choices for anything else.
Precision parse_precision(const std::string& name);

// Whether this CPU runs `precision` in hardware (bf16: AVX512-BF16 or AMX; int8: oneDNN's integer
// kernels, from SSE4.1 up, fastest with VNNI or AMX), as oneDNN sees it, DNNL_MAX_CPU_ISA included.
bool cpu_supports(Precision precision);
// Throws Error in one line, naming what the CPU has, unless cpu_supports(precision).
void require_precision(Precision precision);

}  // namespace lenz
