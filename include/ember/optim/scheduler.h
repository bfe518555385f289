#pragma once
// Learning-rate schedulers (mirror torch.optim.lr_scheduler). Each sets the learning rate of every
// parameter group from a closed-form function of the epoch counter `last_epoch` and the group's
// base learning rate (its lr when the scheduler was made).
//
// As in PyTorch, constructing a scheduler performs the initial step: last_epoch becomes 0 and the
// lr is set to its epoch-0 value. Call step() after each optimizer.step() (per epoch or per batch,
// as the schedule is meant).
//
// state_dict() holds metadata only: "scheduler" (the type), "last_epoch", "base_lrs" and
// "last_lrs" (comma-separated, exact). load_state_dict() restores them and sets the optimizer's
// learning rates to last_lrs, so a resumed run continues where it stopped.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/optim/optimizer.h"
#include "ember/state_dict.h"

namespace ember::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances the epoch counter by one and sets the new learning rates.
  void step();
  int64_t last_epoch() const { return last_epoch_; }
  // The learning rates set by the latest step.
  const std::vector<double>& get_last_lr() const { return last_lrs_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  virtual std::string name() const = 0;
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  // Call at the end of each derived constructor: sets last_epoch = 0 and the epoch-0 rates.
  void initial_step();
  // The learning rate of `group` at epoch `epoch`.
  virtual double lr_at(size_t group, int64_t epoch) const = 0;
  // Hook for schedules that also drive momentum (OneCycleLR).
  virtual void on_step(int64_t /*epoch*/) {}

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;

 private:
  friend class SequentialLR;  // runs its parts' lr_at and on_step, and sets their base rates
  int64_t last_epoch_ = -1;
  std::vector<double> last_lrs_;
};

// lr = base * gamma^floor(epoch / step_size)
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  std::string name() const override { return "StepLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// lr = base * gamma^(number of milestones <= epoch)
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);
  std::string name() const override { return "MultiStepLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// lr = base * gamma^epoch
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);
  std::string name() const override { return "ExponentialLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  double gamma_;
};

// lr = base * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters):
// a linear ramp of the factor over total_iters steps, then constant (PyTorch's defaults: from 1/3
// to 1 over 5 steps; a warm-up when start_factor < end_factor).
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           int64_t total_iters = 5);
  std::string name() const override { return "LinearLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  double start_, end_;
  int64_t total_;
};

// lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2   (periodic beyond T_max,
// like PyTorch's closed form)
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);
  std::string name() const override { return "CosineAnnealingLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

// Linear warmup, then cosine decay (the usual transformer schedule):
//   epoch <  warmup_steps:  base * (start_factor + (1 - start_factor) * epoch / warmup_steps)
//   epoch >= warmup_steps:  eta_min + (base - eta_min) * (1 + cos(pi * progress)) / 2,
//                           progress = min(1, (epoch - warmup_steps) / (total_steps - warmup_steps))
// so the lr reaches base at the end of warmup and stays at eta_min from total_steps on. Equal to
// PyTorch's SequentialLR(LinearLR(start_factor, 1.0, warmup_steps),
// CosineAnnealingLR(total_steps - warmup_steps, eta_min), milestones = [warmup_steps]) up to
// total_steps.
class LinearWarmupCosineLR : public LRScheduler {
 public:
  LinearWarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double eta_min = 0.0,
                       double start_factor = 0.0);
  std::string name() const override { return "LinearWarmupCosineLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  int64_t warmup_, total_;
  double eta_min_, start_factor_;
};

// Runs `schedulers` one after another, as torch.optim.lr_scheduler.SequentialLR: schedulers[i]
// takes over at milestones[i - 1] (an epoch of this scheduler) and counts its own epochs from 0
// there. All of them must drive `optimizer`; each one's base rates are the optimizer's rates
// before the first was made (as PyTorch's initial_lr: their constructors change the rates).
// Step this scheduler, not its parts, which it owns. E.g. a warm-up, then steps down:
//   std::vector<std::unique_ptr<LRScheduler>> parts;
//   parts.push_back(std::make_unique<LinearLR>(opt, 0.1, 1.0, 5));
//   parts.push_back(std::make_unique<MultiStepLR>(opt, std::vector<int64_t>{30, 60}));
//   SequentialLR schedule(opt, std::move(parts), {5});  // decays at epochs 35 and 65
class SequentialLR : public LRScheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::vector<std::unique_ptr<LRScheduler>> schedulers,
               std::vector<int64_t> milestones);
  std::string name() const override { return "SequentialLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;
  void on_step(int64_t epoch) override;

 private:
  // The part in charge at `epoch`, and that part's own epoch.
  std::pair<LRScheduler*, int64_t> part_at(int64_t epoch) const;

  std::vector<std::unique_ptr<LRScheduler>> parts_;
  std::vector<int64_t> milestones_;
};

enum class AnnealStrategy { cos, linear };

// The 1cycle policy (Smith & Topin), as torch.optim.lr_scheduler.OneCycleLR with total_steps:
// the lr rises from max_lr / div_factor to max_lr over the first pct_start of the steps, then
// falls to max_lr / (div_factor * final_div_factor); with cycle_momentum, the momentum (SGD) or
// beta1 (Adam) moves inversely between max_momentum and base_momentum. three_phase adds
// PyTorch's symmetric descent back to the initial lr before the final annihilation. Stepping
// beyond total_steps throws. The optimizers' own learning rates are replaced (base_lrs become
// max_lr / div_factor).
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, double max_lr, int64_t total_steps, double pct_start = 0.3,
             AnnealStrategy anneal_strategy = AnnealStrategy::cos, bool cycle_momentum = true,
             double base_momentum = 0.85, double max_momentum = 0.95, double div_factor = 25.0,
             double final_div_factor = 1e4, bool three_phase = false);
  std::string name() const override { return "OneCycleLR"; }
  // The momentum OneCycleLR sets at `epoch` (when cycle_momentum).
  double momentum_at(int64_t epoch) const;

 protected:
  double lr_at(size_t group, int64_t epoch) const override;
  void on_step(int64_t epoch) override;

 private:
  struct Phase {
    double end_step, start_lr, end_lr, start_momentum, end_momentum;
  };
  // Anneals from field `start` to field `end` of the phase that `epoch` falls in.
  double interpolate(int64_t epoch, double Phase::*start, double Phase::*end) const;

  double max_lr_;
  int64_t total_steps_;
  AnnealStrategy anneal_;
  bool cycle_momentum_;
  std::vector<Phase> phases_;
};

}  // namespace ember::optim
