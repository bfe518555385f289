// einsum: Einstein summation, as numpy.einsum / torch.einsum, built from other ops (views, sum,
// mul, matmul), so its gradient and its CUDA path come from theirs.
//
// The plan, for "ij,jk,kl->il"-style equations:
//   1. parse: every subscript letter becomes a label id; "..." expands into one label per
//      broadcast dim, right-aligned across the operands as broadcasting aligns them;
//   2. per operand: a label repeated within it ("ii") takes the diagonal; a label no other
//      operand and not the output names is summed away at once (the cheapest place);
//   3. left to right, the running result is contracted with the next operand: labels both hold
//      and still needed later are batch dims, labels both hold and no longer needed are summed by
//      one batched matmul [batch, left, summed] @ [batch, summed, right] (a broadcasting multiply
//      when nothing is summed);
//   4. the result's dims are permuted into the output's order.
// Size-1 dims broadcast against the same label's size in another operand, as in PyTorch.
#include <algorithm>
#include <map>
#include <string>
#include <string_view>

#include "ops/internal.h"

namespace ember {
namespace {

using Labels = std::vector<int>;

constexpr int kLetters = 52;                    // 'A'..'Z' -> 0..25, 'a'..'z' -> 26..51 (ASCII order)
constexpr int kEllipsisToken = -1;              // "..." while parsing
constexpr int kFirstBroadcastLabel = kLetters;  // "..." dims, leftmost first

int letter_label(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -2;
}

std::string label_name(int label) {
  if (label >= kFirstBroadcastLabel) return fmt::format("... dim {}", label - kFirstBroadcastLabel);
  return std::string(1, label < 26 ? static_cast<char>('A' + label) : static_cast<char>('a' + label - 26));
}

// One term ("ij", "b...d") as letters and ellipsis tokens; spaces are ignored.
Labels parse_term(std::string_view term, std::string_view equation) {
  Labels out;
  for (size_t i = 0; i < term.size(); ++i) {
    const char c = term[i];
    if (c == ' ') continue;
    if (c == '.') {
      if (term.substr(i, 3) != "...")
        fail("einsum: '{}': a '.' must be part of an ellipsis \"...\"", equation);
      if (std::count(out.begin(), out.end(), kEllipsisToken))
        fail("einsum: '{}': more than one ellipsis in the term '{}'", equation, term);
      out.push_back(kEllipsisToken);
      i += 2;
      continue;
    }
    const int label = letter_label(c);
    if (label < 0)
      fail("einsum: '{}': invalid subscript '{}' (subscripts are letters a-z, A-Z)", equation, c);
    out.push_back(label);
  }
  return out;
}

struct Equation {
  std::vector<Labels> inputs;  // one label per dim of each operand
  Labels output;
};

// Parses `equation` against the operands' ranks, expanding every ellipsis into broadcast labels.
Equation parse(std::string_view equation, const std::vector<Tensor>& operands) {
  const size_t arrow = equation.find("->");
  const std::string_view lhs = equation.substr(0, arrow);
  std::vector<Labels> terms;
  for (size_t begin = 0;;) {
    const size_t comma = lhs.find(',', begin);
    terms.push_back(parse_term(lhs.substr(begin, comma - begin), equation));
    if (comma == std::string_view::npos) break;
    begin = comma + 1;
  }
  if (terms.size() != operands.size())
    fail("einsum: '{}' has {} operand terms but {} operands were given", equation, terms.size(),
         operands.size());

  // The broadcast ("...") dims: as many as the largest ellipsis, right-aligned in every operand.
  int64_t broadcast_dims = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    const int64_t letters = std::count_if(terms[i].begin(), terms[i].end(), [](int l) { return l >= 0; });
    const bool ellipsis = letters != static_cast<int64_t>(terms[i].size());
    const int64_t rank = operands[i].dim();
    if (ellipsis ? rank < letters : rank != letters)
      fail("einsum: '{}': operand {} has {} dims ({}) but its subscripts name {}{}", equation, i, rank,
           shape_str(operands[i].shape()), letters, ellipsis ? " plus an ellipsis" : "");
    if (ellipsis) broadcast_dims = std::max(broadcast_dims, rank - letters);
  }
  auto broadcast_labels = [&](int64_t count) {  // the last `count` of the broadcast labels
    Labels out;
    for (int64_t j = broadcast_dims - count; j < broadcast_dims; ++j)
      out.push_back(kFirstBroadcastLabel + static_cast<int>(j));
    return out;
  };
  Equation eq;
  for (size_t i = 0; i < terms.size(); ++i) {
    Labels labels;
    for (int l : terms[i]) {
      if (l != kEllipsisToken) {
        labels.push_back(l);
        continue;
      }
      const Labels b = broadcast_labels(operands[i].dim() - static_cast<int64_t>(terms[i].size() - 1));
      labels.insert(labels.end(), b.begin(), b.end());
    }
    eq.inputs.push_back(std::move(labels));
  }

