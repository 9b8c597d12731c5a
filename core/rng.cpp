#include "core/rng.h"

namespace iris {

Generator& default_generator() {
  static Generator g;
  return g;
}

}  // namespace iris
