#include "lenz/threads.h"

#include <omp.h>
#include <sched.h>

#include <thread>

namespace lenz {
namespace {

int default_threads() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    int n = static_cast<int>(std::thread::hardware_concurrency());
    return n > 0 ? n : 1;
}

int& current() {
    static int n = [] {
        int d = default_threads();
        omp_set_num_threads(d);
        return d;
    }();
    return n;
}

}  // namespace

int threads() { return current(); }

void set_threads(int n) {
    current() = n > 0 ? n : default_threads();
    omp_set_num_threads(current());
}

}  // namespace lenz
