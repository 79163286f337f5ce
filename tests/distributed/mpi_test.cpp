// Data-parallel training under mpirun, on the real binary with ranks on this machine:
//   - 2 and 3 ranks end at the weights of one process at the same global batch (float
//     reassociation only), and at its test accuracy;
//   - a batch that does not divide among the ranks is an error that says so;
//   - a rank killed with SIGKILL, or one that stops answering, ends every rank within 30 seconds
//     with a message naming it, and the last checkpoint resumes, on another number of ranks;
//   - Ctrl-C (SIGINT to mpirun) stops every rank at the same step, with one checkpoint.
// Skipped where the build found no MPI (LENZ_MPIEXEC) or Fashion-MNIST is not installed.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cli/run_lenz.h"
#include "lenz/checkpoint.h"
#include "lenz/data.h"

namespace lenz {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::run_command;

const char* kRankModel =
    "input 28x28x1\nconv 8 3 relu\nmaxpool 2\nconv 16 3 relu\nmaxpool 2\nflatten\n"
    "dense 32 relu\ndense 10 softmax\n";  // no batch norm, no dropout: nothing per rank

struct MpiRun : ::testing::Test {
    fs::path dir =
        fs::temp_directory_path() / ("lenz-mpi-" + std::to_string(::getpid()) + "-" +
                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::string model = (dir / "tiny.lenz").string();

    void SetUp() override {
#ifndef LENZ_MPIEXEC
        GTEST_SKIP() << "this build found no MPI (libopenmpi-dev)";
#endif
        if (!fs::exists("/usr/share/datasets/fashion-mnist"))
            GTEST_SKIP() << "dataset-fashion-mnist is missing";
        fs::remove_all(dir);
        fs::create_directories(dir);
        std::ofstream(model) << kRankModel;
    }
    void TearDown() override {
        fs::remove_all(dir);
    }

    // `lenz ARGS` on `ranks` ranks of this machine (mpirun's own options first). Open MPI as root
    // (CI) needs --allow-run-as-root; --oversubscribe lets three ranks share two cores; containers
    // often forbid the cross-process reads its shared-memory transport tries first.
    static std::string mpirun(int ranks, const std::string& args, const std::string& options = "") {
#ifdef LENZ_MPIEXEC
        return std::string(LENZ_MPIEXEC) + " -np " + std::to_string(ranks) +
               " --oversubscribe --allow-run-as-root --bind-to none --mca btl_vader_single_copy_mechanism "
               "none " +
               options + " " + LENZ_BINARY + " " + args;
#else
        return "false " + std::to_string(ranks) + args + options;
#endif
    }
    std::string train_args(const std::string& out, int epochs, int batch, int limit_train) const {
        return "train " + model + " --data fashion-mnist --epochs " + std::to_string(epochs) + " --batch " +
               std::to_string(batch) + " --limit-train " + std::to_string(limit_train) +
               " --limit-test 300 --seed 3 --threads 1 --no-report --quiet --out " + (dir / out).string();
    }
};

double last_test_accuracy(const fs::path& run) {
    std::ifstream f(run / "metrics.jsonl");
    std::string line, last;
    while (std::getline(f, line)) last = line;
    const size_t at = last.find("\"test_accuracy\":");
    return at == std::string::npos ? -1 : std::stod(last.substr(at + 16));
}

// The largest difference between two checkpoints' tensors, relative to each tensor's largest value.
double max_relative_difference(const std::string& a_path, const std::string& b_path) {
    const CheckpointFile a = read_checkpoint(a_path), b = read_checkpoint(b_path);
    double worst = 0;
    for (const auto& [name, t] : a.tensors) {
        const auto& other = b.tensors.at(name);
        const auto* x = reinterpret_cast<const float*>(a.data.data() + t.begin);
        const auto* y = reinterpret_cast<const float*>(b.data.data() + other.begin);
        const int64_t n = (t.end - t.begin) / 4;
        double scale = 1e-30, diff = 0;
        for (int64_t i = 0; i < n; ++i) {
            scale = std::max(scale, std::abs(static_cast<double>(x[i])));
            diff = std::max(diff, std::abs(static_cast<double>(x[i]) - y[i]));
        }
        worst = std::max(worst, diff / scale);
    }
    return worst;
}

TEST_F(MpiRun, TwoAndThreeRanksEndAtTheWeightsOfOneProcess) {
    // 1,280 images at batch 60: 21 full steps and a last one of 20 images, which three ranks share
    // unevenly (6, 7, 7), so the weighting of unequal shares is checked too.
    const auto one = run_command(std::string(LENZ_BINARY) + " " + train_args("one", 1, 60, 1280));
    ASSERT_EQ(one.status, 0) << one.out;
    for (int ranks : {2, 3}) {
        const std::string out = "ranks" + std::to_string(ranks);
        const auto r = run_command(mpirun(ranks, train_args(out, 1, 60, 1280)));
        ASSERT_EQ(r.status, 0) << r.out;
        const double difference = max_relative_difference((dir / "one/model.safetensors").string(),
                                                          (dir / out / "model.safetensors").string());
        std::printf("[          ] %d ranks: weights and optimizer state within %.2g of one process's\n",
                    ranks, difference);
        EXPECT_LE(difference, 1e-5) << ranks << " ranks";
        EXPECT_NEAR(last_test_accuracy(dir / out), last_test_accuracy(dir / "one"), 0.001)
            << ranks << " ranks";
    }
}

TEST_F(MpiRun, SyncBatchnormNormalisesOverTheWholeBatch) {
    // Batch norm over each rank's share (the default, as PyTorch DDP) trains another model than one
    // process does; synchronised, its statistics and their gradients are the whole batch's. Four SGD
    // steps: after more, the tiny biases of batch norm (sums of large terms that cancel) let float
    // reassociation show. On --limit-train's stratified sample of 240 images that is 1.5e-4 after
    // the four steps, against 0.24 for batch norm per rank: 5e-4 keeps a factor of 500 between them.
    std::ofstream(model) << "input 28x28x1\nconv 8 3 nobias\nbatchnorm\nrelu\nmaxpool 2\nconv 16 3 nobias\n"
                            "batchnorm\nrelu\nmaxpool 2\nflatten\ndense 10 softmax\n";
    const std::string sgd = " --optimizer sgd --lr 0.01";
    const auto one = run_command(std::string(LENZ_BINARY) + " " + train_args("one", 1, 60, 240) + sgd);
    ASSERT_EQ(one.status, 0) << one.out;
    const auto own = run_command(mpirun(2, train_args("own", 1, 60, 240) + sgd));
    ASSERT_EQ(own.status, 0) << own.out;
    const auto synced = run_command(mpirun(2, train_args("synced", 1, 60, 240) + sgd + " --sync-batchnorm"));
    ASSERT_EQ(synced.status, 0) << synced.out;
    const std::string reference = (dir / "one/model.safetensors").string();
    const double apart = max_relative_difference(reference, (dir / "own/model.safetensors").string());
    const double together = max_relative_difference(reference, (dir / "synced/model.safetensors").string());
    std::printf("[          ] batch norm per rank: %.2g from one process; synchronised: %.2g\n", apart,
                together);
    EXPECT_GE(apart, 1e-2);
    EXPECT_LE(together, 5e-4);
}

TEST_F(MpiRun, TheOutputFolderNeedOnlyBeOnRankZerosDisk) {
    // Each rank starts in a folder of its own and is given the same relative --out, as on a cluster
    // whose nodes do not share the disk that holds it: rank 0 alone writes, and hands the checkpoint
    // to the others when the run resumes.
    const fs::path first_disk = dir / "rank0", other_disk = dir / "others";
    fs::create_directories(first_disk);
    fs::create_directories(other_disk);
    const std::string wrapper = (dir / "own_disk.sh").string();
    std::ofstream(wrapper) << "#!/bin/sh\nif [ \"$OMPI_COMM_WORLD_RANK\" = 0 ]; then cd "
                           << first_disk.string() << "; else cd " << other_disk.string()
                           << "; fi\nexec \"$@\"\n";
    fs::permissions(wrapper, fs::perms::owner_all);
    const std::string lenz = std::string(LENZ_BINARY);
    const auto on_own_disks = [&](std::string command) {
        return command.replace(command.find(lenz), lenz.size(), wrapper + " " + lenz);
    };
    const std::string train =
        "train " + model +
        " --data fashion-mnist --epochs 1 --batch 60 --limit-train 600 --limit-test 300 "
        "--seed 3 --threads 1 --no-report --quiet --out own";
    const auto r = run_command(on_own_disks(mpirun(2, train)));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_TRUE(fs::exists(first_disk / "own/model.safetensors"));
    EXPECT_FALSE(fs::exists(other_disk / "own"));  // the others wrote nothing
    const auto again = run_command(
        on_own_disks(mpirun(2, "train " + model + " --resume own --epochs 2 --threads 1 --quiet")));
    ASSERT_EQ(again.status, 0) << again.out;
    EXPECT_EQ(load_model((first_disk / "own/model.safetensors").string()).info.epoch, 2);
}

TEST_F(MpiRun, EvalSplitsTheImagesAndRankZeroReportsTheirSums) {
    const auto trained = run_command(std::string(LENZ_BINARY) + " " + train_args("trained", 1, 60, 600));
    ASSERT_EQ(trained.status, 0) << trained.out;
    const std::string eval = "eval " + (dir / "trained/model.safetensors").string() + " --json --threads 1";
    const auto one = run_command(std::string(LENZ_BINARY) + " " + eval);
    ASSERT_EQ(one.status, 0) << one.out;
    const auto three = run_command(mpirun(3, eval));
    ASSERT_EQ(three.status, 0) << three.out;
    // One report (rank 0's), with the same counts as one process's.
    const nlohmann::json a = nlohmann::json::parse(one.out), b = nlohmann::json::parse(three.out);
    EXPECT_EQ(b.at("images"), a.at("images"));
    EXPECT_EQ(b.at("accuracy"), a.at("accuracy"));
    EXPECT_EQ(b.at("confusion"), a.at("confusion"));
    EXPECT_NEAR(b.at("loss").get<double>(), a.at("loss").get<double>(), 1e-9);
}

// A segmentation folder of 16x16 images, each a bright square (class 1) and a dark bar (class 2)
// on grey: every mask pixel counts, so each rank's mean over its pixels weighs as the whole batch's.
void write_segmentation_folder(const fs::path& root, int train, int test) {
    fs::create_directories(root);
    std::ofstream(root / "classes.txt") << "background\nsquare\nbar\n";
    for (const auto& [split, count] : {std::pair<std::string, int>{"train", train}, {"test", test}}) {
        fs::create_directories(root / "images" / split);
        fs::create_directories(root / "masks" / split);
        for (int n = 0; n < count; ++n) {
            Image image{16, 16, 1, std::vector<uint8_t>(256, 120)},
                mask{16, 16, 1, std::vector<uint8_t>(256, 0)};
            for (int y = n % 9; y < n % 9 + 5; ++y)
                for (int x = (3 * n) % 10; x < (3 * n) % 10 + 5; ++x)
                    image.pixels[y * 16 + x] = 230, mask.pixels[y * 16 + x] = 1;
            for (int x = 2; x < 14; ++x)
                image.pixels[(15 - n % 4) * 16 + x] = 20, mask.pixels[(15 - n % 4) * 16 + x] = 2;
            write_png((root / "images" / split / (std::to_string(n) + ".png")).string(), image);
            write_png((root / "masks" / split / (std::to_string(n) + ".png")).string(), mask);
        }
    }
}

TEST_F(MpiRun, SegmentationTrainsAndEvaluatesAsOneProcess) {
    const fs::path data = dir / "shapes";
    write_segmentation_folder(data, 48, 12);
    const std::string seg_model = (dir / "seg.lenz").string();
    std::ofstream(seg_model) << "input 16x16x1\nconv 8 3x3 padding=same relu\nconv 3 3x3 padding=same\n";
    const std::string train =
        "train " + seg_model + " --data " + data.string() +
        " --epochs 2 --batch 8 --seed 3 --optimizer sgd --threads 1 --no-report --quiet --out ";
    const auto one = run_command(std::string(LENZ_BINARY) + " " + train + (dir / "one").string());
    ASSERT_EQ(one.status, 0) << one.out;
    const auto two = run_command(mpirun(2, train + (dir / "two").string()));
    ASSERT_EQ(two.status, 0) << two.out;
    EXPECT_LE(max_relative_difference((dir / "one/model.safetensors").string(),
                                      (dir / "two/model.safetensors").string()),
              1e-5);
    const std::string eval = "eval " + (dir / "one/model.safetensors").string() + " --json --threads 1";
    const auto alone = run_command(std::string(LENZ_BINARY) + " " + eval);
    const auto three = run_command(mpirun(3, eval));
    ASSERT_EQ(alone.status, 0) << alone.out;
    ASSERT_EQ(three.status, 0) << three.out;
    const nlohmann::json a = nlohmann::json::parse(alone.out), b = nlohmann::json::parse(three.out);
    EXPECT_EQ(b.at("pixels"), a.at("pixels"));
    EXPECT_EQ(a.at("pixels"), 12 * 256);
    EXPECT_EQ(b.at("confusion"), a.at("confusion"));
    EXPECT_EQ(b.at("mean_iou"), a.at("mean_iou"));
}

TEST_F(MpiRun, ABatchThatDoesNotDivideIsAnError) {
    const auto r = run_command(mpirun(3, train_args("odd", 1, 64, 640)));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.out.find("--batch 64 does not divide among 3 ranks"), std::string::npos) << r.out;
}

// Starts a long run in the background and returns mpirun's pid once the first checkpoint exists.
pid_t start_long_run(const std::string& command, const fs::path& out, const fs::path& log) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::setpgid(0, 0);
        const std::string line = "exec " + command + " > " + log.string() + " 2>&1";
        ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!fs::exists(out / "model.safetensors") && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    return pid;
}

