#include "ember/autograd.h"
#include "ember/data/dataloader.h"
#include "ember/error.h"
#include "ember/losses/standard.h"
#include "ember/nn/module.h"
#include "ember/train.h"
#include "ops/bf16_compute.h"

namespace ember::train {

int64_t count_correct(const Tensor& logits_in, const Tensor& targets_in, int64_t k) {
  if (!logits_in.defined() || !targets_in.defined())
    fail("count_correct: logits and targets must be defined");
  if (logits_in.dim() != 2)
    fail("count_correct: expected logits [N, C], got {}", shape_str(logits_in.shape()));
  if (!is_integral(targets_in.dtype()))
    fail("count_correct: targets must be integer class indices, got {}", targets_in.dtype());
  const int64_t n = logits_in.size(0), classes = logits_in.size(1);
  if (targets_in.dim() != 1 || targets_in.size(0) != n)
    fail("count_correct: logits {} need targets [{}], got {}", shape_str(logits_in.shape()), n,
         shape_str(targets_in.shape()));
  if (k < 1 || k > classes)
    fail("count_correct: k must be in [1, {}] for {} classes, got {}", classes, classes, k);
  // bf16 scores widen to float32 exactly, so ranks and ties are unchanged.
  const Tensor logits = bf16_upcast(logits_in.cpu()).contiguous();
  const Tensor targets = targets_in.cpu().to(DType::int64).contiguous();
  const int64_t* t = targets.data_ptr<int64_t>();
  return dispatch_floating(logits.dtype(), "count_correct", [&]<class T>() {
    const T* l = logits.data_ptr<T>();
    int64_t correct = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (t[i] < 0 || t[i] >= classes)
        fail("count_correct: target {} of row {} is out of range [0, {})", t[i], i, classes);
      const T* row = l + i * classes;
      const T target = row[t[i]];
      if (target != target) continue;  // a NaN score is never a correct prediction
      // The target's rank: classes that beat it, counting ties before it as beating it (as argmax does).
      int64_t rank = 0;
      for (int64_t c = 0; c < classes && rank < k; ++c)
        rank += row[c] > target || (c < t[i] && row[c] == target);
      correct += rank < k;
    }
    return correct;
  });
}

double accuracy(const Tensor& logits, const Tensor& targets) { return topk_accuracy(logits, targets, 1); }

double topk_accuracy(const Tensor& logits, const Tensor& targets, int64_t k) {
  const int64_t correct = count_correct(logits, targets, k);
  const int64_t n = logits.size(0);
  return n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

Evaluation evaluate_classifier(nn::Module& model, data::DataLoader& loader) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  losses::CrossEntropyOptions sum;
  sum.reduction = losses::Reduction::sum;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  for (data::Batch& batch : loader) {
    Tensor logits = model.forward(batch.data);
    loss_sum += losses::cross_entropy(logits, batch.target, sum).item<double>();
    correct += count_correct(logits, batch.target);
    seen += batch.size();
  }
  model.train(was_training);
  if (seen == 0) fail("evaluate_classifier: the loader gave no examples");
  return {loss_sum / static_cast<double>(seen), static_cast<double>(correct) / static_cast<double>(seen)};
}

}  // namespace ember::train
