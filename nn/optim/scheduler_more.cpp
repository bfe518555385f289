// More learning-rate schedulers: LambdaLR, MultiplicativeLR, ConstantLR, PolynomialLR and
// CyclicLR (see scheduler.h; the cosine ones are in scheduler.cpp).
#include <algorithm>
#include <cmath>

#include "ember/optim/scheduler.h"

namespace ember::optim {

// ---- LambdaLR, MultiplicativeLR ----

namespace {
using Lambda = std::function<double(int64_t)>;

// One function per parameter group, none empty.
std::vector<Lambda> checked_lambdas(const char* who, const Optimizer& optimizer,
                                    std::vector<Lambda> lambdas) {
  if (lambdas.size() != optimizer.num_param_groups())
    fail("{}: expected {} lr_lambdas (one per parameter group), got {}", who, optimizer.num_param_groups(),
         lambdas.size());
  for (size_t i = 0; i < lambdas.size(); ++i)
    if (!lambdas[i]) fail("{}: lr_lambda {} is empty", who, i);
  return lambdas;
}
}  // namespace

LambdaLR::LambdaLR(Optimizer& optimizer, Lambda lr_lambda)
    : LambdaLR(optimizer, std::vector<Lambda>(optimizer.num_param_groups(), std::move(lr_lambda))) {}
LambdaLR::LambdaLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas)
    : LRScheduler(optimizer), lambdas_(checked_lambdas("LambdaLR", optimizer, std::move(lr_lambdas))) {
  initial_step();
}
double LambdaLR::lr_at(size_t g, int64_t epoch) const { return base_lrs_[g] * lambdas_[g](epoch); }

MultiplicativeLR::MultiplicativeLR(Optimizer& optimizer, Lambda lr_lambda)
    : MultiplicativeLR(optimizer, std::vector<Lambda>(optimizer.num_param_groups(), std::move(lr_lambda))) {}
MultiplicativeLR::MultiplicativeLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas)
    : LRScheduler(optimizer),
      lambdas_(checked_lambdas("MultiplicativeLR", optimizer, std::move(lr_lambdas))),
      products_(lambdas_.size()) {
  initial_step();
}
double MultiplicativeLR::lr_at(size_t g, int64_t epoch) const {
  // Continue the kept product when it is for this base and not past `epoch`, else start over.
  Product& p = products_[g];
  if (p.epoch < 0 || p.epoch > epoch || p.base != base_lrs_[g]) p = {base_lrs_[g], base_lrs_[g], 0};
  while (p.epoch < epoch) {
    p.lr *= lambdas_[g](p.epoch + 1);  // (a throwing function leaves the product consistent)
    ++p.epoch;
  }
  return p.lr;
}

// ---- ConstantLR, PolynomialLR ----

ConstantLR::ConstantLR(Optimizer& optimizer, double factor, int64_t total_iters)
    : LRScheduler(optimizer), factor_(factor), total_(total_iters) {
  if (!(factor >= 0 && factor <= 1)) fail("ConstantLR: factor must be in [0, 1], got {}", factor);
  if (total_iters <= 0) fail("ConstantLR: total_iters must be positive, got {}", total_iters);
  initial_step();
}
double ConstantLR::lr_at(size_t g, int64_t epoch) const {
  return base_lrs_[g] * (epoch < total_ ? factor_ : 1.0);
}

PolynomialLR::PolynomialLR(Optimizer& optimizer, int64_t total_iters, double power)
    : LRScheduler(optimizer), total_(total_iters), power_(power) {
  if (total_iters <= 0) fail("PolynomialLR: total_iters must be positive, got {}", total_iters);
  if (!(power >= 0)) fail("PolynomialLR: power must be >= 0, got {}", power);
  initial_step();
}
double PolynomialLR::lr_at(size_t g, int64_t epoch) const {
  const double done = static_cast<double>(std::min(epoch, total_)) / static_cast<double>(total_);
  return base_lrs_[g] * std::pow(1.0 - done, power_);
}

// ---- CyclicLR ----

CyclicLR::CyclicLR(Optimizer& optimizer, double base_lr, double max_lr, int64_t step_size_up,
                   std::optional<int64_t> step_size_down, CyclicMode mode, double gamma, bool cycle_momentum,
                   double base_momentum, double max_momentum)
    : LRScheduler(optimizer),
      base_lr_(base_lr),
      max_lr_(max_lr),
      mode_(mode),
      gamma_(gamma),
      cycle_momentum_(cycle_momentum),
      base_momentum_(base_momentum),
      max_momentum_(max_momentum) {
  const int64_t down = step_size_down.value_or(step_size_up);
  if (step_size_up <= 0) fail("CyclicLR: step_size_up must be positive, got {}", step_size_up);
  if (down < 0) fail("CyclicLR: step_size_down must be >= 0, got {}", down);
  if (!(base_lr >= 0 && max_lr >= 0))
    fail("CyclicLR: base_lr ({}) and max_lr ({}) must be >= 0", base_lr, max_lr);
  total_size_ = static_cast<double>(step_size_up) + static_cast<double>(down);
  step_ratio_ = static_cast<double>(step_size_up) / total_size_;
  base_lrs_.assign(optimizer.num_param_groups(), base_lr);
  initial_step();
}

std::pair<double, double> CyclicLR::position(int64_t epoch) const {
  // PyTorch's arithmetic, in its order.
  const double e = static_cast<double>(epoch);
  const double cycle = std::floor(1.0 + e / total_size_);
  const double x = 1.0 + e / total_size_ - cycle;
  const double h = x <= step_ratio_ ? x / step_ratio_ : (x - 1.0) / (step_ratio_ - 1.0);
  switch (mode_) {
    case CyclicMode::triangular2:
      return {h, 1.0 / std::pow(2.0, cycle - 1.0)};
    case CyclicMode::exp_range:
      return {h, std::pow(gamma_, e)};
    case CyclicMode::triangular:
      break;
  }
  return {h, 1.0};
}

double CyclicLR::lr_at(size_t, int64_t epoch) const {
  auto [h, scale] = position(epoch);
  return base_lr_ + (max_lr_ - base_lr_) * h * scale;
}

double CyclicLR::momentum_at(int64_t epoch) const {
  auto [h, scale] = position(epoch);
  return max_momentum_ - (max_momentum_ - base_momentum_) * h * scale;
}

void CyclicLR::on_step(int64_t epoch) {
  if (cycle_momentum_) set_momentum(momentum_at(epoch));
}

}  // namespace ember::optim
