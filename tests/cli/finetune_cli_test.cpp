// `lenz train BACKBONE --new-head --freeze NAME`, as people fine-tune a backbone: a model trained on
// one image folder is fine-tuned on another with more classes. The frozen layers' tensors stay bit for
// bit the backbone's, the head is sized for the new classes, the layers after NAME learn, --resume
// keeps the frozen set and the head, and mistakes are one-line errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_lenz.h"
#include "lenz/checkpoint.h"
#include "lenz/data.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::line_count;
using testing::TempDir;

namespace fs = std::filesystem;

using testing::CommandResult;
using testing::run_lenz;

// `classes` classes of 8x8 RGB images, each its own colour with some texture: DIR/{train,test}/cK/.
void write_image_folder(const fs::path& dir, int classes, int per_class_train, int per_class_test) {
    for (const char* split : {"train", "test"})
        for (int label = 0; label < classes; ++label) {
            const fs::path folder = dir / split / ("c" + std::to_string(label));
            fs::create_directories(folder);
            const int count = std::string(split) == "train" ? per_class_train : per_class_test;
            for (int i = 0; i < count; ++i) {
                Image image{8, 8, 3, std::vector<uint8_t>(8 * 8 * 3)};
                for (size_t p = 0; p < image.pixels.size(); ++p)
                    image.pixels[p] = static_cast<uint8_t>(((label + 1) * (p % 3 + 1) * 61) % 200 +
                                                           (p * 7 + static_cast<size_t>(i) * 13) % 50);
                write_png((folder / ("img" + std::to_string(i) + ".png")).string(), image);
            }
        }
}

// Layers 1-3 (conv, batch norm, relu named feat) are the part --freeze feat keeps.
const char* kImageBackbone =
    "input 8x8x3\n"
    "conv 4 3x3 padding=same name=stem\n"
    "batchnorm\n"
    "relu name=feat\n"
    "conv 6 3x3 padding=same relu name=mid\n"
    "maxpool 2\n"
    "flatten\n"
    "dense 8 relu name=hidden\n"
    "dense 2 softmax\n";

const std::vector<std::string> kFrozen = {"1.conv.weight",
                                          "1.conv.bias",
                                          "2.batchnorm.weight",
                                          "2.batchnorm.bias",
                                          "2.batchnorm.running_mean",
                                          "2.batchnorm.running_var"};

const std::string kQuick = " --epochs 1 --batch 4 --no-report --threads 1 --seed 3";

std::vector<char> tensor_bytes(const CheckpointFile& f, const std::string& name) {
    const auto it = f.tensors.find(name);
    if (it == f.tensors.end()) return {};
    return std::vector<char>(f.data.begin() + it->second.begin, f.data.begin() + it->second.end);
}

// One backbone on two classes and its fine-tuning on three, shared by the tests below.
class FineTuneCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        write_image_folder(dir_->path() / "two", 2, 8, 3);
        write_image_folder(dir_->path() / "three", 3, 8, 3);
        std::ofstream(dir_->file("backbone.lenz")) << kImageBackbone;
        const CommandResult b = run_lenz("train " + dir_->file("backbone.lenz") + " --data " +
                                         dir_->file("two") + kQuick + " --out " + dir_->file("backbone"));
        ASSERT_EQ(b.status, 0) << b.out;
        tuned_ = new CommandResult(run_lenz("train " + backbone() + " --data " + dir_->file("three") +
                                            " --new-head --freeze feat --optimizer adamw --weight-decay 0.1" +
                                            kQuick + " --out " + dir_->file("tuned")));
    }
    static void TearDownTestSuite() {
        delete tuned_;
        delete dir_;
    }
    static std::string backbone() { return dir_->file("backbone/model.safetensors"); }
    static TempDir* dir_;
    static CommandResult* tuned_;
};
TempDir* FineTuneCli::dir_ = nullptr;
CommandResult* FineTuneCli::tuned_ = nullptr;