  if (arrow != std::string_view::npos) {
    for (int l : parse_term(equation.substr(arrow + 2), equation)) {
      const Labels add = l == kEllipsisToken ? broadcast_labels(broadcast_dims) : Labels{l};
      for (int a : add) {
        if (std::count(eq.output.begin(), eq.output.end(), a))
          fail("einsum: '{}': output subscript '{}' appears more than once", equation, label_name(a));
        if (!std::any_of(eq.inputs.begin(), eq.inputs.end(),
                         [&](const Labels& in) { return std::count(in.begin(), in.end(), a) > 0; }))
          fail("einsum: '{}': output subscript '{}' does not appear in any operand", equation, label_name(a));
        eq.output.push_back(a);
      }
    }
  } else {
    // Implicit output: the broadcast dims, then every letter that appears exactly once, in
    // alphabetical (ASCII) order.
    eq.output = broadcast_labels(broadcast_dims);
    std::vector<int> count(kLetters, 0);
    for (const Labels& in : eq.inputs)
      for (int l : in)
        if (l < kLetters) ++count[l];
    for (int l = 0; l < kLetters; ++l)
      if (count[l] == 1) eq.output.push_back(l);
  }
  return eq;
}

bool contains(const Labels& labels, int l) {
  return std::find(labels.begin(), labels.end(), l) != labels.end();
}

int64_t position(const Labels& labels, int l) {
  return std::find(labels.begin(), labels.end(), l) - labels.begin();
}

// A tensor whose dims carry labels.
struct Labelled {
  Tensor t;
  Labels labels;
};

// Folds repeated labels into their diagonal and sums labels that `needed` does not name.
Labelled reduce_operand(Labelled x, const Labels& needed, std::string_view equation, size_t index) {
  for (size_t p = 0; p < x.labels.size(); ++p) {
    for (size_t q = p + 1; q < x.labels.size();) {
      if (x.labels[q] != x.labels[p]) {
        ++q;
        continue;
      }
      const int64_t n1 = x.t.size(static_cast<int64_t>(p)), n2 = x.t.size(static_cast<int64_t>(q));
      if (n1 != n2)
        fail("einsum: '{}': subscript '{}' is repeated in operand {} for dims of sizes {} and {}", equation,
             label_name(x.labels[p]), index, n1, n2);
      // diagonal() drops both dims and appends the diagonal; move it back to p's place.
      Tensor d = x.t.diagonal(0, static_cast<int64_t>(p), static_cast<int64_t>(q));
      x.t = d.unsqueeze(static_cast<int64_t>(p)).transpose(static_cast<int64_t>(p), -1).squeeze(-1);
      x.labels.erase(x.labels.begin() + static_cast<std::ptrdiff_t>(q));
    }
  }
  Shape summed;
  Labels kept;
  for (size_t d = 0; d < x.labels.size(); ++d) {
    if (contains(needed, x.labels[d])) {
      kept.push_back(x.labels[d]);
    } else {
      summed.push_back(static_cast<int64_t>(d));
    }
  }
  if (!summed.empty()) x = {x.t.sum(summed), kept};
  return x;
}

// x's dims reordered as `order` (labels x holds) followed by a size-1 dim for every label of
// `order` that x lacks: a view ready to broadcast against another operand arranged the same way.
Tensor arrange(const Labelled& x, const Labels& order) {
  Shape perm;
  for (int l : order)
    if (contains(x.labels, l)) perm.push_back(position(x.labels, l));
  Tensor t = x.t.permute(perm);
  int64_t d = 0;
  for (int l : order) {
    if (!contains(x.labels, l)) t = t.unsqueeze(d);
    ++d;
  }
  return t;
}

int64_t product(const Shape& s, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= s[i];
  return n;
}

// a and b contracted over the labels both hold that `needed` does not name.
Labelled contract(const Labelled& a, const Labelled& b, const Labels& needed, std::string_view equation) {
  Labels batch, left, right, summed;
  for (int l : a.labels) {
    if (!contains(b.labels, l)) {
      left.push_back(l);
    } else {
      (contains(needed, l) ? batch : summed).push_back(l);
    }
  }
  for (int l : b.labels)
    if (!contains(a.labels, l)) right.push_back(l);
  // Sizes of shared labels agree or one of them is 1 (broadcast).
  std::map<int, int64_t> size_of;
  for (const Labelled* x : {&a, &b})
    for (size_t d = 0; d < x->labels.size(); ++d) {
      const int l = x->labels[d];
      const int64_t n = x->t.size(static_cast<int64_t>(d));
      auto [it, first] = size_of.emplace(l, n);
      if (first || it->second == n || n == 1) continue;
      if (it->second != 1)
        fail("einsum: '{}': subscript '{}' has size {} in one operand and {} in another", equation,
             label_name(l), it->second, n);
      it->second = n;
    }

  Labels out_labels = batch;
  out_labels.insert(out_labels.end(), left.begin(), left.end());
  out_labels.insert(out_labels.end(), right.begin(), right.end());
  if (summed.empty()) {  // nothing to sum: a broadcasting multiply, no matmul needed
    return {mul(arrange(a, out_labels), arrange(b, out_labels)), out_labels};
  }
  // [batch, left, summed] @ [batch, summed, right], each group flattened to one dim.
  Labels a_order = batch, b_order = batch;
  a_order.insert(a_order.end(), left.begin(), left.end());
  a_order.insert(a_order.end(), summed.begin(), summed.end());
  b_order.insert(b_order.end(), summed.begin(), summed.end());
  b_order.insert(b_order.end(), right.begin(), right.end());
  auto full = [&](const Labels& order) {
    Shape s;
    for (int l : order) s.push_back(size_of.at(l));
    return s;
  };
  const Shape a_shape = full(a_order), b_shape = full(b_order);
  const size_t nb = batch.size(), nl = left.size(), ns = summed.size();
  const Tensor a3 = arrange(a, a_order)
                        .expand(a_shape)
                        .reshape({product(a_shape, 0, nb), product(a_shape, nb, nb + nl),
                                  product(a_shape, nb + nl, a_shape.size())});
  const Tensor b3 = arrange(b, b_order)
                        .expand(b_shape)
                        .reshape({product(b_shape, 0, nb), product(b_shape, nb, nb + ns),
                                  product(b_shape, nb + ns, b_shape.size())});
  return {matmul(a3, b3).reshape(full(out_labels)), out_labels};
}

}  // namespace

