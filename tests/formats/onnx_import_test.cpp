// ONNX import: settings that would change what a graph computes are refused, not dropped.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <string>

#include "lenz/error.h"
#include "lenz/onnx.h"

namespace lenz {
namespace {

// Lenz's own export of a model with dropout, whose Dropout node gets opset 12's third input,
// training_mode, as a bool initializer.
std::string dropout_model(bool training_mode) {
    Model model = parse_model("input 6x6x2\nconv 3 3x3 relu\ndropout 0.5\nflatten\ndense 2\n", "m.lenz");
    model.init_params(1);
    onnx::ModelProto p;
    EXPECT_TRUE(p.ParseFromString(encode_onnx(model, {})));
    onnx::TensorProto& flag = *p.mutable_graph()->add_initializer();
    flag.set_name("training");
    flag.set_data_type(onnx::TensorProto::BOOL);
    flag.set_raw_data(std::string(1, training_mode ? '\1' : '\0'));
    for (auto& node : *p.mutable_graph()->mutable_node())
        if (node.op_type() == "Dropout") node.add_input("training");
    std::string bytes;
    EXPECT_TRUE(p.SerializeToString(&bytes));
    return bytes;
}

TEST(OnnxImport, DropoutInTrainingModeIsRefusedAndOtherwiseImports) {
    EXPECT_EQ(parse_onnx(dropout_model(false), "m.onnx").model.to_text(),
              "input 6x6x2\nconv 3 3x3 relu\ndropout 0.5\nflatten\ndense 2\n");
    try {
        parse_onnx(dropout_model(true), "m.onnx");
        ADD_FAILURE() << "a Dropout that drops at inference imported";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("(Dropout): training_mode must be false"), std::string::npos)
            << e.what();
    }
}

// PyTorch writes x + x and x * x as a node reading one tensor twice: a join of that value with itself.
TEST(OnnxImport, AJoinOfATensorWithItselfImports) {
    for (const std::string op : {"add", "mul"}) {
        Model model =
            parse_model("input 4x4x2\nconv 2 1x1 name=x\n" + op + " x x\nflatten\ndense 2\n", "m.lenz");
        model.init_params(1);
        onnx::ModelProto p;
        ASSERT_TRUE(p.ParseFromString(encode_onnx(model, {})));
        p.clear_metadata_props();  // the graph alone
        // Lenz's export reads the second operand through an Identity; read the tensor itself twice.
        auto& nodes = *p.mutable_graph()->mutable_node();
        for (int k = 0; k < nodes.size(); ++k)
            if (nodes[k].op_type() == "Identity") {
                const std::string from = nodes[k].input(0), to = nodes[k].output(0);
                for (auto& n : nodes)
                    for (auto& in : *n.mutable_input())
                        if (in == to) in = from;
                nodes.DeleteSubrange(k, 1);
                break;
            }
        std::string bytes;
        ASSERT_TRUE(p.SerializeToString(&bytes));
        EXPECT_EQ(parse_onnx(bytes, "m.onnx").model.to_text(),
                  "input 4x4x2\nconv 2 1x1 name=_1\n" + op + " _1 _1\nflatten\ndense 2\n");
    }
}

}  // namespace
}  // namespace lenz