TEST_F(FineTuneCli, FrozenLayersStayTheBackbonesAndTheRestLearns) {
    ASSERT_EQ(tuned_->status, 0) << tuned_->out;
    const CheckpointFile before = read_checkpoint(backbone());
    const CheckpointFile after = read_checkpoint(dir_->file("tuned/model.safetensors"));
    for (const std::string& name : kFrozen) {
        SCOPED_TRACE(name);
        ASSERT_FALSE(tensor_bytes(before, name).empty());
        EXPECT_EQ(tensor_bytes(before, name), tensor_bytes(after, name)) << "frozen, weight decay or not";
    }
    for (const char* name : {"4.conv.weight", "4.conv.bias", "7.dense.weight"}) {
        SCOPED_TRACE(name);
        ASSERT_EQ(before.tensors.at(name).shape, after.tensors.at(name).shape);
        EXPECT_NE(tensor_bytes(before, name), tensor_bytes(after, name)) << "after feat: trained";
    }
    // The head: three classes now, from the new folder.
    EXPECT_EQ(before.tensors.at("8.dense.weight").shape, (std::vector<int64_t>{2, 8}));
    EXPECT_EQ(after.tensors.at("8.dense.weight").shape, (std::vector<int64_t>{3, 8}));
    EXPECT_EQ(after.tensors.at("8.dense.bias").shape, (std::vector<int64_t>{3}));
    const LoadedModel tuned = load_model(after);
    EXPECT_EQ(tuned.info.class_names, (std::vector<std::string>{"c0", "c1", "c2"}));
    EXPECT_EQ(tuned.model.layer(7).spec(), "dense 3 softmax");
    // Optimizer state only for what trains.
    EXPECT_EQ(after.tensors.count("optimizer.1.conv.weight.m"), 0u);
    EXPECT_EQ(after.tensors.count("optimizer.2.batchnorm.weight.m"), 0u);
    EXPECT_EQ(after.tensors.count("optimizer.4.conv.weight.m"), 1u);
    EXPECT_EQ(after.tensors.count("optimizer.8.dense.weight.v"), 1u);
}

TEST_F(FineTuneCli, TheHeaderSaysWhatTrainsAndWhatIsFrozen) {
    ASSERT_EQ(tuned_->status, 0) << tuned_->out;
    // Frozen: conv 3·3·3·4 + 4 = 112, batch norm 2·4 = 8. Training: conv 3·3·4·6 + 6 = 222,
    // dense (96 + 1)·8 = 776, head (8 + 1)·3 = 27.
    EXPECT_NE(tuned_->out.find("  1,145 parameters, "), std::string::npos) << tuned_->out;
    EXPECT_NE(tuned_->out.find("  1,025 parameters train, 120 frozen in layers 1-3 (through feat)\n"),
              std::string::npos)
        << tuned_->out;
    EXPECT_NE(
        tuned_->out.find("  new head: layer 8 is now dense 3 softmax, freshly initialised for 3 classes\n"),
        std::string::npos)
        << tuned_->out;
    const nlohmann::json settings =
        nlohmann::json::parse(load_model(dir_->file("tuned/model.safetensors")).info.training_json);
    EXPECT_EQ(settings["frozen_layers"], 3);
    EXPECT_EQ(settings["options"]["--freeze"], "feat");
    EXPECT_EQ(settings["options"]["--new-head"], true);
}

TEST_F(FineTuneCli, ALayerNumberFreezesAsItsNameDoes) {
    ASSERT_EQ(tuned_->status, 0) << tuned_->out;
    const CommandResult r = run_lenz("train " + backbone() + " --data " + dir_->file("three") +
                                     " --new-head --freeze 3 --optimizer adamw --weight-decay 0.1" + kQuick +
                                     " --out " + dir_->file("by-number"));
    ASSERT_EQ(r.status, 0) << r.out;
    const CheckpointFile a = read_checkpoint(dir_->file("tuned/model.safetensors"));
    const CheckpointFile b = read_checkpoint(dir_->file("by-number/model.safetensors"));
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (const auto& [name, tensor] : a.tensors)
        EXPECT_EQ(tensor_bytes(a, name), tensor_bytes(b, name)) << name;
}

