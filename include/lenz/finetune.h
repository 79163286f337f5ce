// Fine-tuning a trained model: the layer a name or number means (for --freeze), and a fresh
// classifier sized for another data set's classes (--new-head).
#pragma once
#include <cstdint>
#include <string>

#include "lenz/model.h"

namespace lenz {

// The layer that `name_or_number` names: the one whose output has that name (name= in
// the model file), else the layer of that number, counted from 1 as the summary's table does; -1 if
// none (the input is no layer).
int64_t find_layer(const Model& model, const std::string& name_or_number);
// Puts fresh layers of `classes` outputs in place of the model's head: the dense layers or
// convolutions (SqueezeNet's classifier) that reach the output through layers without weights which
// keep the channels (a softmax, relu, global pool, flatten, upsample, or an add that joins two heads,
// as LR-ASPP's), each keeping its settings; their weights come from `seed` as Model::init_params
// makes them. Every other weight stays. Returns the layers' indices, in order; throws ShapeError if
// the model ends otherwise.
std::vector<int64_t> replace_head(Model& model, int64_t classes, uint64_t seed);

}  // namespace lenz
