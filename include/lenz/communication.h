// What data-parallel training over several processes (MPI, `lenz train` under mpirun) adds to a
// step: every rank sums the gradients with the others, and that is the network's share of the step.
#pragma once
#include <cstdint>
#include <string>

#include "lenz/model.h"

namespace lenz {

struct CommunicationCost {
    int ranks = 1;
    int64_t batch = 1;           // the global batch; each rank computes batch / ranks images
    double bits_per_second = 0;  // the network's bandwidth, each way
    int64_t gradient_bytes = 0;  // one float per trainable parameter (frozen layers have none)
    // A ring all-reduce (what Open MPI and NCCL use for large sums) sends and receives 2(N - 1)/N
    // times the gradients on every rank: N - 1 steps that add up pieces, N - 1 that hand them round.
    int64_t bytes_per_rank = 0;
    double seconds = 0;          // bytes_per_rank at the bandwidth
    double compute_seconds = 0;  // one step at batch / ranks images, as measured
    // Lenz starts the sums bucket by bucket while backward runs: at best the step takes the longer
    // of the two, at worst (nothing overlaps) their sum.
    double step_seconds_overlapped = 0, step_seconds_serial = 0;
    bool network_bound = false;  // communication takes longer than computation
};

CommunicationCost communication_cost(const Model& model, int ranks, int64_t batch, double bits_per_second,
                                     double compute_seconds);
// The summary's section for it, with its derivation, and the same as a JSON object.
std::string format_communication(const CommunicationCost& cost);
std::string communication_json(const CommunicationCost& cost);

// Parses "10Gbit/s", "25 Gb/s", "100Mbps", "1.25GB/s" (bytes) into bits per second. Throws ParseError.
double parse_bandwidth(const std::string& text);

}  // namespace lenz