TEST_F(FineTuneCli, ResumeKeepsTheFrozenLayersAndTheHead) {
    ASSERT_EQ(tuned_->status, 0) << tuned_->out;
    fs::copy(dir_->file("tuned"), dir_->file("resumed"));
    // Neither --new-head nor --freeze again: the run's own options are taken up.
    const CommandResult r =
        run_lenz("train " + backbone() + " --resume " + dir_->file("resumed") + " --epochs 2 --threads 1");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("1,025 parameters train, 120 frozen"), std::string::npos) << r.out;
    const CheckpointFile before = read_checkpoint(backbone());
    const CheckpointFile once = read_checkpoint(dir_->file("tuned/model.safetensors"));
    const CheckpointFile twice = read_checkpoint(dir_->file("resumed/model.safetensors"));
    EXPECT_EQ(load_model(twice).info.epoch, 2);
    for (const std::string& name : kFrozen)
        EXPECT_EQ(tensor_bytes(before, name), tensor_bytes(twice, name)) << name;
    EXPECT_EQ(twice.tensors.at("8.dense.weight").shape, (std::vector<int64_t>{3, 8}));
    EXPECT_NE(tensor_bytes(once, "8.dense.weight"), tensor_bytes(twice, "8.dense.weight"));

    // Another frozen set is another run: its optimizer state would not match.
    fs::copy(dir_->file("tuned"), dir_->file("refrozen"));
    const CommandResult other = run_lenz("train " + backbone() + " --resume " + dir_->file("refrozen") +
                                         " --freeze mid --epochs 2 --threads 1");
    EXPECT_EQ(other.status, 1) << other.out;
    EXPECT_NE(other.out.find("resume with the same --freeze"), std::string::npos) << other.out;
}

TEST_F(FineTuneCli, MistakesAreOneLineErrors) {
    const std::string train = "train " + backbone() + " --data " + dir_->file("three") + " --new-head";
    struct Case {
        std::string args, needle;
        int status;
    };
    const std::vector<Case> cases = {
        {train + " --freeze nosuch", "--freeze: no layer named 'nosuch'", 2},
        {train + " --freeze 9", "no layer named '9'", 2},
        {train + " --freeze input", "no layer named 'input'", 2},
        {train + " --freeze 8", "nothing would train", 2},
        // Without --new-head the backbone's two outputs do not fit three classes.
        {"train " + backbone() + " --data " + dir_->file("three"),
         "3 classes but the model's last layer has 2", 1},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.args);
        const CommandResult r = run_lenz(c.args + " --out " + dir_->file("never"));
        EXPECT_EQ(r.status, c.status) << r.out;
        EXPECT_EQ(line_count(r.out), 1u) << r.out;
        EXPECT_EQ(r.out.rfind("lenz: error: ", 0), 0u) << r.out;
        EXPECT_NE(r.out.find(c.needle), std::string::npos) << r.out;
    }
    EXPECT_FALSE(fs::exists(dir_->file("never/model.safetensors")));
}

TEST_F(FineTuneCli, NewHeadNeedsADenseLayerAtTheEnd) {
    std::ofstream(dir_->file("convhead.lenz")) << "input 8x8x3\nconv 4 3x3 padding=same relu\nconv 3 1x1\n"
                                                  "batchnorm\nglobalavgpool\nflatten\n";
    const CommandResult r = run_lenz("train " + dir_->file("convhead.lenz") + " --data " +
                                     dir_->file("three") + " --new-head --out " + dir_->file("never-conv"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(line_count(r.out), 1u) << r.out;
    EXPECT_NE(r.out.find("--new-head: "), std::string::npos) << r.out;
    EXPECT_NE(
        r.out.find("does not end in dense layers or convolutions that only layers without weights follow "
                   "(layer 3, batchnorm)"),
        std::string::npos)
        << r.out;
}

}  // namespace
}  // namespace lenz
