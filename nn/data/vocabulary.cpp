#include <algorithm>

#include "ember/data/csv.h"
#include "ember/error.h"

namespace ember::data {

Vocabulary::Vocabulary() : tokens_{"<unk>"} {}

Vocabulary Vocabulary::build(const std::vector<std::string>& values, int64_t min_count) {
  if (min_count < 1) fail("Vocabulary::build: min_count must be at least 1, got {}", min_count);
  std::unordered_map<std::string, int64_t> counts;
  for (const std::string& v : values) ++counts[v];
  std::vector<std::pair<std::string, int64_t>> kept;
  for (auto& [token, count] : counts)
    if (count >= min_count) kept.emplace_back(token, count);
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  Vocabulary vocab;
  for (auto& [token, count] : kept) {
    // A real value spelled "<unk>" still gets its own index; lookups by the name find that one.
    vocab.index_.emplace(token, vocab.size());
    vocab.tokens_.push_back(token);
  }
  return vocab;
}

int64_t Vocabulary::index(std::string_view token) const {
  auto it = index_.find(std::string(token));
  return it == index_.end() ? kUnknown : it->second;
}

const std::string& Vocabulary::token(int64_t index) const {
  if (index < 0 || index >= size()) fail("Vocabulary::token: index {} out of range [0, {})", index, size());
  return tokens_[static_cast<size_t>(index)];
}

}  // namespace ember::data
