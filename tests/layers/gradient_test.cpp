// Finite-difference gradient checks for every layer type and option.
#include "layers/gradient_check.h"

namespace lenz::testing {

TEST(ConvGradient, SameStride1Relu) {
    check_gradients("conv 4 3x3 padding=same relu", {5, 6, 3});
}
TEST(ConvGradient, SameStride2EvenSize) {
    check_gradients("conv 3 3x3 stride=2 padding=same", {6, 8, 2});
}
TEST(ConvGradient, SameStride2OddSize) {
    check_gradients("conv 3 3x3 stride=2 padding=same tanh", {7, 5, 2});
}
TEST(ConvGradient, ValidEvenKernel) {
    check_gradients("conv 2 2x2 sigmoid", {5, 5, 3});
}
TEST(ConvGradient, NonSquareStrideAndPadding) {
    check_gradients("conv 3 3x5 stride=2x1 padding=1x2 leakyrelu=0.2", {6, 7, 2});
}
TEST(ConvGradient, Pointwise) {
    check_gradients("conv 5 1x1", {4, 4, 3});
}
TEST(ConvGradient, NoBiasSingleChannel) {
    check_gradients("conv 2 3x3 nobias", {5, 5, 1});
}
TEST(ConvGradient, Softmax) {
    check_gradients("conv 4 3x3 padding=same softmax", {4, 4, 2});
}
TEST(ConvGradient, KernelLargerThanInputWithSame) {
    check_gradients("conv 2 5x5 padding=same", {3, 3, 2});
}
TEST(ConvGradient, Grouped) {
    check_gradients("conv 6 3x3 padding=same groups=2 relu", {5, 6, 4});
}
TEST(ConvGradient, Depthwise) {
    check_gradients("conv 4 3x3 stride=2 padding=same groups=4", {7, 6, 4});
}
TEST(ConvGradient, DepthwiseWithTwoFiltersPerChannel) {
    check_gradients("conv 6 3x3 padding=1 groups=3 tanh", {5, 5, 3});
}
TEST(ConvGradient, Dilated) {
    check_gradients("conv 3 3x3 padding=same dilation=2", {7, 6, 2});
}
TEST(ConvGradient, DilatedNonSquareAndGrouped) {
    check_gradients("conv 4 3x2 dilation=2x3 groups=2 sigmoid", {8, 9, 4});
}

TEST(PoolGradient, Max) {
    check_gradients("maxpool 2", {6, 6, 2});
}
TEST(PoolGradient, MaxSameStride2) {
    check_gradients("maxpool 3 stride=2 padding=same", {7, 7, 2});
}
TEST(PoolGradient, Average) {
    check_gradients("avgpool 2", {6, 4, 2});
}
TEST(PoolGradient, AverageSamePadding) {
    check_gradients("avgpool 3 stride=2 padding=same", {6, 6, 2});
}
TEST(PoolGradient, AverageExplicitPadding) {
    check_gradients("avgpool 3 stride=1 padding=1", {5, 5, 2});
}
TEST(PoolGradient, AverageCountingPadding) {
    check_gradients("avgpool 3 stride=1 padding=1 count-padding", {5, 5, 2});
}
TEST(PoolGradient, GlobalAverage) {
    check_gradients("globalavgpool", {4, 5, 3});
}
TEST(PoolGradient, GlobalMax) {
    check_gradients("globalmaxpool", {4, 5, 3});
}

// Upsampling: nearest and bilinear with both corner rules, square and 2x3 scales, odd sizes.
TEST(UpsampleGradient, Nearest) {
    check_gradients("upsample 2", {3, 5, 2});
}
TEST(UpsampleGradient, Nearest2x3) {
    check_gradients("upsample 2x3", {3, 3, 2});
}
TEST(UpsampleGradient, Bilinear) {
    check_gradients("upsample 2 bilinear", {3, 5, 2});
}
TEST(UpsampleGradient, Bilinear2x3) {
    check_gradients("upsample 2x3 bilinear", {5, 3, 2});
}
TEST(UpsampleGradient, BilinearAlignCorners) {
    check_gradients("upsample 2 bilinear align-corners", {3, 5, 2});
    check_gradients("upsample size=7x11 bilinear", {3, 5, 2});  // a size of another ratio
    check_gradients("upsample size=2x3 bilinear", {3, 5, 2});   // smaller
    check_gradients("upsample size=8x7 bilinear align-corners", {3, 5, 2});
    check_gradients("upsample size=5x8", {3, 5, 2});
}
TEST(UpsampleGradient, BilinearAlignCorners2x3) {
    check_gradients("upsample 2x3 bilinear align-corners", {3, 3, 1});
}
TEST(UpsampleGradient, BilinearAlignCornersOnOneRow) {
    check_gradients("upsample 3 bilinear align-corners", {1, 3, 2});
}

// Transposed convolution: input, weight and bias gradients over stride 1 and 2, padding, output
// padding (rows only the bias reaches), groups, depthwise, dilation, non-square settings, odd sizes.
TEST(ConvTransposeGradient, Stride1) {
    check_gradients("convtranspose 3 3", {4, 5, 2});
}
TEST(ConvTransposeGradient, Stride2Kernel2) {
    check_gradients("convtranspose 4 2 stride=2 tanh", {3, 5, 3});
}
TEST(ConvTransposeGradient, Stride2PaddingOutputPadding) {
    check_gradients("convtranspose 3 3 stride=2 padding=1 output-padding=1", {5, 3, 2});
}
TEST(ConvTransposeGradient, OutputPaddingBeyondPadding) {
    check_gradients("convtranspose 2 2 stride=3 output-padding=2 sigmoid", {3, 4, 2});
}
TEST(ConvTransposeGradient, NonSquare) {
    check_gradients("convtranspose 3 3x2 stride=2x1 padding=1x0 output-padding=1x0 nobias", {4, 5, 3});
}
TEST(ConvTransposeGradient, Grouped) {
    check_gradients("convtranspose 6 3 stride=2 groups=2", {3, 4, 4});
}
TEST(ConvTransposeGradient, Depthwise) {
    check_gradients("convtranspose 3 3 padding=1 groups=3 leakyrelu=0.2", {5, 4, 3});
}
TEST(ConvTransposeGradient, Dilated) {
    check_gradients("convtranspose 2 3 stride=2 padding=2 dilation=2 output-padding=1", {4, 3, 2});
}
TEST(ConvTransposeGradient, OnePixelOneChannel) {
    check_gradients("convtranspose 3 4x3 stride=2", {1, 1, 1});
}

TEST(DenseGradient, Relu) {
    check_gradients("dense 5 relu", {3, 3, 2});
}
TEST(DenseGradient, NoBias) {
    check_gradients("dense 4 nobias", {1, 1, 6});
}
TEST(DenseGradient, Softmax) {
    check_gradients("dense 4 softmax", {1, 1, 6});
}
TEST(DenseGradient, Sigmoid) {
    check_gradients("dense 3 sigmoid", {2, 2, 2}, {.batch = 3});
}

TEST(OtherGradient, Flatten) {
    check_gradients("flatten", {3, 4, 2});
}
TEST(OtherGradient, BatchNormConv) {
    check_gradients("batchnorm", {4, 4, 3}, {.batch = 3});
}
TEST(OtherGradient, BatchNormDense) {
    check_gradients("batchnorm", {1, 1, 5}, {.batch = 6});
}
TEST(OtherGradient, Dropout) {
    check_gradients("dropout 0.5", {4, 4, 2});
}
TEST(OtherGradient, Relu) {
    check_gradients("relu", {4, 4, 2});
}
TEST(OtherGradient, LeakyRelu) {
    check_gradients("leakyrelu=0.1", {4, 4, 2});
}
TEST(OtherGradient, Sigmoid) {
    check_gradients("sigmoid", {4, 4, 2});
}
TEST(OtherGradient, Tanh) {
    check_gradients("tanh", {4, 4, 2});
}
TEST(OtherGradient, Softmax) {
    check_gradients("softmax", {3, 3, 4});
}

TEST(PoolGradient, CeilModeMax) {
    check_gradients("maxpool 3x3 stride=2 ceil", {8, 7, 2});
}
TEST(PoolGradient, CeilModeAverageWithPadding) {
    check_gradients("avgpool 2x2 padding=1 ceil", {5, 6, 2});
}

TEST(ActivationGradient, Relu6FusedAndStandalone) {
    check_gradients("conv 4 3x3 padding=same relu6", {5, 5, 2});
    check_gradients("relu6", {3, 4, 2});
}
TEST(ActivationGradient, HardSigmoidFusedAndStandalone) {
    check_gradients("dense 5 hardsigmoid", {2, 2, 3});
    check_gradients("hardsigmoid", {3, 4, 2});
}

TEST(ActivationGradient, HardSwishSiluGelu) {
    check_gradients("hardswish", {3, 4, 2});
    check_gradients("silu", {3, 4, 2});
    check_gradients("gelu", {3, 4, 2});
}

// elu from its output (fused or not), log-softmax over each position's channels, and PReLU's
// input and slope gradients with one slope and one per channel, in maps and after dense.
TEST(ActivationGradient, EluFusedAndStandalone) {
    check_gradients("elu", {3, 4, 2});
    check_gradients("elu=0.5", {3, 4, 2});
    check_gradients("conv 4 3x3 padding=same elu=2", {5, 5, 2});
    check_gradients("dense 5 elu", {2, 2, 3});
}
TEST(ActivationGradient, LogSoftmaxOverChannels) {
    check_gradients("logsoftmax", {3, 3, 4});
    check_gradients("conv 4 3x3 padding=same logsoftmax", {4, 4, 2});
}
TEST(ActivationGradient, PRelu) {
    GradCheckOptions o;
    o.perturb_params = true;
    check_gradients("prelu", {3, 4, 2}, o);
    check_gradients("prelu channels", {3, 4, 3}, o);
    check_gradients("prelu channels", {1, 1, 6}, o);
}

TEST(ChannelGradient, Shuffle) {
    check_gradients("shuffle 3", {2, 3, 6});
}
TEST(ChannelGradient, Slice) {
    check_gradients("slice 2:5", {3, 2, 6});
}
TEST(ChannelGradient, LayerNormOverChannels) {
    GradCheckOptions o;
    o.perturb_params = true;
    check_gradients("layernorm", {3, 4, 5}, o);
    check_gradients("layernorm eps=1e-6", {1, 1, 6}, o);  // after dense: over the features
}

}  // namespace lenz::testing
