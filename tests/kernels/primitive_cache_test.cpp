// The primitive cache keeps the most recently used entries of each kind, builds each once, and an
// entry a caller still holds survives its eviction.
#include <gtest/gtest.h>

#include "kernels/cpu/onednn.h"

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

}  // namespace
}  // namespace lenz::cpu
