#pragma once
// iris::Error: every failure in the library. The message names the op and the
// shapes / dtypes / devices involved; library code never exits or aborts.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace iris {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace iris

// IRIS_CHECK(cond, "op", ...): throws iris::Error("op: ...") when cond is false.
#define IRIS_CHECK(cond, ...)                                          \
  do {                                                                 \
    if (!(cond)) throw ::iris::Error(::iris::detail::cat(__VA_ARGS__)); \
  } while (0)

#define IRIS_FAIL(...) throw ::iris::Error(::iris::detail::cat(__VA_ARGS__))
