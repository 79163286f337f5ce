// Options several subcommands share, and helpers to print tables.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "lenz/checkpoint.h"
#include "lenz/data.h"
#include "lenz/model.h"
#include "lenz/onnx.h"
#include "lenz/precision.h"

namespace lenz::cli {

// A number above zero. CLI11's own PositiveNumber names its bound as the largest double, 300 digits long.
inline const CLI::Validator positive_number(
    [](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "'" + text + "' is not a number";
        return value > 0 ? std::string() : "must be greater than 0, got " + text;
    },
    "> 0", "POSITIVE");

// "--data" with the data sets it understands, explained once.
inline CLI::Option* add_data_option(CLI::App* cmd, std::string& data) {
    return cmd->add_option(
        "--data", data,
        "fashion-mnist (default, Debian package dataset-fashion-mnist), mnist, a folder with the "
        "four IDX files, or an image folder (one sub-folder per class, with train/ and test/)");
}

// "--dtype": the precision of convolutions and matrix products. Checked here against the CPU, so
// that a run stops before it loads anything.
inline CLI::Option* add_dtype_option(CLI::App* cmd, std::string& dtype) {
    return cmd
        ->add_option("--dtype", dtype,
                     "float32 (default) or bf16: convolutions and dense layers multiply in bf16 and add up "
                     "in float32; needs AVX512-BF16 or AMX")
        ->check(CLI::IsMember({"float32", "bf16", "bfloat16"}));
}
inline Precision precision_of(const std::string& dtype) {
    const Precision p = parse_precision(dtype);
    require_precision(p);
    return p;
}

}  // namespace lenz::cli
