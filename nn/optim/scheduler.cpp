// Learning-rate schedulers: closed-form schedules over the epoch counter (see scheduler.h).
#include "ember/optim/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "nn/optim/number_list.h"

namespace ember::optim {

// ---- base ----

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g) base_lrs_.push_back(optimizer.lr(g));
}

LRScheduler::~LRScheduler() = default;

void LRScheduler::initial_step() {
  last_epoch_ = -1;
  step();
}

void LRScheduler::step() {
  if (optimizer_.num_param_groups() != base_lrs_.size())
    fail("{}.step: the scheduler was made for {} parameter groups, the optimizer now has {}", name(),
         base_lrs_.size(), optimizer_.num_param_groups());
  const int64_t epoch = last_epoch_ + 1;
  std::vector<double> lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g)
    lrs.push_back(lr_at(g, epoch));  // may throw: nothing changed yet
  on_step(epoch);  // may throw too (momentum for an optimizer without): the rates are still unchanged
  for (size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(g, lrs[g]);
  last_epoch_ = epoch;
  last_lrs_ = std::move(lrs);
}

void LRScheduler::set_momentum(double momentum) {
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) optimizer_.set_momentum(g, momentum);
}

StateDict LRScheduler::state_dict() const {
  StateDict sd;
  sd.metadata["scheduler"] = name();
  sd.metadata["last_epoch"] = std::to_string(last_epoch_);
  sd.metadata["base_lrs"] = detail::join_numbers(base_lrs_);
  sd.metadata["last_lrs"] = detail::join_numbers(last_lrs_);
  return sd;
}

void LRScheduler::load_state_dict(const StateDict& sd) {
  const std::string me = name() + ".load_state_dict";
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = sd.metadata.find(key);
    if (it == sd.metadata.end()) fail("{}: metadata '{}' is missing", me, key);
    return it->second;
  };
  if (meta("scheduler") != name()) fail("{}: the state is for a {} scheduler", me, meta("scheduler"));
  double epoch = parse_number(sd.metadata, "last_epoch");
  if (!(epoch >= 0 && epoch < 0x1p62) || epoch != std::floor(epoch))  // (NaN fails too)
    fail("{}: last_epoch '{}' is not a count", me, meta("last_epoch"));
  std::vector<double> base = detail::split_numbers("base_lrs", meta("base_lrs"));
  std::vector<double> last = detail::split_numbers("last_lrs", meta("last_lrs"));
  if (base.size() != optimizer_.num_param_groups() || last.size() != base.size())
    fail("{}: the state has {} base and {} last learning rates for {} parameter groups", me, base.size(),
         last.size(), optimizer_.num_param_groups());
  // A schedule that has no step `epoch` (OneCycleLR past its total) throws here, before anything
  // (this scheduler or the optimizer's learning rates) has changed.
  for (size_t g = 0; g < base.size(); ++g) (void)lr_at(g, static_cast<int64_t>(epoch));
  set_base_lrs(std::move(base));
  last_lrs_ = std::move(last);
  last_epoch_ = static_cast<int64_t>(epoch);
  on_step(last_epoch_);
  for (size_t g = 0; g < last_lrs_.size(); ++g) optimizer_.set_lr(g, last_lrs_[g]);
}

