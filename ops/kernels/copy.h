#pragma once
// Kernels that move or set data. Contract: dst and src have the same shape (src may be an
// expanded view with zero strides) and live on the same device; dtypes may differ (a cast).
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {
using FillFn = void (*)(const Tensor& out, double value);
using CopyFn = void (*)(const Tensor& dst, const Tensor& src);
EMBER_DECLARE_STUB(fill_stub, FillFn);
EMBER_DECLARE_STUB(copy_stub, CopyFn);
// Between devices; both contiguous with the same dtype and numel. Provided by the CUDA backend.
EMBER_DECLARE_STUB(device_transfer_stub, CopyFn);
}  // namespace ember
