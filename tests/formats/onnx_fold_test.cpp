// Constant folding for ONNX import: each operator against values worked out by hand from the ONNX
// specification (NumPy's semantics), the batch size kept symbolic, and the budget that bounds it.
#include "formats/onnx_fold.h"

#include <gtest/gtest.h>

#include <limits>

#include "lenz/error.h"

namespace lenz::onnx_fold {
namespace {

Folded floats(std::vector<int64_t> dims, std::vector<float> values) {
    return {"f", onnx::TensorProto::FLOAT, std::move(dims), std::move(values), {}, {}};
}
Folded ints(std::vector<int64_t> dims, std::vector<int64_t> values) {
    return {"i", onnx::TensorProto::INT64, std::move(dims), {}, std::move(values), {}};
}
// (N, 3, 4, 5) as Shape gives it for a tensor of the chain: the batch is a symbol.
Folded running_shape() {
    Folded s = ints({4}, {0, 3, 4, 5});
    s.symbols = {Symbol::batch, Symbol::known, Symbol::known, Symbol::known};
    return s;
}

constexpr int64_t kBudget = 1 << 20;

TEST(OnnxFold, GatherTakesAlongAnyAxisWithNegativeIndices) {
    Folder f(kBudget);
    const Folded m = floats({2, 3}, {1, 2, 3, 4, 5, 6});
    const Folded rows = f.gather(m, ints({1}, {-1}), 0);
    EXPECT_EQ(rows.dims, (std::vector<int64_t>{1, 3}));
    EXPECT_EQ(rows.f, (std::vector<float>{4, 5, 6}));
    const Folded cols = f.gather(m, ints({2}, {2, 0}), 1);
    EXPECT_EQ(cols.dims, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(cols.f, (std::vector<float>{3, 1, 6, 4}));
    const Folded scalar = f.gather(running_shape(), ints({}, {0}), 0);  // x.size(0)
    EXPECT_TRUE(scalar.dims.empty());
    EXPECT_EQ(scalar.symbols, std::vector<Symbol>{Symbol::batch});
    EXPECT_THROW(f.gather(m, ints({1}, {2}), 0), FoldError);
}

TEST(OnnxFold, ConcatJoinsAndKeepsTheBatchSymbol) {
    Folder f(kBudget);
    const Folded batch = f.unsqueeze(f.gather(running_shape(), ints({}, {0}), 0), {0});
    const Folded shape = f.concat({batch, ints({1}, {-1})}, 0);  // x.view(x.size(0), -1)
    EXPECT_EQ(shape.i, (std::vector<int64_t>{0, -1}));
    EXPECT_EQ(shape.symbols, (std::vector<Symbol>{Symbol::batch, Symbol::known}));
    const Folded m = f.concat({floats({2, 1}, {1, 2}), floats({2, 2}, {3, 4, 5, 6})}, -1);
    EXPECT_EQ(m.dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(m.f, (std::vector<float>{1, 3, 4, 2, 5, 6}));
    EXPECT_THROW(f.concat({floats({2, 1}, {1, 2}), floats({3, 1}, {1, 2, 3})}, 1), FoldError);
    EXPECT_THROW(f.concat({ints({1}, {1}), ints({1}, {2})}, 1), FoldError);
}

// nn.ZeroPad2d's pads as PyTorch 1.13 works them out: a Slice with step -1 from the last row to
// -INT64_MAX, which reverses, then a transpose.
TEST(OnnxFold, SliceClampsAsOnnxDoes) {
    Folder f(kBudget);
    const Folded pairs = ints({4, 2}, {0, 1, 0, 1, 0, 0, 0, 0});
    const Folded reversed = f.slice(pairs, {-1}, {-std::numeric_limits<int64_t>::max()}, {0}, {-1});
    EXPECT_EQ(reversed.i, (std::vector<int64_t>{0, 0, 0, 0, 0, 1, 0, 1}));
    const Folded t = f.transpose(reversed, {1, 0});
    EXPECT_EQ(t.dims, (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(t.i, (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 1, 1}));
    const Folded v = floats({6}, {0, 1, 2, 3, 4, 5});
    EXPECT_EQ(f.slice(v, {1}, {std::numeric_limits<int64_t>::max()}, {}, {2}).f,
              (std::vector<float>{1, 3, 5}));
    EXPECT_EQ(f.slice(v, {-2}, {100}, {}, {}).f, (std::vector<float>{4, 5}));
    EXPECT_EQ(f.slice(v, {4}, {2}, {}, {}).size(), 0);
    EXPECT_EQ(f.slice(v, {10}, {-10}, {}, {-3}).f, (std::vector<float>{5, 2}));
    EXPECT_THROW(f.slice(v, {0}, {1}, {}, {0}), FoldError);
}

TEST(OnnxFold, ReshapeUnsqueezeSqueezeAndTranspose) {
    Folder f(kBudget);
    const Folded v = floats({2, 3}, {1, 2, 3, 4, 5, 6});
    EXPECT_EQ(f.reshape(v, {3, -1}, false).dims, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(f.reshape(v, {0, 3}, false).dims, (std::vector<int64_t>{2, 3}));  // 0 copies
    EXPECT_THROW(f.reshape(v, {4, -1}, false), FoldError);
    EXPECT_THROW(f.reshape(v, {-1, -1}, false), FoldError);
    EXPECT_EQ(f.unsqueeze(v, {0, -1}).dims, (std::vector<int64_t>{1, 2, 3, 1}));
    EXPECT_EQ(f.squeeze(floats({1, 2, 1}, {1, 2}), {}).dims, (std::vector<int64_t>{2}));
    EXPECT_THROW(f.squeeze(v, {0}), FoldError);
    const Folded t = f.transpose(v, {});
    EXPECT_EQ(t.f, (std::vector<float>{1, 4, 2, 5, 3, 6}));
    EXPECT_THROW(f.transpose(v, {0, 0}), FoldError);
    EXPECT_THROW(f.transpose(v, {0, 1, 2}), FoldError);
}

TEST(OnnxFold, ArithmeticBroadcastsAndMarksWhatComesFromTheBatch) {
    Folder f(kBudget);
    const Folded sum = f.arithmetic("Add", floats({2, 1}, {10, 20}), floats({3}, {1, 2, 3}));
    EXPECT_EQ(sum.dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(sum.f, (std::vector<float>{11, 12, 13, 21, 22, 23}));
    EXPECT_EQ(f.arithmetic("Div", ints({2}, {7, -7}), ints({}, {2})).i, (std::vector<int64_t>{3, -3}));
    EXPECT_THROW(f.arithmetic("Div", ints({1}, {1}), ints({1}, {0})), FoldError);
    EXPECT_THROW(f.arithmetic("Mul", ints({1}, {std::numeric_limits<int64_t>::max()}), ints({1}, {2})),
                 FoldError);
    EXPECT_THROW(f.arithmetic("Add", floats({2}, {1, 2}), floats({3}, {1, 2, 3})), FoldError);
    // C * H * W is known; N * C is not, whatever the batch turns out to be.
    const Folded product = f.arithmetic("Mul", running_shape(), ints({4}, {2, 1, 1, 1}));
    EXPECT_EQ(product.symbols[0], Symbol::unknown);
    EXPECT_EQ(product.i[1], 3);
    EXPECT_THROW(plain_ints(product, "the shape"), FoldError);
}

TEST(OnnxFold, CastAndConstantOfShape) {
    Folder f(kBudget);
    EXPECT_EQ(f.cast(floats({3}, {1.9f, -1.9f, 0}), onnx::TensorProto::INT64).i,
              (std::vector<int64_t>{1, -1, 0}));
    EXPECT_EQ(f.cast(ints({2}, {3, 4}), onnx::TensorProto::FLOAT).f, (std::vector<float>{3, 4}));
    EXPECT_THROW(f.cast(floats({1}, {3e9f}), onnx::TensorProto::INT32), FoldError);
    EXPECT_THROW(f.cast(running_shape(), onnx::TensorProto::FLOAT), FoldError);  // the batch's value
    EXPECT_THROW(f.cast(ints({1}, {1}), onnx::TensorProto::DOUBLE), FoldError);
    const Folded zeros = f.constant_of_shape(ints({1}, {4}), ints({1}, {0}));
    EXPECT_EQ(zeros.i, std::vector<int64_t>(4, 0));
    EXPECT_THROW(f.constant_of_shape(running_shape(), floats({1}, {0})), FoldError);
}

TEST(OnnxFold, DecodeChecksTheBytesAgainstTheShape) {
    onnx::TensorProto t;
    t.set_data_type(onnx::TensorProto::INT32);
    t.add_dims(2);
    t.add_int32_data(-5);
    t.add_int32_data(7);
    EXPECT_EQ(decode(t, "w").i, (std::vector<int64_t>{-5, 7}));
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.set_raw_data(std::string(12, '\0'));
    try {
        decode(t, "w");
        FAIL() << "decoded 12 bytes as two floats";
    } catch (const FoldError& e) {
        EXPECT_STREQ(e.what(), "tensor 'w' holds 12 bytes, its shape needs 8");
    }
    // A huge shape over a few bytes is refused before anything is allocated for it (found by
    // fuzz_onnx: a trillion floats would be a bad_alloc, two billion 8 GB zeroed first).
    for (const auto type : {onnx::TensorProto::FLOAT, onnx::TensorProto::INT64, onnx::TensorProto::BOOL}) {
        onnx::TensorProto huge;
        huge.set_data_type(type);
        huge.add_dims(int64_t{1} << 20);
        huge.add_dims(int64_t{1} << 20);
        huge.set_raw_data(std::string(12, '\0'));
        EXPECT_THROW(decode(huge, "w"), FoldError) << type;
    }
    t.set_data_type(onnx::TensorProto::FLOAT16);
    EXPECT_THROW(decode(t, "w"), FoldError);
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.set_dims(0, std::numeric_limits<int64_t>::max());
    t.add_dims(4);
    EXPECT_THROW(decode(t, "w"), ShapeError);  // the element count overflows
}

// Repeated Concat doubles at each step: the budget stops it long before memory runs out.
TEST(OnnxFold, TheBudgetBoundsWhatFoldingHolds) {
    Folder f(1000);
    Folded v = floats({1}, {1});
    for (int k = 0; k < 8; ++k) v = f.concat({v, v}, 0);  // 2 + 4 + ... + 256 = 510 values
    EXPECT_EQ(v.size(), 256);
    EXPECT_THROW(f.concat({v, v}, 0), FoldError);  // 512 more would be 1022
}

}  // namespace
}  // namespace lenz::onnx_fold