Tensor einsum(std::string_view equation, const std::vector<Tensor>& operands) {
  if (operands.empty()) fail("einsum: '{}': needs at least one operand", equation);
  for (size_t i = 0; i < operands.size(); ++i)
    check_defined("einsum", operands[i], fmt::format("operand {}", i));
  check_same_device("einsum", operands);
  const Equation eq = parse(equation, operands);

  // Labels still needed after operand i: the output's and those of the operands after i.
  auto needed_after = [&](size_t i) {
    Labels needed = eq.output;
    for (size_t j = i + 1; j < eq.inputs.size(); ++j)
      needed.insert(needed.end(), eq.inputs[j].begin(), eq.inputs[j].end());
    return needed;
  };
  auto needed_by_others = [&](size_t i) {
    Labels needed = needed_after(i);
    for (size_t j = 0; j < i; ++j) needed.insert(needed.end(), eq.inputs[j].begin(), eq.inputs[j].end());
    return needed;
  };

  Labelled result = reduce_operand({operands[0], eq.inputs[0]}, needed_by_others(0), equation, 0);
  for (size_t i = 1; i < operands.size(); ++i) {
    const Labelled next = reduce_operand({operands[i], eq.inputs[i]}, needed_by_others(i), equation, i);
    result = contract(result, next, needed_after(i), equation);
  }
  result = reduce_operand(result, eq.output, equation, 0);  // (labels only the one operand held)
  Shape perm;
  for (int l : eq.output) perm.push_back(position(result.labels, l));
  return result.t.permute(perm);
}

}  // namespace ember
