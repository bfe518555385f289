// ReduceLROnPlateau: PyTorch's algorithm, step for step (see plateau.h).
#include "ember/optim/plateau.h"

#include <cmath>
#include <limits>

#include "nn/optim/number_list.h"

namespace ember::optim {

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions o)
    : optimizer_(optimizer), options_(std::move(o)) {
  const char* me = "ReduceLROnPlateau";
  if (!(options_.factor >= 0 && options_.factor < 1))
    fail("{}: factor must be in [0, 1), got {}", me, options_.factor);
  if (options_.patience < 0) fail("{}: patience must be >= 0, got {}", me, options_.patience);
  if (options_.cooldown < 0) fail("{}: cooldown must be >= 0, got {}", me, options_.cooldown);
  if (!(options_.threshold >= 0)) fail("{}: threshold must be >= 0, got {}", me, options_.threshold);
  if (!(options_.eps >= 0)) fail("{}: eps must be >= 0, got {}", me, options_.eps);
  const size_t groups = optimizer.num_param_groups();
  if (options_.min_lr.size() == 1) {
    min_lrs_.assign(groups, options_.min_lr[0]);
  } else if (options_.min_lr.size() == groups) {
    min_lrs_ = options_.min_lr;
  } else {
    fail("{}: min_lr has {} values; give one, or one per parameter group ({})", me, options_.min_lr.size(),
         groups);
  }
  for (double m : min_lrs_)
    if (!(m >= 0)) fail("{}: min_lr must be >= 0, got {}", me, m);
  best_ = options_.mode == PlateauMode::min ? std::numeric_limits<double>::infinity()
                                            : -std::numeric_limits<double>::infinity();
  for (size_t g = 0; g < groups; ++g) last_lrs_.push_back(optimizer.lr(g));
}

bool ReduceLROnPlateau::is_better(double a) const {
  const double t = options_.threshold;
  const bool rel = options_.threshold_mode == ThresholdMode::rel;
  if (options_.mode == PlateauMode::min) return rel ? a < best_ * (1 - t) : a < best_ - t;
  return rel ? a > best_ * (1 + t) : a > best_ + t;
}

void ReduceLROnPlateau::step(double metric) {
  if (optimizer_.num_param_groups() != min_lrs_.size())
    fail("ReduceLROnPlateau.step: the scheduler was made for {} parameter groups, the optimizer now has {}",
         min_lrs_.size(), optimizer_.num_param_groups());
  ++last_epoch_;
  if (is_better(metric)) {  // (a NaN metric is never better: it counts as a bad epoch)
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs during cooldown are ignored
  }
  if (num_bad_epochs_ > options_.patience) {
    for (size_t g = 0; g < min_lrs_.size(); ++g) {
      const double old_lr = optimizer_.lr(g), new_lr = std::max(old_lr * options_.factor, min_lrs_[g]);
      if (old_lr - new_lr > options_.eps) optimizer_.set_lr(g, new_lr);
    }
    cooldown_counter_ = options_.cooldown;
    num_bad_epochs_ = 0;
  }
  last_lrs_.clear();
  for (size_t g = 0; g < min_lrs_.size(); ++g) last_lrs_.push_back(optimizer_.lr(g));
}

StateDict ReduceLROnPlateau::state_dict() const {
  StateDict sd;
  sd.metadata["scheduler"] = "ReduceLROnPlateau";
  sd.metadata["last_epoch"] = std::to_string(last_epoch_);
  sd.metadata["best"] = number_text(best_);
  sd.metadata["num_bad_epochs"] = std::to_string(num_bad_epochs_);
  sd.metadata["cooldown_counter"] = std::to_string(cooldown_counter_);
  sd.metadata["last_lrs"] = detail::join_numbers(last_lrs_);
  return sd;
}

void ReduceLROnPlateau::load_state_dict(const StateDict& sd) {
  const char* me = "ReduceLROnPlateau.load_state_dict";
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = sd.metadata.find(key);
    if (it == sd.metadata.end()) fail("{}: metadata '{}' is missing", me, key);
    return it->second;
  };
  if (meta("scheduler") != "ReduceLROnPlateau")
    fail("{}: the state is for a {} scheduler", me, meta("scheduler"));
  auto count = [&](const std::string& key) {
    const double v = parse_number(sd.metadata, key);
    if (!(v >= 0 && v < 0x1p62) || v != std::floor(v)) fail("{}: {} '{}' is not a count", me, key, meta(key));
    return static_cast<int64_t>(v);
  };
  const int64_t epoch = count("last_epoch"), bad = count("num_bad_epochs"),
                cooldown = count("cooldown_counter");
  const double best = parse_number(sd.metadata, "best");  // (inf before the first step)
  std::vector<double> last = detail::split_numbers("last_lrs", meta("last_lrs"));
  if (last.size() != optimizer_.num_param_groups())
    fail("{}: the state has {} learning rates for {} parameter groups", me, last.size(),
         optimizer_.num_param_groups());
  last_epoch_ = epoch;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cooldown;
  best_ = best;
  last_lrs_ = std::move(last);
  for (size_t g = 0; g < last_lrs_.size(); ++g) optimizer_.set_lr(g, last_lrs_[g]);
}

}  // namespace ember::optim
