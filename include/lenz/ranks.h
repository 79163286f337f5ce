// Data-parallel training over MPI: the processes ("ranks") of one run, and the sums across them.
// Lenz joins MPI only when a launcher started it (mpirun, srun): the same binary run by hand is
// one process, rank 0 of 1, and every call here is then free. A build without Open MPI is always
// rank 0 of 1.
#pragma once
#include <cstdint>
#include <string>

namespace lenz {

class Ranks {
  public:
    // The run's processes. The first call joins MPI where a launcher started this process.
    static Ranks& world();

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool distributed() const { return size_ > 1; }
    // How many ranks run on this machine (this one included), which share its cores.
    int local_size() const { return local_size_; }
    // "rank 1 of 3: " where distributed, "" otherwise: the start of this process's messages.
    std::string prefix() const;
    // Whether this build can join MPI at all (Open MPI was found when it was built).
    static bool built_with_mpi();
    // How many ranks an MPI launcher started this process among, from the launcher's environment
    // (1 without one). A build without MPI refuses to run as one of several.
    static long launched_ranks();

    // Sums `count` values across the ranks, in place; every rank must call it with the same count.
    // Waits at most timeout_seconds() for the others, then ends every rank (a rank has died or hangs:
    // a collective never returns by itself).
    void sum(double* values, int64_t count);
    void sum(float* values, int64_t count);

    // Rank 0's `bytes`, handed to every rank (what the others pass in is ignored).
    std::string broadcast(std::string bytes);

    // A sum started now and finished later, so that computing can go on meanwhile (MPI_Iallreduce).
    class PendingSum {
      public:
        PendingSum() = default;
        PendingSum(PendingSum&& o) noexcept;
        PendingSum& operator=(PendingSum&& o) noexcept;
        ~PendingSum();
        // Lets MPI move the sum along without waiting; true once it is done.
        bool poll();
        // Waits for it, within the timeout.
        void wait();

      private:
        friend class Ranks;
        void* request_ = nullptr;  // MPI_Request, owned
    };
    PendingSum start_sum(float* values, int64_t count);

    // Ends every rank at once with `message` (MPI_Abort): for a rank that cannot go on while the
    // others wait for it in a collective.
    [[noreturn]] void abort(const std::string& message);

    double timeout_seconds() const { return timeout_seconds_; }
    void set_timeout_seconds(double seconds) { timeout_seconds_ = seconds; }

    Ranks(const Ranks&) = delete;
    Ranks& operator=(const Ranks&) = delete;
    ~Ranks();

  private:
    Ranks();
    void wait_for(void* request, const char* what);

    int rank_ = 0, size_ = 1, local_size_ = 1;
    bool joined_ = false;
    // A rank that has not answered for this long is taken for dead (LENZ_MPI_TIMEOUT overrides it).
    double timeout_seconds_ = 30;
};

}  // namespace lenz
