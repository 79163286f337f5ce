// ONNX: PyTorch's own exports import and compute what PyTorch computed; Lenz's exports pass the
// ONNX project's checker and shape inference and import back to the same model; bad files are
// one-line errors.
#include "lenz/onnx.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/run_lenz.h"
#include "lenz/data.h"
#include "lenz/engine.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/quantize.h"
#include "lenz/random.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::file_bytes;
using testing::temp_path;

const std::filesystem::path kOnnxGoldenDir =
    std::filesystem::path(LENZ_SOURCE_DIR) / "tests" / "golden" / "onnx";

struct OnnxGolden {
    int64_t batch;
    std::vector<float> input, output;
};
OnnxGolden load_golden(const std::string& name) {
    std::ifstream in(kOnnxGoldenDir / (name + ".json"));
    const nlohmann::json j = nlohmann::json::parse(in);
    return {j["input_shape"][0].get<int64_t>(), j["input"].get<std::vector<float>>(),
            j["output"].get<std::vector<float>>()};
}

// The graph's input as Lenz feeds the imported model: normalised, the graph's front nodes folded.
std::vector<float> normalized(const LoadedModel& loaded, std::vector<float> input) {
    const Shape in = loaded.model.input_shape();
    const int64_t plane = in.h * in.w;
    for (size_t k = 0; k < input.size(); ++k) {
        const auto c = static_cast<size_t>(static_cast<int64_t>(k) / plane % in.c);
        input[k] = (input[k] - loaded.info.normalization.mean[c]) / loaded.info.normalization.stddev[c];
    }
    return input;
}

std::vector<float> run(Model& model, const std::vector<float>& input, int64_t batch) {
    Inference inference(model, batch);
    const float* out = inference.run(input.data(), batch);
    return {out, out + batch * model.output_shape().elements()};
}

onnx::ModelProto proto_of(const std::string& bytes) {
    onnx::ModelProto p;
    EXPECT_TRUE(p.ParseFromString(bytes));
    return p;
}

// What the ONNX checker's full_check does: the checker, then shape inference that stops at any
// error and checks the types.
void expect_valid_onnx(const std::string& bytes) {
    onnx::ModelProto p = proto_of(bytes);
    EXPECT_NO_THROW(onnx::checker::check_model(p));
    EXPECT_NO_THROW(onnx::shape_inference::InferShapes(p, onnx::OpSchemaRegistry::Instance(),
                                                       onnx::ShapeInferenceOptions{true, 1}));
}

// `loaded` exported and run on one image by an evaluator that shares no code with Lenz
// (tests/formats/onnx_reference.py: NumPy in float64, after the ONNX checker with full_check and
// with every tensor's shape checked against ONNX's shape inference) computes what Lenz computes.
void expect_reference_agrees(LoadedModel& loaded, const std::string& name) {
    SCOPED_TRACE(name + " in the reference evaluator");
    const std::filesystem::path dir = temp_path("reference-" + name);
    std::filesystem::create_directories(dir);
    const std::string exported = (dir / "model.onnx").string(), png = (dir / "image.png").string();
    write_onnx(exported, loaded.model, loaded.info);
    const Shape in = loaded.model.input_shape();
    Image image{in.h, in.w, in.c, {}};
    for (int64_t k = 0; k < in.elements(); ++k)
        image.pixels.push_back(static_cast<uint8_t>((k * 37 + k / 30 * 11) % 256));
    write_png(png, image);
    const testing::CommandResult r = testing::run_command(
        "/usr/bin/python3 " LENZ_SOURCE_DIR "/tests/formats/onnx_reference.py " + exported + " " + png);
    std::filesystem::remove_all(dir);
    ASSERT_EQ(r.status, 0) << r.out;
    const std::vector<double> reference =
        nlohmann::json::parse(r.out.substr(r.out.rfind('{')))["output"].get<std::vector<double>>();

    std::vector<float> pixels(static_cast<size_t>(in.elements()));  // (C, H, W), pixels / 255
    for (int64_t c = 0; c < in.c; ++c)
        for (int64_t i = 0; i < in.h * in.w; ++i)
            pixels[static_cast<size_t>(c * in.h * in.w + i)] =
                image.pixels[static_cast<size_t>(i * in.c + c)] / 255.0f;
    const std::vector<float> lenz = run(loaded.model, normalized(loaded, pixels), 1);
    ASSERT_EQ(reference.size(), lenz.size());
    double largest = 0;
    for (double v : reference) largest = std::max(largest, std::abs(v));
    for (size_t k = 0; k < lenz.size(); ++k)
        EXPECT_NEAR(lenz[k], reference[k], 2e-5 * std::max(1.0, largest)) << "[" << k << "]";
}

// Exports `loaded` and expects a valid file that imports back to the same model, in the same
// words (padding=same, names), with the same normalisation, computing bit-equal outputs on `input`
// (pixels / 255, `batch` images), and that the reference evaluator agrees with.
void expect_exports_and_imports_back(LoadedModel& loaded, const std::vector<float>& input, int64_t batch,
                                     const std::string& name) {
    SCOPED_TRACE(name);
    const std::string bytes = encode_onnx(loaded.model, loaded.info);
    expect_valid_onnx(bytes);
    LoadedModel back = parse_onnx(bytes, name + ".onnx");
    EXPECT_EQ(back.model.to_text(), loaded.model.to_text());
    EXPECT_EQ(back.info.normalization.mean, loaded.info.normalization.mean);
    EXPECT_EQ(back.info.normalization.stddev, loaded.info.normalization.stddev);
    EXPECT_EQ(run(back.model, normalized(back, input), batch),
              run(loaded.model, normalized(loaded, input), batch));
    expect_reference_agrees(loaded, name);
}

