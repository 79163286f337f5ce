// What the layers that read several values (add, concat, mul) share: the engine calls their
// forward_inputs/backward_inputs, never the one-input forms.
#pragma once
#include <string>

#include "layers/pass.h"
#include "lenz/error.h"
#include "lenz/layer.h"

namespace lenz {

class MergeLayer : public Layer {
  public:
    bool reads_several() const final { return true; }
    void forward(const float*, float*, const Pass&) final { throw Error(kind() + " reads several inputs"); }
    void backward(const float*, const float*, float*, const InputGradient&, const Pass&) final {
        throw Error(kind() + " reads several inputs");
    }

  protected:
    Shape infer(Shape in) const final { return in; }  // infer_inputs is what runs
};

}  // namespace lenz