// The pid of rank `rank` of the run writing to `out` (Open MPI tells each process its rank).
pid_t rank_pid(const fs::path& out, int rank) {
    for (const auto& e : fs::directory_iterator("/proc")) {
        std::ifstream cmdline(e.path() / "cmdline"), environ(e.path() / "environ");
        std::string args((std::istreambuf_iterator<char>(cmdline)), {}),
            env((std::istreambuf_iterator<char>(environ)), {});
        if (args.find(out.string()) != std::string::npos &&  // mpirun itself has no rank
            env.find("OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + '\0') != std::string::npos)
            return std::stoi(e.path().filename().string());
    }
    return -1;
}

// Waits for `pid` at most `limit`; returns the seconds it took, or -1 (and kills it) past the limit.
double seconds_until_exit(pid_t pid, std::chrono::seconds limit, int* status) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < limit) {
        if (::waitpid(pid, status, WNOHANG) == pid)
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::this_thread::sleep_for(20ms);
    }
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, status, 0);
    return -1;
}

TEST_F(MpiRun, AKilledRankEndsEveryRankAndTheCheckpointResumesOnOtherRanks) {
    const fs::path out = dir / "killed", log = dir / "killed.log";
    const pid_t run = start_long_run(mpirun(2, train_args("killed", 200, 60, 3000)), out, log);
    const pid_t victim = rank_pid(out, 1);
    ASSERT_GT(victim, 0) << "no rank 1 found";
    ::kill(victim, SIGKILL);
    int status = 0;
    const double seconds = seconds_until_exit(run, 30s, &status);
    std::printf("[          ] the run ended %.1f s after rank 1 was killed\n", seconds);
    ASSERT_GE(seconds, 0) << "the other rank still runs 30 s after rank 1 was killed";
    EXPECT_NE(WEXITSTATUS(status), 0);
    std::ifstream f(log);
    const std::string text((std::istreambuf_iterator<char>(f)), {});
    EXPECT_NE(text.find("rank 1"), std::string::npos) << text;

    // The checkpoint loads and the run resumes from it, here on three ranks, for one more epoch.
    const LoadedModel stopped = load_model((out / "model.safetensors").string());
    const auto r =
        run_command(mpirun(3, "train " + model + " --resume " + out.string() + " --epochs " +
                                  std::to_string(stopped.info.epoch + 1) + " --threads 1 --quiet"));
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(load_model((out / "model.safetensors").string()).info.epoch, stopped.info.epoch + 1);
}

