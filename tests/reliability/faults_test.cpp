// Faults while `lenz train` runs, tested on the real binary (LENZ_BINARY) as a child process:
//   - SIGKILL at random moments, many times, checkpoint writes slowed down so that kills land
//     mid-write: model.safetensors always loads, and resuming after every kill ends at the very
//     weights of a run that was never killed;
//   - Ctrl-C (SIGINT): a checkpoint, exit status 130, a line saying how to resume, and the resume;
//   - a diverging learning rate: exit 1 with epoch, batch and advice, checkpoint untouched.
// The data is a small synthetic IDX folder, so the tests need no data set package and run fast.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "lenz/checkpoint.h"
#include "lenz/error.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::TempDir;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void write_be32(std::ofstream& f, uint32_t v) {
    const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    f.write(b, 4);
}

// Four classes of 12x12 images, each a bright square in its own quadrant plus noise: learnable in
// a few epochs, so the run does real work, and quick to load.
void write_idx_pair(const std::string& dir, const std::string& prefix, uint32_t count, uint32_t seed) {
    std::mt19937 rng(seed);
    std::ofstream images(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary);
    std::ofstream labels(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary);
    write_be32(images, 0x803);
    write_be32(images, count);
    write_be32(images, 12);
    write_be32(images, 12);
    write_be32(labels, 0x801);
    write_be32(labels, count);
    for (uint32_t n = 0; n < count; ++n) {
        const int label = static_cast<int>(rng() % 4);
        labels.put(static_cast<char>(label));
        for (int y = 0; y < 12; ++y)
            for (int x = 0; x < 12; ++x) {
                const bool lit = (y / 6) * 2 + (x / 6) == label;
                images.put(static_cast<char>((lit ? 160 : 20) + rng() % 80));
            }
    }
}

struct Fixture {
    TempDir dir;
    std::string model = dir.file("tiny.lenz");
    std::string data = dir.file("data");
    Fixture() {
        std::ofstream(model)
            << "input 12x12x1\nconv 4 3x3 relu\nmaxpool 2\nflatten\ndropout 0.1\ndense 4 softmax\n";
        fs::create_directories(data);
        write_idx_pair(data, "train", 600, 1);
        write_idx_pair(data, "t10k", 120, 2);
    }
    // The arguments every run shares; resume must repeat them.
    std::vector<std::string> train_args(int epochs) const {
        return {"train",   model,          "--data", data,       "--limit-train",
                "512",     "--limit-test", "100",    "--epochs", std::to_string(epochs),
                "--batch", "32",           "--seed", "3"};
    }
};

// Starts LENZ_BINARY with `args`; stdout and stderr go to `log`. `slow_ms` sets the slow-checkpoint hook.
pid_t spawn(const std::vector<std::string>& args, const std::string& log, int slow_ms = 0) {
    // Everything is prepared before fork: other tests in this binary leave OpenMP threads behind,
    // so the child may only make async-signal-safe calls (open, dup2, execve).
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "LENZ_TEST_SLOW_CHECKPOINT=", 26) != 0) env_strings.emplace_back(*e);
    if (slow_ms > 0) env_strings.push_back("LENZ_TEST_SLOW_CHECKPOINT=" + std::to_string(slow_ms));
    std::vector<char*> envp, argv{const_cast<char*>(LENZ_BINARY)};
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(LENZ_BINARY, argv.data(), envp.data());
    ::_exit(127);
}

// Exit status, or 128 + signal, as a shell reports it.
int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_to_end(const std::vector<std::string>& args, const std::string& log) {
    return wait_for(spawn(args, log));
}

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

std::vector<std::string> with(std::vector<std::string> args, std::initializer_list<std::string> more) {
    args.insert(args.end(), more);
    return args;
}

// Every tensor (weights, batch-norm statistics, optimizer state), byte for byte.
void expect_same_tensors(const std::string& a_path, const std::string& b_path) {
    const CheckpointFile a = read_checkpoint(a_path), b = read_checkpoint(b_path);
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (const auto& [name, t] : a.tensors) {
        auto it = b.tensors.find(name);
        ASSERT_NE(it, b.tensors.end()) << name;
        ASSERT_EQ(t.end - t.begin, it->second.end - it->second.begin) << name;
        EXPECT_EQ(std::memcmp(a.data.data() + t.begin, b.data.data() + it->second.begin,
                              static_cast<size_t>(t.end - t.begin)),
                  0)
            << name << " differs";
    }
    EXPECT_EQ(a.meta("step"), b.meta("step"));
    EXPECT_EQ(a.meta("epoch"), b.meta("epoch"));
}

