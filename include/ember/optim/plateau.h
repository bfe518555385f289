#pragma once
// ReduceLROnPlateau, as torch.optim.lr_scheduler.ReduceLROnPlateau: not a closed-form schedule but
// a reaction to a metric (a validation loss, an accuracy). step(metric) once per epoch:
//   better = metric < best * (1 - threshold)   (mode min, threshold_mode rel; max: > best * (1 +
//            threshold); threshold_mode abs: < best - threshold, > best + threshold)
//   better: best = metric, bad epochs = 0; else bad epochs += 1
//   during cooldown (counted down each step) bad epochs stay 0
//   bad epochs > patience: every group's lr = max(lr * factor, min_lr), unless that changes it by
//            eps or less; then cooldown starts and bad epochs = 0
// state_dict() holds metadata: "scheduler", "last_epoch", "best", "num_bad_epochs",
// "cooldown_counter" and "last_lrs" (numbers exact); load_state_dict() restores them and the
// optimizer's learning rates.
#include <string>
#include <vector>

#include "ember/optim/optimizer.h"
#include "ember/state_dict.h"

namespace ember::optim {

enum class PlateauMode { min, max };
enum class ThresholdMode { rel, abs };

struct ReduceLROnPlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;  // in [0, 1)
  int64_t patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::rel;
  int64_t cooldown = 0;
  std::vector<double> min_lr = {0.0};  // one for every group, or one per group
  double eps = 1e-8;
};

class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  void step(double metric);

  int64_t last_epoch() const { return last_epoch_; }
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }
  const std::vector<double>& get_last_lr() const { return last_lrs_; }
  const ReduceLROnPlateauOptions& options() const { return options_; }

  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 private:
  bool is_better(double metric) const;

  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;  // one per group
  int64_t last_epoch_ = 0, num_bad_epochs_ = 0, cooldown_counter_ = 0;
  double best_;
  std::vector<double> last_lrs_;
};

}  // namespace ember::optim
