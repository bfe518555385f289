#pragma once
// Free-function operators. Each records itself on the autograd graph when an input requires
// grad; its backward lives next to its forward in ops/*.cpp.
#include <array>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/tensor.h"

namespace ember {

// ---- arithmetic (NumPy broadcasting; dtypes promote) ----
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor& operator+=(Tensor& a, const Tensor& b);
Tensor& operator-=(Tensor& a, const Tensor& b);
Tensor& operator*=(Tensor& a, const Tensor& b);
Tensor& operator/=(Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, double b);
Tensor& operator-=(Tensor& a, double b);
Tensor& operator*=(Tensor& a, double b);
Tensor& operator/=(Tensor& a, double b);

// ---- comparisons and logic (return bool tensors) ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
Tensor operator&&(const Tensor& a, const Tensor& b);
Tensor operator||(const Tensor& a, const Tensor& b);
Tensor operator!(const Tensor& a);
Tensor isnan(const Tensor& a);
Tensor isinf(const Tensor& a);
Tensor isfinite(const Tensor& a);
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
bool equal(const Tensor& a, const Tensor& b);

// ---- unary math ----
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor neg(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tan(const Tensor& x);
Tensor asin(const Tensor& x);
Tensor acos(const Tensor& x);
Tensor atan(const Tensor& x);
Tensor sinh(const Tensor& x);
Tensor cosh(const Tensor& x);
Tensor asinh(const Tensor& x);
Tensor acosh(const Tensor& x);
Tensor atanh(const Tensor& x);
Tensor exp2(const Tensor& x);
Tensor log2(const Tensor& x);
Tensor log10(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor erfc(const Tensor& x);
Tensor erfinv(const Tensor& x);  // NaN outside [-1, 1], +-inf at +-1
Tensor sinc(const Tensor& x);    // sin(pi x) / (pi x), 1 at 0
// Rounding, on any numeric dtype (integers unchanged; bool rejected), with derivative 0 as in
// PyTorch. round is half to even (round(2.5) = 2), as torch.round.
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);
Tensor trunc(const Tensor& x);
Tensor frac(const Tensor& x);  // x - trunc(x), derivative 1; floating x only (as in PyTorch)
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor logsigmoid(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approx = false);
Tensor leaky_relu(const Tensor& x, double slope = 0.01);
// Composite activations (ops/activations.cpp), differentiable to any order, as torch.nn.functional's:
Tensor softplus(const Tensor& x, double beta, double threshold = 20.0);         // x where beta x > threshold
Tensor elu(const Tensor& x, double alpha = 1.0);                                // x > 0 ? x : alpha (e^x - 1)
Tensor mish(const Tensor& x);                                                   // x tanh(softplus(x))
Tensor hardtanh(const Tensor& x, double min_val = -1.0, double max_val = 1.0);  // slope 0 at the ends
Tensor relu6(const Tensor& x);                                                  // min(max(x, 0), 6)
Tensor selu(const Tensor& x);  // scale * elu(x, alpha), the self-normalising constants of Klambauer et al.
Tensor celu(const Tensor& x, double alpha = 1.0);  // max(0,x) + min(0, alpha (e^(x/alpha) - 1))
Tensor hardsigmoid(const Tensor& x);               // relu6(x + 3) / 6
Tensor hardswish(const Tensor& x);                 // x relu6(x + 3) / 6
Tensor softsign(const Tensor& x);                  // x / (1 + |x|)
// The gated linear unit: x split in two halves a, b along dim (of even size), a * sigmoid(b).
Tensor glu(const Tensor& x, int64_t dim = -1);
// max(0, x) + weight * min(0, x); weight holds one slope, or one per channel (dim 1 of x; dim 0 when
// x is 1-D).
Tensor prelu(const Tensor& x, const Tensor& weight);
Tensor pow(const Tensor& x, double exponent);
Tensor pow(const Tensor& x, const Tensor& exponent);
Tensor pow(double base, const Tensor& exponent);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_min(const Tensor& x, double lo);
Tensor clamp_max(const Tensor& x, double hi);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
// C's fmod (the result has the sign of a) and Python's % (the sign of b), broadcast and promoted like
// arithmetic: integers stay integers, where a zero divisor throws (PyTorch's ZeroDivisionError).
Tensor fmod(const Tensor& a, const Tensor& b);
Tensor fmod(const Tensor& a, double b);
Tensor remainder(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, double b);
Tensor atan2(const Tensor& a, const Tensor& b);      // the angle of (b, a); integers promote to float32
Tensor hypot(const Tensor& a, const Tensor& b);      // sqrt(a^2 + b^2) without overflow; floating only
Tensor logaddexp(const Tensor& a, const Tensor& b);  // log(e^a + e^b), stable; floating only
Tensor xlogy(const Tensor& x, const Tensor& y);      // x log(y), 0 where x == 0 (unless y is NaN)
// start + weight (end - start); start, end and a weight tensor must share one floating dtype.
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight);
Tensor lerp(const Tensor& start, const Tensor& end, double weight);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- reductions ----
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor prod(const Tensor& x);
Tensor prod(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim = false);
// {values, int64 indices}; ties give the first index, NaN wins (as in PyTorch).
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);
// dims empty = all dims; divides by max(0, N - correction).
Tensor var(const Tensor& x, const Shape& dims, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Shape& dims, int64_t correction = 1, bool keepdim = false);
// p > 0, 0 (count of nonzeros), inf (max |x|) or -inf (min |x|); the one-argument form reduces all dims.
Tensor norm(const Tensor& x, double p = 2.0);
Tensor norm(const Tensor& x, double p, const Shape& dims, bool keepdim = false);
// torch.nn.functional.normalize: x / max(norm(x, p) along dim, eps), the norm broadcast back.
Tensor normalize(const Tensor& x, double p = 2.0, int64_t dim = 1, double eps = 1e-12);
Tensor cumsum(const Tensor& x, int64_t dim);
Tensor cumprod(const Tensor& x, int64_t dim);  // integers and bools give int64, as in PyTorch
Tensor logcumsumexp(const Tensor& x, int64_t dim);
// A lane of all -inf has no softmax: its outputs are NaN (as in PyTorch).
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- linear algebra ----
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});  // x W^T + b
// Einstein summation over the operands, as torch.einsum: "ij,jk->ik" (matmul), "bij,bjk->bik",
// "ii->i" (diagonal), "ii" (trace), "i,j->ij" (outer), "...ij->...ji". Subscripts are letters;
// "..." stands for broadcast dims; without "->" the output holds the letters that appear exactly
// once, in alphabetical order, after the "..." dims. Size-1 dims broadcast. Differentiable.
Tensor einsum(std::string_view equation, const std::vector<Tensor>& operands);

