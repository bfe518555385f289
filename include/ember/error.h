#pragma once
// ember::Error is the one exception type for every user error: bad shapes, dtypes, devices,
// indices, malformed files. Messages start with the op name and show the offending values.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace ember {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throw an ember::Error with a fmt-formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ember

// EMBER_CHECK(cond, "op: {} ...", args...) throws ember::Error when cond is false.
#define EMBER_CHECK(cond, ...)      \
  do {                              \
    if (!(cond)) ::ember::fail(__VA_ARGS__); \
  } while (0)
