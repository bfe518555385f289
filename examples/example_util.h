#pragma once
// Small helpers every example program uses: the command line, wall-clock timing and parameter
// counts.
// Header-only (examples/CMakeLists.txt builds each *.cpp as its own program).
#include <ember/nn.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace examples {

// Parses the command line. Returns nothing to go on, else the exit code: 0 after --help, 1 for
// any bad option (CLI11's own codes differ by kind of error; every example exits 1 on an error).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  return std::nullopt;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The number of values in `tensors` (e.g. a model's parameters, or some of them).
inline int64_t count_elements(const std::vector<ember::Tensor>& tensors) {
  int64_t n = 0;
  for (const ember::Tensor& t : tensors) n += t.numel();
  return n;
}

inline int64_t count_parameters(const ember::nn::Module& model) { return count_elements(model.parameters()); }

}  // namespace examples
