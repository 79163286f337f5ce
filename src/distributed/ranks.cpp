// MPI where the build has it and a launcher started the process; one process of rank 0 otherwise.
#include "lenz/ranks.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "lenz/error.h"

#ifdef LENZ_WITH_MPI
#include <mpi.h>
#endif

namespace lenz {

namespace {

// mpirun (Open MPI), PMIx launchers (srun --mpi=pmix) and PMI-1/2 launchers each say so.
bool launched_by_mpi() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (std::getenv(name)) return true;
    return false;
}

long environment_number(const char* name) {
    const char* text = std::getenv(name);
    if (!text) return -1;
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    return end != text && *end == '\0' ? value : -1;
}

}  // namespace

bool Ranks::built_with_mpi() {
#ifdef LENZ_WITH_MPI
    return true;
#else
    return false;
#endif
}

// Slurm's task count counts only beside a launcher's own variable: an `sbatch -n 4` script sets
// SLURM_NTASKS around a single process too.
long Ranks::launched_ranks() {
    if (!launched_by_mpi()) return 1;
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"})
        if (const long size = environment_number(name); size > 0) return size;
    // A rank above 0 means there are others.
    for (const char* name : {"PMIX_RANK", "PMI_RANK"})
        if (environment_number(name) > 0) return environment_number(name) + 1;
    return 1;
}

Ranks& Ranks::world() {
    static Ranks ranks;
    return ranks;
}

Ranks::Ranks() {
    if (const char* timeout = std::getenv("LENZ_MPI_TIMEOUT")) {
        char* end = nullptr;
        const double seconds = std::strtod(timeout, &end);
        if (end != timeout && *end == '\0' && seconds > 0) timeout_seconds_ = seconds;
    }
#ifdef LENZ_WITH_MPI
    if (!launched_by_mpi()) return;
    int provided = 0;
    // Only the main thread calls MPI; OpenMP's threads compute between the calls.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    joined_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    // A failing collective ends this rank with a message rather than returning a code nobody reads.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
#else
    // Each of several ranks would train alone, all of them writing the same folder.
    if (const long ranks = launched_ranks(); ranks > 1)
        throw Error("started by an MPI launcher as one of " + std::to_string(ranks) +
                    " ranks, but this lenz was built without MPI: every rank would run alone. Install "
                    "Open MPI (apt-get install libopenmpi-dev openmpi-bin) and build again with "
                    "'cmake --preset release --fresh && cmake --build --preset release'");
#endif
}

Ranks::~Ranks() {
#ifdef LENZ_WITH_MPI
    if (joined_) MPI_Finalize();
#endif
}

std::string Ranks::prefix() const {
    if (!distributed()) return "";
    return "rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": ";
}

void Ranks::abort(const std::string& message) {
    std::fprintf(stderr, "lenz: %s%s\n", prefix().c_str(), message.c_str());
    std::fflush(stderr);
#ifdef LENZ_WITH_MPI
    if (joined_) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    std::_Exit(1);
}

#ifdef LENZ_WITH_MPI

void Ranks::wait_for(void* request, const char* what) {
    auto* r = static_cast<MPI_Request*>(request);
    const auto start = std::chrono::steady_clock::now();
    for (int spins = 0;; ++spins) {
        int done = 0;
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (done) return;
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (waited > timeout_seconds_)
            abort(std::string(what) + " has waited " + std::to_string(static_cast<int>(waited)) +
                  " s for the other ranks: one has stopped or hangs (LENZ_MPI_TIMEOUT sets the limit)");
        // Spin for a moment (sums of a few MB finish within it), then stop burning a core.
        if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

void Ranks::sum(double* values, int64_t count) {
    if (!distributed() || count == 0) return;
    MPI_Request request;
    MPI_Iallreduce(MPI_IN_PLACE, values, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD,
                   &request);
    wait_for(&request, "a sum across ranks");
}

void Ranks::sum(float* values, int64_t count) {
    start_sum(values, count).wait();
}

std::string Ranks::broadcast(std::string bytes) {
    if (!distributed()) return bytes;
    int64_t size = static_cast<int64_t>(bytes.size());
    MPI_Bcast(&size, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    bytes.resize(static_cast<size_t>(size));
    constexpr int64_t kPiece = int64_t{1} << 30;  // MPI counts in int
    for (int64_t at = 0; at < size; at += kPiece)
        MPI_Bcast(bytes.data() + at, static_cast<int>(std::min(kPiece, size - at)), MPI_BYTE, 0,
                  MPI_COMM_WORLD);
    return bytes;
}

Ranks::PendingSum Ranks::start_sum(float* values, int64_t count) {
    PendingSum pending;
    if (!distributed() || count == 0) return pending;
    if (count > INT32_MAX) throw Error("a sum across ranks of more than 2^31 values");
    auto* request = new MPI_Request;
    MPI_Iallreduce(MPI_IN_PLACE, values, static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                   request);
    pending.request_ = request;
    return pending;
}

bool Ranks::PendingSum::poll() {
    if (!request_) return true;
    int done = 0;
    MPI_Test(static_cast<MPI_Request*>(request_), &done, MPI_STATUS_IGNORE);
    return done != 0;
}

void Ranks::PendingSum::wait() {
    if (!request_) return;
    world().wait_for(request_, "summing the gradients");
    delete static_cast<MPI_Request*>(request_);
    request_ = nullptr;
}

Ranks::PendingSum::~PendingSum() {
    if (request_) wait();  // MPI owns the buffer until the sum is done
}

#else

void Ranks::wait_for(void*, const char*) {}
std::string Ranks::broadcast(std::string bytes) {
    return bytes;
}
void Ranks::sum(double*, int64_t) {}
void Ranks::sum(float*, int64_t) {}
Ranks::PendingSum Ranks::start_sum(float*, int64_t) {
    return {};
}
bool Ranks::PendingSum::poll() {
    return true;
}
void Ranks::PendingSum::wait() {}
Ranks::PendingSum::~PendingSum() = default;

#endif

Ranks::PendingSum::PendingSum(PendingSum&& o) noexcept : request_(std::exchange(o.request_, nullptr)) {}

Ranks::PendingSum& Ranks::PendingSum::operator=(PendingSum&& o) noexcept {
    if (this != &o) {
        wait();
        request_ = std::exchange(o.request_, nullptr);
    }
    return *this;
}

}  // namespace lenz