// ---- StepLR, MultiStepLR, ExponentialLR ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0) fail("StepLR: step_size must be positive, got {}", step_size);
  initial_step();
}
double StepLR::lr_at(size_t g, int64_t epoch) const {
  return base_lrs_[g] * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  initial_step();
}
double MultiStepLR::lr_at(size_t g, int64_t epoch) const {
  // A milestone listed twice decays twice, as in PyTorch (which counts them in a Counter).
  auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_lrs_[g] * std::pow(gamma_, static_cast<double>(passed));
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(optimizer), start_(start_factor), end_(end_factor), total_(total_iters) {
  // PyTorch's bounds: a factor of 0 at the start would leave nothing to scale back up.
  if (!(start_factor > 0 && start_factor <= 1))
    fail("LinearLR: start_factor must be in (0, 1], got {}", start_factor);
  if (!(end_factor >= 0 && end_factor <= 1))
    fail("LinearLR: end_factor must be in [0, 1], got {}", end_factor);
  if (total_iters <= 0) fail("LinearLR: total_iters must be positive, got {}", total_iters);
  initial_step();
}
double LinearLR::lr_at(size_t g, int64_t epoch) const {
  const double progress = static_cast<double>(std::min(epoch, total_)) / static_cast<double>(total_);
  return base_lrs_[g] * (start_ + (end_ - start_) * progress);
}

SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::unique_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones)
    : LRScheduler(optimizer), parts_(std::move(schedulers)), milestones_(std::move(milestones)) {
  if (parts_.empty()) fail("SequentialLR: needs at least one scheduler");
  if (milestones_.size() != parts_.size() - 1)
    fail("SequentialLR: {} schedulers need {} milestones, got {}", parts_.size(), parts_.size() - 1,
         milestones_.size());
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (!parts_[i]) fail("SequentialLR: scheduler {} is null", i);
    if (&parts_[i]->optimizer_ != &optimizer)
      fail("SequentialLR: scheduler {} ({}) drives another optimizer", i, parts_[i]->name());
  }
  for (size_t i = 0; i < milestones_.size(); ++i)
    if (milestones_[i] <= (i == 0 ? 0 : milestones_[i - 1]))
      fail("SequentialLR: milestones must be positive and increasing, got {} after {}", milestones_[i],
           i == 0 ? 0 : milestones_[i - 1]);
  set_base_lrs(parts_[0]->base_lrs_);  // the rates before any part changed them
  initial_step();
}
void SequentialLR::set_base_lrs(std::vector<double> base) {
  base_lrs_ = std::move(base);
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (i == 0 || !parts_[i]->continues_previous_lr()) {
      parts_[i]->set_base_lrs(base_lrs_);
      continue;
    }
    // The rates the earlier parts (whose bases are set) leave at the epoch before the handover.
    std::vector<double> previous;
    for (size_t g = 0; g < base_lrs_.size(); ++g) previous.push_back(lr_at(g, milestones_[i - 1] - 1));
    parts_[i]->set_base_lrs(std::move(previous));
  }
}
std::pair<LRScheduler*, int64_t> SequentialLR::part_at(int64_t epoch) const {
  const size_t i = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return {parts_[i].get(), i == 0 ? epoch : epoch - milestones_[i - 1]};
}
double SequentialLR::lr_at(size_t g, int64_t epoch) const {
  auto [part, own_epoch] = part_at(epoch);
  return part->lr_at(g, own_epoch);
}
void SequentialLR::on_step(int64_t epoch) {
  auto [part, own_epoch] = part_at(epoch);
  part->on_step(own_epoch);
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
  initial_step();
}
double ExponentialLR::lr_at(size_t g, int64_t epoch) const {
  return base_lrs_[g] * std::pow(gamma_, static_cast<double>(epoch));
}

// ---- cosine schedules ----

namespace {
// (1 + cos(pi * t)) / 2 from 1 at t = 0 to 0 at t = 1.
double cosine_factor(double t) { return (1.0 + std::cos(M_PI * t)) / 2.0; }
}  // namespace

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer), t_max_(T_max), eta_min_(eta_min) {
  if (T_max <= 0) fail("CosineAnnealingLR: T_max must be positive, got {}", T_max);
  initial_step();
}
double CosineAnnealingLR::lr_at(size_t g, int64_t epoch) const {
  return eta_min_ +
         (base_lrs_[g] - eta_min_) * cosine_factor(static_cast<double>(epoch) / static_cast<double>(t_max_));
}

CosineAnnealingWarmRestarts::CosineAnnealingWarmRestarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult,
                                                         double eta_min)
    : LRScheduler(optimizer), t_0_(T_0), t_mult_(T_mult), eta_min_(eta_min) {
  if (T_0 <= 0) fail("CosineAnnealingWarmRestarts: T_0 must be positive, got {}", T_0);
  if (T_mult < 1) fail("CosineAnnealingWarmRestarts: T_mult must be >= 1, got {}", T_mult);
  initial_step();
}
double CosineAnnealingWarmRestarts::lr_at(size_t g, int64_t epoch) const {
  // Walk the cycles T_0, T_0 * T_mult, ... to the one holding `epoch`: T_cur epochs into it, of
  // length T_i (as a double: the cycle after the last one that fits an int64 may not).
  int64_t t_cur = epoch, t_i = t_0_;
  double length = static_cast<double>(t_0_);
  if (t_mult_ == 1) {
    t_cur %= t_0_;
  } else {
    while (t_cur >= t_i) {
      t_cur -= t_i;
      length = static_cast<double>(t_i) * static_cast<double>(t_mult_);
      if (t_i > t_cur / t_mult_) break;  // t_i * T_mult > t_cur: the next cycle holds it
      t_i *= t_mult_;
    }
  }
  return eta_min_ + (base_lrs_[g] - eta_min_) * cosine_factor(static_cast<double>(t_cur) / length);
}

