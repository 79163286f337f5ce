#include "lenz/precision.h"

#include <algorithm>
#include <cmath>

#include "lenz/error.h"

namespace lenz {

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

Int8Quant int8_quant(float min, float max) {
    const bool is_unsigned = min >= 0.0f;
    const float largest = std::max(std::fabs(min), std::fabs(max));
    if (!(largest > 0.0f) || !std::isfinite(largest)) return {1.0f, is_unsigned};
    return {largest / (is_unsigned ? 255.0f : 127.0f), is_unsigned};
}

}  // namespace lenz
