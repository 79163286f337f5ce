#include "lenz/threads.h"

#include <omp.h>
#include <pmmintrin.h>
#include <sched.h>
#include <xmmintrin.h>

#include <thread>

namespace lenz {
namespace {

int default_threads() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    int n = static_cast<int>(std::thread::hardware_concurrency());
    return n > 0 ? n : 1;
}

// Denormal floats (below 1.2e-38) are up to a hundred times slower on x86, and late in training
// gradients, Adam's second moments and small activations drift into that range. Flushing them to
// zero, on every thread of the team, is what deep-learning engines do; it changes results only
// below 1e-38.
void flush_denormals_on_all_threads(int n) {
#pragma omp parallel num_threads(n)
    {
        _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
        _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
    }
}

int& current() {
    static int n = [] {
        int d = default_threads();
        omp_set_num_threads(d);
        flush_denormals_on_all_threads(d);
        return d;
    }();
    return n;
}

}  // namespace

int threads() {
    return current();
}

void set_threads(int n) {
    current() = n > 0 ? n : default_threads();
    omp_set_num_threads(current());
    flush_denormals_on_all_threads(current());
}

}  // namespace lenz
