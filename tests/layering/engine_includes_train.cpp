// A probe of tests/layering/CMakeLists.txt: must not compile.
#include "lenz/train.h"