TEST(Onnx, PyTorchExportsImportAndComputeWhatPyTorchComputed) {
    for (const std::string name :
         {"pytorch_classifier",      "pytorch_feature_map",      "pytorch_view",
          "pytorch_avgpool",         "pytorch_normalized",       "pytorch_fresh_batchnorm",
          "pytorch_depthwise",       "pytorch_ceil_pool",        "pytorch_mobile_activations",
          "pytorch_avgpool_counted", "pytorch_residual",         "pytorch_inception",
          "pytorch_densenet",        "pytorch_mobilenet_v3",     "pytorch_efficientnet",
          "pytorch_shufflenet",      "pytorch_convnext",         "pytorch_convnext_opset17",
          "pytorch_upsample",        "pytorch_interpolate_size", "pytorch_upsample_opset9",
          "pytorch_convtranspose",   "pytorch_activations"}) {
        LoadedModel loaded = read_onnx((kOnnxGoldenDir / (name + ".onnx")).string());
        const OnnxGolden g = load_golden(name);
        const std::vector<float> got = run(loaded.model, normalized(loaded, g.input), g.batch);
        ASSERT_EQ(got.size(), g.output.size()) << name;
        for (size_t i = 0; i < got.size(); ++i)
            EXPECT_NEAR(got[i], g.output[i], 2e-5) << name << " [" << i << "]";
    }
    LoadedModel c = read_onnx((kOnnxGoldenDir / "pytorch_classifier.onnx").string());
    // What PyTorch wrote, in the model file's words.
    EXPECT_EQ(c.model.to_text(),
              "input 30x26x3\nconv 8 3x3 stride=2 padding=1 relu\nmaxpool 2x2\nbatchnorm\n"
              "conv 12 3x3 padding=1 leakyrelu=0.1\navgpool 3x3 stride=2 padding=1\nconv 16 1x1 sigmoid\n"
              "globalavgpool\nflatten\ndense 10 tanh\ndense 5 softmax\n");
    EXPECT_EQ(c.info.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
    EXPECT_EQ(c.info.normalization.mean, std::vector<float>(3, 0.0f));
}

// Exports a PyTorch file's import again, imports that, and expects the same layers and outputs.
void expect_round_trip(const std::string& name, const std::string& text = "") {
    LoadedModel loaded = read_onnx((kOnnxGoldenDir / (name + ".onnx")).string());
    if (!text.empty()) {
        EXPECT_EQ(loaded.model.to_text(), text) << name;
    }
    const OnnxGolden g = load_golden(name);
    expect_exports_and_imports_back(loaded, g.input, g.batch, name);
}

// Grouped, depthwise and dilated convolutions come in with PyTorch's group and dilations and go out
// the same way; so do MobileNet's ReLU6 (Clip to [0, 6]) and Hardsigmoid.
TEST(Onnx, GroupedDilatedAndMobileLayersRoundTrip) {
    expect_round_trip(
        "pytorch_depthwise",
        "input 11x10x3\nconv 12 3x3 padding=1 relu\nconv 12 3x3 padding=2 groups=12 dilation=2 relu\n"
        "conv 24 3x3 stride=2 padding=1 groups=3 tanh\nglobalavgpool\nflatten\ndense 4\n");
    expect_round_trip("pytorch_mobile_activations",
                      "input 7x6x3\nconv 6 3x3 padding=1 relu6\nconv 6 3x3 padding=1 groups=6 hardsigmoid\n"
                      "globalavgpool\nflatten\ndense 4 relu6\n");
}

// nn.PReLU with one slope and one per channel, nn.ELU (alpha 0.5, and 1 fused into the convolution)
// and nn.LogSoftmax(dim=1) over a map come in as prelu, elu and logsoftmax and go out the same way.
TEST(Onnx, PreluEluAndLogSoftmaxRoundTrip) {
    expect_round_trip("pytorch_activations",
                      "input 6x7x3\nconv 4 3x3 padding=1 elu=0.5\nprelu\nconv 6 3x3 padding=1\n"
                      "prelu channels\nconv 5 1x1 elu\nlogsoftmax\n");
}

// Graphs go out as PyTorch writes them and come back as the same layers: the joins, and the
// operators opset 13 spells out (layer norm, GELU, SiLU, hard-swish, channel shuffle).
TEST(Onnx, PyTorchGraphsExportAndImportBack) {
    for (const std::string name :
         {"pytorch_residual", "pytorch_inception", "pytorch_densenet", "pytorch_mobilenet_v3",
          "pytorch_efficientnet", "pytorch_shufflenet", "pytorch_convnext"})
        expect_round_trip(name);
}

// `n` pixel values / 255, in [0, 1].
std::vector<float> random_pixels(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = rng.uniform(0, 1);
    return x;
}

// A model file with fresh weights, class names and a normalisation, as training leaves it.
LoadedModel trained(const std::string& text, const std::string& name) {
    Model model = parse_model(text, name);
    model.init_params(7);
    CheckpointInfo info;
    for (int64_t k = 0; k < model.output_shape().elements(); ++k)
        info.class_names.push_back("c" + std::to_string(k));
    for (int64_t c = 0; c < model.input_shape().c; ++c) {
        info.normalization.mean.push_back(0.25f + 0.125f * static_cast<float>(c));
        info.normalization.stddev.push_back(0.3f + 0.05f * static_cast<float>(c));
    }
    return {std::move(model), info, {}};
}

void expect_model_round_trip(const std::string& text, const std::string& name) {
    LoadedModel loaded = trained(text, name);
    expect_exports_and_imports_back(loaded, random_pixels(2 * loaded.model.input_shape().elements(), 5), 2,
                                    name);
}

TEST(Onnx, GraphModelFilesExportAndImportBack) {
    for (const std::string name : {"residual-block", "fashion-mobile", "fashion-resnet"}) {
        const std::string text =
            file_bytes(std::filesystem::path(LENZ_SOURCE_DIR) / "models" / (name + ".lenz"));
        expect_model_round_trip(text, name);
    }
}

// Every layer a graph adds, at both ranks: a layer norm over the channels of a map and over the
// features after a dense layer, a dense gate (N, C) reshaped to (N, C, 1, 1) for mul, the global
// average a dense layer reads written as x.mean([2, 3]), concat, shuffle, slice, the activations
// with a subgraph of their own, and joins that read one value twice (x * x, x + x).
TEST(Onnx, EveryGraphLayerExportsAndImportsBack) {
    expect_model_round_trip(
        "input 9x8x3\nconv 8 3x3 padding=same name=stem\nlayernorm eps=1e-06\ngelu name=a\n"
        "conv 8 1x1 from=stem\nsilu name=b\nconv 8 1x1 from=stem\nhardswish name=c\nconcat a b c\n"
        "shuffle 3\nslice 4:20 name=s\nglobalavgpool\ndense 6 relu\ndense 16 sigmoid name=gate\n"
        "mul s gate name=m\nadd s m relu name=r\nmul r r name=square\nadd square square\n"
        "globalmaxpool\nflatten\ndense 12\nlayernorm\ngelu\ndense 4 softmax\n",
        "every-graph-layer");
    // A layer norm right after a dense layer, on (N, features).
    expect_model_round_trip("input 6x5x3\nflatten\ndense 12 nobias\nlayernorm eps=0.001\ndense 3 softmax\n",
                            "dense-layernorm");
}

// An add of three values goes out as PyTorch writes x + y + z, two Adds, and comes back as two add
// layers (import joins two inputs at a time) that compute the same.
TEST(Onnx, AnAddOfThreeValuesExportsAsTwoAdds) {
    LoadedModel loaded = trained(
        "input 4x4x3\nconv 2 1x1 name=a\nconv 2 1x1 from=input name=b\nconv 2 1x1 from=input name=c\n"
        "add a b c relu\n",
        "add3");
    const std::string bytes = encode_onnx(loaded.model, loaded.info);
    expect_valid_onnx(bytes);
    LoadedModel back = parse_onnx(bytes, "add3.onnx");
    EXPECT_EQ(back.model.to_text(),
              "input 4x4x3\nconv 2 1x1 name=_1\nconv 2 1x1 from=input name=_2\n"
              "conv 2 1x1 from=input name=_3\nadd _1 _2 name=_4\nadd _4 _3 relu\n");
    const std::vector<float> x = random_pixels(2 * 4 * 4 * 3, 8);
    const std::vector<float> want = run(loaded.model, normalized(loaded, x), 2),
                             got = run(back.model, normalized(back, x), 2);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
    expect_reference_agrees(loaded, "add3");
}

// Every layer type, with padding that is uneven ('same', stride 2) and pixels of two sizes.
const char* kEveryLayer =
    "input 23x19x3\nconv 8 3x3 stride=2 padding=same relu\nmaxpool 3x3 stride=2 padding=same\nbatchnorm\n"
    "conv 12 2x2 padding=1x0 leakyrelu=0.2\ndropout 0.25\navgpool 2x2 padding=1\ntanh\nconv 6 1x1 nobias\n"
    "sigmoid\nglobalmaxpool\ndense 7 nobias\nrelu\nbatchnorm\ndense 4 softmax\n";

TEST(Onnx, ExportsPassTheOnnxCheckerAndImportBackToTheSameModel) {
    Model model = parse_model(kEveryLayer, "every");
    model.init_params(5);
    CheckpointInfo info;
    info.class_names = {"cat", "dog", "bird", "fish"};
    info.normalization = {{0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f}};
    const std::string bytes = encode_onnx(model, info);

    onnx::ModelProto proto;
    ASSERT_TRUE(proto.ParseFromString(bytes));
    EXPECT_NO_THROW(onnx::checker::check_model(proto));
    onnx::shape_inference::InferShapes(proto);
    const auto& out = proto.graph().output(0).type().tensor_type().shape();
    ASSERT_EQ(out.dim_size(), 2);
    EXPECT_EQ(out.dim(1).dim_value(), 4);
    // Shape inference agrees with Lenz on every intermediate tensor.
    int checked = 0;
    for (const auto& v : proto.graph().value_info()) {
        const std::string& name = v.name();
        const size_t dot = name.find('.');
        if (!std::isdigit(static_cast<unsigned char>(name[0])) || dot == std::string::npos ||
            name.find('.', dot + 1) != std::string::npos)
            continue;  // "3.batchnorm", not "3.batchnorm.weight" or "normalize"
        const Shape want = model.layer(std::stoll(name.substr(0, dot)) - 1).output_shape();
        const auto& s = v.type().tensor_type().shape();
        if (s.dim_size() == 4) {
            EXPECT_EQ(s.dim(1).dim_value(), want.c) << name;
            EXPECT_EQ(s.dim(2).dim_value(), want.h) << name;
            EXPECT_EQ(s.dim(3).dim_value(), want.w) << name;
            ++checked;
        }
    }
    EXPECT_GE(checked, 5);

    // The graph is what counts: activations right after a convolution or dense layer come back
    // fused, and the flatten that Gemm needs is explicit. The same computation, and a fixed point.
    LoadedModel back = parse_onnx(bytes, "every.onnx");
    EXPECT_EQ(
        back.model.to_text(),
        "input 23x19x3\nconv 8 3x3 stride=2 padding=1 relu\nmaxpool 3x3 stride=2 padding=same\nbatchnorm\n"
        "conv 12 2x2 padding=1x0 leakyrelu=0.2\ndropout 0.25\navgpool 2x2 padding=1\ntanh\n"
        "conv 6 1x1 sigmoid nobias\nglobalmaxpool\nflatten\ndense 7 relu nobias\nbatchnorm\ndense 4 "
        "softmax\n");
    EXPECT_EQ(back.info.class_names, info.class_names);
    EXPECT_EQ(back.info.normalization.mean, info.normalization.mean);
    EXPECT_EQ(back.info.normalization.stddev, info.normalization.stddev);
    Rng rng(3);
    std::vector<float> x(3 * 23 * 19 * 3);
    for (float& v : x) v = rng.uniform(-1, 1);
    const std::vector<float> want = run(model, x, 3), got = run(back.model, x, 3);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
    LoadedModel twice = parse_onnx(encode_onnx(back.model, back.info), "twice.onnx");
    EXPECT_EQ(twice.model.to_text(), back.model.to_text());
    EXPECT_EQ(run(twice.model, x, 3), got);
}

// A file Lenz wrote comes back in the model file's own words when they describe the same layers.
TEST(Onnx, LenzMetadataKeepsTheModelFilesWords) {
    Model model = load_model_file(LENZ_SOURCE_DIR "/models/fashion.lenz");
    model.init_params(2);
    LoadedModel back = parse_onnx(encode_onnx(model, {}), "fashion.onnx");
    EXPECT_EQ(back.model.to_text(), model.to_text());  // padding=same, not padding=1
}

TEST(Onnx, APyTorchModelExportedByLenzImportsBackTheSame) {
    LoadedModel first = read_onnx((kOnnxGoldenDir / "pytorch_classifier.onnx").string());
    LoadedModel again = parse_onnx(encode_onnx(first.model, first.info), "again.onnx");
    EXPECT_EQ(again.model.to_text(), first.model.to_text());
    const OnnxGolden g = load_golden("pytorch_classifier");
    EXPECT_EQ(run(again.model, g.input, g.batch), run(first.model, g.input, g.batch));
}

void expect_one_line_error(const std::string& bytes, const std::string& fragment) {
    try {
        parse_onnx(bytes, "bad.onnx");
        FAIL() << "accepted a bad file; expected an error with: " << fragment;
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("bad.onnx"), std::string::npos) << what;
        EXPECT_NE(what.find(fragment), std::string::npos) << what;
        EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
}

onnx::ModelProto classifier_proto() {
    onnx::ModelProto proto;
    EXPECT_TRUE(proto.ParseFromString(file_bytes(kOnnxGoldenDir / "pytorch_classifier.onnx")));
    return proto;
}
std::string bytes_of(const onnx::ModelProto& proto) {
    std::string s;
    proto.SerializeToString(&s);
    return s;
}

TEST(Onnx, BadFilesAreOneLineErrors) {
    expect_one_line_error("", "not an ONNX model");
    expect_one_line_error("this is not a protobuf at all", "not an ONNX model");
    const std::string good = file_bytes(kOnnxGoldenDir / "pytorch_classifier.onnx");
    // Cut short: the protobuf no longer parses, or what is left lacks the weights.
    for (size_t cut : {good.size() / 3, good.size() / 2, good.size() - 7}) {
        try {
            parse_onnx(good.substr(0, cut), "bad.onnx");
            ADD_FAILURE() << "accepted a file cut at " << cut;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("bad.onnx"), std::string::npos) << e.what();
        }
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_node(1)->set_op_type("Einsum");
        expect_one_line_error(bytes_of(p), "(Einsum): not supported");
    }
    {
        onnx::ModelProto p = classifier_proto();
        onnx::AttributeProto& dilations = *p.mutable_graph()->mutable_node(2)->add_attribute();  // MaxPool
        dilations.set_name("dilations");
        dilations.set_type(onnx::AttributeProto::INTS);
        dilations.add_ints(2);
        dilations.add_ints(2);
        expect_one_line_error(bytes_of(p), "dilated");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_node(2)->set_input(0, "nowhere");
        expect_one_line_error(bytes_of(p), "reads 'nowhere', which no node before it writes");
    }
    {
        onnx::ModelProto p = classifier_proto();  // a cycle: the first convolution reads the last node
        p.mutable_graph()->mutable_node(0)->set_input(0, p.graph().node(p.graph().node_size() - 1).output(0));
        expect_one_line_error(
            bytes_of(p),
            "which no node before it writes (the graph is not in topological order, has a cycle");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_node(3)->set_output(0, p.graph().node(1).output(0));
        expect_one_line_error(bytes_of(p), "which the graph already has from elsewhere");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_initializer(0)->set_dims(1,
                                                            9);  // the first conv's weight, 9 input channels
        expect_one_line_error(bytes_of(p), "has shape");
    }
    {
        onnx::ModelProto p;
        ASSERT_TRUE(p.ParseFromString(file_bytes(kOnnxGoldenDir / "pytorch_view.onnx")));
        for (auto& node : *p.mutable_graph()->mutable_node())
            if (node.op_type() == "Concat")
                for (auto& a : *node.mutable_attribute())
                    if (a.name() == "axis") a.set_i(1);
        expect_one_line_error(bytes_of(p), "(Concat): axis 1 is outside the tensor's 1 dimensions");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_opset_import(0)->set_version(7);
        expect_one_line_error(bytes_of(p), "opset 7 is older than 9");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_node(3)->clear_output();  // found by fuzz_onnx
        expect_one_line_error(bytes_of(p), "has no output");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(12);
        expect_one_line_error(bytes_of(p), "bytes");
    }
}

