// Printing, PyTorch style: values with a shared format, abbreviated with "..." when large.
#include <cmath>
#include <ostream>
#include <sstream>

#include "core/tensor_impl.h"
#include "ember/ops.h"

namespace ember {
namespace {

constexpr int64_t kSummarizeAbove = 1000;
constexpr int64_t kEdgeItems = 3;

struct Printer {
  std::vector<double> values;  // of the contiguous float64 copy
  Shape shape;
  Shape strides;
  bool floating;
  bool summarize;
  int precision = 4;
  bool scientific = false;
  size_t width = 1;

  std::string fmt_value(double v) const {
    if (!floating) return fmt::format("{}", static_cast<int64_t>(v));
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return scientific ? fmt::format("{:.{}e}", v, precision) : fmt::format("{:.{}f}", v, precision);
  }

  void rec(std::string& out, int64_t dim, int64_t offset, int indent) const {
    if (dim == static_cast<int64_t>(shape.size())) {
      std::string s = fmt_value(values[offset]);
      out += std::string(width > s.size() ? width - s.size() : 0, ' ') + s;
      return;
    }
    out += '[';
    int64_t n = shape[dim];
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
        out += dim + 1 == static_cast<int64_t>(shape.size()) ? "..., " : "...,\n" + std::string(indent + 1, ' ');
        i = n - kEdgeItems;
      }
      rec(out, dim + 1, offset + i * strides[dim], indent + 1);
      if (i + 1 < n) {
        if (dim + 1 == static_cast<int64_t>(shape.size())) {
          out += ", ";
        } else {
          out += ',';
          out += std::string(shape.size() - dim - 1, '\n');
          out += std::string(indent + 1, ' ');
        }
      }
    }
    out += ']';
  }
};

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "[ undefined tensor ]";
  Tensor c = detach().to(Device::cpu(), DType::float64).contiguous();
  Printer p;
  p.values = c.to_vector<double>();
  p.shape = shape();
  p.strides = contiguous_strides(shape());
  p.floating = is_floating_point();
  p.summarize = numel() > kSummarizeAbove;
  double maxabs = 0, minabs = INFINITY;
  for (double v : p.values)
    if (std::isfinite(v)) {
      maxabs = std::max(maxabs, std::abs(v));
      if (v != 0) minabs = std::min(minabs, std::abs(v));
    }
  p.scientific = p.floating && (maxabs >= 1e8 || (minabs < 1e-4 && minabs != INFINITY));
  for (double v : p.values) p.width = std::max(p.width, p.fmt_value(v).size());
  std::string out = "tensor(";
  p.rec(out, 0, 0, 7);
  out += fmt::format(", shape={}, dtype={}", shape_str(shape()), dtype());
  if (!device().is_cpu()) out += fmt::format(", device={}", device());
  if (grad_fn()) out += fmt::format(", grad_fn=<{}>", grad_fn()->name());
  else if (requires_grad()) out += ", requires_grad=true";
  out += ')';
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ember
