#include "lenz/buffer.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "lenz/error.h"
#include "lenz/shape.h"

namespace lenz {
namespace {
std::atomic<int64_t> live_bytes{0};
std::atomic<int64_t> peak_bytes{0};
constexpr size_t kAlignment = 64;  // one cache line; also what AVX-512 loads would want
}  // namespace

Buffer::Buffer(int64_t floats) {
    if (floats < 0) throw ShapeError("negative buffer size " + std::to_string(floats));
    if (floats == 0) return;
    int64_t bytes = checked_mul(floats, static_cast<int64_t>(sizeof(float)), "buffer size");
    if (bytes > kMaxBufferBytes)
        throw ShapeError("one buffer would need " + human_bytes(bytes) + " (" + with_commas(bytes) +
                         " bytes), more than the limit of " + human_bytes(kMaxBufferBytes));
    size_t rounded = (static_cast<size_t>(bytes) + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<float*>(std::aligned_alloc(kAlignment, rounded));
    if (!data_) throw std::bad_alloc();
    std::memset(data_, 0, rounded);
    size_ = floats;
    int64_t now = live_bytes.fetch_add(bytes) + bytes;
    int64_t prev = peak_bytes.load();
    while (now > prev && !peak_bytes.compare_exchange_weak(prev, now)) {
    }
}

void Buffer::release() {
    if (data_ && owns_) {
        live_bytes.fetch_sub(bytes());
        std::free(data_);
    }
}

Buffer::~Buffer() {
    release();
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        release();
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
        owns_ = o.owns_;
    }
    return *this;
}

int64_t buffer_bytes_live() {
    return live_bytes.load();
}
int64_t buffer_bytes_peak() {
    return peak_bytes.load();
}
void buffer_reset_peak() {
    peak_bytes.store(live_bytes.load());
}

}  // namespace lenz
