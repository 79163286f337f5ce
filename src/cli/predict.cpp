#include "cli/commands.h"
namespace lenz::cli {
void add_predict(CLI::App&, Runner&) {}
}  // namespace lenz::cli
