#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ember/error.h"
#include "ember/train.h"
#include "nn/data/csv_line.h"

namespace ember::train {
namespace {

using data::detail::quote_csv_field;
using data::detail::split_csv_line;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

MetricsFormat format_of(const std::string& path) {
  return ends_with(path, ".csv") ? MetricsFormat::csv : MetricsFormat::jsonl;
}

// The lines of a text file ("" when it does not exist).
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

// A CSV field for `text`. The file is read back line by line (read_metrics, and a resumed logger's
// header), so a line break even inside quotes would split a row: refused, before anything is
// written.
std::string csv_field(const std::string& text, const std::string& path, const std::string& key) {
  if (text.find_first_of("\n\r") != std::string::npos)
    fail(
        "MetricsLogger::log: {}: '{}' holds a line break, which a CSV metrics file cannot; use a .jsonl path",
        path, key);
  return quote_csv_field(text, ',');
}

std::string csv_text(const MetricValue& v, const std::string& path, const std::string& key) {
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return std::isfinite(*d) ? fmt::format("{}", *d) : std::string();
  return csv_field(std::get<std::string>(v), path, key);
}

// A CSV field back as a value: integer, else number, else text.
MetricValue csv_value(const std::string& field) {
  const char* b = field.data();
  const char* e = b + field.size();
  int64_t i = 0;
  if (auto [p, ec] = std::from_chars(b, e, i); ec == std::errc() && p == e) return i;
  double d = 0;
  if (auto [p, ec] = std::from_chars(b, e, d); ec == std::errc() && p == e) return d;
  return field;
}

}  // namespace

MetricsLogger::MetricsLogger(std::string path, std::optional<MetricsFormat> format)
    : path_(std::move(path)), format_(format.value_or(format_of(path_))) {
  if (path_.empty()) fail("MetricsLogger: the path is empty");
  if (format_ == MetricsFormat::csv) {
    std::vector<std::string> lines = read_lines(path_);
    if (!lines.empty() && !lines[0].empty())
      columns_ = split_csv_line(lines[0], ',', "MetricsLogger", path_, 1);
  }
}

void MetricsLogger::log(const MetricRow& row) {
  if (row.empty()) fail("MetricsLogger::log: the row is empty");
  std::string text;
  if (format_ == MetricsFormat::jsonl) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [key, value] : row) {
      if (j.contains(key)) fail("MetricsLogger::log: the key '{}' appears twice in one row", key);
      std::visit(
          [&, &key = key](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, double>) {
              j[key] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
            } else {
              j[key] = v;
            }
          },
          value);
    }
    text = j.dump() + "\n";
  } else {
    const bool first = columns_.empty();
    if (first)
      for (const auto& [key, value] : row) columns_.push_back(key);
    std::vector<std::string> fields(columns_.size());
    std::vector<bool> seen(columns_.size(), false);
    for (const auto& [key, value] : row) {
      auto it = std::find(columns_.begin(), columns_.end(), key);
      if (it == columns_.end())
        fail("MetricsLogger::log: {}: '{}' is not one of the CSV columns ({}) fixed by the first row", path_,
             key, fmt::join(columns_, ", "));
      const size_t c = static_cast<size_t>(it - columns_.begin());
      if (seen[c]) fail("MetricsLogger::log: the key '{}' appears twice in one row", key);
      seen[c] = true;
      fields[c] = csv_text(value, path_, key);
    }
    if (first) {
      std::vector<std::string> header;
      for (const std::string& c : columns_) header.push_back(csv_field(c, path_, c));
      text = fmt::format("{}\n", fmt::join(header, ","));
    }
    text += fmt::format("{}\n", fmt::join(fields, ","));
  }
  std::ofstream out(path_, std::ios::app | std::ios::binary);
  if (!out) fail("MetricsLogger: cannot open {} for appending: {}", path_, std::strerror(errno));
  out << text;
  out.flush();
  if (!out) fail("MetricsLogger: writing to {} failed", path_);
}

std::vector<MetricRow> read_metrics(const std::string& path) {
  std::ifstream probe(path);
  if (!probe) fail("read_metrics: cannot open {}: {}", path, std::strerror(errno));
  probe.close();
  const std::vector<std::string> lines = read_lines(path);
  std::vector<MetricRow> rows;
  if (format_of(path) == MetricsFormat::csv) {
    if (lines.empty()) return rows;
    const std::vector<std::string> columns = split_csv_line(lines[0], ',', "read_metrics", path, 1);
    for (size_t n = 1; n < lines.size(); ++n) {
      if (lines[n].empty()) continue;
      const int64_t line_number = static_cast<int64_t>(n + 1);
      std::vector<std::string> fields = split_csv_line(lines[n], ',', "read_metrics", path, line_number);
      if (fields.size() != columns.size())
        fail("read_metrics: {}:{}: expected {} fields, found {}", path, line_number, columns.size(),
             fields.size());
      MetricRow row;
      for (size_t c = 0; c < columns.size(); ++c)
        if (!fields[c].empty()) row.emplace_back(columns[c], csv_value(fields[c]));
      rows.push_back(std::move(row));
    }
    return rows;
  }
  for (size_t n = 0; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    const int64_t line_number = static_cast<int64_t>(n + 1);
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(lines[n], nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) fail("read_metrics: {}:{}: not a JSON object", path, line_number);
    MetricRow row;
    for (const auto& [key, value] : j.items()) {
      if (value.is_number_integer()) {
        row.emplace_back(key, value.get<int64_t>());
      } else if (value.is_number()) {
        row.emplace_back(key, value.get<double>());
      } else if (value.is_string()) {
        row.emplace_back(key, value.get<std::string>());
      } else if (value.is_boolean()) {
        row.emplace_back(key, int64_t{value.get<bool>()});
      } else if (!value.is_null()) {
        fail("read_metrics: {}:{}: the value of '{}' is not a number or a string", path, line_number, key);
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace ember::train
