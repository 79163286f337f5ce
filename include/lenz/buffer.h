// Float buffers that the engine owns. Every allocation goes through here so that the bytes the
// engine really holds can be compared with what the memory plan promised.
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>

namespace lenz {

// Largest single buffer the engine will try to allocate; beyond it we report what it would take.
inline constexpr int64_t kMaxBufferBytes = int64_t{64} << 30;  // 64 GiB

class Buffer {
  public:
    Buffer() = default;
    explicit Buffer(int64_t floats);  // zero-filled; throws ShapeError past kMaxBufferBytes
    // `floats` floats of memory another Buffer owns (a slice of one flat store): the view neither
    // frees it nor counts it as held; the owner must outlive it.
    static Buffer view(float* data, int64_t floats) { return Buffer(data, floats); }
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), owns_(o.owns_) {}
    Buffer& operator=(Buffer&& o) noexcept;

    float* data() { return data_; }
    const float* data() const { return data_; }
    int64_t size() const { return size_; }
    int64_t bytes() const { return size_ * static_cast<int64_t>(sizeof(float)); }
    float& operator[](int64_t i) { return data_[i]; }
    float operator[](int64_t i) const { return data_[i]; }
    void zero() {
        if (size_) std::memset(data_, 0, static_cast<size_t>(bytes()));
    }

  private:
    Buffer(float* data, int64_t floats) : data_(data), size_(floats), owns_(false) {}
    void release();

    float* data_ = nullptr;
    int64_t size_ = 0;
    bool owns_ = true;
};

// Bytes held by live Buffers right now, and the most held at once since the last reset.
int64_t buffer_bytes_live();
int64_t buffer_bytes_peak();
void buffer_reset_peak();

}  // namespace lenz
