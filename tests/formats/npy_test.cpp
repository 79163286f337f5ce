// NumPy arrays in and out: a file numpy.save wrote, read and written back byte for byte; every kind
// of broken or unsupported file a one-line FormatError.
#include "lenz/npy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "lenz/error.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::file_bytes;

const std::filesystem::path kFixture =
    std::filesystem::path(LENZ_SOURCE_DIR) / "tests/golden/npy/numpy_2x3.npy";

// numpy.save(np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
TEST(Npy, ReadsWhatNumpyWroteAndWritesTheSameBytes) {
    const NpyArray a = read_npy(kFixture.string());
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.data, (std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1, 1.25f}));
    EXPECT_EQ(encode_npy(a), file_bytes(kFixture));
}

TEST(Npy, RoundTripsEveryRank) {
    for (const std::vector<int64_t>& shape :
         {std::vector<int64_t>{}, {5}, {2, 3, 4, 5}, {1, 0, 3}, {1, 1, 1, 1, 1, 1, 1, 2}}) {
        NpyArray a{shape, {}};
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        for (int64_t i = 0; i < n; ++i) a.data.push_back(static_cast<float>(i) * 0.5f - 1);
        const std::string bytes = encode_npy(a);
        EXPECT_EQ((bytes.size() - a.data.size() * 4) % 64, 0u);  // numpy aligns the data
        const NpyArray b = parse_npy(bytes, "a.npy");
        EXPECT_EQ(b.shape, a.shape);
        EXPECT_EQ(b.data, a.data);
    }
}

TEST(Npy, BrokenAndUnsupportedFilesAreOneLineErrors) {
    const std::string good = file_bytes(kFixture);
    auto with_header = [&](const std::string& from, const std::string& to) {
        std::string b = good;
        b.replace(b.find(from), from.size(), to);
        return b;
    };
    std::string long_header = good;
    long_header[8] = '\xff';
    long_header[9] = '\x7f';
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"", "not a .npy file"},
        {"PK\x03\x04 a zip file", "not a .npy file"},
        {good.substr(0, 9), "not a .npy file"},
        {std::string("\x93NUMPY\x09\x00", 8) + good.substr(8), "version 9"},
        {good.substr(0, 60), "runs past the end"},
        {long_header, "runs past the end"},
        {with_header("'<f4'", "'<f8'"), "dtype is '<f8'"},
        {with_header("'<f4'", "'>f4'"), "dtype is '>f4'"},
        {with_header("False", "True "), "Fortran order"},
        {with_header("(2, 3)", "(2, 4)"), "holds 8 values"},
        {with_header("(2, 3)", "(2, x)"), "other than sizes"},
        {with_header("'shape'", "'shapo'"), "no 'shape'"},
        {good.substr(0, good.size() - 4), "holds 6 values"},
        {good + "tail", "holds 6 values"},
        {with_header("(2, 3)", "(9999999999, 9999999999, 9)"), "more values than any file"},
        {with_header("(2, 3)", "(1,1,1,1,1,1,1,1,6)"), "more than 8 dimensions"},
    };
    for (const auto& [bytes, fragment] : cases) {
        try {
            parse_npy(bytes, "x.npy");
            ADD_FAILURE() << "accepted: " << fragment;
        } catch (const FormatError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find(fragment), std::string::npos) << what;
            EXPECT_EQ(what.rfind("x.npy: ", 0), 0u) << what;
            EXPECT_EQ(what.find('\n'), std::string::npos) << what;
        }
    }
}

}  // namespace
}  // namespace lenz
