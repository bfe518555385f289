// einsum and diagonal: every equation against a naive reference that loops over all label values,
// gradients by finite differences, CUDA parity (through the harness), and the error messages.
#include <map>
#include <string>

#include "harness.h"

namespace ember::testing {
namespace {

// The textbook definition: for every assignment of values to all labels, add the product of the
// operands' elements to the output element those values name. Letters only (no "..."), explicit
// "->" output; independent of ops/einsum.cpp's plan.
Tensor naive_einsum(const std::string& equation, const std::vector<Tensor>& operands) {
  const size_t arrow = equation.find("->");
  std::vector<std::string> terms;
  for (size_t begin = 0;;) {
    const size_t comma = equation.find(',', begin);
    terms.push_back(equation.substr(begin, std::min(comma, arrow) - begin));
    if (comma == std::string::npos || comma > arrow) break;
    begin = comma + 1;
  }
  const std::string out = equation.substr(arrow + 2);
  std::map<char, int64_t> size;
  std::vector<std::vector<double>> values;
  for (size_t i = 0; i < terms.size(); ++i) {
    for (size_t d = 0; d < terms[i].size(); ++d)
      size[terms[i][d]] = operands[i].size(static_cast<int64_t>(d));
    values.push_back(operands[i].detach().to(DType::float64).contiguous().to_vector<double>());
  }
  std::string labels;
  for (const auto& [label, n] : size) labels += label;
  Shape out_shape;
  for (char c : out) out_shape.push_back(size.at(c));
  int64_t out_numel = 1;
  for (int64_t n : out_shape) out_numel *= n;
  std::vector<double> result(static_cast<size_t>(out_numel), 0.0);
  std::map<char, int64_t> value;
  for (char c : labels) value[c] = 0;
  auto flat_index = [&](const std::string& term, const Shape& shape) {
    int64_t index = 0;
    for (size_t d = 0; d < term.size(); ++d) index = index * shape[d] + value[term[d]];
    return index;
  };
  int64_t combinations = 1;
  for (char c : labels) combinations *= size[c];
  for (int64_t k = 0; k < combinations; ++k) {
    int64_t rest = k;
    for (char c : labels) {
      value[c] = rest % size[c];
      rest /= size[c];
    }
    double product = 1;
    for (size_t i = 0; i < terms.size(); ++i) product *= values[i][flat_index(terms[i], operands[i].shape())];
    result[flat_index(out, out_shape)] += product;
  }
  return tensor<double>(result, out_shape);
}

struct Row {
  std::string name, equation;
  std::vector<Shape> shapes;
  std::string reference;  // the same contraction in the naive reference's form (letters, explicit "->")
};

// Each row: an equation, operand shapes, and the explicit letter-only equation it means.
const std::vector<Row>& rows() {
  static const std::vector<Row> r = {
      {"matmul", "ij,jk->ik", {{2, 3}, {3, 4}}, "ij,jk->ik"},
      {"matmul_implicit", "ij,jk", {{2, 3}, {3, 4}}, "ij,jk->ik"},
      {"implicit_alphabetical", "ji,jk", {{3, 2}, {3, 4}}, "ji,jk->ik"},
      {"implicit_transpose", "ba", {{2, 3}}, "ba->ab"},
      {"batched_matmul", "bij,bjk->bik", {{2, 2, 3}, {2, 3, 2}}, "bij,bjk->bik"},
      {"attention_scores", "bhqd,bhkd->bhqk", {{2, 2, 3, 4}, {2, 2, 5, 4}}, "bhqd,bhkd->bhqk"},
      {"diagonal", "ii->i", {{3, 3}}, "ii->i"},
      {"trace", "ii", {{3, 3}}, "ii->"},
      {"repeated_three", "iji->j", {{3, 2, 3}}, "iji->j"},
      {"transpose", "ij->ji", {{2, 3}}, "ij->ji"},
      {"sum_all", "ij->", {{2, 3}}, "ij->"},
      {"sum_rows", "ij->j", {{2, 3}}, "ij->j"},
      {"outer", "i,j->ij", {{3}, {4}}, "i,j->ij"},
      {"dot", "i,i->", {{5}, {5}}, "i,i->"},
      {"hadamard", "ij,ij->ij", {{2, 3}, {2, 3}}, "ij,ij->ij"},
      {"hadamard_sum", "ij,ij->", {{2, 3}, {2, 3}}, "ij,ij->"},
      {"uppercase", "Ab,bA->", {{2, 3}, {3, 2}}, "Ab,bA->"},
      {"three_operands", "ijk,ikl,lm->jm", {{2, 3, 2}, {2, 2, 3}, {3, 2}}, "ijk,ikl,lm->jm"},
      {"bilinear", "bn,anm,bm->ba", {{2, 3}, {4, 3, 2}, {2, 2}}, "bn,anm,bm->ba"},
      {"summed_only_in_one", "ij,kl->ik", {{2, 3}, {4, 2}}, "ij,kl->ik"},
      {"ellipsis_batch", "...ij,...jk->...ik", {{2, 2, 3}, {2, 3, 2}}, "bij,bjk->bik"},
      {"ellipsis_implicit", "...ij,...jk", {{2, 2, 3}, {2, 3, 2}}, "bij,bjk->bik"},
      {"ellipsis_transpose", "...ij->...ji", {{2, 3, 4}}, "bij->bji"},
      {"ellipsis_summed", "i...->i", {{2, 3, 4}}, "ijk->i"},
      {"spaces", " ij , jk -> ik ", {{2, 3}, {3, 4}}, "ij,jk->ik"},
  };
  return r;
}

std::vector<OpCase> einsum_cases() {
  std::vector<OpCase> cases;
  uint64_t seed = 1;
  for (const Row& row : rows()) {
    std::vector<Tensor> inputs;
    for (const Shape& s : row.shapes) inputs.push_back(R(s, -1, 1, seed++));
    const std::string equation = row.equation;
    OpCase c{row.name, [equation](const std::vector<Tensor>& in) { return einsum(equation, in); }, inputs,
             naive_einsum(row.reference, inputs), 1e-12};
    cases.push_back(c);
  }
  return with_gradgradcheck(cases);
}
EMBER_OP_SUITE(Einsum, einsum_cases);

TEST(Einsum, MatchesMatmulAndBroadcastsSizeOneDims) {
  const Tensor a = R({4, 5, 6}, -1, 1, 11), b = R({6, 3}, -1, 1, 12);
  EXPECT_TRUE(tensors_close(einsum("...ij,jk->...ik", {a, b}), matmul(a, b), 1e-12));
  // "...": an operand with fewer broadcast dims aligns on the right, as broadcasting does.
  EXPECT_TRUE(tensors_close(einsum("...ij,...jk->...ik", {a, b}), matmul(a, b), 1e-12));
  // A size-1 dim broadcasts against the same label's size elsewhere, in a product and in a sum.
  const Tensor row = R({1, 3}, -1, 1, 13), m = R({2, 3}, -1, 1, 14);
  EXPECT_TRUE(tensors_close(einsum("ij,ij->ij", {row, m}), row * m, 1e-12));
  EXPECT_TRUE(tensors_close(einsum("ij,ij->i", {row, m}), (row * m).sum({1}), 1e-12));
  EXPECT_TRUE(tensors_close(einsum("ij,ij->j", {row, m}), (row * m).sum({0}), 1e-12));
  // A 0-d operand has an empty term.
  const Tensor s = T({2.5}, {});
  EXPECT_TRUE(tensors_close(einsum(",i->i", {s, b.select(1, 0)}), b.select(1, 0) * 2.5, 1e-12));
  // float32 in, float32 out; empty dims give empty or zero results.
  EXPECT_EQ(einsum("ij,jk->ik", {a[0].to(kFloat32), b.to(kFloat32)}).dtype(), kFloat32);
  EXPECT_TRUE(tensors_close(einsum("ij,jk->ik", {zeros({2, 0}), zeros({0, 3})}), zeros({2, 3}), 0));
  EXPECT_EQ(einsum("ij,jk->ik", {zeros({0, 2}), zeros({2, 3})}).shape(), (Shape{0, 3}));
}

TEST(Einsum, Errors) {
  const Tensor m = zeros({2, 3}), v = zeros({3});
  EMBER_EXPECT_THROW_MSG(einsum("ij,jk->ik", {m}),
                         "einsum: 'ij,jk->ik' has 2 operand terms but 1 operands were given");
  EMBER_EXPECT_THROW_MSG(einsum("ijk->i", {m}), "operand 0 has 2 dims ([2,3]) but its subscripts name 3");
  EMBER_EXPECT_THROW_MSG(einsum("ij,jk->ik", {m, zeros({4, 2})}),
                         "subscript 'j' has size 3 in one operand and 4 in another");
  EMBER_EXPECT_THROW_MSG(einsum("ij->ii", {m}), "output subscript 'i' appears more than once");
  EMBER_EXPECT_THROW_MSG(einsum("ij->k", {m}), "output subscript 'k' does not appear in any operand");
  EMBER_EXPECT_THROW_MSG(einsum("i1->i", {m}), "invalid subscript '1'");
  EMBER_EXPECT_THROW_MSG(einsum("i.j->i", {m}), "a '.' must be part of an ellipsis");
  EMBER_EXPECT_THROW_MSG(einsum("......->", {m}), "more than one ellipsis");
  EMBER_EXPECT_THROW_MSG(einsum("ii->i", {m}),
                         "subscript 'i' is repeated in operand 0 for dims of sizes 2 and 3");
  EMBER_EXPECT_THROW_MSG(einsum("i", {}), "needs at least one operand");
  EMBER_EXPECT_THROW_MSG(einsum("i,i", {v, Tensor()}), "einsum");
}

TEST(Diagonal, ValuesOffsetsDimsAndView) {
  const Tensor x = arange(12, kFloat64).reshape({3, 4});
  EXPECT_TRUE(tensors_close(x.diagonal(), tensor<double>({0, 5, 10}, {3}), 0));
  EXPECT_TRUE(tensors_close(x.diagonal(1), tensor<double>({1, 6, 11}, {3}), 0));
  EXPECT_TRUE(tensors_close(x.diagonal(2), tensor<double>({2, 7}, {2}), 0));
  EXPECT_TRUE(tensors_close(x.diagonal(-1), tensor<double>({4, 9}, {2}), 0));
  EXPECT_EQ(x.diagonal(4).shape(), (Shape{0}));
  EXPECT_EQ(x.diagonal(-3).shape(), (Shape{0}));
  EXPECT_TRUE(tensors_close(x.diagonal(0, 1, 0), x.diagonal(), 0));
  // Of a 3-d tensor: the remaining dim first, the diagonal last.
  const Tensor y = arange(24, kFloat64).reshape({2, 3, 4});
  EXPECT_TRUE(tensors_close(y.diagonal(0, 0, 2), tensor<double>({0, 13, 4, 17, 8, 21}, {3, 2}), 0));
  // A view: writing through it changes the base.
  Tensor z = zeros({3, 3});
  z.diagonal().fill_(1.0);
  EXPECT_TRUE(tensors_close(z, eye(3), 0));
  EXPECT_TRUE(passes_gradcheck([](const std::vector<Tensor>& in) { return in[0].diagonal(-1, 2, 0); },
                               {R({3, 2, 4})}));
  EMBER_EXPECT_THROW_MSG(zeros({3}).diagonal(), "diagonal: needs at least 2 dims, got [3]");
  EMBER_EXPECT_THROW_MSG(x.diagonal(0, 1, -1), "diagonal: dim1 and dim2 are both 1");
}

}  // namespace
}  // namespace ember::testing
