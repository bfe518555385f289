// Factory functions: zeros/ones/full/arange/..., random tensors, and tensor(data, shape).
#include <cmath>
#include <mutex>

#include "core/philox.h"
#include "ember/random.h"
#include "ops/internal.h"
#include "ops/kernels/copy.h"
#include "ops/kernels/random.h"

namespace ember {

EMBER_DEFINE_STUB(random_stub, RandomFn);

namespace {
Tensor finish(Tensor t, const TensorOptions& o) {
  if (o.requires_grad()) t.requires_grad_(true);
  return t;
}
}  // namespace

template <class T>
Tensor tensor(const std::vector<T>& data, const Shape& shape, TensorOptions options) {
  check_shape_valid(shape, "tensor");
  if (static_cast<int64_t>(data.size()) != shape_numel(shape))
    fail("tensor: {} values given for shape {} ({} elements)", data.size(), shape_str(shape),
         shape_numel(shape));
  Tensor host = empty_tensor(shape, dtype_of<T>(), Device::cpu());
  if constexpr (std::is_same_v<T, bool>) {
    bool* p = host.data_ptr<bool>();
    for (size_t i = 0; i < data.size(); ++i) p[i] = data[i];
  } else if (!data.empty()) {
    std::memcpy(host.raw_data(), data.data(), data.size() * sizeof(T));
  }
  DType want = options.has_dtype() ? options.dtype() : dtype_of<T>();
  return finish(host.to(options.device(), want), options);
}
template <class T>
Tensor tensor(const std::vector<T>& data, TensorOptions options) {
  return tensor<T>(data, Shape{static_cast<int64_t>(data.size())}, options);
}
#define EMBER_INSTANTIATE(T)                                                     \
  template Tensor tensor<T>(const std::vector<T>&, const Shape&, TensorOptions); \
  template Tensor tensor<T>(const std::vector<T>&, TensorOptions);
EMBER_INSTANTIATE(float)
EMBER_INSTANTIATE(double)
EMBER_INSTANTIATE(int64_t)
EMBER_INSTANTIATE(int32_t)
EMBER_INSTANTIATE(uint8_t)
EMBER_INSTANTIATE(bool)
EMBER_INSTANTIATE(bfloat16)
#undef EMBER_INSTANTIATE

Tensor empty(const Shape& shape, TensorOptions o) {
  return finish(empty_tensor(shape, o.dtype(), o.device()), o);
}

Tensor full(const Shape& shape, double value, TensorOptions o) {
  Tensor t = empty_tensor(shape, o.dtype(), o.device());
  if (t.numel() > 0) fill_stub(t.device(), t, value);
  return finish(t, o);
}
Tensor zeros(const Shape& shape, TensorOptions o) { return full(shape, 0.0, o); }
Tensor ones(const Shape& shape, TensorOptions o) { return full(shape, 1.0, o); }
Tensor scalar_tensor(double value, TensorOptions o) { return full({}, value, o); }

Tensor arange(double end, TensorOptions o) { return arange(0, end, 1, o); }
Tensor arange(double start, double end, double step, TensorOptions o) {
  if (!std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    fail("arange: start, end and step must be finite, got {}, {}, {}", start, end, step);
  if (step == 0) fail("arange: step must be nonzero");
  const double count = std::ceil((end - start) / step);
  if (!(count >= 0)) fail("arange: range [{}, {}) is empty or reversed for step {}", start, end, step);
  if (count >= 0x1p53)  // beyond where consecutive doubles are exact counts (and any memory)
    fail("arange: [{}, {}) in steps of {} has too many elements ({})", start, end, step, count);
  int64_t n = static_cast<int64_t>(count);
  DType dt = o.has_dtype() ? o.dtype() : DType::int64;
  if (!o.has_dtype() && (start != std::floor(start) || end != std::floor(end) || step != std::floor(step)))
    dt = DType::float32;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i) * step;
  return finish(tensor<double>(v, {n}, TensorOptions(dt).device(o.device())), o);
}

Tensor linspace(double start, double end, int64_t steps, TensorOptions o) {
  if (steps < 0) fail("linspace: number of steps must be non-negative, got {}", steps);
  std::vector<double> v(steps);
  for (int64_t i = 0; i < steps; ++i)
    v[i] =
        steps == 1 ? start : start + (end - start) * static_cast<double>(i) / static_cast<double>(steps - 1);
  return finish(tensor<double>(v, {steps}, TensorOptions(o.dtype()).device(o.device())), o);
}

Tensor eye(int64_t n, TensorOptions o) { return eye(n, n, o); }
Tensor eye(int64_t n, int64_t m, TensorOptions o) {
  if (n < 0 || m < 0) fail("eye: sizes must be non-negative, got {} x {}", n, m);
  std::vector<double> v(n * m, 0.0);
  for (int64_t i = 0; i < std::min(n, m); ++i) v[i * m + i] = 1.0;
  return finish(tensor<double>(v, {n, m}, TensorOptions(o.dtype()).device(o.device())), o);
}

// ---- random ----
namespace {
std::mutex g_rng_mutex;
GeneratorState g_rng{0x853c49e6748fea9bULL, 0};
}  // namespace

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  g_rng = GeneratorState{seed, 0};
}
uint64_t initial_seed() {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  return g_rng.seed;
}
GeneratorState get_rng_state() {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  return g_rng;
}
void set_rng_state(const GeneratorState& s) {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  g_rng = s;
}
uint64_t reserve_random_offset(int64_t numel, uint64_t* seed) {
  std::lock_guard<std::mutex> lock(g_rng_mutex);
  uint64_t start = g_rng.offset;
  g_rng.offset += static_cast<uint64_t>(numel);  // one Philox block per element: simple and ample
  *seed = g_rng.seed;
  return start;
}

