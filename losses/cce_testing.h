#pragma once
// Internal switches of cut_cross_entropy for tests (not part of the public API).
namespace ember::losses::detail {
// Whether the backward visits the vocabulary sorted by the forward's average logit when it
// filters gradients (default true). Worked example 4 of cce.md assumes the natural order.
bool& cce_sort_vocabulary();
}  // namespace ember::losses::detail
