// StateDict prefix helpers: one checkpoint file can hold a model, an optimizer and a scheduler,
// each under its own key prefix.
#include "ember/state_dict.h"

#include "ember/error.h"

namespace ember {

namespace {
template <class Map>
void insert_prefixed(Map& into, const std::string& prefix, const Map& from, const char* what) {
  for (const auto& [key, value] : from) {
    auto [it, added] = into.emplace(prefix + key, value);
    if (!added) fail("StateDict::insert: {} key '{}' is already present", what, it->first);
  }
}
template <class Map>
Map extract_prefixed(const Map& from, const std::string& prefix) {
  Map out;
  for (auto it = from.lower_bound(prefix); it != from.end() && it->first.starts_with(prefix); ++it)
    out.emplace(it->first.substr(prefix.size()), it->second);
  return out;
}
}  // namespace

void StateDict::insert(const std::string& prefix, const StateDict& other) {
  insert_prefixed(tensors, prefix, other.tensors, "tensor");
  insert_prefixed(metadata, prefix, other.metadata, "metadata");
}

StateDict StateDict::extract(const std::string& prefix) const {
  return StateDict{extract_prefixed(tensors, prefix), extract_prefixed(metadata, prefix)};
}

}  // namespace ember
