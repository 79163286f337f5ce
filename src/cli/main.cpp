// The `lenz` command: parses the command line, runs one subcommand, turns errors into one line.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "lenz/error.h"
#include "lenz/threads.h"

int main(int argc, char** argv) {
    CLI::App app{"Lenz: convolutional networks for images, and what they cost"};
    app.require_subcommand(1);
    int thread_count = 0;
    app.add_option("--threads", thread_count, "threads to use (default: every core available)")
        ->check(CLI::Range(0, 1024));
    lenz::cli::Runner run;
    lenz::cli::add_summary(app, run);
    lenz::cli::add_train(app, run);
    lenz::cli::add_eval(app, run);
    lenz::cli::add_predict(app, run);
    lenz::cli::add_bench(app, run);
    lenz::cli::add_visualize(app, run);
    lenz::cli::add_export(app, run);
    lenz::cli::add_import(app, run);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        lenz::set_threads(thread_count);
        return run();
    } catch (const lenz::Error& e) {
        std::fprintf(stderr, "lenz: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "lenz: error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lenz: error: %s\n", e.what());
        return 1;
    }
}
