#include "nn/data/csv_line.h"

#include "ember/error.h"

namespace ember::data::detail {

std::vector<std::string> split_csv_line(std::string_view s, char delimiter, std::string_view op,
                                        const std::string& path, int64_t line_number) {
  std::vector<std::string> fields;
  size_t i = 0;
  for (;;) {
    std::string field;
    if (i < s.size() && s[i] == '"') {
      const size_t open = i++;
      for (;;) {
        if (i >= s.size())
          fail("{}: {}:{}: the quote opened at column {} is never closed", op, path, line_number, open + 1);
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += s[i++];
      }
      if (i < s.size() && s[i] != delimiter)
        fail("{}: {}:{}: unexpected character '{}' after the closing quote at column {}", op, path,
             line_number, s[i], i + 1);
    } else {
      size_t end = s.find(delimiter, i);
      if (end == std::string_view::npos) end = s.size();
      field.assign(s.substr(i, end - i));
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= s.size()) break;
    ++i;                  // the delimiter
    if (i == s.size()) {  // a trailing delimiter ends with an empty field
      fields.emplace_back();
      break;
    }
  }
  return fields;
}

std::string quote_csv_field(const std::string& field, char delimiter) {
  const bool needs_quotes = field.find_first_of(std::string{delimiter, '"', '\n', '\r'}) != std::string::npos;
  if (!needs_quotes) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace ember::data::detail
