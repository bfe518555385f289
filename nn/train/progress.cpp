#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>

#include "ember/error.h"
#include "ember/train.h"

namespace ember::train {
namespace {

constexpr double kRedrawInterval = 0.1;  // seconds between redraws of an interactive bar

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string format_rate(double rate) {
  if (!std::isfinite(rate)) return "-";
  return rate >= 100 ? fmt::format("{:.0f}", rate) : fmt::format("{:.1f}", rate);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-:--";
  const int64_t s = std::llround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

ProgressBar::ProgressBar(int64_t total, std::string label, ProgressOptions options)
    : total_(total), label_(std::move(label)), options_(std::move(options)) {
  if (total < 0) fail("ProgressBar: total must be non-negative, got {}", total);
  if (options_.interval_s < 0)
    fail("ProgressBar: interval_s must be non-negative, got {}", options_.interval_s);
  if (!options_.out) options_.out = &std::cout;
  interactive_ = options_.interactive.value_or(options_.out == &std::cout && isatty(STDOUT_FILENO) == 1);
  start_ = last_draw_ = now();
}

ProgressBar::~ProgressBar() {
  try {
    finish();
  } catch (...) {  // a destructor must not throw; the bar is cosmetic
  }
}

double ProgressBar::now() const { return options_.clock ? options_.clock() : steady_seconds(); }

void ProgressBar::update(int64_t items, std::optional<double> loss) {
  if (finished_) fail("ProgressBar::update: the bar '{}' is already finished", label_);
  if (items < 0) fail("ProgressBar::update: items must be non-negative, got {}", items);
  ++steps_;
  items_ += items;
  if (loss && !std::isnan(*loss)) {
    loss_sum_ += *loss;
    ++losses_;
  }
  // A plain log skips the last step's line: finish() prints the summary for it.
  if (!interactive_ && steps_ >= total_) return;
  const double t = now();
  if (t - last_draw_ >= (interactive_ ? kRedrawInterval : options_.interval_s)) {
    last_draw_ = t;
    draw(false);
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

double ProgressBar::running_loss() const { return losses_ ? loss_sum_ / static_cast<double>(losses_) : NAN; }

double ProgressBar::items_per_second() const {
  const double elapsed = now() - start_;
  return elapsed > 0 ? static_cast<double>(items_) / elapsed : NAN;
}

double ProgressBar::eta_seconds() const {
  if (steps_ == 0) return NAN;
  const double per_step = (now() - start_) / static_cast<double>(steps_);
  return per_step * static_cast<double>(std::max<int64_t>(total_ - steps_, 0));
}

std::string ProgressBar::line() const { return label_ + " " + body(); }

std::string ProgressBar::body() const {
  const int64_t percent = total_ > 0 ? std::min<int64_t>(100, steps_ * 100 / total_) : 100;
  std::string text = fmt::format("{}/{} ({}%)  {} {}/s", steps_, total_, percent,
                                 format_rate(items_per_second()), options_.unit);
  text += finished_ ? "  took " + format_duration(now() - start_) : "  ETA " + format_duration(eta_seconds());
  if (losses_) text += fmt::format("  loss {:.4f}", running_loss());
  return text;
}

void ProgressBar::draw(bool final) {
  std::ostream& out = *options_.out;
  if (!interactive_) {
    out << line() << '\n';
    out.flush();
    return;
  }
  const int width = std::max(options_.bar_width, 1);
  const double fraction =
      total_ > 0 ? std::min(1.0, static_cast<double>(steps_) / static_cast<double>(total_)) : 1.0;
  const int filled = static_cast<int>(fraction * width);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  // \r returns to the start of the line and \x1b[K clears what a longer previous text left behind.
  out << '\r' << label_ << " [" << bar << "] " << body() << "\x1b[K";
  if (final) out << '\n';
  out.flush();
}

}  // namespace ember::train
