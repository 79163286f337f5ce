// ONNX import: settings that would change what a graph computes are refused, not dropped.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lenz/error.h"
#include "lenz/model_text.h"
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

// Tensors stored beside the model (PyTorch's export above 2 GB) are read from the model's own folder,
// and from nowhere else: an absolute path, a "../" and a symbolic link out of the folder are refused.
TEST(OnnxImport, ExternalDataIsReadOnlyFromTheModelsFolder) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("lenz-external-" + std::to_string(::getpid()));
    fs::create_directories(dir / "weights");
    Model model = parse_model("input 6x6x2\nconv 3 3x3 relu\nflatten\ndense 2\n", "m.lenz");
    model.init_params(4);
    onnx::ModelProto p;
    ASSERT_TRUE(p.ParseFromString(encode_onnx(model, {})));
    p.clear_metadata_props();
    // The convolution's weight moves to weights/conv.bin, after 8 bytes of something else.
    onnx::TensorProto* weight = nullptr;
    for (auto& t : *p.mutable_graph()->mutable_initializer())
        if (t.name() == "1.conv.weight") weight = &t;
    ASSERT_NE(weight, nullptr);
    const std::string bytes = weight->raw_data();
    std::ofstream(dir / "weights" / "conv.bin", std::ios::binary) << std::string(8, 'x') << bytes;
    fs::create_symlink("/etc/hostname", dir / "weights" / "escape.bin");
    weight->clear_raw_data();
    weight->set_data_location(onnx::TensorProto::EXTERNAL);
    const auto write = [&](const std::string& location, const std::string& offset) {
        weight->clear_external_data();
        for (const auto& [key, value] : {std::pair<std::string, std::string>{"location", location},
                                         {"offset", offset},
                                         {"length", std::to_string(bytes.size())}}) {
            auto& entry = *weight->add_external_data();
            entry.set_key(key);
            entry.set_value(value);
        }
        std::string out;
        p.SerializeToString(&out);
        std::ofstream(dir / "m.onnx", std::ios::binary) << out;
        return (dir / "m.onnx").string();
    };
    LoadedModel loaded = read_onnx(write("weights/conv.bin", "8"));
    const float* w = loaded.model.named_params()[0].ref.value->data();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(w), bytes.size()), bytes);
    for (const auto& [location, why] : {std::pair<std::string, std::string>{"/etc/passwd", "own folder"},
                                        {"../../../../etc/passwd", "own folder"},
                                        {"weights/../weights/conv.bin", "own folder"},
                                        {"weights/escape.bin", "not a file in the model's folder"},
                                        {"weights/none.bin", "not a file in the model's folder"}}) {
        try {
            read_onnx(write(location, "8"));
            ADD_FAILURE() << "read external data at " << location;
        } catch (const FormatError& e) {
            EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(read_onnx(write("weights/conv.bin", "16")), FormatError);  // runs past the file's end
    std::string in_memory;
    p.SerializeToString(&in_memory);
    EXPECT_THROW(parse_onnx(in_memory, "m.onnx"), FormatError);  // no folder to read it from
    fs::remove_all(dir);
}

}  // namespace
}  // namespace lenz
