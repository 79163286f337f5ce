// The primitive cache keeps the most recently used entries of each kind, builds each once, and an
// entry a caller still holds survives its eviction; what it builds inside an inference stream is
// built for the process's threads.
#include <gtest/gtest.h>
#include <omp.h>

#include "kernels/cpu/onednn.h"
#include "lenz/threads.h"

namespace lenz::cpu {
namespace {

struct Built {
    int key;
};

TEST(PrimitiveCache, KeepsTheMostRecentlyUsedAndBuildsEachOnce) {
    int builds = 0;
    const auto get = [&](int key) {
        return cached<Built, int, std::hash<int>, 2>(key, [&] {
            ++builds;
            return Built{key};
        });
    };
    const std::shared_ptr<Built> one = get(1);
    get(2);
    EXPECT_EQ(get(1)->key, 1);  // found: 1 is now the most recent, 2 the least
    EXPECT_EQ(builds, 2);
    get(3);  // evicts 2
    EXPECT_EQ(builds, 3);
    EXPECT_EQ(get(1), one);  // still cached: the same object
    EXPECT_EQ(builds, 3);
    EXPECT_EQ(get(2)->key, 2);  // built again, evicting 3
    EXPECT_EQ(builds, 4);
    get(3);  // evicts 1, now the least recent, while `one` still holds it
    EXPECT_EQ(builds, 5);
    EXPECT_EQ(one->key, 1);
    EXPECT_NE(get(1), one);  // built anew
    EXPECT_EQ(builds, 6);
}

struct BuiltWith {
    int threads;
};

TEST(PrimitiveCache, BuildsForTheProcesssThreadsInsideAStream) {
    if (threads() < 2) GTEST_SKIP() << "needs two threads";
    std::shared_ptr<BuiltWith> built;
    int inside = 0;
    // What an inference stream does: one thread each, inside a parallel region.
#pragma omp parallel num_threads(2)
    {
        omp_set_num_threads(1);
#pragma omp single
        {
            built = cached<BuiltWith, int, std::hash<int>, 8>(
                11, [] { return BuiltWith{omp_get_max_threads()}; });
            inside = omp_get_max_threads();
        }
    }
    EXPECT_EQ(built->threads, threads());  // oneDNN would split its work for every thread
    EXPECT_EQ(inside, 1);                  // and the stream keeps its one thread
}

}  // namespace
}  // namespace lenz::cpu
