#include "lenz/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "lenz/error.h"
#include "lenz/model_text.h"
#include "lenz/quantize.h"

namespace lenz {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr int64_t kMaxFileBytes = int64_t{16} << 30;
static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian; add byte swapping");

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Test hook: LENZ_TEST_SLOW_CHECKPOINT=MS sleeps MS milliseconds before each tensor is written, so
// that the kill-during-write test (tests/reliability) lands its SIGKILLs mid-write more often.
// Unset (always, outside that test) it costs one getenv per checkpoint.
void slow_write_pause() {
    static const long ms = [] {
        const char* v = std::getenv("LENZ_TEST_SLOW_CHECKPOINT");
        return v ? std::strtol(v, nullptr, 10) : 0L;
    }();
    if (ms > 0) ::usleep(static_cast<useconds_t>(std::min(ms, 1000L) * 1000));
}

}  // namespace

const std::string& CheckpointFile::meta(const std::string& key) const {
    auto it = metadata.find(key);
    if (it == metadata.end())
        throw FormatError(path + ": metadata has no '" + key + "' entry; not a Lenz checkpoint?");
    return it->second;
}

void CheckpointFile::read_tensor(const std::string& name, const std::vector<int64_t>& shape,
                                 Buffer& out) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw FormatError(path + ": tensor '" + name + "' is missing");
    if (it->second.shape != shape)
        throw FormatError(path + ": tensor '" + name + "' has shape " + shape_str(it->second.shape) +
                          ", the model needs " + shape_str(shape));
    if (it->second.int8) {
        const auto scales = tensors.find(name + ".scale");
        if (shape.empty() || scales == tensors.end() || scales->second.int8 ||
            scales->second.shape != std::vector<int64_t>{shape[0]})
            throw FormatError(path + ": int8 tensor '" + name + "' needs a float32 '" + name +
                              ".scale' of shape [" + (shape.empty() ? "" : std::to_string(shape[0])) + "]");
        const auto* q = reinterpret_cast<const int8_t*>(data.data() + it->second.begin);
        const auto* scale = reinterpret_cast<const float*>(data.data() + scales->second.begin);
        const int64_t cols = shape[0] > 0 ? out.size() / shape[0] : 0;
        for (int64_t k = 0; k < out.size(); ++k) {
            float s;
            std::memcpy(&s, scale + k / cols, sizeof s);  // the data is only 1-aligned after int8 tensors
            out.data()[k] = static_cast<float>(q[k]) * s;
        }
        return;
    }
    if (out.bytes() != it->second.end - it->second.begin)
        throw FormatError(path + ": tensor '" + name + "' holds " +
                          std::to_string(it->second.end - it->second.begin) + " bytes, the model needs " +
                          std::to_string(out.bytes()));
    std::memcpy(out.data(), data.data() + it->second.begin, static_cast<size_t>(out.bytes()));
}

