// The arithmetic precision the engine runs convolutions and matrix products in.
#pragma once
#include <optional>
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

// How a float32 value is held in int8: x ≈ scale · q, q = round(x / scale), clamped to the type's
// range; u8 where calibration never saw the value negative (after a ReLU, which doubles the
// resolution), s8 otherwise. One scale per tensor.
struct Int8Quant {
    float scale = 1;
    bool is_unsigned = false;
};
// The quantisation of a value calibration saw within [min, max].
Int8Quant int8_quant(float min, float max);
// What a layer running in int8 reads and writes: its input's quantisation, whether the input is
// held in int8 already, and the output's quantisation where the output is held in int8 (nullopt:
// float32).
struct Int8Io {
    Int8Quant in;
    bool in_stored = false;
    std::optional<Int8Quant> out;
};

}  // namespace lenz
