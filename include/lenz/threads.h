// How many threads the engine uses. Default: every core the process may run on.
#pragma once

namespace lenz {

int threads();
void set_threads(int n);  // n <= 0 means the default

}  // namespace lenz
