#include "tools/command.h"

namespace iris::tools {

std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;  // filled by static registrars before main()
  return registry;
}

}  // namespace iris::tools
