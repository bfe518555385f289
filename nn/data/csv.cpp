#include "ember/data/csv.h"

#include <charconv>
#include <set>

#include "ember/error.h"
#include "nn/data/csv_line.h"
#include "nn/data/file_bytes.h"

namespace ember::data {
namespace {

using detail::split_csv_line;

struct Line {
  int64_t number;  // 1-based, as an editor shows it
  std::string_view text;
};

// Splits into lines (\n or \r\n), dropping a UTF-8 byte-order mark and empty lines.
std::vector<Line> split_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<Line> lines;
  int64_t number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back({number, line});
  }
  return lines;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_number(std::string_view text, double* out) {
  text = trim(text);
  if (text.empty()) return false;
  if (text.front() == '+') {  // from_chars rejects a leading plus; a second sign is not a number
    text.remove_prefix(1);
    if (text.empty() || text.front() == '-' || text.front() == '+') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  if (!is_floating(options.numeric_dtype))
    fail("read_csv: numeric_dtype must be float32 or float64, got {}", options.numeric_dtype);
  const char delimiter = options.delimiter ? *options.delimiter : (ends_with(path, ".tsv") ? '\t' : ',');
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r')
    fail("read_csv: the delimiter cannot be a quote or a line break");
  const detail::FileBytes file = detail::read_file_bytes(path, "read_csv");
  if (options.skip_rows < 0) fail("read_csv: skip_rows must be >= 0, got {}", options.skip_rows);
  std::vector<Line> lines =
      split_lines(std::string_view(reinterpret_cast<const char*>(file.bytes.data()), file.bytes.size()));
  std::erase_if(lines, [&](const Line& l) { return l.number <= options.skip_rows; });
  if (lines.empty())
    fail("read_csv: {}: the file has no lines{}", path,
         options.skip_rows > 0 ? fmt::format(" after the {} skipped", options.skip_rows) : "");

  // ---- column names ----
  std::vector<std::string> names;
  size_t first_row = 0;
  if (options.header) {
    names = split_csv_line(lines[0].text, delimiter, "read_csv", path, lines[0].number);
    for (std::string& n : names) n = std::string(trim(n));
    first_row = 1;
    std::set<std::string> seen;
    for (const std::string& n : names)
      if (!seen.insert(n).second)
        fail("read_csv: {}:{}: the column name '{}' appears twice", path, lines[0].number, n);
  } else {
    const size_t count = split_csv_line(lines[0].text, delimiter, "read_csv", path, lines[0].number).size();
    for (size_t c = 0; c < count; ++c) names.push_back(std::to_string(c));
  }
  const size_t ncols = names.size();
  auto column_index = [&](const std::string& name, const char* what) {
    for (size_t c = 0; c < ncols; ++c)
      if (names[c] == name) return c;
    fail("read_csv: {}: {} names '{}', which is not a column (columns: {})", path, what, name,
         fmt::join(names, ", "));
  };

  // ---- fields, column-major ----
  std::vector<std::vector<std::string>> cells(ncols);
  std::vector<int64_t> line_of_row;
  for (size_t r = first_row; r < lines.size(); ++r) {
    std::vector<std::string> fields =
        split_csv_line(lines[r].text, delimiter, "read_csv", path, lines[r].number);
    if (fields.size() != ncols)
      fail("read_csv: {}:{}: expected {} fields, found {}", path, lines[r].number, ncols, fields.size());
    for (size_t c = 0; c < ncols; ++c) cells[c].push_back(std::move(fields[c]));
    line_of_row.push_back(lines[r].number);
  }
  const int64_t rows = static_cast<int64_t>(line_of_row.size());

  // ---- column types ----
  std::vector<ColumnType> types(ncols, ColumnType::automatic);
  for (const auto& [name, type] : options.column_types) types[column_index(name, "column_types")] = type;
  for (const auto& [name, vocab] : options.vocabularies) {
    size_t c = column_index(name, "vocabularies");
    if (types[c] == ColumnType::numeric || types[c] == ColumnType::ignore)
      fail("read_csv: {}: a vocabulary is given for column '{}', which is not categorical", path, name);
    types[c] = ColumnType::categorical;
  }
  std::vector<std::vector<double>> numbers(ncols);
  for (size_t c = 0; c < ncols; ++c) {
    if (types[c] != ColumnType::automatic && types[c] != ColumnType::numeric) continue;
    std::vector<double>& v = numbers[c];
    v.resize(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      if (parse_number(cells[c][r], &v[r])) continue;
      if (types[c] == ColumnType::numeric)
        fail("read_csv: {}:{}: column '{}': '{}' is not a number", path, line_of_row[r], names[c],
             cells[c][r]);
      types[c] = ColumnType::categorical;  // automatic, and a value is not a number
      v.clear();
      break;
    }
    if (types[c] == ColumnType::automatic) types[c] = ColumnType::numeric;
  }

  // ---- assemble ----
  CsvTable table;
  table.rows = rows;
  for (size_t c = 0; c < ncols; ++c) {
    if (types[c] == ColumnType::numeric) table.numeric_columns.push_back(names[c]);
    if (types[c] == ColumnType::categorical) table.categorical_columns.push_back(names[c]);
  }
  const int64_t nnum = static_cast<int64_t>(table.numeric_columns.size());
  const int64_t ncat = static_cast<int64_t>(table.categorical_columns.size());
  std::vector<double> numeric(static_cast<size_t>(rows * nnum));
  std::vector<int64_t> categorical(static_cast<size_t>(rows * ncat));
  int64_t jn = 0, jc = 0;
  for (size_t c = 0; c < ncols; ++c) {
    if (types[c] == ColumnType::numeric) {
      for (int64_t r = 0; r < rows; ++r) numeric[r * nnum + jn] = numbers[c][r];
      ++jn;
    } else if (types[c] == ColumnType::categorical) {
      auto given = options.vocabularies.find(names[c]);
      Vocabulary vocab = given != options.vocabularies.end() ? given->second
                                                             : Vocabulary::build(cells[c], options.min_count);
      for (int64_t r = 0; r < rows; ++r) categorical[r * ncat + jc] = vocab.index(cells[c][r]);
      table.vocabularies.emplace(names[c], std::move(vocab));
      ++jc;
    }
  }
  table.numeric = tensor<double>(numeric, {rows, nnum}).to(options.numeric_dtype);
  table.categorical = tensor<int64_t>(categorical, {rows, ncat});
  return table;
}

Tensor CsvTable::column(const std::string& name) const {
  for (size_t j = 0; j < numeric_columns.size(); ++j)
    if (numeric_columns[j] == name) return numeric.select(1, static_cast<int64_t>(j));
  for (size_t j = 0; j < categorical_columns.size(); ++j)
    if (categorical_columns[j] == name) return categorical.select(1, static_cast<int64_t>(j));
  fail("CsvTable::column: no numeric or categorical column '{}' (numeric: {}; categorical: {})", name,
       fmt::join(numeric_columns, ", "), fmt::join(categorical_columns, ", "));
}

}  // namespace ember::data
