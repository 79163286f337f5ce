// The IDX and image readers take paths, so their fuzz targets write each input to a file in
// /dev/shm (memory, so no disk wear and little cost per execution) and read it back.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace lenz::fuzz {

class TempFile {
  public:
    explicit TempFile(const std::string& tag)
        : path_("/dev/shm/lenz-fuzz-" + std::to_string(::getpid()) + "-" + tag) {}
    ~TempFile() { std::remove(path_.c_str()); }
    const std::string& write(const uint8_t* data, size_t size) {
        std::FILE* f = std::fopen(path_.c_str(), "wb");
        if (!f) std::abort();  // the harness, not the reader, is broken: stop loudly
        if (size && std::fwrite(data, 1, size, f) != size) std::abort();
        std::fclose(f);
        return path_;
    }

  private:
    std::string path_;
};

}  // namespace lenz::fuzz
