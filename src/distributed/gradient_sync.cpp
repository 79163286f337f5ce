#include "distributed/gradient_sync.h"

namespace lenz {

GradientSync::GradientSync(Model& model, Ranks& ranks, int64_t bucket_floats) : model_(model), ranks_(ranks) {
    int64_t end = model.gradient_floats();
    for (int64_t i = model.size() - 1; i >= 0; --i) {
        const int64_t begin = model.gradient_offset(i);
        if (end - begin >= bucket_floats || (i == 0 && end > begin)) {
            buckets_.push_back({i, begin, end});
            end = begin;
        }
    }
}

void GradientSync::backward_reached(int64_t layer) {
    if (!ranks_.distributed()) return;
    while (pending_.size() < buckets_.size() && buckets_[pending_.size()].first_layer >= layer) {
        const Bucket& b = buckets_[pending_.size()];
        float* g = model_.gradient_store();
#pragma omp parallel for simd schedule(static) if (b.end - b.begin >= (1 << 16))
        for (int64_t i = b.begin; i < b.end; ++i) g[i] *= share_;
        pending_.push_back(ranks_.start_sum(model_.gradient_store() + b.begin, b.end - b.begin));
    }
    for (Ranks::PendingSum& p : pending_) p.poll();  // MPI moves a sum along only inside its calls
}

void GradientSync::finish() {
    if (!ranks_.distributed()) return;
    backward_reached(0);
    for (Ranks::PendingSum& p : pending_) p.wait();
    pending_.clear();
}

}  // namespace lenz
