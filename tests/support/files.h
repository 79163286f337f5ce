// Files and folders for tests: a temporary folder of the test's own, whole-file reads and writes,
// and the message of an expected exception. One copy, shared by every test file (the tests build
// as a unity build, where two copies of a helper would collide).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

namespace lenz::testing {

// A fresh, empty folder under the system's temporary one, removed with its contents when the
// TempDir goes. The name holds the process id, the running test's name and a counter, so tests
// that ctest runs side by side, and several TempDirs in one test, never share one.
class TempDir {
  public:
    TempDir() {
        static int counter = 0;
        const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
        const std::string test_name = test ? test->name() : "no-test";
        do {
            path_ =
                std::filesystem::temp_directory_path() / ("lenz-test-" + std::to_string(::getpid()) + "-" +
                                                          test_name + "-" + std::to_string(counter++));
        } while (!std::filesystem::create_directory(path_));
    }
    ~TempDir() {
        std::error_code ignored;  // a test that failed half-way may have left it in any state
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // The path of `name` inside the folder; nothing is created.
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    // The same, with the folders on the way created: for writing a tree of files.
    std::string tree_file(const std::string& name) const {
        const std::filesystem::path p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        return p.string();
    }

  private:
    std::filesystem::path path_;
};

// A path of this process's own in the temporary folder, for a test that removes what it writes.
inline std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() / ("lenz-test-" + std::to_string(::getpid()) + "-" + name);
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A whole file as a string, for comparing files byte for byte.
inline std::string file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Appends v big-endian, as IDX headers hold their sizes.
inline void put_be32(std::vector<uint8_t>& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

inline size_t line_count(const std::string& text) {
    return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// What f throws as an E; a failure of the test if it throws nothing.
template <typename E, typename F>
std::string error_message(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    ADD_FAILURE() << "no exception thrown";
    return "";
}

}  // namespace lenz::testing
