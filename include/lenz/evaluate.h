// A model on a data set: whether the data fits it, the data set loaded at the model's input size,
// and the evaluation of the model on its images.
#pragma once
#include <cstdint>
#include <string>

#include "lenz/data.h"
#include "lenz/metrics.h"
#include "lenz/model.h"
#include "lenz/normalization.h"
#include "lenz/precision.h"

namespace lenz {

// Forward over a whole set in inference mode, in batches.
EvalResult evaluate(Model& model, const ImageSet& set, const Normalization& norm, int64_t batch = 256,
                    Precision precision = Precision::f32);

// Checks that the data fits the model (input shape, labels within the output) before any work.
void check_data_fits(const Model& model, const ImageSet& set, const std::string& which);
// load_dataset with image folders converted to the model's input size and channels.
DataSplit load_dataset_for(const Model& model, const std::string& spec, double val_split, uint64_t seed);

}  // namespace lenz
