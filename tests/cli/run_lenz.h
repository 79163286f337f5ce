// Runs the `lenz` binary under test as a user would, capturing what it prints.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace lenz::testing {

struct CommandResult {
    int status;       // exit status, or 128 + signal
    std::string out;  // stdout and stderr together
};

inline CommandResult run_lenz(const std::string& args) {
    const std::string cmd = std::string(LENZ_BINARY) + " " + args + " 2>&1";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (!pipe) return {-1, "popen failed"};
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
    const int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

}  // namespace lenz::testing
