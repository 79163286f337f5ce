// What the oneDNN-backed kernels share: one engine, a stream per thread, a cache of primitives, and
// fused activations as post-ops.
#pragma once
#include <omp.h>

#include <dnnl.hpp>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "lenz/activation.h"
#include "lenz/threads.h"

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

// oneDNN fixes a primitive's split of work for the threads it sees when the primitive is made.
// Inside an inference stream a thread sees one (Inference::run sets it), and a primitive made there
// would keep one thread for good: a later batch on every core that met it in the cache ran at half
// speed (ResNet-18 at batch 1 after a batch of 15: 20 ms against 11.5). So a primitive is always
// made for the process's threads; inside a parallel region oneDNN runs it on the calling thread.
template <class Make>
auto made_for_every_thread(Make&& make) {
    if (!omp_in_parallel()) return make();
    struct Restore {
        int inside = omp_get_max_threads();
        ~Restore() { omp_set_num_threads(inside); }
    } restore;
    omp_set_num_threads(threads());
    return make();
}

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
    return cache.emplace(key, Entry{std::make_shared<T>(made_for_every_thread(make)), recent.begin()})
        .first->second.value;
}

// Floats of memory a descriptor takes (bf16 data: half as many as its elements), rounded up.
inline int64_t floats_of(const dnnl::memory::desc& d) {
    return static_cast<int64_t>((d.get_size() + 3) / 4);
}

inline bool fusable(const ActivationSpec& act) {
    return !over_channels(act.kind) && act.kind != Activation::none;
}

// Activations that a float32 or bf16 convolution or matrix product applies itself, once the
// primitive has written its output: oneDNN's post-ops for them compute exp and divide at about 1.3 ns an
// element, which doubled a 1x1 convolution's time (16 -> 96 channels at 112x112: 5.0 ms, 10.7 ms with
// swish at batch 16); exp_approx.h's pass over the chunk, still in cache, costs half of that.
inline bool applied_after(const ActivationSpec& act) {
    return act.kind == Activation::silu || act.kind == Activation::sigmoid;
}

// The activation as oneDNN post-ops, applied to each tile as it is computed, after `ops`.
inline dnnl::post_ops post_ops_of(const ActivationSpec& act, dnnl::post_ops ops = {}) {
    switch (act.kind) {
        case Activation::sigmoid:
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f);
            break;
        case Activation::tanh:
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_tanh, 0.0f, 0.0f);
            break;
        case Activation::relu6:
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, 6.0f);
            break;
        case Activation::hard_sigmoid:  // oneDNN 2.6 has no hardsigmoid: x / 6 + 1/2, then clipped to [0, 1]
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, 1.0f / 6.0f, 0.5f);
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, 1.0f);
            break;
        // The three below only where inference folds a standalone activation layer in.
        case Activation::hard_swish:
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_hardswish, 0.0f, 0.0f);
            break;
        case Activation::silu:  // swish with beta 1: x · sigmoid(x)
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
            break;
        case Activation::gelu:
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
            break;
        case Activation::relu:
        case Activation::leaky_relu:
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu,
                               act.kind == Activation::leaky_relu ? act.alpha : 0.0f, 0.0f);
            break;
        case Activation::elu:
            ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_elu, act.alpha, 0.0f);
            break;
        case Activation::none:
        case Activation::softmax:
        case Activation::log_softmax:
            break;
    }
    return ops;
}

}  // namespace lenz::cpu
