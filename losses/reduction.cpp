#include "ember/losses/reduction.h"

#include "ember/ops.h"

namespace ember::losses {

Tensor reduce_loss(const Tensor& per_element, Reduction reduction) {
  switch (reduction) {
    case Reduction::none:
      return per_element;
    case Reduction::sum:
      return per_element.sum();
    case Reduction::mean:
      return per_element.mean();  // NaN for no elements, as in PyTorch
  }
  fail("reduce_loss: unknown reduction {}", static_cast<int>(reduction));
}

}  // namespace ember::losses
