// ONNX: PyTorch's own exports import and compute what PyTorch computed; Lenz's exports pass the
// ONNX project's checker and shape inference and import back to the same model; bad files are
// one-line errors.
#include "lenz/onnx.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lenz/engine.h"
#include "lenz/error.h"

namespace lenz {
namespace {

const std::filesystem::path kGolden = std::filesystem::path(LENZ_SOURCE_DIR) / "tests" / "golden" / "onnx";

struct Golden {
    int64_t batch;
    std::vector<float> input, output;
};
Golden load_golden(const std::string& name) {
    std::ifstream in(kGolden / (name + ".json"));
    const nlohmann::json j = nlohmann::json::parse(in);
    return {j["input_shape"][0].get<int64_t>(), j["input"].get<std::vector<float>>(),
            j["output"].get<std::vector<float>>()};
}

std::vector<float> run(Model& model, const std::vector<float>& input, int64_t batch) {
    Inference inference(model, batch);
    const float* out = inference.run(input.data(), batch);
    return {out, out + batch * model.output_shape().elements()};
}

std::string file_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Onnx, PyTorchExportsImportAndComputeWhatPyTorchComputed) {
    for (const std::string name : {"pytorch_classifier", "pytorch_feature_map", "pytorch_view",
                                   "pytorch_avgpool", "pytorch_fresh_batchnorm"}) {
        LoadedModel loaded = read_onnx((kGolden / (name + ".onnx")).string());
        const Golden g = load_golden(name);
        const std::vector<float> got = run(loaded.model, g.input, g.batch);
        ASSERT_EQ(got.size(), g.output.size()) << name;
        for (size_t i = 0; i < got.size(); ++i)
            EXPECT_NEAR(got[i], g.output[i], 2e-5) << name << " [" << i << "]";
    }
    LoadedModel c = read_onnx((kGolden / "pytorch_classifier.onnx").string());
    // What PyTorch wrote, in the model file's words.
    EXPECT_EQ(c.model.to_text(),
              "input 30x26x3\nconv 8 3x3 stride=2 padding=1 relu\nmaxpool 2x2\nbatchnorm\n"
              "conv 12 3x3 padding=1 leakyrelu=0.1\navgpool 3x3 stride=2 padding=1\nconv 16 1x1 sigmoid\n"
              "globalavgpool\nflatten\ndense 10 tanh\ndense 5 softmax\n");
    EXPECT_EQ(c.info.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
    EXPECT_EQ(c.info.normalization.mean, std::vector<float>(3, 0.0f));
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
        if (dot == std::string::npos || name.find('.', dot + 1) != std::string::npos)
            continue;  // "3.batchnorm"
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
    LoadedModel first = read_onnx((kGolden / "pytorch_classifier.onnx").string());
    LoadedModel again = parse_onnx(encode_onnx(first.model, first.info), "again.onnx");
    EXPECT_EQ(again.model.to_text(), first.model.to_text());
    const Golden g = load_golden("pytorch_classifier");
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
    EXPECT_TRUE(proto.ParseFromString(file_bytes(kGolden / "pytorch_classifier.onnx")));
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
    const std::string good = file_bytes(kGolden / "pytorch_classifier.onnx");
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
        p.mutable_graph()->mutable_node(1)->set_op_type("Upsample");
        expect_one_line_error(bytes_of(p), "(Upsample): not supported");
    }
    {
        onnx::ModelProto p = classifier_proto();
        for (auto& a : *p.mutable_graph()->mutable_node(0)->mutable_attribute())
            if (a.name() == "dilations") a.set_ints(0, 2);
        expect_one_line_error(bytes_of(p), "dilated");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_node(2)->set_input(0, "input");  // a branch back to the input
        expect_one_line_error(bytes_of(p), "one chain");
    }
    {
        onnx::ModelProto p = classifier_proto();
        p.mutable_graph()->mutable_initializer(0)->set_dims(1,
                                                            9);  // the first conv's weight, 9 input channels
        expect_one_line_error(bytes_of(p), "has shape");
    }
    {
        onnx::ModelProto p;
        ASSERT_TRUE(p.ParseFromString(file_bytes(kGolden / "pytorch_view.onnx")));
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

onnx::ModelProto proto_of(const std::string& bytes) {
    onnx::ModelProto p;
    EXPECT_TRUE(p.ParseFromString(bytes));
    return p;
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
    onnx::ModelProto p = proto_of(file_bytes(kGolden / "pytorch_view.onnx"));
    onnx::TensorProto& shape = *p.mutable_graph()->add_initializer();
    shape.set_name("one_row");
    shape.set_data_type(onnx::TensorProto::INT64);
    shape.add_dims(2);
    shape.add_int64_data(1);  // (1, -1) with a free batch: every image in one row
    shape.add_int64_data(-1);
    for (auto& node : *p.mutable_graph()->mutable_node())
        if (node.op_type() == "Reshape") node.set_input(1, "one_row");
    expect_one_line_error(bytes_of(p), "only a reshape to (N, -1)");

    onnx::ModelProto q = proto_of(file_bytes(kGolden / "pytorch_view.onnx"));
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

// ---- Finding: ONNX files PyTorch writes every day, plain chains, must import.

TEST(Onnx, PyTorchsPadsBeforeAveragePoolAndConvolutionImport) {
    // AvgPool2d(2) comes with a Pad of all zeros; ZeroPad2d((0, 1, 0, 1)), with the ConstantOfShape,
    // Slice, Transpose and Cast that work out its pads, goes into the convolution after it.
    const LoadedModel loaded = read_onnx((kGolden / "pytorch_avgpool.onnx").string());
    EXPECT_EQ(loaded.model.to_text(),
              "input 9x8x2\nconv 6 2x2 padding=same relu\navgpool 2x2\nconv 4 3x3 padding=1\navgpool 2x2\n"
              "flatten\ndense 3\n");
}

TEST(Onnx, ZeroPaddingThatAPoolWouldCountIsRefused) {
    // AvgPool2d(3, stride=2, padding=1) counts its zero padding, which Lenz's average pooling never does.
    expect_one_line_error(file_bytes(kGolden / "pytorch_avgpool_counted.onnx"),
                          "node '/1/Pad' (Pad): pads with zeros that the AveragePool after it counts");
    onnx::ModelProto p = proto_of(file_bytes(kGolden / "pytorch_avgpool_counted.onnx"));
    for (auto& node : *p.mutable_graph()->mutable_node())
        if (node.op_type() == "AveragePool") node.set_op_type("MaxPool");
    expect_one_line_error(bytes_of(p), "(Pad): pads with zeros that the MaxPool after it takes as values");
}

TEST(Onnx, SharedInitializersReadThroughIdentityImport) {
    // Fresh batch norm layers: PyTorch keeps one copy of their equal weights (ones) and biases,
    // means (zeros), and gives the others as Identity nodes at the top of the graph.
    const LoadedModel loaded = read_onnx((kGolden / "pytorch_fresh_batchnorm.onnx").string());
    EXPECT_EQ(loaded.model.to_text(),
              "input 12x12x3\nconv 4 3x3 relu\nmaxpool 2x2\nbatchnorm\nconv 4 3x3\nmaxpool 2x2\nbatchnorm\n"
              "flatten\ndense 2\n");
}

TEST(Onnx, AGraphThatIsNoChainBlamesWhereItsBranchesJoin) {
    // A ResNet block: the Identity nodes at the top and the shortcut's convolution are fine; the
    // Add that joins the two paths is what Lenz cannot do.
    expect_one_line_error(file_bytes(kGolden / "pytorch_residual.onnx"),
                          "node '/Add' (Add): joins the computed tensors '/c2/Conv_output_0' and "
                          "'/down/down.0/Conv_output_0' (a residual connection or branches)");
    // A join reached first along the chain.
    onnx::ModelProto p = classifier_proto();
    onnx::NodeProto& node = *p.mutable_graph()->mutable_node(3);  // batch norm -> pooled x unpooled
    node.set_op_type("Mul");
    node.clear_attribute();
    node.clear_input();
    node.add_input(p.graph().node(2).output(0));
    node.add_input(p.graph().node(1).output(0));
    expect_one_line_error(bytes_of(p), "(Mul): joins the computed tensors");
}

}  // namespace
}  // namespace lenz
