// Checkpoints: round trip, and every way a file can be broken gives a clear FormatError.
#include "lenz/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/quantize.h"
#include "lenz/train.h"
#include "support/files.h"

namespace lenz {
namespace {

using testing::TempDir;

namespace fs = std::filesystem;

Model small_model() {
    Model m = parse_model("input 6x6x2\nconv 3 3x3 relu\nbatchnorm\nflatten\ndense 4 softmax\n", "m");
    m.init_params(11);
    return m;
}

CheckpointInfo small_info() {
    CheckpointInfo info;
    info.class_names = {"a", "b", "c", "d"};
    info.normalization = {{0.5f, 0.25f}, {0.2f, 0.3f}};
    info.epoch = 3;
    info.step = 42;
    return info;
}

std::string bytes_of(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}
void write_bytes(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary);
    f << data;
}

TEST(Checkpoint, RoundTrip) {
    TempDir dir;
    Model m = small_model();
    write_checkpoint(dir.file("m.safetensors"), m, small_info());
    LoadedModel loaded = load_model(dir.file("m.safetensors"));
    EXPECT_EQ(loaded.model.to_text(), m.to_text());
    EXPECT_EQ(loaded.info.class_names, small_info().class_names);
    EXPECT_EQ(loaded.info.normalization.stddev, small_info().normalization.stddev);
    EXPECT_EQ(loaded.info.epoch, 3);
    EXPECT_EQ(loaded.info.step, 42);
    auto a = m.named_params();
    auto b = loaded.model.named_params();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].name, b[i].name);
        ASSERT_EQ(a[i].ref.value->size(), b[i].ref.value->size());
        for (int64_t k = 0; k < a[i].ref.value->size(); ++k)
            ASSERT_EQ((*a[i].ref.value)[k], (*b[i].ref.value)[k]);
    }
    // no temporary file is left behind
    for (auto& e : fs::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename(), "m.safetensors");
}

// prelu's learned slopes (one for the tensor, one per channel) are saved and loaded as weights:
// slopes other than the 0.25 every prelu starts at come back as they were.
TEST(Checkpoint, PreluSlopesRoundTrip) {
    TempDir dir;
    Model m = parse_model(
        "input 6x6x2\nconv 3 3x3 elu\nprelu channels\nflatten\ndense 5\nprelu\ndense 4 "
        "logsoftmax\n",
        "m");
    m.init_params(5);
    int64_t slopes = 0;
    for (Model::NamedParam& p : m.named_params()) {
        if (p.name.find(".prelu.") == std::string::npos) continue;
        for (int64_t k = 0; k < p.ref.value->size(); ++k)
            (*p.ref.value)[k] = -0.3f + 0.2f * static_cast<float>(k);
        slopes += p.ref.value->size();
    }
    EXPECT_EQ(slopes, 3 + 1);
    write_checkpoint(dir.file("m.safetensors"), m, small_info());
    LoadedModel loaded = load_model(dir.file("m.safetensors"));
    EXPECT_EQ(loaded.model.to_text(), m.to_text());
    auto a = m.named_params();
    auto b = loaded.model.named_params();
    ASSERT_EQ(a.size(), b.size());
    int64_t checked = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].name, b[i].name);
        ASSERT_EQ(a[i].ref.value->size(), b[i].ref.value->size());
        for (int64_t k = 0; k < a[i].ref.value->size(); ++k)
            ASSERT_EQ((*a[i].ref.value)[k], (*b[i].ref.value)[k]);
        if (a[i].name.find(".prelu.") == std::string::npos) continue;
        for (int64_t k = 0; k < b[i].ref.value->size(); ++k)
            EXPECT_EQ((*b[i].ref.value)[k], -0.3f + 0.2f * static_cast<float>(k)) << b[i].name;
        checked += b[i].ref.value->size();
    }
    EXPECT_EQ(checked, 4);
}

