// Training curves via gnuplot: write the series to a data file and a short script beside the PNG, run
// gnuplot on them, and clean up. gnuplot is an optional tool, so every failure becomes a message.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "ember/error.h"
#include "ember/train.h"

namespace ember::train {
namespace {

std::optional<double> as_number(const MetricValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

bool contains(std::string s, const char* what) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s.find(what) != std::string::npos;
}

// The program's full path, if it exists and is executable (searching PATH for a bare name).
std::optional<std::string> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return access(name.c_str(), X_OK) == 0 ? std::optional(name) : std::nullopt;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// gnuplot single-quoted string: a quote is written twice.
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

struct RunResult {
  int status;
  std::string output;
};

RunResult run_capture(const std::string& command) {
  RunResult r{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.status = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

struct Panel {
  std::string ylabel;
  std::string key;             // where the legend goes: away from where such curves usually run
  std::vector<size_t> series;  // indices into the series names
};

std::string script(const std::string& terminal, const std::string& png, const std::string& data,
                   const PlotOptions& options, const std::vector<std::string>& names,
                   const std::vector<Panel>& panels, bool integer_ticks) {
  std::string s;
  s += fmt::format("set terminal {} size {},450 noenhanced\n", terminal, 600 * panels.size());
  s += fmt::format("set output {}\n", gp_quote(png));
  s += "set datafile missing '?'\nset grid\n";
  s += fmt::format("set multiplot layout 1,{} title {}\n", panels.size(), gp_quote(options.title));
  s += fmt::format("set xlabel {}\n", gp_quote(options.x));
  if (integer_ticks) s += "set xtics 1\n";  // epochs 1, 2, 3 rather than 1, 1.5, 2
  for (const Panel& p : panels) {
    s += fmt::format("set ylabel {}\nset key {}\nplot ", gp_quote(p.ylabel), p.key);
    for (size_t i = 0; i < p.series.size(); ++i)
      s += fmt::format("{}{} using 1:{} with linespoints title {}", i ? ", " : "", gp_quote(data),
                       p.series[i] + 2, gp_quote(names[p.series[i]]));
    s += "\n";
  }
  s += "unset multiplot\n";
  return s;
}

}  // namespace

PlotResult plot_training_curves(const std::string& metrics_path, const std::string& png_path,
                                const PlotOptions& options) {
  namespace fs = std::filesystem;
  std::vector<MetricRow> rows;
  try {
    rows = read_metrics(metrics_path);
  } catch (const Error& e) {
    return {false, fmt::format("no plot: {}", e.what())};
  }

  // Series: every numeric column but x, in order of first appearance.
  std::vector<std::string> names;
  std::vector<double> xs;
  std::vector<std::map<std::string, double>> points;
  for (const MetricRow& row : rows) {
    std::optional<double> x;
    std::map<std::string, double> values;
    for (const auto& [key, value] : row) {
      std::optional<double> v = as_number(value);
      if (!v) continue;
      if (key == options.x) {
        x = v;
      } else {
        values[key] = *v;
        if (std::find(names.begin(), names.end(), key) == names.end()) names.push_back(key);
      }
    }
    if (!x) continue;
    xs.push_back(*x);
    points.push_back(std::move(values));
  }
  Panel loss{"loss", "top right", {}}, acc{"accuracy", "bottom right", {}};
  for (size_t i = 0; i < names.size(); ++i) {
    if (contains(names[i], "loss"))
      loss.series.push_back(i);
    else if (contains(names[i], "acc"))
      acc.series.push_back(i);
  }
  std::vector<Panel> panels;
  if (!loss.series.empty()) panels.push_back(loss);
  if (!acc.series.empty()) panels.push_back(acc);
  if (xs.empty() || panels.empty())
    return {false, fmt::format("no plot: {} has no rows with '{}' and a loss or accuracy column",
                               metrics_path, options.x)};

  // Whole-number x values over a short range (epochs) get one tick each.
  const auto [lo, hi] = std::minmax_element(xs.begin(), xs.end());
  const bool integer_ticks =
      *hi - *lo <= 20 && std::all_of(xs.begin(), xs.end(), [](double x) { return x == std::floor(x); });

  std::optional<std::string> gnuplot = find_program(options.gnuplot);
  if (!gnuplot)
    return {false,
            fmt::format("no plot: '{}' was not found on PATH (install gnuplot, e.g. the Debian package "
                        "gnuplot-nox, to get {})",
                        options.gnuplot, png_path)};

  const std::string data_path = png_path + ".plot-data.tmp", script_path = png_path + ".plot-script.tmp";
  {
    std::ofstream data(data_path);
    if (!data) return {false, fmt::format("no plot: cannot write {}", data_path)};
    for (size_t r = 0; r < xs.size(); ++r) {
      data << fmt::format("{}", xs[r]);
      for (const std::string& name : names) {
        auto it = points[r].find(name);
        data << ' '
             << (it != points[r].end() && std::isfinite(it->second) ? fmt::format("{}", it->second) : "?");
      }
      data << '\n';
    }
  }
  PlotResult result{false, ""};
  // pngcairo draws smoother lines; the libgd `png` terminal is the fallback where cairo is missing.
  for (const char* terminal : {"pngcairo", "png"}) {
    std::error_code ec;
    fs::remove(png_path, ec);
    {
      std::ofstream out(script_path);
      out << script(terminal, png_path, data_path, options, names, panels, integer_ticks);
    }
    RunResult run = run_capture(shell_quote(*gnuplot) + " " + shell_quote(script_path));
    if (run.status == 0 && fs::exists(png_path, ec) && fs::file_size(png_path, ec) > 0) {
      result = {true, fmt::format("wrote {}", png_path)};
      break;
    }
    result = {false, fmt::format("no plot: gnuplot failed (exit status {}) with the {} terminal: {}",
                                 run.status, terminal, run.output.empty() ? "no output" : run.output)};
  }
  std::error_code ec;
  fs::remove(data_path, ec);
  fs::remove(script_path, ec);
  return result;
}

}  // namespace ember::train
