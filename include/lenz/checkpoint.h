// Checkpoints in the safetensors format: an 8-byte little-endian header length, a JSON header
// naming each tensor's dtype, shape and byte range, then the raw little-endian float32 data.
// A quantised model (lenz quantize) keeps the weights of its convolutions and dense layers in int8
// ("I8", with a float32 "<name>.scale" per output channel) and the calibrated range of every value
// ("calibration.ranges", (values, 2): min and max).
// The model text, class names and normalisation go in the header's "__metadata__", so one file
// is enough to predict; optimizer state and progress make it enough to resume training.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lenz/model.h"
#include "lenz/normalization.h"

namespace lenz {

// Limits: the JSON header at most 100 MB, the file at most 16 GB, shapes checked against bytes, and
// (load_model) the model in the metadata no larger than the tensor data the file holds.
struct CheckpointFile {
    std::string path;
    std::map<std::string, std::string> metadata;
    struct Tensor {
        std::vector<int64_t> shape;
        int64_t begin = 0, end = 0;  // byte range within data
        bool int8 = false;           // "I8"; otherwise "F32"
    };
    std::map<std::string, Tensor> tensors;
    std::vector<char> data;  // everything after the header

    // Copies tensor `name` into `out`, checking its shape (an int8 one times its scales); throws
    // FormatError naming file and tensor.
    void read_tensor(const std::string& name, const std::vector<int64_t>& shape, Buffer& out) const;
    const std::string& meta(const std::string& key) const;  // throws FormatError if missing
};

CheckpointFile read_checkpoint(const std::string& path);
// The file's bytes as read_checkpoint reads them (IoError if it cannot, FormatError past 16 GB).
std::string read_checkpoint_bytes(const std::string& path);
// The same from bytes already in memory; `name` stands for the file in error messages.
CheckpointFile parse_checkpoint(const std::string& bytes, const std::string& name);

struct CheckpointInfo {
    std::vector<std::string> class_names;
    Normalization normalization;
    int64_t epoch = 0;                 // epochs completed
    int64_t step = 0;                  // optimizer steps taken
    std::string training_json = "{}";  // the settings of the run, for resuming and for the record
    std::string metrics_json = "{}";   // the last epoch's metrics
};

// A float32 tensor stored beside the weights under its own name and shape: an optimizer's state.
struct ExtraTensor {
    std::string name;
    std::vector<int64_t> shape;
    const Buffer* value;
};

// Writes atomically: to a temporary file in the same folder, flushed to disk, then renamed over
// `path`, so a crash at any point leaves either the old or the new checkpoint, never half of one.
void write_checkpoint(const std::string& path, Model& model, const CheckpointInfo& info,
                      const std::vector<ExtraTensor>& extra = {});

struct LoadedModel {
    Model model;
    CheckpointInfo info;
    // What reading the file noticed that a user should know, a sentence each (e.g. an ONNX export
    // whose convolutions carry folded batch norms); lenz summary and lenz import print them.
    std::vector<std::string> notes;
};
// Builds the model from the metadata and loads its weights, checking names, shapes and sizes.
LoadedModel load_model(const CheckpointFile& file);
LoadedModel load_model(const std::string& path);

}  // namespace lenz
