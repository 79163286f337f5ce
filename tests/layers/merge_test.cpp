// The layers that read several values (add, concat, mul) on cases small enough to compute by hand,
// forward and backward. Their gradients inside whole models are checked in tests/engine/graph_test.cpp.
#include <gtest/gtest.h>

#include <vector>

#include "layers/fold_activation.h"
#include "layers/pass.h"
#include "lenz/error.h"
#include "lenz/layers.h"

namespace lenz {
namespace {

// The executor hands a layer of several inputs buffers its shares add up in.
std::vector<InputGradient> sums(std::initializer_list<std::pair<std::vector<float>*, Shape>> buffers) {
    std::vector<InputGradient> gradients;
    for (const auto& [buffer, shape] : buffers)
        gradients.push_back(InputGradient::accumulating(buffer->data(), shape));
    return gradients;
}

Pass one_pass(int64_t batch) {
    Pass p;
    p.batch = batch;
    return p;
}

TEST(Merge, AddSumsThenActivates) {
    auto add = make_add({{Activation::relu}});
    add->connect(std::vector<Shape>{{1, 2, 1}, {1, 2, 1}, {1, 2, 1}});
    EXPECT_EQ(add->output_shape(), (Shape{1, 2, 1}));
    EXPECT_EQ(add->other_ops(), 4);  // two additions per value
    const std::vector<float> a{1, -2}, b{0.5f, -1}, c{-3, 4};
    std::vector<float> y(2);
    add->forward_inputs({a.data(), b.data(), c.data()}, y.data(), one_pass(1));
    EXPECT_EQ(y, (std::vector<float>{0, 1}));  // relu(-1.5) = 0, relu(1)
    // Backward: the relu passes dy where y > 0; every input gets the same gradient, added to what it holds.
    std::vector<float> dy{5, 7}, da{1, 1}, db(2), dc(2);
    testing::fold_own_activation(*add, y.data(), dy.data(), 1);
    add->backward_inputs({a.data(), b.data(), c.data()}, y.data(), dy.data(),
                         sums({{&da, {1, 2, 1}}, {&db, {1, 2, 1}}, {&dc, {1, 2, 1}}}), one_pass(1));
    EXPECT_EQ(da, (std::vector<float>{1, 8}));
    EXPECT_EQ(db, (std::vector<float>{0, 7}));
    EXPECT_EQ(dc, (std::vector<float>{0, 7}));
}

TEST(Merge, ConcatStacksChannelsImageByImage) {
    auto concat = make_concat();
    concat->connect(std::vector<Shape>{{1, 2, 1}, {1, 2, 2}});
    EXPECT_EQ(concat->output_shape(), (Shape{1, 2, 3}));
    // Two images; a: (N, 1, 1, 2), b: (N, 2, 1, 2)
    const std::vector<float> a{1, 2, 3, 4}, b{10, 11, 12, 13, 20, 21, 22, 23};
    std::vector<float> y(12);
    concat->forward_inputs({a.data(), b.data()}, y.data(), one_pass(2));
    EXPECT_EQ(y, (std::vector<float>{1, 2, 10, 11, 12, 13, 3, 4, 20, 21, 22, 23}));
    std::vector<float> dy{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, da(4), db(8);
    concat->backward_inputs({a.data(), b.data()}, y.data(), dy.data(),
                            sums({{&da, {1, 2, 1}}, {&db, {1, 2, 2}}}), one_pass(2));
    EXPECT_EQ(da, (std::vector<float>{1, 2, 7, 8}));
    EXPECT_EQ(db, (std::vector<float>{3, 4, 5, 6, 9, 10, 11, 12}));
}

TEST(Merge, MulBroadcastsAPerChannelGate) {
    auto mul = make_mul();
    mul->connect(std::vector<Shape>{{1, 2, 2}, {1, 1, 2}});
    EXPECT_EQ(mul->output_shape(), (Shape{1, 2, 2}));
    // x: (1, C=2, 1, 2), gate: (1, 2, 1, 1)
    const std::vector<float> x{1, 2, 3, 4}, gate{10, 0.5f};
    std::vector<float> y(4);
    mul->forward_inputs({x.data(), gate.data()}, y.data(), one_pass(1));
    EXPECT_EQ(y, (std::vector<float>{10, 20, 1.5f, 2}));
    std::vector<float> dy{1, 1, 2, -1}, dx(4), dgate(2);
    mul->backward_inputs({x.data(), gate.data()}, y.data(), dy.data(),
                         sums({{&dx, {1, 2, 2}}, {&dgate, {1, 1, 2}}}), one_pass(1));
    EXPECT_EQ(dx, (std::vector<float>{10, 10, 1, -0.5f}));
    EXPECT_EQ(dgate, (std::vector<float>{1 + 2, 6 - 4}));  // summed over the positions of each channel
}

TEST(Merge, ShapesThatDoNotFitAreErrors) {
    EXPECT_THROW(make_add({})->connect(std::vector<Shape>{{2, 2, 3}, {2, 2, 4}}), ShapeError);
    EXPECT_THROW(make_add({})->connect(std::vector<Shape>{{2, 2, 3}}), ShapeError);
    EXPECT_THROW(make_concat()->connect(std::vector<Shape>{{2, 2, 3}, {2, 3, 3}}), ShapeError);
    EXPECT_THROW(make_mul()->connect(std::vector<Shape>{{2, 2, 3}, {1, 1, 2}}), ShapeError);
    EXPECT_THROW(make_mul()->connect(std::vector<Shape>{{2, 2, 3}, {2, 2, 3}, {2, 2, 3}}), ShapeError);
    // A layer of one input refuses two.
    EXPECT_THROW(make_flatten()->connect(std::vector<Shape>{{2, 2, 3}, {2, 2, 3}}), ShapeError);
}

}  // namespace
}  // namespace lenz
