// What every layer shares: the check that a layer of one input is given exactly one, and the
// defaults of the engine's side of the contract.
#include "lenz/layer.h"

#include "layers/pass.h"
#include "lenz/error.h"

namespace lenz {

Shape Layer::infer_inputs(const std::vector<Shape>& inputs) const {
    if (inputs.size() != 1)
        throw ShapeError(kind() + " reads one input, got " + std::to_string(inputs.size()));
    return infer(inputs[0]);
}

int64_t Layer::workspace_floats(const Pass&) const {
    return 0;
}
int64_t Layer::prepared_floats(const Pass&) const {
    return 0;
}
void Layer::prepare(float*, const Pass&, const float*, const float*) {}
bool Layer::can_absorb(const Absorption&) const {
    return false;
}
ChannelsLast Layer::channels_last() const {
    return ChannelsLast::no;
}

void Layer::forward_inputs(const std::vector<const float*>& xs, float* y, const Pass& pass) {
    forward(xs.at(0), y, pass);
}
void Layer::backward_inputs(const std::vector<const float*>& xs, const float* y, float* dy,
                            const std::vector<InputGradient>& dxs, const Pass& pass) {
    backward(xs.at(0), y, dy, dxs.at(0), pass);
}

}  // namespace lenz