namespace {
Tensor random_tensor(RandomDist dist, const Shape& shape, double a, double b, TensorOptions o,
                     const char* op) {
  check_shape_valid(shape, op);
  if (!is_floating(o.dtype())) fail("{}: expected a floating dtype, got {}", op, o.dtype());
  if (o.dtype() == DType::bfloat16) {  // drawn in float32 and rounded, with the same stream of numbers
    Tensor f = random_tensor(dist, shape, a, b, TensorOptions(DType::float32).device(o.device()), op);
    return finish(cast_raw(f, DType::bfloat16), o);
  }
  Tensor t = empty_tensor(shape, o.dtype(), o.device());
  if (t.numel() > 0) {
    uint64_t seed;
    uint64_t offset = reserve_random_offset(t.numel(), &seed);
    random_stub(t.device(), dist, t, a, b, seed, offset);
  }
  return finish(t, o);
}
}  // namespace

Tensor rand(const Shape& shape, TensorOptions o) {
  return random_tensor(RandomDist::uniform, shape, 0, 1, o, "rand");
}
Tensor randn(const Shape& shape, TensorOptions o) {
  return random_tensor(RandomDist::normal, shape, 0, 1, o, "randn");
}
Tensor bernoulli(const Shape& shape, double p, TensorOptions o) {
  if (!(p >= 0 && p <= 1)) fail("bernoulli: p must be in [0, 1], got {}", p);
  return random_tensor(RandomDist::bernoulli, shape, p, 0, o, "bernoulli");
}
Tensor bernoulli(const Tensor& probs) {
  check_defined("bernoulli", probs);
  NoGradGuard g;
  if (probs.numel() > 0) {
    const double lo = probs.min().item<double>(), hi = probs.max().item<double>();
    if (!(lo >= 0 && hi <= 1))
      fail("bernoulli: probabilities must be in [0, 1], got values in [{}, {}]", lo, hi);
  }
  Tensor u =
      rand(probs.shape(),
           TensorOptions(probs.is_floating_point() ? probs.dtype() : DType::float32).device(probs.device()));
  return (u < probs).to(probs.is_floating_point() ? probs.dtype() : DType::float32);
}
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions o) {
  if (high <= low) fail("randint: high ({}) must be greater than low ({})", high, low);
  NoGradGuard g;
  // u * range lies in [0, range), where truncation toward zero is floor
  Tensor u = rand(shape, TensorOptions(DType::float64).device(o.device()));
  Tensor r = (u * static_cast<double>(high - low)).to(DType::int64) + static_cast<double>(low);
  return r.to(o.has_dtype() ? o.dtype() : DType::int64);
}
Tensor randperm(int64_t n, TensorOptions o) {
  if (n < 0) fail("randperm: n must be non-negative, got {}", n);
  Tensor keys = rand({n}, TensorOptions(DType::float64));
  auto [values, idx] = sort(keys, 0);
  return idx.to(o.device(), o.has_dtype() ? o.dtype() : DType::int64);
}

Tensor empty_like(const Tensor& t, std::optional<TensorOptions> o) {
  return empty(t.shape(), o.value_or(t.options()));
}
Tensor zeros_like(const Tensor& t, std::optional<TensorOptions> o) {
  return zeros(t.shape(), o.value_or(t.options()));
}
Tensor ones_like(const Tensor& t, std::optional<TensorOptions> o) {
  return ones(t.shape(), o.value_or(t.options()));
}
Tensor full_like(const Tensor& t, double v, std::optional<TensorOptions> o) {
  return full(t.shape(), v, o.value_or(t.options()));
}
Tensor rand_like(const Tensor& t, std::optional<TensorOptions> o) {
  return rand(t.shape(), o.value_or(t.options()));
}
Tensor randn_like(const Tensor& t, std::optional<TensorOptions> o) {
  return randn(t.shape(), o.value_or(t.options()));
}

}  // namespace ember