// Every size in the header is checked against the bytes actually present before anything is
// allocated from it, so a lying header costs nothing but the error message.
CheckpointFile parse_checkpoint(const std::string& bytes, const std::string& path) {
    CheckpointFile f;
    f.path = path;
    const int64_t size = static_cast<int64_t>(bytes.size());
    if (size < 8)
        throw FormatError(path + ": " + std::to_string(size) + " bytes is too short for a safetensors file");
    if (size > kMaxFileBytes) throw FormatError(path + ": larger than the 16 GB limit for a checkpoint");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
        header_len = (header_len << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
    if (header_len > kMaxHeaderBytes || header_len > static_cast<uint64_t>(size - 8))
        throw FormatError(path + ": header length " + std::to_string(header_len) +
                          " (at offset 0) exceeds the file's " + std::to_string(size - 8) +
                          " remaining bytes (limit " + std::to_string(kMaxHeaderBytes) +
                          "); truncated or not a safetensors file");
    json j;
    try {
        j = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len));
    } catch (const json::exception& e) {
        throw FormatError(path + ": header (bytes 8.." + std::to_string(8 + header_len) +
                          ") is not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw FormatError(path + ": header is not a JSON object");
    const int64_t data_size = size - 8 - static_cast<int64_t>(header_len);
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (auto& [name, value] : j.items()) {
        if (name == "__metadata__") {
            if (!value.is_object()) throw FormatError(path + ": __metadata__ is not an object");
            for (auto& [k, v] : value.items()) {
                if (!v.is_string()) throw FormatError(path + ": metadata '" + k + "' is not a string");
                f.metadata[k] = v.get<std::string>();
            }
            continue;
        }
        const std::string where = path + ": tensor '" + name + "'";
        if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
            !value.contains("data_offsets"))
            throw FormatError(where + " needs dtype, shape and data_offsets");
        // Only short scalars are quoted back: dumping a hostile nested value would recurse without bound.
        if (value["dtype"] != "F32" && value["dtype"] != "I8")
            throw FormatError(where + " has dtype " +
                              (value["dtype"].is_string() ? value["dtype"].dump() : "(not a string)") +
                              ", expected \"F32\" or \"I8\"");
        CheckpointFile::Tensor t;
        t.int8 = value["dtype"] == "I8";
        const int64_t element_bytes = t.int8 ? 1 : 4;
        int64_t elements = 1;
        if (!value["shape"].is_array() || value["shape"].size() > 8)
            throw FormatError(where + ": shape is not a short array");
        for (auto& d : value["shape"]) {
            if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t{1} << 40))
                throw FormatError(where + ": shape holds " +
                                  (d.is_primitive() ? d.dump() : "an array or object") +
                                  ", expected a size of 0 to 2^40");
            t.shape.push_back(d.get<int64_t>());
            elements = checked_mul(elements, t.shape.back(), "tensor size");
        }
        const auto& off = value["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_integer() || !off[1].is_number_integer())
            throw FormatError(where + ": data_offsets must be [begin, end]");
        t.begin = off[0].get<int64_t>();
        t.end = off[1].get<int64_t>();
        if (t.begin < 0 || t.end < t.begin || t.end > data_size)
            throw FormatError(where + ": bytes [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                              ") lie outside the " + std::to_string(data_size) +
                              " data bytes; truncated file?");
        if (t.end - t.begin != checked_mul(elements, element_bytes, "tensor bytes"))
            throw FormatError(where + ": shape " + shape_str(t.shape) + " needs " +
                              std::to_string(elements * element_bytes) + " bytes, data_offsets give " +
                              std::to_string(t.end - t.begin));
        ranges.emplace_back(t.begin, t.end);
        f.tensors[name] = t;
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i)
        if (ranges[i].first < ranges[i - 1].second)
            throw FormatError(path + ": two tensors overlap in the data");
    f.data.assign(bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len), bytes.end());
    return f;
}

std::string read_checkpoint_bytes(const std::string& path) {
    return read_whole_file(path, kMaxFileBytes, "the checkpoint", "the 16 GB limit for a checkpoint");
}

CheckpointFile read_checkpoint(const std::string& path) {
    return parse_checkpoint(read_checkpoint_bytes(path), path);
}

void write_checkpoint(const std::string& path, Model& model, const CheckpointInfo& info,
                      const std::vector<ExtraTensor>& extra) {
    struct Entry {
        std::string name;
        std::vector<int64_t> shape;
        const char* data;
        int64_t bytes;
        bool int8 = false;
    };
    std::vector<Entry> entries;
    std::deque<Int8Weights> int8_weights;  // what the int8 entries point into
    const auto floats = [](const std::string& name, std::vector<int64_t> shape, const float* data,
                           int64_t count) {
        return Entry{name, std::move(shape), reinterpret_cast<const char*>(data), count * 4};
    };
    for (Model::NamedParam& p : model.named_params()) {
        const Buffer& value = *p.ref.value;
        if (model.calibrated() && model.layer(p.layer - 1).runs_int8() && p.ref.name == "weight") {
            const int64_t rows = p.ref.dims.front();
            const Int8Weights& q =
                int8_weights.emplace_back(to_int8(value.data(), rows, value.size() / rows));
            entries.push_back(
                {p.name, p.ref.dims, reinterpret_cast<const char*>(q.values.data()), value.size(), true});
            entries.push_back(floats(p.name + ".scale", {rows}, q.scales.data(), rows));
            continue;
        }
        entries.push_back(floats(p.name, p.ref.dims, value.data(), value.size()));
    }
    if (model.calibrated()) {
        const auto& ranges = model.value_ranges();
        static_assert(sizeof(ValueRange) == 2 * sizeof(float), "ranges are stored as (values, 2) floats");
        entries.push_back(floats("calibration.ranges", {static_cast<int64_t>(ranges.size()), 2},
                                 &ranges.front().min, 2 * static_cast<int64_t>(ranges.size())));
    }
    for (const ExtraTensor& t : extra) entries.push_back(floats(t.name, t.shape, t.value->data(), t.value->size()));
    // int8 tensors last, so that every float32 one starts on a 4-byte boundary of the data.
    std::stable_partition(entries.begin(), entries.end(), [](const Entry& e) { return !e.int8; });
    json header;
    json meta = {
        {"format", "lenz"},
        {"lenz_version", "1"},
        {"model", model.to_text()},
        {"classes", json(info.class_names).dump()},
        {"normalization", json{{"mean", info.normalization.mean}, {"std", info.normalization.stddev}}.dump()},
        {"epoch", std::to_string(info.epoch)},
        {"step", std::to_string(info.step)},
        {"training", info.training_json},
        {"metrics", info.metrics_json}};
    if (model.calibrated()) meta["precision"] = "int8";
    header["__metadata__"] = meta;
    int64_t offset = 0;
    for (const Entry& e : entries) {
        header[e.name] = {{"dtype", e.int8 ? "I8" : "F32"},
                          {"shape", e.shape},
                          {"data_offsets", {offset, offset + e.bytes}}};
        offset += e.bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the format recommends
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; ++i)
        len_bytes[i] = static_cast<unsigned char>(static_cast<uint64_t>(text.size()) >> (8 * i));

    write_atomically(path, "the checkpoint", [&](int fd, const std::string& tmp) {
        write_all(fd, reinterpret_cast<const char*>(len_bytes), 8, tmp);
        write_all(fd, text.data(), text.size(), tmp);
        for (const Entry& e : entries) {
            slow_write_pause();
            write_all(fd, e.data, static_cast<size_t>(e.bytes), tmp);
        }
    });
}

