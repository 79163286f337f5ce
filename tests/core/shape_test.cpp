#include "lenz/shape.h"

#include <gtest/gtest.h>

#include "lenz/error.h"

namespace lenz {

TEST(Shape, ElementsAndText) {
    Shape s{200, 300, 3};
    EXPECT_EQ(s.elements(), 180000);
    EXPECT_EQ(s.str(), "200x300x3");
}

TEST(Shape, OverflowIsAnError) {
    Shape huge{int64_t{1} << 40, int64_t{1} << 20, 16};
    EXPECT_THROW(huge.elements(), ShapeError);
    EXPECT_THROW(checked_add(INT64_MAX, 1), ShapeError);
}

TEST(Shape, Commas) {
    EXPECT_EQ(with_commas(0), "0");
    EXPECT_EQ(with_commas(999), "999");
    EXPECT_EQ(with_commas(1000), "1,000");
    EXPECT_EQ(with_commas(903400), "903,400");
    EXPECT_EQ(with_commas(1399500000), "1,399,500,000");
    EXPECT_EQ(with_commas(-12345), "-12,345");
}

TEST(Shape, HumanBytes) {
    EXPECT_EQ(human_bytes(12613600), "12.6 MB");
    EXPECT_EQ(human_bytes(3613600), "3.6 MB");
    EXPECT_EQ(human_bytes(720000), "720.0 kB");
    EXPECT_EQ(human_bytes(512), "512 B");
}

}  // namespace lenz
