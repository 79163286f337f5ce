// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace lenz::cli {

using Runner = std::function<int()>;

void add_summary(CLI::App& app, Runner& run);
void add_train(CLI::App& app, Runner& run);
void add_eval(CLI::App& app, Runner& run);
void add_predict(CLI::App& app, Runner& run);
void add_bench(CLI::App& app, Runner& run);
void add_visualize(CLI::App& app, Runner& run);
void add_export(CLI::App& app, Runner& run);
void add_import(CLI::App& app, Runner& run);

}  // namespace lenz::cli
