// NumPy's .npy arrays of float32, as numpy.save writes them: how `lenz run` takes tensors in and
// hands them out, so that any framework's numbers can be compared with Lenz's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lenz {

struct NpyArray {
    std::vector<int64_t> shape;  // C order; () is a scalar
    std::vector<float> data;     // product(shape) values
};

// Format versions 1.0 to 3.0, dtype '<f4' in C order only; anything else is a FormatError that says
// what the file holds and what to do ("save it with x.astype(numpy.float32)").
NpyArray parse_npy(const std::string& bytes, const std::string& name);
NpyArray read_npy(const std::string& path);
// Version 1.0, the header padded to a multiple of 64 bytes as numpy does; written atomically.
std::string encode_npy(const NpyArray& array);
void write_npy(const std::string& path, const NpyArray& array);

}  // namespace lenz
