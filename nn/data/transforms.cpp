#include "ember/data/transforms.h"

#include <cstring>

#include "ember/error.h"
#include "ops/bf16_compute.h"

namespace ember::data {
namespace {

// Transforms run on the loader's thread over small CPU tensors: plain loops over contiguous data.
Tensor contiguous_cpu(const Tensor& x, const char* op) {
  if (!x.defined()) fail("{}: the input tensor is undefined", op);
  if (!x.device().is_cpu()) fail("{}: expected a CPU tensor, got one on {}", op, x.device().str());
  return x.is_contiguous() ? x : x.contiguous();
}

void check_image(const Tensor& x, const char* op) {
  if (x.dim() < 2)
    fail("{}: expected a tensor [..., H, W] of at least 2 dimensions, got {}", op, shape_str(x.shape()));
}

// Product of the sizes of dimensions [0, end) (computed, not divided out, so empty tensors are safe).
int64_t leading_numel(const Tensor& x, int64_t end) {
  int64_t n = 1;
  for (int64_t d = 0; d < end; ++d) n *= x.size(d);
  return n;
}

}  // namespace

Tensor Transform::operator()(const Tensor& x) const {
  RandomStream rng = RandomStream::from_global_generator();
  return apply(x, rng);
}

// ---- Normalize ----

Normalize::Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)) {
  if (mean_.empty() || mean_.size() != std.size())
    fail("Normalize: mean and std need the same positive number of values, got {} and {}", mean_.size(),
         std.size());
  for (size_t c = 0; c < std.size(); ++c) {
    if (!(std[c] != 0.0)) fail("Normalize: std[{}] is {}; every std must be non-zero", c, std[c]);
  }
  std_ = std::move(std);
}

Tensor Normalize::apply(const Tensor& input, RandomStream& rng) const {
  Tensor x = contiguous_cpu(input, "Normalize");
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return apply(f, rng); }, x);
  const int64_t channels = static_cast<int64_t>(mean_.size());
  int64_t inner = x.numel();  // elements per channel block
  int64_t outer = 1;          // blocks of `channels` channels
  if (channels > 1) {
    if (x.dim() < 3 || x.size(-3) != channels)
      fail("Normalize: {} channel means need a tensor [..., {}, H, W], got {}", channels, channels,
           shape_str(x.shape()));
    inner = x.size(-2) * x.size(-1);
    outer = leading_numel(x, x.dim() - 3);
  }
  Tensor out = empty(x.shape(), TensorOptions(x.dtype()));
  dispatch_floating(x.dtype(), "Normalize", [&]<class T>() {
    const T* src = x.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < channels; ++c) {
        // Divide, as torchvision does (tensor.sub_(mean).div_(std) in the input's dtype): multiplying
        // by a rounded 1 / std instead is off by one ulp for about a third of the values.
        const T m = static_cast<T>(mean_[c]), s = static_cast<T>(std_[c]);
        const int64_t base = (o * channels + c) * inner;
        for (int64_t i = 0; i < inner; ++i) dst[base + i] = (src[base + i] - m) / s;
      }
  });
  return out;
}

// ---- RandomCrop ----

RandomCrop::RandomCrop(std::array<int64_t, 2> size, int64_t padding) : size_(size), padding_(padding) {
  if (size[0] <= 0 || size[1] <= 0) fail("RandomCrop: size must be positive, got [{}, {}]", size[0], size[1]);
  if (padding < 0) fail("RandomCrop: padding must be non-negative, got {}", padding);
}

Tensor RandomCrop::apply(const Tensor& input, RandomStream& rng) const {
  Tensor x = contiguous_cpu(input, "RandomCrop");
  check_image(x, "RandomCrop");
  const int64_t H = x.size(-2), W = x.size(-1), h = size_[0], w = size_[1], pad = padding_;
  if (h > H + 2 * pad || w > W + 2 * pad)
    fail("RandomCrop: a {} x {} crop does not fit a {} x {} image padded by {}", h, w, H, W, pad);
  // Window origin in padded coordinates; padded (r, c) is input (r - pad, c - pad).
  const int64_t top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(H + 2 * pad - h + 1)));
  const int64_t left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(W + 2 * pad - w + 1)));

  Shape shape = x.shape();
  shape[shape.size() - 2] = h;
  shape[shape.size() - 1] = w;
  Tensor out = zeros(shape, TensorOptions(x.dtype()));
  const size_t es = element_size(x.dtype());
  const int64_t planes = leading_numel(x, x.dim() - 2);
  // Output columns [x0, x1) come from the image; the rest stay zero (padding).
  const int64_t x0 = std::max<int64_t>(0, pad - left), x1 = std::min<int64_t>(w, W + pad - left);
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < h; ++r) {
      const int64_t sr = top + r - pad;
      if (sr < 0 || sr >= H || x0 >= x1) continue;
      const int64_t sc = left + x0 - pad;
      std::memcpy(dst + ((p * h + r) * w + x0) * es, src + ((p * H + sr) * W + sc) * es,
                  static_cast<size_t>(x1 - x0) * es);
    }
  return out;
}

// ---- RandomHorizontalFlip ----

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  if (!(p >= 0.0 && p <= 1.0)) fail("RandomHorizontalFlip: p must be in [0, 1], got {}", p);
}

namespace {
template <class Word>
void mirror_rows(const Word* src, Word* dst, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < width; ++c) dst[r * width + c] = src[r * width + (width - 1 - c)];
}
}  // namespace

Tensor RandomHorizontalFlip::apply(const Tensor& input, RandomStream& rng) const {
  Tensor x = contiguous_cpu(input, "RandomHorizontalFlip");
  check_image(x, "RandomHorizontalFlip");
  if (!(rng.uniform() < p_)) return x;
  Tensor out = empty(x.shape(), TensorOptions(x.dtype()));
  const int64_t width = x.size(-1), rows = leading_numel(x, x.dim() - 1);
  // Mirroring only moves whole elements, so an unsigned word of the element's size does for any dtype.
  switch (element_size(x.dtype())) {
    case 1:
      mirror_rows(static_cast<const uint8_t*>(x.raw_data()), static_cast<uint8_t*>(out.raw_data()), rows,
                  width);
      break;
    case 2:
      mirror_rows(static_cast<const uint16_t*>(x.raw_data()), static_cast<uint16_t*>(out.raw_data()), rows,
                  width);
      break;
    case 4:
      mirror_rows(static_cast<const uint32_t*>(x.raw_data()), static_cast<uint32_t*>(out.raw_data()), rows,
                  width);
      break;
    case 8:
      mirror_rows(static_cast<const uint64_t*>(x.raw_data()), static_cast<uint64_t*>(out.raw_data()), rows,
                  width);
      break;
    default:
      fail("RandomHorizontalFlip: unsupported element size {} ({})", element_size(x.dtype()), x.dtype());
  }
  return out;
}

// ---- Compose ----

Compose::Compose(std::vector<std::shared_ptr<const Transform>> transforms)
    : transforms_(std::move(transforms)) {
  for (size_t i = 0; i < transforms_.size(); ++i)
    if (!transforms_[i]) fail("Compose: transform {} is null", i);
}

Tensor Compose::apply(const Tensor& x, RandomStream& rng) const {
  Tensor y = x;
  for (const auto& t : transforms_) y = t->apply(y, rng);
  return y;
}

}  // namespace ember::data