TEST_F(MpiRun, ARankThatStopsAnsweringEndsTheRunAfterTheTimeout) {
    const fs::path out = dir / "stopped", log = dir / "stopped.log";
    const pid_t run = start_long_run(
        "env LENZ_MPI_TIMEOUT=6 " + mpirun(2, train_args("stopped", 200, 60, 3000), "-x LENZ_MPI_TIMEOUT"),
        out, log);
    const pid_t victim = rank_pid(out, 1);
    ASSERT_GT(victim, 0) << "no rank 1 found";
    ::kill(victim, SIGSTOP);  // alive to the launcher, silent to the collectives
    int status = 0;
    const double seconds = seconds_until_exit(run, 30s, &status);
    ::kill(victim, SIGKILL);
    std::printf("[          ] the run ended %.1f s after rank 1 stopped (timeout 6 s)\n", seconds);
    ASSERT_GE(seconds, 0) << "rank 0 still waits 30 s after rank 1 stopped";
    std::ifstream f(log);
    const std::string text((std::istreambuf_iterator<char>(f)), {});
    // Rank 0 names itself and what it waited in: the gradients' sum, or a smaller one.
    EXPECT_NE(text.find("lenz: rank 0 of 2: "), std::string::npos) << text;
    EXPECT_NE(text.find(" has waited 6 s for the other ranks"), std::string::npos) << text;
}

