// The course notes' worked example, figure by figure, and the other summary outputs.
#include "lenz/summary.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/threads.h"

namespace lenz {
namespace {

Model seed_model() {
    return load_model_file(LENZ_SOURCE_DIR "/models/seed.lenz");
}

TEST(Summary, CourseNotesWorkedExample) {
    Model m = seed_model();
    const Summary s = summarize(m, {.batch = 50});
    EXPECT_EQ(s.params, 903400);
    EXPECT_EQ(s.param_bytes, 3613600);
    EXPECT_EQ(s.mults, 1399500000);
    ASSERT_EQ(s.layers.size(), 3u);
    EXPECT_EQ(s.layers[0].output, (Shape{100, 150, 100}));
    EXPECT_EQ(s.layers[1].output, (Shape{50, 75, 200}));
    EXPECT_EQ(s.layers[2].output, (Shape{25, 38, 400}));
    EXPECT_EQ(s.layers[0].params, 2800);
    EXPECT_EQ(s.layers[1].params, 180200);
    EXPECT_EQ(s.layers[2].params, 720400);
    EXPECT_EQ(s.layers[0].mults, 40500000);
    EXPECT_EQ(s.layers[1].mults, 675000000);
    EXPECT_EQ(s.layers[2].mults, 684000000);
    EXPECT_EQ(s.input_bytes, 720000);
    EXPECT_EQ(s.layers[0].output_bytes, 6000000);
    EXPECT_EQ(s.layers[1].output_bytes, 3000000);
    EXPECT_EQ(s.layers[2].output_bytes, 1520000);
    EXPECT_EQ(s.inference_bytes_textbook, 12613600);
    EXPECT_EQ(human_bytes(s.inference_bytes_textbook), "12.6 MB");
    EXPECT_EQ(s.training_bytes_textbook, 569227200);
    EXPECT_EQ(s.backward_input_mults, 675000000 + 684000000);  // none for the first layer
    EXPECT_EQ(s.backward_weight_mults, 1399500000);
}

TEST(Summary, ExplainShowsTheDerivations) {
    Model m = seed_model();
    const std::string text = format_summary(summarize(m, {.batch = 50}), "seed.lenz", true);
    for (const char* piece :
         {"(3·3·3 + 1) · 100 = 2,800", "(3·3·100 + 1) · 200 = 180,200", "100·150·100 · (3·3·3) = 40,500,000",
          "6,000,000 + 3,000,000 = 9,000,000", "= 12,613,600 bytes (12.6 MB)", "569,227,200 bytes",
          "NOT added up", "ARE added up", "903,400 parameters · 4 bytes = 3,613,600 bytes"})
        EXPECT_NE(text.find(piece), std::string::npos) << "missing: " << piece << "\n" << text;
}

TEST(Summary, JsonHasTheStableKeys) {
    Model m = seed_model();
    const auto j = nlohmann::json::parse(summary_json(summarize(m, {.batch = 50}), "seed.lenz"));
    EXPECT_EQ(j["params"], 903400);
    EXPECT_EQ(j["param_bytes"], 3613600);
    EXPECT_EQ(j["mults"], 1399500000);
    EXPECT_EQ(j["inference_bytes_textbook"], 12613600);
    EXPECT_EQ(j["training_bytes_textbook"], 569227200);
    EXPECT_EQ(j["batch"], 50);
    EXPECT_TRUE(j["inference_bytes_plan"].is_number_integer());
    EXPECT_TRUE(j["training_bytes_plan"].is_number_integer());
    ASSERT_EQ(j["layers"].size(), 3u);
    EXPECT_EQ(j["layers"][0]["name"], "conv 100 3x3 stride=2 padding=same relu");
    EXPECT_EQ(j["layers"][2]["output_shape"], nlohmann::json({25, 38, 400}));
    EXPECT_EQ(j["layers"][1]["params"], 180200);
    EXPECT_EQ(j["layers"][1]["mults"], 675000000);
    EXPECT_EQ(j["layers"][1]["output_bytes"], 3000000);
}

// The notes' rule on a graph, by hand: while conv 3 runs, the stem (kept for the add), conv 2's
// output and conv 3's output are alive: 3 x 28·28·16·4 = 150,528 bytes, plus 9,770 parameters.
TEST(Summary, ResidualBlockKeepsItsSkipConnectionAlive) {
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/residual-block.lenz");
    const Summary s = summarize(m, {.batch = 32});
    EXPECT_TRUE(s.graph);
    EXPECT_EQ(s.params, 160 + 2320 + 2320 + 4640 + 330);
    EXPECT_EQ(s.pair_bytes, 3 * 28 * 28 * 16 * 4);
    EXPECT_EQ(s.inference_bytes_textbook, 3 * 28 * 28 * 16 * 4 + 9770 * 4);
    EXPECT_EQ(s.peak_layer, 2);
    EXPECT_EQ(s.layers[3].text, "add stem branch relu");
    EXPECT_EQ(s.layers[3].inputs, (std::vector<std::string>{"stem", "branch"}));
    EXPECT_EQ(s.layers[0].last_read, 4);
    // Training: every output but the flatten's, as for a chain.
    const int64_t per_image = 4 * (28 * 28 * 1 + 4 * 28 * 28 * 16 + 14 * 14 * 16 + 14 * 14 * 32 + 32 + 10);
    EXPECT_EQ(s.training_activation_bytes_per_image, per_image);
    EXPECT_EQ(s.training_bytes_textbook, 32 * per_image + 2 * 9770 * 4);
    const std::string explained = format_summary(s, "residual-block.lenz", true);
    EXPECT_NE(explained.find("stem (layer 1) stays alive until layer 4 (add) reads it"), std::string::npos)
        << explained;
    const auto j = nlohmann::json::parse(summary_json(s, "r"));
    EXPECT_EQ(j["layers"][3]["inputs"], nlohmann::json({"stem", "branch"}));
    EXPECT_EQ(j["layers"][0]["value"], "stem");
    EXPECT_EQ(j["layers"][3]["name"], "add relu");  // the existing key keeps its meaning
}

// ResNet-18 at 224x224x3, every figure equal to the independent count over torchvision's modules
// that tools/resnet18_costs.py makes (torch.fx graph, sizes from a real forward).
TEST(Summary, ResNet18MatchesAnIndependentCountOverTorchvision) {
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/resnet18.lenz");
    const Summary s = summarize(m, {.batch = 1});
    EXPECT_EQ(s.params, 11689512);  // torchvision: sum(p.numel())
    EXPECT_EQ(s.non_trainable, 9600);
    EXPECT_EQ(s.mults, 1816557056);  // 1,814,073,344 in convolutions and the classifier, the rest batch norm
    EXPECT_EQ(s.inference_bytes_textbook, 53218976);
    EXPECT_EQ(s.training_bytes_textbook, 124067552);
    EXPECT_EQ(s.layers.back().output, (Shape{1, 1, 1000}));
    // The peak is in the first stage: the 112x112x64 stem's output before max pooling.
    EXPECT_EQ(s.pair_bytes, 6422528);
}

TEST(Summary, CsvHasOneRowPerLayerAsTheJsonList) {
    Model m = seed_model();
    const std::string csv = summary_csv(summarize(m, {}));
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // the header and the 3 layers, as JSON's list
    EXPECT_EQ(csv.find("\n0,input"), std::string::npos) << csv;
    EXPECT_NE(csv.find("2,\"conv 200 3x3 stride=2 padding=same relu\",conv,50,75,200,180200,0,675000000"),
              std::string::npos)
        << csv;
}

TEST(Summary, PlanBreaksDownOptimizerState) {
    Model m = seed_model();
    const auto sgd = summarize(m, {.batch = 2, .optimizer = OptimizerKind::sgd}).training_plan;
    const auto mom = summarize(m, {.batch = 2, .optimizer = OptimizerKind::momentum}).training_plan;
    const auto adam = summarize(m, {.batch = 2, .optimizer = OptimizerKind::adam}).training_plan;
    EXPECT_EQ(sgd.optimizer_floats, 0);
    EXPECT_EQ(mom.optimizer_floats, 903400);
    EXPECT_EQ(adam.optimizer_floats, 2 * 903400);
    EXPECT_EQ(adam.bytes() - sgd.bytes(), 2 * 3613600);
}

TEST(Summary, InferencePlanArenaIsTheTextbookPair) {
    Model m = seed_model();
    const Summary s = summarize(m, {});
    EXPECT_EQ(4 * s.inference_plan.arena_floats, 9000000);
    EXPECT_EQ(s.inference_plan.bytes(), s.inference_bytes_textbook + 4 * s.inference_plan.workspace_floats +
                                            4 * s.inference_plan.prepared_floats);
    EXPECT_GE(s.inference_plan.prepared_floats, 903400);  // the weights, packed once for oneDNN's kernels
}

TEST(Summary, InPlaceAndReshapeLayersAllocateNothingForOnePrediction) {
    Model m = parse_model("input 10x10x1\nconv 4 3x3\nrelu\ndropout 0.5\nflatten\ndense 2\n", "m");
    const Summary s = summarize(m, {});
    // pairs: input+conv = 400+1024 bytes; conv+dense (relu, dropout in place; flatten a view) = 1024+8
    EXPECT_EQ(s.pair_bytes, 400 + 1024);
    EXPECT_EQ(s.inference_bytes_textbook, 400 + 1024 + 4 * s.params);
}

TEST(Summary, Fit) {
    Model m = seed_model();
    const int64_t gb8 = parse_memory_size("8GB");
    EXPECT_EQ(gb8, 8000000000);
    EXPECT_EQ(parse_memory_size("1.5 GiB"), 1610612736);
    EXPECT_THROW(parse_memory_size("eight"), ParseError);
    EXPECT_THROW(parse_memory_size("8XB"), ParseError);
    const int64_t b = largest_batch_that_fits(m, gb8, OptimizerKind::adam);
    ASSERT_GT(b, 1);
    EXPECT_LE(plan_training(m, b, OptimizerKind::adam).bytes(), gb8);
    EXPECT_GT(plan_training(m, b + 1, OptimizerKind::adam).bytes(), gb8);
    EXPECT_EQ(largest_batch_that_fits(m, 1000, OptimizerKind::adam), 0);
}

TEST(Summary, HugeModelsReportInsteadOfOverflowing) {
    Model m = parse_model("input 100000x100000x3\nconv 1000 3x3 padding=same\n", "m");
    const Summary s = summarize(m, {.batch = 1});
    EXPECT_EQ(s.layers[0].output_bytes, int64_t{100000} * 100000 * 1000 * 4);
    EXPECT_THROW(summarize(m, {.batch = int64_t{1} << 30}), ShapeError);
}

// --dtype names the precision the engine plans are made in where the engine runs it: int8 for one
// prediction (training stays float32), bfloat16 for both where the CPU has it.
TEST(Summary, EnginePlansFollowTheDtype) {
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/fashion.lenz");
    const Summary q = summarize(m, summary_options(64, "int8", OptimizerKind::adam));
    EXPECT_EQ(q.inference_plan.precision, Precision::int8);
    EXPECT_EQ(q.inference_plan.bytes(), plan_inference(m, 1, Precision::int8).bytes());
    EXPECT_NE(q.inference_plan.prepared_floats, plan_inference(m, 1).prepared_floats) << "int8 weights";
    EXPECT_EQ(q.training_plan.precision, Precision::f32);
    const auto j = nlohmann::json::parse(summary_json(q, "fashion.lenz"));
    EXPECT_EQ(j["inference_plan_dtype"], "int8");
    EXPECT_EQ(j["training_plan_dtype"], "float32");
    EXPECT_NE(format_summary(q, "fashion.lenz", true).find("Engine plan (int8 inference, float32 training"),
              std::string::npos);
    const Summary h = summarize(m, summary_options(64, "bfloat16", OptimizerKind::adam));
    const Precision expected = cpu_supports(Precision::bf16) ? Precision::bf16 : Precision::f32;
    EXPECT_EQ(h.inference_plan.precision, expected);
    EXPECT_EQ(h.training_plan.bytes(), plan_training(m, 64, OptimizerKind::adam, expected).bytes());
}

}  // namespace
}  // namespace lenz
