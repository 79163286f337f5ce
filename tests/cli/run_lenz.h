// Runs the `lenz` binary under test as a user would (or another command), capturing what it prints.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace lenz::testing {

// The model most CLI tests train and run.
inline const std::string kFashion = LENZ_SOURCE_DIR "/models/fashion.lenz";

struct CommandResult {
    int status;       // exit status, or 128 + signal
    std::string out;  // stdout and stderr together
};

// Any command line, through the shell.
inline CommandResult run_command(const std::string& command) {
    const std::string cmd = command + " 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (!pipe) return {-1, "popen failed"};
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

inline CommandResult run_lenz(const std::string& args) {
    return run_command(std::string(LENZ_BINARY) + " " + args);
}

}  // namespace lenz::testing