LinearWarmupCosineLR::LinearWarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                                           double eta_min, double start_factor)
    : LRScheduler(optimizer),
      warmup_(warmup_steps),
      total_(total_steps),
      eta_min_(eta_min),
      start_factor_(start_factor) {
  if (warmup_steps < 0 || total_steps <= warmup_steps)
    fail(
        "LinearWarmupCosineLR: need 0 <= warmup_steps < total_steps, got warmup_steps = {}, total_steps = {}",
        warmup_steps, total_steps);
  if (!(start_factor >= 0 && start_factor <= 1))
    fail("LinearWarmupCosineLR: start_factor must be in [0, 1], got {}", start_factor);
  initial_step();
}
double LinearWarmupCosineLR::lr_at(size_t g, int64_t epoch) const {
  const double base = base_lrs_[g];
  if (epoch < warmup_)
    return base * (start_factor_ +
                   (1.0 - start_factor_) * static_cast<double>(epoch) / static_cast<double>(warmup_));
  double progress =
      std::min(1.0, static_cast<double>(epoch - warmup_) / static_cast<double>(total_ - warmup_));
  return eta_min_ + (base - eta_min_) * cosine_factor(progress);
}

// ---- OneCycleLR ----

OneCycleLR::OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start,
                       AnnealStrategy anneal_strategy, bool cycle_momentum, double base_momentum,
                       double max_momentum, double div_factor, double final_div_factor, bool three_phase)
    : LRScheduler(optimizer),
      max_lr_(max_lr),
      total_steps_(total_steps),
      anneal_(anneal_strategy),
      cycle_momentum_(cycle_momentum) {
  if (total_steps <= 0) fail("OneCycleLR: total_steps must be positive, got {}", total_steps);
  if (!(pct_start >= 0 && pct_start <= 1)) fail("OneCycleLR: pct_start must be in [0, 1], got {}", pct_start);
  if (!(max_lr > 0) || !(div_factor > 0) || !(final_div_factor > 0))
    fail("OneCycleLR: max_lr ({}), div_factor ({}) and final_div_factor ({}) must be positive", max_lr,
         div_factor, final_div_factor);
  const double initial = max_lr / div_factor, min_lr = initial / final_div_factor;
  const double steps = static_cast<double>(total_steps), bm = base_momentum, mm = max_momentum;
  if (three_phase) {
    phases_ = {{pct_start * steps - 1, initial, max_lr, mm, bm},
               {2 * pct_start * steps - 2, max_lr, initial, bm, mm},
               {steps - 1, initial, min_lr, mm, mm}};
  } else {
    phases_ = {{pct_start * steps - 1, initial, max_lr, mm, bm}, {steps - 1, max_lr, min_lr, bm, mm}};
  }
  double start = 0;
  for (const Phase& ph : phases_) {
    if (ph.end_step == start)  // PyTorch divides by zero here
      fail("OneCycleLR: pct_start = {} with total_steps = {} leaves a phase with no steps", pct_start,
           total_steps);
    start = ph.end_step;
  }
  base_lrs_.assign(optimizer.num_param_groups(), initial);
  initial_step();
}

double OneCycleLR::interpolate(int64_t epoch, double Phase::*start, double Phase::*end) const {
  if (epoch > total_steps_)
    fail("OneCycleLR: tried to step {} times, but total_steps is {}", epoch, total_steps_);
  const double step = static_cast<double>(epoch);
  double start_step = 0;
  for (size_t i = 0; i < phases_.size(); ++i) {
    const Phase& ph = phases_[i];
    if (step <= ph.end_step || i + 1 == phases_.size()) {
      double pct = (step - start_step) / (ph.end_step - start_step);
      double a = ph.*start, b = ph.*end;
      return anneal_ == AnnealStrategy::cos ? b + (a - b) / 2.0 * (std::cos(M_PI * pct) + 1.0)
                                            : (b - a) * pct + a;
    }
    start_step = ph.end_step;
  }
  fail("OneCycleLR: no phase for step {}", epoch);  // unreachable: the last phase takes every step
}

double OneCycleLR::lr_at(size_t, int64_t epoch) const {
  return interpolate(epoch, &Phase::start_lr, &Phase::end_lr);
}

double OneCycleLR::momentum_at(int64_t epoch) const {
  return interpolate(epoch, &Phase::start_momentum, &Phase::end_momentum);
}

void OneCycleLR::on_step(int64_t epoch) {
  if (cycle_momentum_) set_momentum(momentum_at(epoch));
}

}  // namespace ember::optim