TEST_F(MpiRun, CtrlCStopsEveryRankAtOneStepWithOneCheckpoint) {
    const fs::path out = dir / "interrupted", log = dir / "interrupted.log";
    const pid_t run = start_long_run(mpirun(2, train_args("interrupted", 200, 60, 3000)), out, log);
    std::this_thread::sleep_for(100ms);
    ::kill(run, SIGINT);
    int status = 0;
    ASSERT_GE(seconds_until_exit(run, 30s, &status), 0) << "SIGINT did not stop the run";
    EXPECT_NE(WEXITSTATUS(status), 0);
    std::ifstream f(log);
    const std::string text((std::istreambuf_iterator<char>(f)), {});
    EXPECT_NE(text.find("interrupted: training stopped"), std::string::npos) << text;
    EXPECT_NE(text.find("--resume " + out.string()), std::string::npos) << text;
    const LoadedModel stopped = load_model((out / "model.safetensors").string());
    EXPECT_GT(stopped.info.step, 0);
    const auto r =
        run_command(mpirun(2, "train " + model + " --resume " + out.string() + " --epochs " +
                                  std::to_string(stopped.info.epoch + 1) + " --threads 1 --quiet"));
    ASSERT_EQ(r.status, 0) << r.out;
}

}  // namespace
}  // namespace lenz
