// The `lenz` command: parses the command line, runs one subcommand, turns errors into one line.
// Exit status, as Unix tools have it: 0 success, 1 an error while running, 2 a usage error (an
// unknown command or option, a bad or missing value), 128 + the signal after Ctrl-C or SIGTERM.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <regex>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/ranks.h"
#include "lenz/threads.h"

namespace {

constexpr int kUsageError = 2;

std::string command_names(CLI::App& app) {
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({}))
        names += (names.empty() ? "" : ", ") + sub->get_name();
    return names;
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "lenz: error: %s\n", message.c_str());
    return kUsageError;
}

// "rank 1 of 3: " under MPI. Joining the ranks may itself be the error (a build without MPI started
// as one of several ranks), so asking again must not throw from the handler.
std::string rank_prefix() {
    try {
        return lenz::Ranks::world().prefix();
    } catch (const lenz::Error&) {
        return "";
    }
}

// Edits between two words, a swap of neighbours counting as one ("trian" is one from "train").
size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
        for (size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

// " (did you mean --epochs?)" where one of `names` is near `word`, as git and cargo suggest: at most
// two edits, and fewer than half the word's letters; "" where none is.
std::string suggestion(const std::string& word, const std::vector<std::string>& names) {
    const std::string bare = word.substr(0, word.find('='));
    std::string best;
    size_t best_distance = 3;
    for (const std::string& name : names) {
        const size_t distance = edit_distance(bare, name);
        if (distance < best_distance && 2 * distance < bare.size()) {
            best = name;
            best_distance = distance;
        }
    }
    return best.empty() ? "" : " (did you mean " + best + "?)";
}

std::vector<std::string> option_names(const CLI::App& app, const CLI::App* command) {
    std::vector<std::string> names;
    for (const CLI::App* owner : {&app, command})
        if (owner)
            for (const CLI::Option* option : owner->get_options())
                for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    return names;
}

// CLI11's words for a value that is not a number ("Could not convert: --seed = abc", "Value abc not in
// range 1 to 64") say it plainly: "--seed: 'abc' is not a number".
std::string plain_message(const std::string& message) {
    static const std::regex conversion(R"(Could not convert: (--[\w-]+) = (.*))");
    static const std::regex range(R"((--[\w-]+): Value (.*) not in range .*)");
    std::smatch m;
    if (std::regex_match(message, m, conversion))
        return m[1].str() + ": '" + m[2].str() + "' is not a number";
    if (std::regex_match(message, m, range)) {
        char* end = nullptr;
        const std::string value = m[2].str();
        std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0') return m[1].str() + ": '" + value + "' is not a number";
    }
    return message;
}

// `lenz help [COMMAND]`: the same text as --help.
int print_help(CLI::App& app, const std::string& command) {
    if (command.empty()) {
        // Not app.help(): that shows the chosen command's help once a command was parsed.
        std::fputs(app.get_formatter()->make_help(&app, "lenz", CLI::AppFormatMode::Normal).c_str(), stdout);
        return 0;
    }
    for (CLI::App* sub : app.get_subcommands({}))
        if (sub->get_name() == command) {
            std::fputs(sub->help("lenz").c_str(), stdout);
            return 0;
        }
    std::vector<std::string> commands;
    for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
    const std::string near = suggestion(command, commands);
    return usage_error("unknown command '" + command + "'" +
                       (near.empty() ? " (commands: " + command_names(app) + ")" : near));
}

// CLI11 says what is wrong; this puts it on one line with the command it belongs to. Unknown
// options fall through to the top level, where CLI11 would report a missing argument first.
int parse_error(CLI::App& app, const CLI::ParseError& e) {
    const std::vector<CLI::App*> chosen = app.get_subcommands();
    const std::string context = chosen.empty() ? "" : chosen.front()->get_name() + ": ";
    for (const std::string& word : app.remaining())
        if (word.size() > 1 && word[0] == '-')
            return usage_error(
                context + "unknown option '" + word + "'" +
                suggestion(word, option_names(app, chosen.empty() ? nullptr : chosen.front())));
    if (chosen.empty()) {
        // A word that is not a command lands among the unparsed arguments.
        std::vector<std::string> commands;
        for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
        for (const std::string& word : app.remaining())
            if (!word.empty() && word[0] != '-') {
                const std::string near = suggestion(word, commands);
                return usage_error("unknown command '" + word + "'" +
                                   (near.empty() ? " (commands: " + command_names(app) + ")" : near));
            }
        return usage_error(plain_message(e.what()));
    }
    return usage_error(context + plain_message(e.what()) + " (see 'lenz help " + chosen.front()->get_name() +
                       "')");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Lenz: convolutional networks for images, and what they cost", "lenz"};
    app.set_version_flag("--version", "lenz " LENZ_VERSION);
    // Global options work before or after the command: subcommands hand what they do not know up.
    app.fallthrough();
    int thread_count = 0;
    app.add_option("--threads", thread_count, "threads to use (default: every core available)")
        ->check(CLI::Range(0, 1024));
    std::string winograd;
    app.add_option("--winograd", winograd,
                   "Winograd's algorithm for 3x3 convolutions at inference: on (default: F(2x2,3x3) on "
                   "256+ channels), wide (F(4x4,3x3) too: faster, rounds more) or off")
        ->check(CLI::IsMember({"off", "on", "wide"}));
    lenz::cli::Runner run;
    lenz::cli::add_summary(app, run);
    lenz::cli::add_train(app, run);
    lenz::cli::add_eval(app, run);
    lenz::cli::add_predict(app, run);
    lenz::cli::add_segment(app, run);
    lenz::cli::add_bench(app, run);
    lenz::cli::add_visualize(app, run);
    lenz::cli::add_export(app, run);
    lenz::cli::add_import(app, run);
    lenz::cli::add_run(app, run);
    lenz::cli::add_quantize(app, run);
    // Listed with the commands, but read before CLI11 parses: there `lenz help train` would run train.
    app.add_subcommand("help", "Show the help of lenz or of one command: lenz help [COMMAND]")->callback([&] {
        run = [&app] { return print_help(app, ""); };
    });
    // Each command's help lists the global options, except where they change nothing: export and
    // import convert files, sample writes an image, help prints text.
    for (CLI::App* sub : app.get_subcommands({})) {
        const std::string& name = sub->get_name();
        if (name == "export" || name == "import" || name == "sample" || name == "help") continue;
        sub->footer(
            "Global options, anywhere on the line:\n  --threads INT            threads to use (default: "
            "every core)\n"
            "  --winograd off|on|wide   Winograd's algorithm for 3x3 convolutions at inference (default: "
            "on)");
    }
    app.footer("Run 'lenz help COMMAND' for a command's options.");

    if (argc < 2) {
        std::fputs(app.help().c_str(), stdout);
        return kUsageError;  // no command given
    }
    if (std::string(argv[1]) == "help") {
        if (argc > 3) return usage_error("help takes one command at most: lenz help [COMMAND]");
        return print_help(app, argc == 3 ? argv[2] : "");
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return parse_error(app, e);
    }
    if (!run) return usage_error("no command given (commands: " + command_names(app) + ")");
    try {
        // Training, evaluation and benchmarks under an MPI launcher join the other ranks (README "Several
        // machines"); the ranks on one machine share its cores unless --threads says otherwise.
        if (app.got_subcommand("train") || app.got_subcommand("eval") || app.got_subcommand("bench")) {
            const lenz::Ranks& ranks = lenz::Ranks::world();
            if (thread_count == 0 && ranks.distributed()) {
                lenz::set_threads(0);  // every core
                thread_count = std::max(1, lenz::threads() / ranks.local_size());
            }
        }
        lenz::set_threads(thread_count);
        if (!winograd.empty()) lenz::set_winograd(lenz::parse_winograd(winograd));
        return run();
    } catch (const lenz::cli::UsageError& e) {
        return usage_error(e.what());
    } catch (const lenz::Error& e) {
        std::fprintf(stderr, "lenz: error: %s%s\n", rank_prefix().c_str(), e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "lenz: error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lenz: error: %s\n", e.what());
        return 1;
    }
}