// ---- indexing and joining ----
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
Tensor one_hot(const Tensor& indices, int64_t num_classes);
// torch.nn.functional.pad: `pad` holds (before, after) pairs from the last dim backwards
// ({left, right, top, bottom, ...}). constant fills with `value` (negative pads crop); reflect
// mirrors about the edge without repeating it (pads < the dim); replicate repeats the edge;
// circular wraps around (pads <= the dim).
enum class PadMode { constant, reflect, replicate, circular };
Tensor pad(const Tensor& x, const std::vector<int64_t>& pad, PadMode mode = PadMode::constant,
           double value = 0.0);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
// The slices x.select(dim, i), i = 0 .. size(dim) - 1: views, with one backward for all of them
// (the slices' gradients stacked), not one full-size zero tensor per slice.
std::vector<Tensor> unbind(const Tensor& x, int64_t dim = 0);
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);  // stable
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
// The elements of x where the (broadcast) bool mask is true, as a 1-D tensor in row-major order.
Tensor masked_select(const Tensor& x, const Tensor& mask);
// The indices of the nonzero elements of x: int64 of shape [count, x.dim()], in row-major order.
Tensor nonzero(const Tensor& x);
// The distinct values of x in ascending order (1-D), the index into them of every element of x
// (int64, x's shape) and how often each occurs (int64): torch.unique(x, sorted=True,
// return_inverse=True, return_counts=True). Each NaN is a value of its own (NumPy's
// equal_nan=False). Not differentiable.
struct Unique {
  Tensor values, inverse, counts;
};
Unique unique(const Tensor& x);

