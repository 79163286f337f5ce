// Options several subcommands share, and helpers to print tables.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "lenz/checkpoint.h"
#include "lenz/data.h"
#include "lenz/engine.h"
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

// "--data" with the data sets it understands, explained once, and --skip-bad-images, which sets
// the process's default for every image folder the command loads.
inline CLI::Option* add_data_option(CLI::App* cmd, std::string& data) {
    cmd->add_flag_callback(
        "--skip-bad-images", [] { set_skip_bad_images_default(true); },
        "image folders: leave out image files that cannot be read (each listed on stderr, counted in "
        "the data set's description) instead of stopping at the first");
    return cmd->add_option(
        "--data", data,
        "fashion-mnist (default, Debian package dataset-fashion-mnist), mnist, a folder with the "
        "four IDX files, or an image folder (one sub-folder per class, with train/ and test/)");
}

// "--dtype": the precision of convolutions and matrix products. Checked here against the CPU, so
// that a run stops before it loads anything.
inline CLI::Option* add_dtype_option(CLI::App* cmd, std::string& dtype, bool inference = false) {
    if (!inference)
        return cmd
            ->add_option(
                "--dtype", dtype,
                "float32 (default) or bf16: convolutions and dense layers multiply in bf16 and add up "
                "in float32; needs AVX512-BF16 or AMX")
            ->check(CLI::IsMember({"float32", "bf16", "bfloat16"}));
    return cmd
        ->add_option(
            "--dtype", dtype,
            "float32, bf16 (convolutions and dense layers multiply in bf16, add up in float32; needs "
            "AVX512-BF16 or AMX) or int8 (a model quantised by lenz quantize); default: int8 for a "
            "quantised model, float32 otherwise")
        ->check(CLI::IsMember({"float32", "bf16", "bfloat16", "int8"}));
}
inline Precision precision_of(const std::string& dtype) {
    const Precision p = parse_precision(dtype);
    require_precision(p);
    return p;
}
// What an inference command runs `model` in: --dtype, or int8 for a quantised model and float32
// for others where --dtype was not given (empty).
inline Precision precision_for(const std::string& dtype, const Model& model) {
    if (dtype.empty()) return model.calibrated() ? Precision::int8 : Precision::f32;
    return precision_of(dtype);
}

}  // namespace lenz::cli