TEST(Faults, SigkillDuringTrainingAndCheckpointWritesLosesNothing) {
    Fixture fx;
    constexpr int kEpochs = 40;
    const std::string straight = fx.dir.file("straight");
    ASSERT_EQ(
        run_to_end(with(fx.train_args(kEpochs), {"--out", straight, "--quiet"}), fx.dir.file("straight.log")),
        0)
        << read_text(fx.dir.file("straight.log"));

    const std::string out = fx.dir.file("killed");
    const std::string checkpoint = out + "/model.safetensors";
    const unsigned seed = std::random_device{}();
    SCOPED_TRACE("kill timing seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    int kills = 0, mid_write = 0, finished_early = 0;
    int64_t last_step = 0;
    for (int i = 0; i < 30; ++i) {
        const bool resume = fs::exists(checkpoint);
        const auto args = with(fx.train_args(kEpochs), {resume ? "--resume" : "--out", out, "--quiet"});
        const pid_t pid = spawn(args, fx.dir.file("killed.log"), 15);
        // Most kills after start-up (about 50 ms), some during it; each run gets a few epochs in.
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 400));
        bool writing = false;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(out, ec))
            writing |= e.path().filename().string().find(".tmp.") != std::string::npos;
        ::kill(pid, SIGKILL);
        const int status = wait_for(pid);
        if (status == 0) {
            ++finished_early;  // it finished before the kill: nothing left to interrupt
            break;
        }
        ASSERT_EQ(status, 128 + SIGKILL) << read_text(fx.dir.file("killed.log"));
        ++kills;
        mid_write += writing;
        if (!fs::exists(checkpoint)) continue;  // killed before the first checkpoint
        try {
            const LoadedModel loaded = load_model(checkpoint);
            EXPECT_GE(loaded.info.step, last_step) << "the checkpoint went backwards after kill " << kills;
            last_step = loaded.info.step;
        } catch (const Error& e) {
            FAIL() << "after kill " << kills << " the checkpoint does not load: " << e.what();
        }
    }
    std::printf(
        "[          ] %d kills (%d while a checkpoint was being written), last checkpoint at step %lld\n",
        kills, mid_write, static_cast<long long>(last_step));
    EXPECT_GE(kills + finished_early, 1);

    // Resume to the end: the same weights and optimizer state as the run that was never killed.
    const bool resume = fs::exists(checkpoint);
    ASSERT_EQ(run_to_end(with(fx.train_args(kEpochs), {resume ? "--resume" : "--out", out, "--quiet"}),
                         fx.dir.file("final.log")),
              0)
        << read_text(fx.dir.file("final.log"));
    expect_same_tensors(straight + "/model.safetensors", checkpoint);
    for (const auto& e : fs::directory_iterator(out))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos)
            << "left behind: " << e.path();
}

TEST(Faults, CtrlCCheckpointsExits130AndSaysHowToResume) {
    Fixture fx;
    constexpr int kEpochs = 400;  // far more than it gets through before the signal
    const std::string out = fx.dir.file("run");
    const std::string log = fx.dir.file("sigint.log");
    const pid_t pid = spawn(with(fx.train_args(kEpochs), {"--out", out}), log);
    // The handler is installed once training starts; the first checkpoint proves it has.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!fs::exists(out + "/model.safetensors") && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(30ms);  // usually mid-epoch
    ::kill(pid, SIGINT);
    ASSERT_EQ(wait_for(pid), 130) << read_text(log);
    const std::string text = read_text(log);
    EXPECT_NE(text.find("interrupted: training stopped"), std::string::npos) << text;
    EXPECT_NE(text.find("lenz train " + fx.model + " --resume " + out), std::string::npos) << text;
    const LoadedModel stopped = load_model(out + "/model.safetensors");
    EXPECT_GT(stopped.info.step, 0);

    // Resuming continues from there; with --epochs at the stop's epoch + 1 it ends after that epoch.
    const std::string resume_log = fx.dir.file("resume.log");
    const auto args = with(fx.train_args(static_cast<int>(stopped.info.epoch) + 1), {"--resume", out});
    ASSERT_EQ(run_to_end(args, resume_log), 0) << read_text(resume_log);
    EXPECT_NE(read_text(resume_log).find("resuming"), std::string::npos) << read_text(resume_log);
    EXPECT_EQ(load_model(out + "/model.safetensors").info.epoch, stopped.info.epoch + 1);
}

TEST(Faults, SigtermCheckpointsLikeCtrlCAndExits143) {
    Fixture fx;
    const std::string out = fx.dir.file("run");
    const std::string log = fx.dir.file("sigterm.log");
    const pid_t pid = spawn(with(fx.train_args(400), {"--out", out}), log);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!fs::exists(out + "/model.safetensors") && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(30ms);
    ::kill(pid, SIGTERM);  // what `kill` and job schedulers send
    ASSERT_EQ(wait_for(pid), 128 + SIGTERM) << read_text(log);
    EXPECT_NE(read_text(log).find("--resume " + out), std::string::npos) << read_text(log);
    EXPECT_GT(load_model(out + "/model.safetensors").info.step, 0);
}

TEST(Faults, DivergingLossStopsWithEpochBatchAndAdviceAndKeepsTheCheckpoint) {
    Fixture fx;
    const std::string out = fx.dir.file("run");
    ASSERT_EQ(run_to_end(with(fx.train_args(1), {"--out", out, "--quiet"}), fx.dir.file("ok.log")), 0)
        << read_text(fx.dir.file("ok.log"));
    const std::string before = read_text(out + "/model.safetensors");
    const std::string log = fx.dir.file("nan.log");
    const int status = run_to_end(with(fx.train_args(2), {"--out", out, "--quiet", "--optimizer", "sgd",
                                                          "--lr", "1e38", "--warmup", "0"}),
                                  log);
    const std::string text = read_text(log);
    EXPECT_EQ(status, 1) << text;
    EXPECT_NE(text.find("at epoch 1, batch"), std::string::npos) << text;
    EXPECT_NE(text.find("lower learning rate"), std::string::npos) << text;
    EXPECT_EQ(read_text(out + "/model.safetensors"), before);
}

}  // namespace
}  // namespace lenz
