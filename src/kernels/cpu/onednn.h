// What the oneDNN-backed kernels share: one engine, a stream per thread, and a cache of primitives.
#pragma once
#include <dnnl.hpp>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace lenz::cpu {

inline dnnl::engine& cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}
// One stream per calling thread: oneDNN streams are not to be shared between threads, and programs
// may run separate models on separate threads at once.
inline dnnl::stream& cpu_stream() {
    thread_local dnnl::stream stream(cpu_engine());
    return stream;
}

// Primitives are built once per shape and batch, then reused: building one costs far more than
// running a small convolution. Threads may ask at once; executing a primitive is thread-safe, since
// each call brings its own memory and scratchpad. Looking one up happens at every call, so the key
// is whatever the caller can compare and hash cheaply (a convolution's: a struct of integers).
// The cache keeps the most recently used kCachedPrimitives of each kind, so that a long-lived
// process that loads model after model (a notebook) does not grow without bound; a caller holds
// its shared_ptr while it runs the primitive, so an eviction meanwhile frees nothing in use.
inline constexpr size_t kCachedPrimitives = 4096;
template <class T, class Key, class Hash = std::hash<Key>, size_t Capacity = kCachedPrimitives, class Make>
std::shared_ptr<T> cached(const Key& key, Make&& make) {
    struct Entry {
        std::shared_ptr<T> value;
        typename std::list<Key>::iterator recency;
    };
    static std::mutex guard;
    static std::unordered_map<Key, Entry, Hash> cache;
    static std::list<Key> recent;  // most recently used first
    const std::lock_guard<std::mutex> lock(guard);
    auto it = cache.find(key);
    if (it != cache.end()) {
        recent.splice(recent.begin(), recent, it->second.recency);
        return it->second.value;
    }
    if (cache.size() >= Capacity) {
        cache.erase(recent.back());
        recent.pop_back();
    }
    recent.push_front(key);
    return cache.emplace(key, Entry{std::make_shared<T>(make()), recent.begin()}).first->second.value;
}

// Floats of memory a descriptor takes (bf16 data: half as many as its elements), rounded up.
inline int64_t floats_of(const dnnl::memory::desc& d) {
    return static_cast<int64_t>((d.get_size() + 3) / 4);
}

}  // namespace lenz::cpu
