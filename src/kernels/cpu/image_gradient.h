// Backward kernels build the input gradient one image at a time in per-thread scratch and hand
// each finished image to a sink: the layer decides where it goes (possibly over x itself, which the
// kernel promises not to read for that image any more).
#pragma once
#include <omp.h>

#include <cstdint>
#include <functional>

namespace lenz::cpu {

using ImageGradientSink = std::function<void(int64_t n, const float* image_dx)>;

// Runs build(n, scratch) then sink(n, scratch) for every image, images split over threads, each
// thread with its own `image_floats` of scratch from `workspace` (threads * image_floats floats).
template <class Build>
void for_each_image_gradient(int64_t N, int64_t image_floats, float* workspace, int threads,
                             const ImageGradientSink& sink, Build build) {
#pragma omp parallel num_threads(threads)
    {
        float* scratch = workspace + omp_get_thread_num() * image_floats;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            build(n, scratch);
            sink(n, scratch);
        }
    }
}

}  // namespace lenz::cpu