// From a review: each of these once imported as something other than what the graph computes.
TEST(Onnx, TheGraphWinsOverStaleMetadata) {
    Model model = load_model_file(LENZ_SOURCE_DIR "/models/fashion.lenz");
    model.init_params(2);
    onnx::ModelProto p = proto_of(encode_onnx(model, {}));
    for (auto& node : *p.mutable_graph()->mutable_node())
        if (node.op_type() == "Relu") {
            node.set_op_type("Sigmoid");  // edited with another tool; lenz.model still says relu
            break;
        }
    LoadedModel back = parse_onnx(bytes_of(p), "edited.onnx");
    EXPECT_NE(back.model.to_text().find("conv 32 3x3 padding=1 sigmoid"), std::string::npos)
        << back.model.to_text();
}

TEST(Onnx, ReshapesThatDoNotKeepTheBatchAreRefused) {
    onnx::ModelProto p = proto_of(file_bytes(kOnnxGoldenDir / "pytorch_view.onnx"));
    onnx::TensorProto& shape = *p.mutable_graph()->add_initializer();
    shape.set_name("one_row");
    shape.set_data_type(onnx::TensorProto::INT64);
    shape.add_dims(2);
    shape.add_int64_data(1);  // (1, -1) with a free batch: every image in one row
    shape.add_int64_data(-1);
    for (auto& node : *p.mutable_graph()->mutable_node())
        if (node.op_type() == "Reshape") node.set_input(1, "one_row");
    expect_one_line_error(bytes_of(p), "only a reshape to (N, -1)");

    onnx::ModelProto q = proto_of(file_bytes(kOnnxGoldenDir / "pytorch_view.onnx"));
    for (auto& node : *q.mutable_graph()->mutable_node())
        if (node.op_type() == "Shape") {
            onnx::AttributeProto& start = *node.add_attribute();  // opset 15: (C, H, W) only
            start.set_name("start");
            start.set_type(onnx::AttributeProto::INT);
            start.set_i(1);
        }
    expect_one_line_error(bytes_of(q), "only a reshape to (N, -1)");  // (C, -1) with Gather's index 0
}