LoadedModel load_model(const CheckpointFile& file) {
    if (file.metadata.count("format") && file.meta("format") != "lenz")
        throw FormatError(file.path + ": metadata format is '" + file.meta("format") + "', expected 'lenz'");
    Model model = parse_model(file.meta("model"), file.path + " (model in metadata)");
    // The model text is as untrusted as the rest: a few bytes can describe terabytes of weights.
    // Every trainable weight must be in the file, so a model needing more than the file holds is
    // refused before init_params allocates it.
    // (A quantised file holds most weights in one byte each.)
    const int64_t bytes_per_param =
        file.metadata.count("precision") && file.meta("precision") == "int8" ? 1 : 4;
    int64_t params = 0;
    for (int64_t i = 0; i < model.size(); ++i)
        params = checked_add(params, model.layer(i).param_count(), "parameter count");
    if (checked_mul(params, bytes_per_param, "parameter bytes") > static_cast<int64_t>(file.data.size()))
        throw FormatError(file.path + ": the model in the metadata has " + std::to_string(params) +
                          " parameters (" + std::to_string(params * bytes_per_param) +
                          " bytes) but the file holds only " + std::to_string(file.data.size()) +
                          " bytes of tensor data");
    model.init_params(0);
    for (Model::NamedParam& p : model.named_params()) file.read_tensor(p.name, p.ref.dims, *p.ref.value);
    if (file.tensors.count("calibration.ranges")) {
        Buffer ranges((model.size() + 1) * 2);
        file.read_tensor("calibration.ranges", {model.size() + 1, 2}, ranges);
        std::vector<ValueRange> values(static_cast<size_t>(model.size() + 1));
        for (size_t v = 0; v < values.size(); ++v)
            values[v] = {ranges.data()[2 * v], ranges.data()[2 * v + 1]};
        try {
            model.set_value_ranges(std::move(values));
        } catch (const ShapeError& e) {
            throw FormatError(file.path + ": tensor 'calibration.ranges': " + e.what());
        }
    }
    CheckpointInfo info;
    try {
        info.class_names = json::parse(file.meta("classes")).get<std::vector<std::string>>();
        const json norm = json::parse(file.meta("normalization"));
        info.normalization.mean = norm.at("mean").get<std::vector<float>>();
        info.normalization.stddev = norm.at("std").get<std::vector<float>>();
        info.epoch = std::stoll(file.meta("epoch"));
        info.step = std::stoll(file.meta("step"));
    } catch (const json::exception& e) {
        throw FormatError(file.path + ": metadata is malformed: " + e.what());
    } catch (const std::logic_error&) {
        throw FormatError(file.path + ": metadata epoch/step are not numbers");
    }
    if (file.metadata.count("training")) info.training_json = file.meta("training");
    if (file.metadata.count("metrics")) info.metrics_json = file.meta("metrics");
    const int64_t channels = model.input_shape().c;
    if (static_cast<int64_t>(info.normalization.mean.size()) != channels ||
        static_cast<int64_t>(info.normalization.stddev.size()) != channels)
        throw FormatError(file.path + ": normalization has " +
                          std::to_string(info.normalization.mean.size()) +
                          " channels, the model's input has " + std::to_string(channels));
    for (float s : info.normalization.stddev)
        if (!(s > 0.0f)) throw FormatError(file.path + ": normalization std must be positive");
    return {std::move(model), std::move(info), {}};
}

LoadedModel load_model(const std::string& path) {
    return load_model(read_checkpoint(path));
}

}  // namespace lenz
