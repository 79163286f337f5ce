#include "cli/commands.h"
namespace lenz::cli {
void add_eval(CLI::App&, Runner&) {}
}  // namespace lenz::cli
