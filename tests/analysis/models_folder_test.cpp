// Every model file the project ships parses, plans and costs what the README says of it.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "lenz/engine.h"
#include "lenz/model_text.h"
#include "lenz/summary.h"

namespace lenz {
namespace {

TEST(ModelsFolder, EveryModelParsesPlansAndCostsWhatTheReadmeSays) {
    // Parameters (trainable) and MACs per image, as the README and the files' comments give them.
    const std::map<std::string, std::pair<int64_t, int64_t>> stated{
        {"seed", {903'400, 1'399'500'000}},        {"fashion", {421'642, 4'241'152}},
        {"fashion-mobile", {124'122, -1}},         {"fashion-resnet", {908'074, 26'407'936}},
        {"resnet18", {11'689'512, 1'816'557'056}}, {"unet", {117'412, 101'023'744}},
    };
    int checked = 0, files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(LENZ_SOURCE_DIR "/models")) {
        if (entry.path().extension() != ".lenz") continue;
        ++files;
        const std::string name = entry.path().stem().string();
        SCOPED_TRACE(name);
        const Model model = load_model_file(entry.path().string());
        EXPECT_GT(plan_inference(model, 1).bytes(), 0);
        EXPECT_GT(plan_training(model, 2, OptimizerKind::adamw).bytes(), 0);
        const Summary s = summarize(model, {});
        if (auto it = stated.find(name); it != stated.end()) {
            EXPECT_EQ(s.params, it->second.first);
            if (it->second.second >= 0) {
                EXPECT_EQ(s.mults, it->second.second);
            }
            ++checked;
        }
    }
    EXPECT_EQ(checked, static_cast<int>(stated.size()));
    EXPECT_GE(files, 8);
}

}  // namespace
}  // namespace lenz
