#pragma once
// Splitting one CSV/TSV line into fields, shared by read_csv and the metrics reader. Internal.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::data::detail {

// A field may be double-quoted; inside quotes the delimiter is literal and "" stands for one quote.
// Errors name `op`, the file and the 1-based line number.
std::vector<std::string> split_csv_line(std::string_view line, char delimiter, std::string_view op,
                                        const std::string& path, int64_t line_number);

// The field as it must be written so that split_csv_line reads it back unchanged. A field with a
// line break is quoted too, but line-based readers (read_csv, read_metrics) cannot read it back.
std::string quote_csv_field(const std::string& field, char delimiter);

}  // namespace ember::data::detail
