// The channel-run kernels of concatenation, slicing and gating, against element-by-element loops.
#include "kernels/cpu/channel_runs.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace lenz {
namespace {

// Widths around every vector length (4, 8 and 16 floats) and their ends; the destination's floats
// outside the runs keep their values.
TEST(ChannelRuns, CopyAndAddTouchOnlyTheRuns) {
    for (const int64_t width : {1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 100}) {
        const int64_t rows = 23, src_stride = width + 5, dst_stride = 2 * width + 3, offset = width / 2;
        std::vector<float> src(static_cast<size_t>(rows * src_stride));
        for (size_t i = 0; i < src.size(); ++i) src[i] = 0.25f * static_cast<float>(i) - 7.0f;
        std::vector<float> copied(static_cast<size_t>(rows * dst_stride), -1.0f), added = copied;
        for (size_t i = 0; i < added.size(); ++i) added[i] = static_cast<float>(i % 13);
        std::vector<float> want_copy = copied, want_add = added;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < width; ++i) {
                const float v = src[static_cast<size_t>(r * src_stride + i)];
                want_copy[static_cast<size_t>(r * dst_stride + offset + i)] = v;
                want_add[static_cast<size_t>(r * dst_stride + offset + i)] += v;
            }
        cpu::copy_runs(src.data(), src_stride, copied.data() + offset, dst_stride, rows, width);
        cpu::add_runs(src.data(), src_stride, added.data() + offset, dst_stride, rows, width);
        ASSERT_EQ(copied, want_copy) << "width " << width;
        ASSERT_EQ(added, want_add) << "width " << width;
    }
}

// Every row times the same scale, out of place and in place.
TEST(ChannelRuns, ScaleMultipliesEveryRowByTheScale) {
    for (const int64_t width : {1, 5, 16, 17, 100}) {
        const int64_t rows = 9;
        std::vector<float> x(static_cast<size_t>(rows * width)), scale(static_cast<size_t>(width));
        for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * static_cast<float>(i) - 3.0f;
        for (size_t i = 0; i < scale.size(); ++i) scale[i] = 1.0f + 0.25f * static_cast<float>(i);
        std::vector<float> want(x.size()), out(x.size(), -1.0f), in_place = x;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < width; ++i)
                want[static_cast<size_t>(r * width + i)] =
                    x[static_cast<size_t>(r * width + i)] * scale[static_cast<size_t>(i)];
        cpu::scale_runs(x.data(), scale.data(), out.data(), rows, width);
        cpu::scale_runs(in_place.data(), scale.data(), in_place.data(), rows, width);
        ASSERT_EQ(out, want) << "width " << width;
        ASSERT_EQ(in_place, want) << "width " << width;
    }
}

// Every row visited once, in blocks, whatever the width.
TEST(ChannelRuns, RowBlocksCoverEveryRowOnce) {
    for (const int64_t width : {1, 64, 4096, 10000})
        for (const int64_t rows : {1, 5, 4096, 70000}) {
            std::vector<int> visits(static_cast<size_t>(rows), 0);
            cpu::in_row_blocks(rows, width, [&](int64_t first, int64_t count) {
                for (int64_t r = first; r < first + count; ++r) ++visits[static_cast<size_t>(r)];
            });
            ASSERT_EQ(visits, std::vector<int>(static_cast<size_t>(rows), 1)) << rows << " x " << width;
        }
}

}  // namespace
}  // namespace lenz
