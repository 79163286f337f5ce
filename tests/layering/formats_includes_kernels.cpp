// A probe of tests/layering/CMakeLists.txt: must not compile.
#include "kernels/cpu/int8.h"
