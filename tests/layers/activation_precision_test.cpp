// elu, logsoftmax and prelu in bf16 and int8: a model that uses each of them, standalone and fused,
// gives the float answer within the precision's rounding, and trains in bf16 to the float loss.
#include <gtest/gtest.h>

#include <string>

#include "layers/precision_check.h"
#include "lenz/model_text.h"

namespace lenz::testing {
namespace {

constexpr const char* kActivationNet =
    "input 8x8x3\nconv 8 3x3 padding=same elu\nprelu channels\nconv 6 3x3 padding=same\nelu=0.5\n"
    "prelu\nconv 5 1x1 logsoftmax\nconv 4 3x3 stride=2 padding=same\nlogsoftmax\nglobalavgpool\nflatten\n"
    "dense 6 elu=2\nprelu channels\ndense 4 logsoftmax\n";

// Slopes other than PyTorch's 0.25, one per channel different, so that the layer's weight counts.
void spread_slopes(Model& m) {
    for (Model::NamedParam& p : m.named_params())
        if (p.name.find(".prelu.") != std::string::npos)
            for (int64_t k = 0; k < p.ref.value->size(); ++k)
                (*p.ref.value)[k] = 0.1f + 0.07f * static_cast<float>(k);
}

TEST(ActivationPrecision, Bf16InferenceAndTrainingGiveTheFloatAnswerWithinBf16Rounding) {
    Model m = parse_model(kActivationNet, "activations.lenz");
    m.init_params(3);
    spread_slopes(m);
    expect_bf16_within_rounding(m);
}

TEST(ActivationPrecision, QuantisedModelGivesTheFloatAnswerWithinInt8Rounding) {
    Model m = parse_model(kActivationNet, "activations.lenz");
    m.init_params(3);
    spread_slopes(m);
    expect_int8_within_rounding(m);
}

}  // namespace
}  // namespace lenz::testing
