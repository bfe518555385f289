#pragma once
// Lists of numbers as metadata text ("0.1,0.01"), exact both ways: the schedulers' state dicts.
#include <string>
#include <vector>

#include "ember/optim/optimizer.h"

namespace ember::optim::detail {

inline std::string join_numbers(const std::vector<double>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += number_text(v[i]);
  }
  return out;
}

// Throws, naming `key`, on an entry that is not a number.
inline std::vector<double> split_numbers(const std::string& key, const std::string& s) {
  std::vector<double> out;
  for (size_t begin = 0; !s.empty();) {
    size_t comma = s.find(',', begin);
    out.push_back(parse_number({{key, s.substr(begin, comma - begin)}}, key));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return out;
}

}  // namespace ember::optim::detail