TEST(Onnx, ConvolutionsAfterADenseLayerExportAsFourDimensional) {
    Model model = parse_model(
        "input 6x5x2\nflatten\ndense 16 relu\nconv 4 1x1 tanh\nglobalmaxpool\ndense 3 softmax\n", "m");
    model.init_params(4);
    const std::string bytes = encode_onnx(model, {});
    onnx::ModelProto p = proto_of(bytes);
    EXPECT_NO_THROW(onnx::checker::check_model(p));
    EXPECT_NO_THROW(onnx::shape_inference::InferShapes(p));
    LoadedModel back = parse_onnx(bytes, "m.onnx");
    Rng rng(9);
    std::vector<float> x(2 * 6 * 5 * 2);
    for (float& v : x) v = rng.uniform(-1, 1);
    const std::vector<float> want = run(model, x, 2), got = run(back.model, x, 2);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

// ---- Finding: an exported model must compute the same thing in every runtime, so the
// normalisation training computed is part of the graph, not only of the metadata.

TEST(Onnx, ExportedGraphsNormaliseTheirInput) {
    Model model = parse_model("input 5x4x3\nconv 2 3x3 relu\nflatten\ndense 3 softmax\n", "m");
    model.init_params(1);
    CheckpointInfo info;
    info.normalization = {{0.5f, 0.4f, 0.3f}, {0.2f, 0.25f, 0.3f}};
    const onnx::ModelProto p = proto_of(encode_onnx(model, info));
    ASSERT_GE(p.graph().node_size(), 2);
    EXPECT_EQ(p.graph().node(0).op_type(), "Sub");
    EXPECT_EQ(p.graph().node(0).input(0), "input");
    EXPECT_EQ(p.graph().node(1).op_type(), "Div");
    for (const auto& e : p.metadata_props()) EXPECT_NE(e.key(), "lenz.normalization");  // one place only

    // Without a normalisation (mean 0, std 1) there is nothing to write.
    const onnx::ModelProto plain = proto_of(encode_onnx(model, {}));
    EXPECT_EQ(plain.graph().node(0).op_type(), "Conv");
    info.normalization = {{0.5f}, {0.2f}};
    EXPECT_THROW(encode_onnx(model, info), ShapeError);  // one channel's worth for three
}

// Files Lenz wrote before kept the normalisation in the metadata only.
TEST(Onnx, OlderExportsKeepTheNormalisationFromTheirMetadata) {
    Model model = parse_model("input 5x4x3\nconv 2 3x3 relu\nflatten\ndense 3 softmax\n", "m");
    model.init_params(1);
    onnx::ModelProto p = proto_of(encode_onnx(model, {}));
    onnx::StringStringEntryProto& e = *p.add_metadata_props();
    e.set_key("lenz.normalization");
    e.set_value(R"({"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]})");
    const LoadedModel old = parse_onnx(bytes_of(p), "old.onnx");
    EXPECT_EQ(old.info.normalization.mean, (std::vector<float>{0.5f, 0.4f, 0.3f}));
    EXPECT_EQ(old.info.normalization.stddev, (std::vector<float>{0.2f, 0.25f, 0.3f}));
}

TEST(Onnx, APyTorchNormalisationAtTheInputBecomesTheModelsNormalisation) {
    const LoadedModel loaded = read_onnx((kOnnxGoldenDir / "pytorch_normalized.onnx").string());
    EXPECT_EQ(loaded.model.to_text(), "input 6x6x3\nconv 4 3x3 relu\nflatten\ndense 3 softmax\n");
    const std::vector<float> mean{0.485f, 0.456f, 0.406f}, stddev{0.229f, 0.224f, 0.225f};
    for (size_t c = 0; c < 3; ++c) {
        EXPECT_NEAR(loaded.info.normalization.mean[c], mean[c], 1e-6) << c;
        EXPECT_NEAR(loaded.info.normalization.stddev[c], stddev[c], 1e-6) << c;
    }
    onnx::ModelProto p = proto_of(file_bytes(kOnnxGoldenDir / "pytorch_normalized.onnx"));
    p.mutable_graph()->mutable_node(0)->set_input(0, "mean");  // mean - x: no normalisation
    p.mutable_graph()->mutable_node(0)->set_input(1, "input");
    expect_one_line_error(bytes_of(p), "(Div): the normalisation at the input must scale every channel");
}

