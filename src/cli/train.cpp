#include "cli/commands.h"
namespace lenz::cli {
void add_train(CLI::App&, Runner&) {}
}  // namespace lenz::cli
