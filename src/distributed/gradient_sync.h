// Sums a model's gradients across the ranks while backward is still running: the flat gradient
// store (Model::allocate_gradients) is cut into buckets of whole layers, from the last layer back,
// and each bucket's sum starts as soon as backward has finished with every layer in it, so that
// sending the late layers' gradients overlaps computing the early ones' (as PyTorch DDP does).
#pragma once
#include <cstdint>
#include <vector>

#include "lenz/model.h"
#include "lenz/ranks.h"

namespace lenz {

class GradientSync {
  public:
    // A bucket closes once it holds bucket_floats (4 MB of gradients by default) or more.
    GradientSync(Model& model, Ranks& ranks, int64_t bucket_floats = int64_t{1} << 20);
    // This rank's share of the step's images: its gradients (of the mean loss over its own images)
    // are weighted by it before the sum, which is then the gradient of the mean over the whole batch.
    void set_share(float share) { share_ = share; }
    // Backward has finished layer `layer` and every layer after it: start the buckets that are ready.
    void backward_reached(int64_t layer);
    // Starts what is left and waits for every sum.
    void finish();
    int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }

  private:
    struct Bucket {
        int64_t first_layer;  // the lowest layer whose gradients it holds
        int64_t begin, end;   // in the flat store
    };
    Model& model_;
    Ranks& ranks_;
    std::vector<Bucket> buckets_;  // the last layers' first
    std::vector<Ranks::PendingSum> pending_;
    float share_ = 1;
};

}  // namespace lenz