// The user's trial: `lenz predict` on a checkpoint, and the file `lenz export` wrote run by an
// evaluator that shares no code with Lenz (NumPy; tests/formats/onnx_reference.py), on one PNG.
TEST(Onnx, AnExportedModelComputesWhatLenzPredictsInAnIndependentEvaluator) {
    using testing::run_command;
    using testing::run_lenz;
    const std::string python = "/usr/bin/python3",
                      evaluator = LENZ_SOURCE_DIR "/tests/formats/onnx_reference.py";
    ASSERT_EQ(run_command(python + " -c 'import numpy, onnx'").status, 0)
        << "needs python3-numpy and python3-onnx: run scripts/setup.sh";
    const std::filesystem::path dir = temp_path("predict");
    std::filesystem::create_directories(dir);
    const std::string ckpt = (dir / "model.safetensors").string(), exported = (dir / "model.onnx").string(),
                      png = (dir / "image.png").string();

    Model model = parse_model(
        "input 12x10x3\nconv 6 3x3 padding=same relu\nmaxpool 2x2\nbatchnorm\n"
        "conv 8 3x3 stride=2 padding=1 leakyrelu=0.1\navgpool 2x2 padding=1\nflatten\ndense 12 tanh\n"
        "dense 3 softmax\n",
        "trial");
    model.init_params(11);
    CheckpointInfo info;
    info.class_names = {"cat", "dog", "bird"};
    info.normalization = {{0.52f, 0.41f, 0.33f}, {0.12f, 0.2f, 0.09f}};  // what training would compute
    write_checkpoint(ckpt, model, info);
    Image image{12, 10, 3, {}};
    for (int64_t k = 0; k < 12 * 10 * 3; ++k)
        image.pixels.push_back(static_cast<uint8_t>((k * 37 + k / 30 * 11) % 256));
    write_png(png, image);

    ASSERT_EQ(run_lenz("export " + ckpt + " " + exported + " --quiet").status, 0);
    const auto predicted = [&](const std::string& model_path) {
        const testing::CommandResult r = run_lenz("predict " + model_path + " " + png + " --top 3 --json");
        EXPECT_EQ(r.status, 0) << r.out;
        std::vector<double> p(3, -1);
        const nlohmann::json out = nlohmann::json::parse(r.out);
        for (const auto& c : out[0]["predictions"]) {
            const auto at =
                std::find(info.class_names.begin(), info.class_names.end(), c["class"].get<std::string>());
            p[static_cast<size_t>(at - info.class_names.begin())] = c["probability"].get<double>();
        }
        return p;
    };
    const std::vector<double> lenz = predicted(ckpt);

    const testing::CommandResult r = run_command(python + " " + evaluator + " " + exported + " " + png);
    ASSERT_EQ(r.status, 0) << r.out;  // the ONNX checker (full_check) passed, and every operator ran
    const std::string last_line = r.out.substr(r.out.rfind('{'));
    const std::vector<double> reference =
        nlohmann::json::parse(last_line)["output"].get<std::vector<double>>();
    ASSERT_EQ(reference.size(), 3u) << r.out;
    for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(reference[k], lenz[k], 1e-5) << info.class_names[k];

    // Lenz reading its own export back computes the same again: the front nodes became the
    // model's normalisation.
    const std::vector<double> again = predicted(exported);
    for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(again[k], lenz[k], 1e-6) << info.class_names[k];

    // The check can fail: the same model without the normalisation gives other probabilities.
    Inference inference(model, 1);
    std::vector<float> raw(image.pixels.size());
    for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < 12 * 10; ++i)
            raw[static_cast<size_t>(c * 120 + i)] = image.pixels[static_cast<size_t>(i * 3 + c)] / 255.0f;
    const float* unnormalised = inference.run(raw.data(), 1);
    double differs = 0;
    for (size_t k = 0; k < 3; ++k) differs = std::max(differs, std::abs(unnormalised[k] - lenz[k]));
    EXPECT_GT(differs, 0.05);
    std::filesystem::remove_all(dir);
}

// ---- Finding: ONNX files PyTorch writes every day, plain chains, must import.

TEST(Onnx, PyTorchsPadsBeforeAveragePoolAndConvolutionImport) {
    // AvgPool2d(2) comes with a Pad of all zeros; ZeroPad2d((0, 1, 0, 1)), with the ConstantOfShape,
    // Slice, Transpose and Cast that work out its pads, goes into the convolution after it.
    const LoadedModel loaded = read_onnx((kOnnxGoldenDir / "pytorch_avgpool.onnx").string());
    EXPECT_EQ(loaded.model.to_text(),
              "input 9x8x2\nconv 6 2x2 padding=same relu\navgpool 2x2\nconv 4 3x3 padding=1\navgpool 2x2\n"
              "flatten\ndense 3\n");
}

TEST(Onnx, ZeroPaddingBeforeAPoolIsCountedOrRefused) {
    // AvgPool2d(3, stride=2, padding=1) counts its zero padding: PyTorch writes a Pad and an
    // AveragePool without pads, which Lenz reads as one average pool that counts its padding
    // (its outputs are checked against PyTorch's above).
    EXPECT_EQ(read_onnx((kOnnxGoldenDir / "pytorch_avgpool_counted.onnx").string()).model.to_text(),
              "input 8x8x1\nconv 2 3x3\navgpool 3x3 stride=2 padding=1 count-padding\n");
    onnx::ModelProto p = proto_of(file_bytes(kOnnxGoldenDir / "pytorch_avgpool_counted.onnx"));
    for (auto& node : *p.mutable_graph()->mutable_node())
        if (node.op_type() == "AveragePool") node.set_op_type("MaxPool");
    expect_one_line_error(bytes_of(p), "(Pad): pads with zeros that the MaxPool after it takes as values");
}

TEST(Onnx, SharedInitializersReadThroughIdentityImport) {
    // Fresh batch norm layers: PyTorch keeps one copy of their equal weights (ones) and biases,
    // means (zeros), and gives the others as Identity nodes at the top of the graph.
    const LoadedModel loaded = read_onnx((kOnnxGoldenDir / "pytorch_fresh_batchnorm.onnx").string());
    EXPECT_EQ(loaded.model.to_text(),
              "input 12x12x3\nconv 4 3x3 relu\nmaxpool 2x2\nbatchnorm\nconv 4 3x3\nmaxpool 2x2\nbatchnorm\n"
              "flatten\ndense 2\n");
}

