// What every layer shares: the check that a layer of one input is given exactly one.
#include "lenz/layer.h"

#include "lenz/error.h"

namespace lenz {

Shape Layer::infer_inputs(const std::vector<Shape>& inputs) const {
    if (inputs.size() != 1)
        throw ShapeError(kind() + " reads one input, got " + std::to_string(inputs.size()));
    return infer(inputs[0]);
}

}  // namespace lenz
