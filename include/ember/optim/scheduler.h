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
#include <functional>
#include <memory>
#include <optional>
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
  // Hook for schedules that also drive momentum (OneCycleLR, CyclicLR).
  virtual void on_step(int64_t /*epoch*/) {}
  // Sets the base rates (load_state_dict; SequentialLR also hands them to its parts).
  virtual void set_base_lrs(std::vector<double> base) { base_lrs_ = std::move(base); }
  // Whether the schedule is relative to the rate in force when it takes over (MultiplicativeLR):
  // as a later part of a SequentialLR it then starts from the rate the previous part left.
  virtual bool continues_previous_lr() const { return false; }
  // Sets every group's momentum (schedules that cycle it; throws for an optimizer without one).
  void set_momentum(double momentum);

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

// lr = base * lr_lambda(epoch), as torch.optim.lr_scheduler.LambdaLR: one function for every
// parameter group, or one per group (their count must equal the group count). Like PyTorch, which
// saves only state that is not a plain function, state_dict() cannot hold the functions: a
// scheduler loading the state keeps the ones it was made with. The functions should be pure (they
// may be called more than once for an epoch).
class LambdaLR : public LRScheduler {
 public:
  using Lambda = std::function<double(int64_t)>;
  LambdaLR(Optimizer& optimizer, Lambda lr_lambda);
  LambdaLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas);
  std::string name() const override { return "LambdaLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  std::vector<Lambda> lambdas_;
};

// lr_epoch = lr_(epoch-1) * lr_lambda(epoch) for epoch > 0 and base at epoch 0, i.e.
// base * lr_lambda(1) * ... * lr_lambda(epoch) (multiplied in that order, as PyTorch's steps do),
// as torch.optim.lr_scheduler.MultiplicativeLR; one function or one per parameter group. The
// product is kept between steps, so stepping costs one call per group (a jump, as load_state_dict
// makes, recomputes it). The functions are not saved, as for LambdaLR. As a later part of a
// SequentialLR it starts from the rate the previous part left, as in PyTorch.
class MultiplicativeLR : public LRScheduler {
 public:
  using Lambda = std::function<double(int64_t)>;
  MultiplicativeLR(Optimizer& optimizer, Lambda lr_lambda);
  MultiplicativeLR(Optimizer& optimizer, std::vector<Lambda> lr_lambdas);
  std::string name() const override { return "MultiplicativeLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;
  bool continues_previous_lr() const override { return true; }

 private:
  struct Product {  // base * lambda(1) * ... * lambda(epoch) of one group
    double base = 0, lr = 0;
    int64_t epoch = -1;
  };
  std::vector<Lambda> lambdas_;
  mutable std::vector<Product> products_;
};

// lr = base * factor for epoch < total_iters, then base (torch.optim.lr_scheduler.ConstantLR;
// factor in [0, 1]: PyTorch's bounds, though its step divides by a factor of 0 at total_iters).
class ConstantLR : public LRScheduler {
 public:
  ConstantLR(Optimizer& optimizer, double factor = 1.0 / 3, int64_t total_iters = 5);
  std::string name() const override { return "ConstantLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  double factor_;
  int64_t total_;
};

// lr = base * (1 - min(epoch, total_iters) / total_iters)^power: down to 0 at total_iters, then 0
// (torch.optim.lr_scheduler.PolynomialLR).
class PolynomialLR : public LRScheduler {
 public:
  PolynomialLR(Optimizer& optimizer, int64_t total_iters = 5, double power = 1.0);
  std::string name() const override { return "PolynomialLR"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  int64_t total_;
  double power_;
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

// SGDR (Loshchilov & Hutter), as torch.optim.lr_scheduler.CosineAnnealingWarmRestarts stepped
// once per epoch: lr = eta_min + (base - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where the
// cycles last T_0, T_0 * T_mult, T_0 * T_mult^2, ... epochs, T_i is the length of the cycle that
// `epoch` falls in and T_cur the epochs since it began (the closed form of PyTorch's T_cur / T_i
// bookkeeping; fractional epochs are not supported).
class CosineAnnealingWarmRestarts : public LRScheduler {
 public:
  CosineAnnealingWarmRestarts(Optimizer& optimizer, int64_t T_0, int64_t T_mult = 1, double eta_min = 0.0);
  std::string name() const override { return "CosineAnnealingWarmRestarts"; }

 protected:
  double lr_at(size_t group, int64_t epoch) const override;

 private:
  int64_t t_0_, t_mult_;
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
// A MultiplicativeLR after the first part starts from the rate in force when it takes over (the
// previous part's last), and CyclicLR and OneCycleLR keep their own rates, as in PyTorch. Step this
// scheduler, not its parts, which it owns. E.g. a warm-up, then steps down:
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
  // Also gives the parts their base rates (a part that continues the previous rate gets that).
  void set_base_lrs(std::vector<double> base) override;

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

enum class CyclicMode { triangular, triangular2, exp_range };

// Cyclical learning rates (Smith), as torch.optim.lr_scheduler.CyclicLR, stepped per batch. Each
// cycle rises from base_lr to max_lr over step_size_up steps and falls back over step_size_down
// (default: step_size_up). With cycle = floor(1 + epoch / (up + down)),
// x = 1 + epoch / (up + down) - cycle and h = x / r while x <= r, else (x - 1) / (r - 1), where
// r = up / (up + down):
//   lr = base_lr + (max_lr - base_lr) * h * scale, scale = 1 (triangular),
//        1 / 2^(cycle - 1) (triangular2: the amplitude halves each cycle), gamma^epoch (exp_range).
// With cycle_momentum, the momentum (SGD, RMSprop) or beta1 (Adam) moves inversely:
// max_momentum - (max_momentum - base_momentum) * h * scale; an optimizer without one (Adagrad)
// makes the constructor throw. (PyTorch 1.13 refuses Adam here; 2.0 cycles its beta1, as this
// does.) The optimizer's learning rates are replaced (base_lrs become base_lr). PyTorch's custom
// scale_fn / scale_mode and per-group lists of base_lr, max_lr and momenta are not supported.
class CyclicLR : public LRScheduler {
 public:
  CyclicLR(Optimizer& optimizer, double base_lr, double max_lr, int64_t step_size_up = 2000,
           std::optional<int64_t> step_size_down = {}, CyclicMode mode = CyclicMode::triangular,
           double gamma = 1.0, bool cycle_momentum = true, double base_momentum = 0.8,
           double max_momentum = 0.9);
  std::string name() const override { return "CyclicLR"; }
  // The momentum CyclicLR sets at `epoch` (when cycle_momentum).
  double momentum_at(int64_t epoch) const;

 protected:
  double lr_at(size_t group, int64_t epoch) const override;
  void on_step(int64_t epoch) override;

 private:
  // (h, scale) at `epoch`.
  std::pair<double, double> position(int64_t epoch) const;

  double base_lr_, max_lr_;
  double total_size_, step_ratio_;
  CyclicMode mode_;
  double gamma_;
  bool cycle_momentum_;
  double base_momentum_, max_momentum_;
};

}  // namespace ember::optim