// The blocks of torchvision's graph CNNs come in as the layers that compute them (their outputs
// are checked against PyTorch's above): joins, activations PyTorch spells out, channel splits and
// shuffles, and ConvNeXt's channels-last section.
TEST(Onnx, GraphBlocksImportAsTheirLayers) {
    const auto text = [](const std::string& name) {
        return read_onnx((kOnnxGoldenDir / (name + ".onnx")).string()).model.to_text();
    };
    EXPECT_EQ(text("pytorch_residual"),
              "input 8x8x3\nconv 4 3x3 padding=1 relu name=_1\nconv 8 3x3 stride=2 padding=1 relu\n"
              "conv 8 3x3 padding=1 name=_3\nconv 8 1x1 stride=2 from=_1 name=_4\nadd _3 _4 relu\n"
              "globalavgpool\nflatten\ndense 2\n");
    EXPECT_EQ(text("pytorch_inception"),
              "input 9x8x3\nconv 4 1x1 name=_1\nconv 4 1x1 relu from=input\nconv 6 3x3 padding=1 name=_3\n"
              "avgpool 3x3 stride=1 padding=1 count-padding from=input\nconv 2 1x1 name=_5\n"
              "maxpool 3x3 stride=1 padding=1 ceil from=input\nconv 2 1x1 name=_7\nconcat _1 _3 _5 _7\n"
              "relu\nglobalavgpool\nflatten\ndense 3\n");
    const std::string mobile = text("pytorch_mobilenet_v3");  // hard-swish from HardSigmoid and Mul
    EXPECT_NE(mobile.find("conv 24 1x1\nhardswish\n"), std::string::npos) << mobile;
    EXPECT_NE(mobile.find("conv 24 1x1 hardsigmoid name=_8\nmul _5 _8\n"), std::string::npos) << mobile;
    const std::string efficient = text("pytorch_efficientnet");  // SiLU from Sigmoid and Mul
    EXPECT_NE(efficient.find("conv 32 1x1\nsilu\n"), std::string::npos) << efficient;
    const std::string shuffle = text("pytorch_shufflenet");
    EXPECT_NE(shuffle.find("concat _3 _6\nshuffle 2 name=_8\nslice 0:8 name=_9\nslice 8:16 from=_8\n"),
              std::string::npos)
        << shuffle;
    EXPECT_NE(shuffle.find("shuffle 2\nglobalavgpool\ndense 3\n"), std::string::npos)
        << shuffle;  // x.mean([2, 3])
    // Permute, layer norm, linear, GELU, linear, permute back, layer scale: the same layers from the
    // opset-13 spelling and from opset 17's LayerNormalization.
    const std::string block =
        "conv 8 7x7 padding=3 groups=8\nlayernorm eps=1e-06\nconv 32 1x1\ngelu\nconv 8 1x1\n"
        "conv 8 1x1 groups=8 nobias name=_7\nadd _7 _1\nlayernorm\n";
    EXPECT_NE(text("pytorch_convnext").find(block), std::string::npos) << text("pytorch_convnext");
    EXPECT_EQ(text("pytorch_convnext"), text("pytorch_convnext_opset17"));
}

TEST(Onnx, JoinsThatDoNotFitAreOneLineErrors) {
    onnx::ModelProto p = classifier_proto();
    onnx::NodeProto& node = *p.mutable_graph()->mutable_node(3);  // batch norm -> pooled x unpooled
    node.set_op_type("Mul");
    node.clear_attribute();
    node.clear_input();
    node.add_input(p.graph().node(2).output(0));
    node.add_input(p.graph().node(1).output(0));
    expect_one_line_error(bytes_of(p), "(Mul): layer 3 (mul) on input 7x6x8 and 15x13x8: mul: the gate");
    node.set_op_type("Sub");
    expect_one_line_error(bytes_of(p), "(Sub): Sub of two computed tensors is not supported");
}