TEST(Checkpoint, OptimizerStateRoundTrip) {
    TempDir dir;
    Model m = small_model();
    m.allocate_gradients();
    Optimizer opt(m, {.kind = OptimizerKind::adam});
    for (auto& p : m.named_params())
        if (p.ref.grad)
            for (int64_t i = 0; i < p.ref.grad->size(); ++i)
                (*p.ref.grad)[i] = 0.01f * static_cast<float>(i % 7);
    opt.step(0.01);
    write_checkpoint(dir.file("m.safetensors"), m, small_info(), optimizer_tensors(opt, m));
    Optimizer fresh(m, {.kind = OptimizerKind::adam});
    load_optimizer_state(read_checkpoint(dir.file("m.safetensors")), fresh);
    auto s1 = opt.state(), s2 = fresh.state();
    ASSERT_EQ(s1.size(), s2.size());
    for (size_t i = 0; i < s1.size(); ++i)
        for (int64_t k = 0; k < s1[i].value->size(); ++k) ASSERT_EQ((*s1[i].value)[k], (*s2[i].value)[k]);
    Optimizer other(m, {.kind = OptimizerKind::momentum});
    EXPECT_THROW(load_optimizer_state(read_checkpoint(dir.file("m.safetensors")), other), FormatError);
}

std::string load_error(const std::string& path) {
    try {
        load_model(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(Checkpoint, TruncatedAtAnyPointIsAClearError) {
    TempDir dir;
    Model m = small_model();
    write_checkpoint(dir.file("m.safetensors"), m, small_info());
    const std::string good = bytes_of(dir.file("m.safetensors"));
    for (size_t cut : {size_t{0}, size_t{4}, size_t{8}, size_t{20}, good.size() / 2, good.size() - 1}) {
        write_bytes(dir.file("t.safetensors"), good.substr(0, cut));
        const std::string msg = load_error(dir.file("t.safetensors"));
        EXPECT_NE(msg, "(no error)") << "cut at " << cut;
        EXPECT_NE(msg.find("t.safetensors"), std::string::npos) << msg;
    }
}

TEST(Checkpoint, LyingHeadersAreRejected) {
    TempDir dir;
    Model m = small_model();
    write_checkpoint(dir.file("m.safetensors"), m, small_info());
    const std::string good = bytes_of(dir.file("m.safetensors"));
    // header length larger than the file
    std::string huge = good;
    huge[7] = '\x7f';
    write_bytes(dir.file("h.safetensors"), huge);
    EXPECT_NE(load_error(dir.file("h.safetensors")).find("header length"), std::string::npos);
    // a shape that does not match the byte range
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(good[i]);
    std::string header = good.substr(8, len);
    const size_t pos = header.find("[3,2,3,3]");
    ASSERT_NE(pos, std::string::npos) << header;
    std::string bad = good;
    bad.replace(8 + pos, 9, "[9,2,3,3]");
    write_bytes(dir.file("s.safetensors"), bad);
    EXPECT_NE(load_error(dir.file("s.safetensors")).find("needs"), std::string::npos);
    // garbage instead of JSON
    std::string garbage = good;
    garbage[8] = '#';
    write_bytes(dir.file("g.safetensors"), garbage);
    EXPECT_NE(load_error(dir.file("g.safetensors")).find("not valid JSON"), std::string::npos);
    // not a checkpoint at all
    write_bytes(dir.file("x.safetensors"), "hello, world; this is not a checkpoint");
    EXPECT_NE(load_error(dir.file("x.safetensors")), "(no error)");
    EXPECT_THROW(load_model(dir.file("missing.safetensors")), IoError);
}

TEST(Checkpoint, AFailedWriteKeepsTheOldCheckpoint) {
    TempDir dir;
    Model m = small_model();
    const std::string path = dir.file("m.safetensors");
    write_checkpoint(path, m, small_info());
    const std::string before = bytes_of(path);
    // a read-only folder: the temporary file cannot be created (root ignores modes, so use a missing folder
    // too)
    EXPECT_THROW(write_checkpoint(dir.file("no/such/folder/m.safetensors"), m, small_info()), IoError);
    if (::geteuid() != 0) {
        ::chmod(dir.path().c_str(), 0500);
        EXPECT_THROW(write_checkpoint(path, m, small_info()), IoError);
        ::chmod(dir.path().c_str(), 0700);
    }
    EXPECT_EQ(bytes_of(path), before);
}

// A larger model than small_model (about 80 KB of weights), to fill a small disk or file limit.
Model big_model() {
    Model m = parse_model("input 10x10x1\nflatten\ndense 200\n", "big");
    m.init_params(3);
    return m;
}

void expect_no_temporaries(const TempDir& dir) {
    for (auto& e : fs::directory_iterator(dir.path()))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos)
            << "left behind: " << e.path();
}

// A write that fails part-way (here the per-process file size limit, EFBIG) gives an IoError naming
// the file, removes the temporary file and keeps the old checkpoint. Needs no privileges.
TEST(Checkpoint, AWriteFailingPartWayKeepsTheOldCheckpoint) {
    TempDir dir;
    const std::string path = dir.file("m.safetensors");
    Model m = small_model();
    write_checkpoint(path, m, small_info());
    const std::string before = bytes_of(path);
    ASSERT_LT(before.size(), 8192u);
    rlimit old_limit{};
    ::getrlimit(RLIMIT_FSIZE, &old_limit);
    const auto old_handler =
        std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of a signal
    rlimit small = old_limit;
    small.rlim_cur = 8192;
    ::setrlimit(RLIMIT_FSIZE, &small);
    Model big = big_model();
    std::string message;
    try {
        write_checkpoint(path, big, small_info());
    } catch (const IoError& e) {
        message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_NE(message.find("m.safetensors.tmp."), std::string::npos) << message;
    EXPECT_NE(message.find("cannot write"), std::string::npos) << message;
    EXPECT_EQ(bytes_of(path), before);
    expect_no_temporaries(dir);
}

// The real thing: a full disk (a 64 KB tmpfs). Needs root and mount(2); skipped otherwise.
TEST(Checkpoint, ADiskFullKeepsTheOldCheckpointAndSaysSo) {
    TempDir dir;
    const std::string mnt = dir.file("small-disk");
    fs::create_directories(mnt);
    if (::geteuid() != 0 || ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
        GTEST_SKIP() << "needs root and permission to mount a tmpfs";
    struct Unmount {
        std::string path;
        ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
    } unmount{mnt};
    const std::string path = mnt + "/m.safetensors";
    Model m = small_model();
    write_checkpoint(path, m, small_info());
    const std::string before = bytes_of(path);
    Model big = big_model();
    std::string message;
    try {
        write_checkpoint(path, big, small_info());  // ~80 KB does not fit next to the old one
    } catch (const IoError& e) {
        message = e.what();
    }
    EXPECT_NE(message.find(std::strerror(ENOSPC)), std::string::npos) << message;
    EXPECT_EQ(bytes_of(path), before);
    for (auto& e : fs::directory_iterator(mnt)) EXPECT_EQ(e.path().filename(), "m.safetensors");
    EXPECT_NO_THROW(load_model(path));
}

TEST(Checkpoint, ParseFromMemoryMatchesTheFile) {
    TempDir dir;
    Model m = small_model();
    write_checkpoint(dir.file("m.safetensors"), m, small_info());
    const CheckpointFile from_file = read_checkpoint(dir.file("m.safetensors"));
    const CheckpointFile from_memory = parse_checkpoint(bytes_of(dir.file("m.safetensors")), "memory");
    EXPECT_EQ(from_memory.path, "memory");
    EXPECT_EQ(from_memory.metadata, from_file.metadata);
    EXPECT_EQ(from_memory.data, from_file.data);
    EXPECT_EQ(load_model(from_memory).model.to_text(), m.to_text());
}

// A few bytes of model text can ask for terabytes of weights: refused before anything is allocated.
TEST(Checkpoint, AModelLargerThanTheFileIsRefusedBeforeAllocating) {
    TempDir dir;
    Model m = small_model();
    write_checkpoint(dir.file("m.safetensors"), m, small_info());
    std::string bytes = bytes_of(dir.file("m.safetensors"));
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(bytes[i]);
    std::string header = bytes.substr(8, len);
    const std::string dense = "dense 4 softmax";
    const size_t pos = header.find(dense);
    ASSERT_NE(pos, std::string::npos) << header;
    header.replace(pos, dense.size(), "dense 16000000 softmax");  // 16e6 units x 48 inputs: 3 GB
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(header.size() >> (8 * i));
    try {
        load_model(parse_checkpoint(out + header + bytes.substr(8 + len), "lying"));
        FAIL() << "loaded";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("parameters"), std::string::npos) << e.what();
    }
}

// A quantised model: int8 weights with their scales, and the calibrated ranges, read back to the
// same model; a file that lies about them is refused in one line.
Model quantised_small_model() {
    Model m = small_model();
    std::vector<float> images(16 * 72);
    for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<float>(i % 13) / 6.5f - 1.0f;
    std::vector<ValueRange> ranges = calibrate(m, images.data(), 16);
    round_weights_to_int8(m);
    m.set_value_ranges(std::move(ranges));
    return m;
}

TEST(Checkpoint, QuantisedModelRoundTripsInOneBytePerWeight) {
    TempDir dir;
    Model m = quantised_small_model();
    write_checkpoint(dir.file("q.safetensors"), m, small_info());
    const CheckpointFile file = read_checkpoint(dir.file("q.safetensors"));
    EXPECT_EQ(file.meta("precision"), "int8");
    EXPECT_TRUE(file.tensors.at("1.conv.weight").int8);
    EXPECT_TRUE(file.tensors.at("4.dense.weight").int8);
    EXPECT_FALSE(file.tensors.at("1.conv.bias").int8);
    EXPECT_EQ(file.tensors.at("4.dense.weight").end - file.tensors.at("4.dense.weight").begin, 4 * 48)
        << "one byte per weight";
    EXPECT_EQ(file.tensors.at("calibration.ranges").shape, (std::vector<int64_t>{5, 2}));

    LoadedModel back = load_model(file);
    ASSERT_TRUE(back.model.calibrated());
    for (size_t v = 0; v < m.value_ranges().size(); ++v) {
        EXPECT_EQ(back.model.value_ranges()[v].min, m.value_ranges()[v].min);
        EXPECT_EQ(back.model.value_ranges()[v].max, m.value_ranges()[v].max);
    }
    auto original = m.named_params(), loaded = back.model.named_params();
    ASSERT_EQ(original.size(), loaded.size());
    for (size_t i = 0; i < original.size(); ++i)
        for (int64_t k = 0; k < original[i].ref.value->size(); ++k)
            ASSERT_EQ((*original[i].ref.value)[k], (*loaded[i].ref.value)[k])
                << original[i].name << "[" << k << "]";
}

TEST(Checkpoint, QuantisedFileThatLiesIsRefused) {
    TempDir dir;
    Model m = quantised_small_model();
    write_checkpoint(dir.file("q.safetensors"), m, small_info());
    const std::string good = bytes_of(dir.file("q.safetensors"));
    const auto expect_refused = [&](std::string bytes, const std::string& from, const std::string& to,
                                    const std::string& message) {
        const size_t at = bytes.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        bytes.replace(at, from.size(), to);  // the same length: the header's size stays right
        ASSERT_EQ(from.size(), to.size());
        write_bytes(dir.file("bad.safetensors"), bytes);
        try {
            load_model(dir.file("bad.safetensors"));
            FAIL() << "loaded a file with " << to;
        } catch (const FormatError& e) {
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
        }
    };
    // The scales of the dense weights, renamed away.
    expect_refused(good, "\"4.dense.weight.scale\"", "\"4.dense.weight.scalf\"",
                   "needs a float32 '4.dense.weight.scale'");
    expect_refused(good, "\"I8\"", "\"I7\"", "expected \"F32\" or \"I8\"");
    // A range whose minimum lies above its maximum.
    std::string bytes = good;
    const int64_t header = static_cast<unsigned char>(bytes[0]) | static_cast<unsigned char>(bytes[1]) << 8 |
                           static_cast<unsigned char>(bytes[2]) << 16;
    const CheckpointFile file = read_checkpoint(dir.file("q.safetensors"));
    const float inverted[2] = {1.0f, -1.0f};
    std::memcpy(bytes.data() + 8 + header + file.tensors.at("calibration.ranges").begin, inverted,
                sizeof inverted);
    write_bytes(dir.file("bad.safetensors"), bytes);
    EXPECT_THROW(load_model(dir.file("bad.safetensors")), FormatError);
}

}  // namespace
}  // namespace lenz