// ---- rearranging (copies, like PyTorch's) ----
Tensor flip(const Tensor& x, const Shape& dims);
// Rolls each dims[i] by shifts[i]; with dims empty, rolls the flattened tensor (shifts has one entry).
Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims = {});
// Tiles x repeats[i] times along dim i; repeats may have more entries than x has dims (leading ones added).
Tensor repeat(const Tensor& x, const Shape& repeats);
// The lower (upper) triangle of the last two dims: elements with col - row <= diagonal (>= diagonal); the
// rest 0.
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);

// ---- convolution, pooling, dropout ----
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b = {}, std::array<int64_t, 2> stride = {1, 1},
              std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
              int64_t groups = 1);
// Transposed convolution (the adjoint of conv2d in its input), as torch.nn.functional.conv_transpose2d:
// x [N, C_in, H, W] (or unbatched [C_in, H, W]), w [C_in, C_out/groups, kH, kW], b [C_out]. Output size
// per spatial dim: (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1, with
// output_padding smaller than the stride or the dilation.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b = {},
                        std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
                        std::array<int64_t, 2> output_padding = {0, 0}, int64_t groups = 1,
                        std::array<int64_t, 2> dilation = {1, 1});
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride = {0, 0},
                  std::array<int64_t, 2> padding = {0, 0});
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride = {0, 0},
                  std::array<int64_t, 2> padding = {0, 0});
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);
// The 1-D forms over [N, C, L] (or unbatched [C, L]), as torch.nn.functional's: the 2-D ops on a
// height-1 image (ops/conv_pool_1d.cpp), so they share its kernels on every backend and its
// derivatives to any order. w is [C_out, C_in/groups, k] for conv1d, [C_in, C_out/groups, k] for
// conv_transpose1d.
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b = {}, int64_t stride = 1, int64_t padding = 0,
              int64_t dilation = 1, int64_t groups = 1);
Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b = {}, int64_t stride = 1,
                        int64_t padding = 0, int64_t output_padding = 0, int64_t groups = 1,
                        int64_t dilation = 1);
// (A pool's stride 0 means the kernel size.)
Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0);
Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t padding = 0);
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size);
// Rearranges [*, C r^2, H, W] into [*, C, H r, W r] (sub-pixel convolution, Shi et al. 2016), and back.
Tensor pixel_shuffle(const Tensor& x, int64_t upscale_factor);
Tensor pixel_unshuffle(const Tensor& x, int64_t downscale_factor);
Tensor dropout(const Tensor& x, double p, bool training);
// Channel dropout of x [N, C, *] (at least 2-D): zeroes each (n, c) slice as a whole with
// probability p and scales the rest by 1 / (1 - p); torch.nn.functional.dropout1d/2d/3d on batched
// input (the modules Dropout1d/2d/3d also take unbatched input).
Tensor feature_dropout(const Tensor& x, double p, bool training);

// ---- distances (ops/distance.cpp) ----
// torch.nn.functional.cosine_similarity: sum(a b) / (max(|a|, eps) max(|b|, eps)) along dim, a and b
// broadcast to one shape.
Tensor cosine_similarity(const Tensor& a, const Tensor& b, int64_t dim = 1, double eps = 1e-8);
// torch.nn.functional.pairwise_distance: the p-norm of a - b + eps along the last dim.
Tensor pairwise_distance(const Tensor& a, const Tensor& b, double p = 2.0, double eps = 1e-6,
                         bool keepdim = false);

}  // namespace ember