// A quantised model exports as QDQ: QuantizeLinear/DequantizeLinear before each int8 layer's input,
// int8 weights through DequantizeLinear. The independent evaluator (which simulates the rounding in
// float64) computes what Lenz's int8 engine does, and the file imports back as a quantised model.
TEST(Onnx, QuantisedModelExportsAsQdqThatAnEvaluatorAndImportAgreeWith) {
    Model m = load_model_file(LENZ_SOURCE_DIR "/models/fashion.lenz");
    m.init_params(5);
    LoadedModel loaded{std::move(m), {}, {}};
    loaded.info.normalization = {{0.3f}, {0.35f}};
    Model& model = loaded.model;
    std::vector<float> calibration(64 * 28 * 28);
    Rng rng(2);
    for (float& v : calibration) v = (rng.uniform(0.0f, 1.0f) - 0.3f) / 0.35f;
    model.set_value_ranges(calibrate(model, calibration.data(), 64));
    round_weights_to_int8(model);

    const std::string bytes = encode_onnx(model, loaded.info);
    const onnx::ModelProto p = proto_of(bytes);
    int quantize = 0, dequantize = 0;
    for (const auto& node : p.graph().node()) {
        quantize += node.op_type() == "QuantizeLinear";
        dequantize += node.op_type() == "DequantizeLinear";
    }
    EXPECT_EQ(quantize, 4) << "the input of each convolution and dense layer";
    EXPECT_EQ(dequantize, 8) << "those, and the four layers' weights";
    int int8_weights = 0;
    for (const auto& t : p.graph().initializer())
        int8_weights += t.data_type() == onnx::TensorProto::INT8 && t.dims_size() > 1;
    EXPECT_EQ(int8_weights, 4);

    const std::filesystem::path dir = temp_path("qdq");
    std::filesystem::create_directories(dir);
    const std::string exported = (dir / "model.onnx").string(), png = (dir / "image.png").string();
    write_onnx(exported, model, loaded.info);
    Image image{28, 28, 1, {}};
    for (int64_t k = 0; k < 28 * 28; ++k)
        image.pixels.push_back(static_cast<uint8_t>((k * 37 + k / 30 * 11) % 256));
    write_png(png, image);
    const testing::CommandResult r = testing::run_command(
        "/usr/bin/python3 " LENZ_SOURCE_DIR "/tests/formats/onnx_reference.py " + exported + " " + png);
    ASSERT_EQ(r.status, 0) << r.out;
    const std::vector<double> reference = nlohmann::json::parse(r.out.substr(r.out.rfind('{')))["output"];

    std::vector<float> pixels(28 * 28);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = image.pixels[i] / 255.0f;
    const std::vector<float> input = normalized(loaded, pixels);
    Inference int8(model, 1, Precision::int8);
    const float* lenz = int8.run(input.data(), 1);
    LoadedModel back = parse_onnx(bytes, "qdq.onnx");
    ASSERT_TRUE(back.model.calibrated()) << "a QDQ file imports as a quantised model";
    Inference imported(back.model, 1, Precision::int8);
    const float* again = imported.run(input.data(), 1);
    for (size_t k = 0; k < 10; ++k) {
        EXPECT_NEAR(reference[k], lenz[k], 0.01) << "class " << k;
        EXPECT_NEAR(again[k], lenz[k], 0.01) << "class " << k;
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lenz

namespace lenz {
namespace {

// ---- upsampling: Resize and Upsample

onnx::ModelProto upsample_proto(const std::string& name = "pytorch_upsample") {
    onnx::ModelProto proto;
    EXPECT_TRUE(proto.ParseFromString(file_bytes(kOnnxGoldenDir / (name + ".onnx"))));
    return proto;
}
// The k-th node of operator `op`.
onnx::NodeProto& node_of(onnx::ModelProto& p, const std::string& op, int k = 0) {
    for (onnx::NodeProto& n : *p.mutable_graph()->mutable_node())
        if (n.op_type() == op && k-- == 0) return n;
    throw std::runtime_error("no " + op + " node");
}
void set_text_attribute(onnx::NodeProto& n, const std::string& name, const std::string& value) {
    for (onnx::AttributeProto& a : *n.mutable_attribute())
        if (a.name() == name) return a.set_s(value);
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::STRING);
    a.set_s(value);
}
// Points input `index` of `n` at a new float initializer holding `values`.
void set_float_input(onnx::ModelProto& p, onnx::NodeProto& n, int index, const std::vector<float>& values) {
    onnx::TensorProto& t = *p.mutable_graph()->add_initializer();
    t.set_name("test." + n.name() + "." + std::to_string(index));
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(static_cast<int64_t>(values.size()));
    for (float v : values) t.add_float_data(v);
    n.set_input(index, t.name());
}

// nn.Upsample and F.interpolate as torch.onnx.export writes them (Resize by scales at opset 13,
// by sizes worked out with Shape/Slice/Concat, Upsample at opset 9) import as the layer, in the
// model file's words, and compute what PyTorch computed (above); exported again, they pass the
// checker, import back the same, and the reference evaluator agrees.
TEST(Onnx, ResizeAndUpsampleImportAsTheUpsampleLayer) {
    EXPECT_EQ(read_onnx((kOnnxGoldenDir / "pytorch_upsample.onnx").string()).model.to_text(),
              "input 6x8x3\nconv 4 3x3 padding=1 relu name=_1\nmaxpool 2x2\nconv 6 3x3 padding=1 relu\n"
              "upsample 2 name=_4\nconcat _4 _1\nconv 4 3x3 padding=1 relu\nupsample 2x3 bilinear\n"
              "upsample 2 bilinear align-corners\nconv 3 1x1\n");
    EXPECT_EQ(read_onnx((kOnnxGoldenDir / "pytorch_interpolate_size.onnx").string()).model.to_text(),
              "input 12x16x3\nconv 6 3x3 stride=2 padding=1 relu\nconv 4 3x3 stride=2 padding=1\n"
              "upsample 4 bilinear\n");
    EXPECT_EQ(read_onnx((kOnnxGoldenDir / "pytorch_upsample_opset9.onnx").string()).model.to_text(),
              "input 5x4x3\nconv 4 3x3 padding=1\nupsample 3x2\nconv 2 1x1\n");
    for (const std::string name : {"pytorch_upsample", "pytorch_interpolate_size", "pytorch_upsample_opset9"})
        expect_round_trip(name);
}

// Every spelling of the layer goes out as Resize with PyTorch's attributes and comes back the same.
TEST(Onnx, EveryUpsampleExportsAsResizeAndImportsBack) {
    expect_model_round_trip(
        "input 5x3x3\nconv 3 3x3 padding=same name=a\nupsample 2\nupsample 1x3 bilinear\n"
        "upsample 2x1 bilinear align-corners name=p\nconv 3 1x1 from=a\nupsample 4x6 name=q\nadd p q\n"
        "conv 2 1x1\n",
        "every-upsample");
    Model model = parse_model("input 4x4x1\nupsample 2x3 bilinear align-corners\n", "m.lenz");
    const onnx::ModelProto p = proto_of(encode_onnx(model, {}));
    int resizes = 0;
    for (const onnx::NodeProto& n : p.graph().node()) {
        if (n.op_type() != "Resize") continue;
        ++resizes;
        ASSERT_EQ(n.input_size(), 3);
        EXPECT_EQ(n.input(1), "");  // no region of interest
        std::map<std::string, std::string> attributes;
        for (const onnx::AttributeProto& a : n.attribute()) attributes[a.name()] = a.s();
        EXPECT_EQ(attributes["mode"], "linear");
        EXPECT_EQ(attributes["coordinate_transformation_mode"], "align_corners");
        for (const onnx::TensorProto& t : p.graph().initializer())
            if (t.name() == n.input(2)) {
                const std::string& raw = t.raw_data();
                ASSERT_EQ(raw.size(), 16u);
                std::vector<float> scales(4);
                std::memcpy(scales.data(), raw.data(), 16);
                EXPECT_EQ(scales, (std::vector<float>{1, 1, 2, 3}));
            }
    }
    EXPECT_EQ(resizes, 1);
}

// What the layer cannot compute is one line naming the node and what is unsupported.
TEST(Onnx, ResizeThatIsNotAWholeFactorUpsampleIsAOneLineError) {
    {
        onnx::ModelProto p = upsample_proto();
        set_float_input(p, node_of(p, "Resize"), 2, {1, 1, 1.5f, 2});
        expect_one_line_error(bytes_of(p),
                              "node '/up/Resize' (Resize): scale 1.500000 of H is not supported");
    }
    {
        onnx::ModelProto p = upsample_proto();
        set_float_input(p, node_of(p, "Resize"), 2, {1, 1, 0.5f, 0.5f});
        expect_one_line_error(bytes_of(p), "(Resize): scale 0.500000 of H is not supported");
    }
    {
        onnx::ModelProto p = upsample_proto();
        set_float_input(p, node_of(p, "Resize"), 2, {1, 2, 2, 2});
        expect_one_line_error(bytes_of(p), "(Resize): scales the batch or the channels");
    }
    {
        onnx::ModelProto p = upsample_proto();
        set_text_attribute(node_of(p, "Resize"), "mode", "cubic");
        expect_one_line_error(bytes_of(p),
                              "(Resize): mode 'cubic' is not supported (nearest and linear are)");
    }
    {
        onnx::ModelProto p = upsample_proto();
        set_text_attribute(node_of(p, "Resize"), "nearest_mode", "ceil");
        expect_one_line_error(bytes_of(p),
                              "(Resize): nearest with coordinate_transformation_mode 'asymmetric' and "
                              "nearest_mode 'ceil' is not supported");
    }
    {
        onnx::ModelProto p = upsample_proto();
        set_text_attribute(node_of(p, "Resize", 1), "coordinate_transformation_mode", "asymmetric");
        expect_one_line_error(bytes_of(p),
                              "node '/up2/Resize' (Resize): linear with coordinate_transformation_mode "
                              "'asymmetric' is not supported");
    }
    {
        onnx::ModelProto p = upsample_proto();
        set_text_attribute(node_of(p, "Resize", 1), "coordinate_transformation_mode", "tf_crop_and_resize");
        expect_one_line_error(bytes_of(p), "'tf_crop_and_resize' is not supported");
    }
    // Constant sizes, in a graph whose batch is fixed at 2: that batch, the channels, whole multiples.
    const auto with_sizes = [](const std::vector<int64_t>& values) {
        onnx::ModelProto p = upsample_proto();
        p.mutable_graph()
            ->mutable_input(0)
            ->mutable_type()
            ->mutable_tensor_type()
            ->mutable_shape()
            ->mutable_dim(0)
            ->set_dim_value(2);
        onnx::NodeProto& resize = node_of(p, "Resize");
        set_float_input(p, resize, 2, {});
        onnx::TensorProto& sizes = *p.mutable_graph()->add_initializer();
        sizes.set_name("test.sizes");
        sizes.set_data_type(onnx::TensorProto::INT64);
        sizes.add_dims(static_cast<int64_t>(values.size()));
        for (int64_t v : values) sizes.add_int64_data(v);
        resize.add_input("test.sizes");
        return bytes_of(p);
    };
    EXPECT_EQ(parse_onnx(with_sizes({2, 6, 6, 8}), "sizes.onnx").model.to_text(),
              read_onnx((kOnnxGoldenDir / "pytorch_upsample.onnx").string()).model.to_text());
    // A size of another ratio imports (upsample size=5x8), and then does not fit the concatenation
    // this graph has after it.
    expect_one_line_error(with_sizes({2, 6, 5, 8}), "concat: inputs of different sizes, 5x8x6 and 6x8x4");
    expect_one_line_error(with_sizes({2, 6, 0, 8}), "(Resize): size 0 of axis 2 is not positive");
    expect_one_line_error(with_sizes({3, 6, 6, 8}), "(Resize): changes the batch size");
    expect_one_line_error(with_sizes({2, 12, 6, 8}), "(Resize): scales the batch or the channels");
    expect_one_line_error(with_sizes({6, 8}), "(Resize): has 2 scales or sizes for 4 axes");
    {
        onnx::ModelProto p = upsample_proto("pytorch_upsample_opset9");
        set_text_attribute(node_of(p, "Upsample"), "mode", "linear");
        expect_one_line_error(bytes_of(p),
                              "(Upsample): mode linear of Upsample samples at o / scale (asymmetric)");
    }
}

// Nearest by a whole factor reads floor(o / S) under half_pixel rounded either way too (ONNX's
// defaults, as other exporters write them): it imports as the same layer and computes the same.
TEST(Onnx, NearestResizeWithHalfPixelRoundingIsTheSameUpsample) {
    onnx::ModelProto p = upsample_proto();
    onnx::NodeProto& resize = node_of(p, "Resize");
    set_text_attribute(resize, "coordinate_transformation_mode", "half_pixel");
    set_text_attribute(resize, "nearest_mode", "round_prefer_ceil");
    LoadedModel changed = parse_onnx(bytes_of(p), "half-pixel.onnx");
    LoadedModel original = read_onnx((kOnnxGoldenDir / "pytorch_upsample.onnx").string());
    EXPECT_EQ(changed.model.to_text(), original.model.to_text());
    const OnnxGolden g = load_golden("pytorch_upsample");
    EXPECT_EQ(run(changed.model, g.input, g.batch), run(original.model, g.input, g.batch));
}

// ---- transposed convolution: ConvTranspose

onnx::ModelProto conv_transpose_proto() {
    onnx::ModelProto proto;
    EXPECT_TRUE(proto.ParseFromString(file_bytes(kOnnxGoldenDir / "pytorch_convtranspose.onnx")));
    return proto;
}
onnx::NodeProto& conv_transpose_node(onnx::ModelProto& p, int k) {
    for (onnx::NodeProto& n : *p.mutable_graph()->mutable_node())
        if (n.op_type() == "ConvTranspose" && k-- == 0) return n;
    throw std::runtime_error("no ConvTranspose node");
}
// Sets (or, given no values, removes) the integer list attribute `name` of `n`.
void set_ints_attribute(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
    auto& attributes = *n.mutable_attribute();
    for (int i = 0; i < attributes.size(); ++i)
        if (attributes[i].name() == name) {
            attributes.DeleteSubrange(i, 1);
            break;
        }
    if (values.empty()) return;
    onnx::AttributeProto& a = *n.add_attribute();
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a.add_ints(v);
}

// torch.onnx.export's ConvTranspose2d (2x2 stride 2; 3x3 stride 2 padding 1 output_padding 1 in two
// groups; 3x2 stride 1x2 padding 2x0 dilated, no bias) reads as the layer, computes what PyTorch
// computed (the golden list above), and exported again imports back the same.
TEST(Onnx, ConvTransposeImportsAsTheConvTransposeLayer) {
    EXPECT_EQ(read_onnx((kOnnxGoldenDir / "pytorch_convtranspose.onnx").string()).model.to_text(),
              "input 6x8x3\nconv 4 3x3 padding=1 relu name=_1\nmaxpool 2x2\nconv 6 3x3 padding=1 relu\n"
              "convtranspose 4 2x2 stride=2 relu name=_4\nconcat _4 _1\nconv 4 3x3 padding=1 relu\n"
              "convtranspose 6 3x3 stride=2 padding=1 output-padding=1 groups=2 sigmoid\n"
              "convtranspose 2 3x2 stride=1x2 padding=2x0 dilation=2 nobias\n");
    expect_round_trip("pytorch_convtranspose");
}

// The same layer spelt three more ways ONNX allows: output_shape instead of pads and output_padding,
// and pads larger at the start (the output padding, in effect); each imports as the original does.
TEST(Onnx, ConvTransposeOutputShapeAndUnevenPadsReadAsOutputPadding) {
    const std::string want =
        read_onnx((kOnnxGoldenDir / "pytorch_convtranspose.onnx").string()).model.to_text();
    {
        onnx::ModelProto p = conv_transpose_proto();
        onnx::NodeProto& n = conv_transpose_node(p, 1);
        set_ints_attribute(n, "pads", {});
        set_ints_attribute(n, "output_padding", {});
        set_ints_attribute(n, "output_shape", {12, 16});
        EXPECT_EQ(parse_onnx(bytes_of(p), "shape.onnx").model.to_text(), want);
        set_ints_attribute(n, "output_shape", {2, 6, 12, 16});
        EXPECT_EQ(parse_onnx(bytes_of(p), "shape.onnx").model.to_text(), want);
    }
    {
        onnx::ModelProto p = conv_transpose_proto();
        onnx::NodeProto& n = conv_transpose_node(p, 1);
        set_ints_attribute(n, "pads", {1, 1, 0, 0});
        set_ints_attribute(n, "output_padding", {});
        EXPECT_EQ(parse_onnx(bytes_of(p), "uneven.onnx").model.to_text(), want);
    }
    {
        onnx::ModelProto p = conv_transpose_proto();
        onnx::NodeProto& n = conv_transpose_node(p, 1);
        set_ints_attribute(n, "pads", {0, 0, 1, 1});
        set_ints_attribute(n, "output_padding", {});
        expect_one_line_error(bytes_of(p),
                              "(ConvTranspose): asymmetric pads with more at the end (0, 0, 1, 1)");
    }
    {
        onnx::ModelProto p = conv_transpose_proto();
        set_ints_attribute(conv_transpose_node(p, 0), "output_padding", {2, 2});
        expect_one_line_error(bytes_of(p),
                              "(ConvTranspose): pads and output_padding give an output padding of 2x2, which "
                              "must be smaller than the stride or the dilation");
    }
    {
        onnx::ModelProto p = conv_transpose_proto();
        set_ints_attribute(conv_transpose_node(p, 0), "output_shape", {1, 2, 3});
        expect_one_line_error(bytes_of(p), "(ConvTranspose): output_shape must give H and W");
    }
}

// Every spelling of the layer goes out as ConvTranspose and comes back the same, outputs included.
TEST(Onnx, EveryConvTransposeExportsAndImportsBack) {
    expect_model_round_trip(
        "input 5x4x3\nconv 4 3x3 padding=same name=a\nconvtranspose 6 2 stride=2 relu\n"
        "convtranspose 4 3x2 stride=2x1 padding=1x0 output-padding=1x0 groups=2 dilation=2 nobias\n"
        "convtranspose 3 3 stride=3 output-padding=2 tanh\nglobalavgpool\nflatten\ndense 3\n",
        "every-convtranspose");
    Model model =
        parse_model("input 4x4x2\nconvtranspose 4 3 stride=2 padding=1 output-padding=1\n", "m.lenz");
    const onnx::ModelProto p = proto_of(encode_onnx(model, {}));
    int found = 0;
    for (const onnx::NodeProto& n : p.graph().node()) {
        if (n.op_type() != "ConvTranspose") continue;
        ++found;
        std::map<std::string, std::vector<int64_t>> attributes;
        for (const onnx::AttributeProto& a : n.attribute())
            attributes[a.name()] = {a.ints().begin(), a.ints().end()};
        EXPECT_EQ(attributes["pads"], (std::vector<int64_t>{1, 1, 1, 1}));
        EXPECT_EQ(attributes["output_padding"], (std::vector<int64_t>{1, 1}));
        EXPECT_EQ(attributes["strides"], (std::vector<int64_t>{2, 2}));
    }
    EXPECT_EQ(found, 1);
}

}  // namespace
}  // namespace lenz
