// The PyTorch goldens of tests/golden/*.json (tools/make_goldens.py writes them), as the float32
// and the bf16 golden tests both read them.
#pragma once
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lenz::testing {

inline std::filesystem::path golden_dir() {
    return std::filesystem::path(LENZ_SOURCE_DIR) / "tests" / "golden";
}

inline std::vector<float> floats(const nlohmann::json& j) {
    return j.get<std::vector<float>>();
}

// A case's file name as a test name: gtest allows letters, digits and '_' only.
inline std::string case_name(const ::testing::TestParamInfo<std::string>& info) {
    std::string s = info.param;
    for (char& c : s)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return s;
}

}  // namespace lenz::testing
