// The `.lenz` text format (docs/model-format.md), read. Model::to_text() writes it.
#pragma once
#include <string>

#include "lenz/model.h"

namespace lenz {

// Errors: ParseError "file:line:col: what (expected ...)".
Model parse_model(const std::string& text, const std::string& filename);
Model load_model_file(const std::string& path);
// The settings of one layer line of the model file, e.g. layer.spec(): "conv 32 3x3 padding=same relu".
LayerConfig parse_layer_config(const std::string& line);

}  // namespace lenz
