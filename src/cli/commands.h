// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

#include "lenz/error.h"

namespace lenz::cli {

using Runner = std::function<int()>;

// A bad value on the command line found only once the command runs (e.g. a layer name the model
// does not have): main prints it like CLI11's own and exits 2.
struct UsageError : Error {
    using Error::Error;
};

void add_summary(CLI::App& app, Runner& run);
void add_train(CLI::App& app, Runner& run);
void add_eval(CLI::App& app, Runner& run);
void add_predict(CLI::App& app, Runner& run);
void add_segment(CLI::App& app, Runner& run);
void add_bench(CLI::App& app, Runner& run);
void add_visualize(CLI::App& app, Runner& run);
void add_export(CLI::App& app, Runner& run);
void add_import(CLI::App& app, Runner& run);
void add_run(CLI::App& app, Runner& run);
void add_quantize(CLI::App& app, Runner& run);

}  // namespace lenz::cli
