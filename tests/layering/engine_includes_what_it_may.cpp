// A probe of tests/layering/CMakeLists.txt: what the engine may include, which must compile.
#include "core/layout.h"
#include "kernels/cpu/int8.h"
#include "layers/pass.h"
#include "layers/window.h"
#include "lenz/model.h"

int lenz_layering_probe() {
    return static_cast<int>(sizeof(lenz::Pass));
}
