// --limit-train / --limit-test: a seeded, stratified subset, never "the first N" (which in an
// image folder read class by class is the first classes only).
#include <gtest/gtest.h>

#include <set>

#include "lenz/data.h"
#include "lenz/error.h"

namespace lenz {
namespace {

// 900 images of class 0 then 100 of class 1, as an image folder with 90 % circles reads.
std::vector<int32_t> skewed_labels() {
    std::vector<int32_t> labels(900, 0);
    labels.resize(1000, 1);
    return labels;
}

TEST(Limit, KeepsEveryClassInProportion) {
    const std::vector<int64_t> chosen = stratified_sample(skewed_labels(), 100, 1, kTrainLimitStream);
    ASSERT_EQ(chosen.size(), 100u);
    int64_t ones = 0;
    for (const int64_t i : chosen) ones += i >= 900;
    EXPECT_EQ(ones, 10);  // 10 % of the set, 10 % of the sample (the first 100 would hold none)
    EXPECT_TRUE(std::is_sorted(chosen.begin(), chosen.end()));
    EXPECT_EQ(std::set<int64_t>(chosen.begin(), chosen.end()).size(), chosen.size());
}

TEST(Limit, CountsAddUpAndEachClassGetsOne) {
    // Three classes of 500, 499 and 1 image, a limit of 10: shares 5.0, 4.99, 0.01 -> 5, 4, 1.
    std::vector<int32_t> labels(500, 0);
    labels.resize(999, 1);
    labels.push_back(2);
    const std::vector<int64_t> chosen = stratified_sample(labels, 10, 7, kTrainLimitStream);
    ASSERT_EQ(chosen.size(), 10u);
    std::vector<int64_t> per_class(3, 0);
    for (const int64_t i : chosen) ++per_class[static_cast<size_t>(labels[static_cast<size_t>(i)])];
    EXPECT_EQ(per_class, (std::vector<int64_t>{5, 4, 1}));
}

TEST(Limit, IsSeededAndStreamsDiffer) {
    const std::vector<int32_t> labels = skewed_labels();
    EXPECT_EQ(stratified_sample(labels, 50, 3, kTrainLimitStream),
              stratified_sample(labels, 50, 3, kTrainLimitStream));
    EXPECT_NE(stratified_sample(labels, 50, 3, kTrainLimitStream),
              stratified_sample(labels, 50, 4, kTrainLimitStream));
    EXPECT_NE(stratified_sample(labels, 50, 3, kTrainLimitStream),
              stratified_sample(labels, 50, 3, kTestLimitStream));
}

TEST(Limit, NoLimitOrALargeOneKeepsAll) {
    const std::vector<int32_t> labels = skewed_labels();
    EXPECT_EQ(stratified_sample(labels, 0, 1, kTrainLimitStream).size(), 1000u);
    EXPECT_EQ(stratified_sample(labels, 5000, 1, kTrainLimitStream).size(), 1000u);
}

TEST(Limit, BelowTheClassCountIsRefused) {
    std::vector<int32_t> labels{0, 1, 2, 0, 1, 2};
    EXPECT_THROW(stratified_sample(labels, 2, 1, kTrainLimitStream), ShapeError);
    EXPECT_EQ(stratified_sample(labels, 3, 1, kTrainLimitStream).size(), 3u);
}

TEST(Limit, LimitImagesCopiesTheChosenImages) {
    ImageSet set;
    set.height = set.width = 1;
    set.channels = 1;
    set.class_names = {"a", "b"};
    for (int i = 0; i < 20; ++i) {
        set.pixels.push_back(static_cast<uint8_t>(i));
        set.labels.push_back(i < 15 ? 0 : 1);
    }
    const ImageSet subset = limit_images(set, 8, 2, kTestLimitStream);
    ASSERT_EQ(subset.size(), 8);
    for (int64_t i = 0; i < subset.size(); ++i)  // each pixel is its image's index: the label goes with it
        EXPECT_EQ(subset.labels[static_cast<size_t>(i)], subset.pixels[static_cast<size_t>(i)] < 15 ? 0 : 1);
    EXPECT_EQ(class_counts(subset), (std::vector<int64_t>{6, 2}));
    EXPECT_EQ(subset.class_names, set.class_names);
}

}  // namespace
}  // namespace lenz
