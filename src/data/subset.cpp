// --limit-train / --limit-test: a seeded random subset that keeps every class in proportion, as
// scikit-learn's train_test_split(stratify=) does. The first N images would be the first classes
// only (folders are read class by class), and a model trained on them means nothing.
#include <algorithm>
#include <numeric>

#include "lenz/data.h"
#include "lenz/error.h"
#include "lenz/random.h"

namespace lenz {

std::vector<int64_t> stratified_sample(const std::vector<int32_t>& labels, int64_t limit, uint64_t seed,
                                       uint64_t stream) {
    const int64_t n = static_cast<int64_t>(labels.size());
    std::vector<int64_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    if (limit <= 0 || limit >= n) return all;
    const int32_t classes = labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end()) + 1;
    std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(classes));
    for (int64_t i = 0; i < n; ++i)
        by_class[static_cast<size_t>(labels[static_cast<size_t>(i)])].push_back(i);
    int64_t present = 0;
    for (const auto& members : by_class) present += !members.empty();
    if (limit < present)
        throw ShapeError("a limit of " + std::to_string(limit) +
                         " images cannot hold one image of each of the " + std::to_string(present) +
                         " classes (use at least " + std::to_string(present) + ")");
    // Each class gets its share of the limit rounded down, but at least one; the images left over go
    // to the classes with the largest remainders (ties to the lower class), as Hamilton's
    // apportionment: the counts add up to the limit and no class is off by more than one.
    std::vector<int64_t> take(static_cast<size_t>(classes), 0);
    std::vector<std::pair<int64_t, int32_t>> remainders;  // (remainder · n, class)
    int64_t taken = 0;
    for (int32_t k = 0; k < classes; ++k) {
        const int64_t size = static_cast<int64_t>(by_class[static_cast<size_t>(k)].size());
        if (size == 0) continue;
        const __int128 share = static_cast<__int128>(size) * limit;
        take[static_cast<size_t>(k)] = std::max<int64_t>(1, static_cast<int64_t>(share / n));
        remainders.emplace_back(static_cast<int64_t>(share % n), k);
        taken += take[static_cast<size_t>(k)];
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    // Minimums of one may overshoot; take back from the largest classes that can spare one.
    while (taken > limit) {
        int32_t largest = -1;
        for (int32_t k = 0; k < classes; ++k)
            if (take[static_cast<size_t>(k)] > 1 &&
                (largest < 0 || take[static_cast<size_t>(k)] > take[static_cast<size_t>(largest)]))
                largest = k;
        --take[static_cast<size_t>(largest)];
        --taken;
    }
    for (size_t r = 0; taken < limit; r = (r + 1) % remainders.size()) {
        const int32_t k = remainders[r].second;
        if (take[static_cast<size_t>(k)] < static_cast<int64_t>(by_class[static_cast<size_t>(k)].size())) {
            ++take[static_cast<size_t>(k)];
            ++taken;
        }
    }
    // Within a class, a seeded partial Fisher-Yates shuffle picks which images; the subset keeps the
    // set's own order.
    std::vector<int64_t> chosen;
    chosen.reserve(static_cast<size_t>(limit));
    Rng rng = Rng::derive(seed, stream);
    for (int32_t k = 0; k < classes; ++k) {
        std::vector<int64_t>& members = by_class[static_cast<size_t>(k)];
        const int64_t want = take[static_cast<size_t>(k)];
        for (int64_t i = 0; i < want; ++i) {
            const int64_t j = i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(members.size()) -
                                                                 static_cast<uint64_t>(i)));
            std::swap(members[static_cast<size_t>(i)], members[static_cast<size_t>(j)]);
        }
        chosen.insert(chosen.end(), members.begin(), members.begin() + want);
    }
    std::sort(chosen.begin(), chosen.end());
    return chosen;
}

ImageSet limit_images(const ImageSet& set, int64_t limit, uint64_t seed, uint64_t stream) {
    if (limit <= 0 || limit >= set.size()) return set;
    std::vector<int64_t> chosen;
    if (set.segmentation()) {  // no class per image to keep in proportion: a seeded random subset
        std::vector<int64_t> order(static_cast<size_t>(set.size()));
        for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
        Rng rng = Rng::derive(seed, stream);
        for (int64_t i = 0; i < limit; ++i)
            std::swap(order[static_cast<size_t>(i)],
                      order[static_cast<size_t>(i) + rng.below(static_cast<uint64_t>(set.size() - i))]);
        chosen.assign(order.begin(), order.begin() + limit);
        std::sort(chosen.begin(), chosen.end());
    } else {
        chosen = stratified_sample(set.labels, limit, seed, stream);
    }
    ImageSet subset;
    subset.height = set.height;
    subset.width = set.width;
    subset.channels = set.channels;
    subset.class_names = set.class_names;
    const int64_t elements = set.image_elements();
    subset.pixels.resize(chosen.size() * static_cast<size_t>(elements));
    subset.labels.reserve(chosen.size());
    for (size_t i = 0; i < chosen.size(); ++i) {
        const auto from = set.pixels.begin() + chosen[i] * elements;
        std::copy(from, from + elements, subset.pixels.begin() + static_cast<int64_t>(i) * elements);
        if (set.segmentation()) {
            const int64_t plane = set.height * set.width;
            subset.masks.insert(subset.masks.end(), set.masks.begin() + chosen[i] * plane,
                                set.masks.begin() + (chosen[i] + 1) * plane);
        } else {
            subset.labels.push_back(set.labels[static_cast<size_t>(chosen[i])]);
        }
    }
    return subset;
}

std::vector<int64_t> class_counts(const ImageSet& set) {
    int64_t classes = static_cast<int64_t>(set.class_names.size());
    for (const int32_t label : set.labels) classes = std::max<int64_t>(classes, label + 1);
    std::vector<int64_t> counts(static_cast<size_t>(classes), 0);
    for (const int32_t label : set.labels) ++counts[static_cast<size_t>(label)];
    return counts;
}

}  // namespace lenz
