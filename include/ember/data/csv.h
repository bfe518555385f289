#pragma once
// CSV/TSV tables with numeric and categorical columns.
// Fields are separated by one delimiter character and may be double-quoted ("a,b" and "say ""hi"""),
// within one line. Categorical columns become int64 indices into a Vocabulary built from the file
// (values seen fewer than min_count times, and values missing from a given vocabulary, map to
// index 0, "<unk>"). A malformed line throws ember::Error naming the file and the line number.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ember/tensor.h"

namespace ember::data {

class Vocabulary {
 public:
  static constexpr int64_t kUnknown = 0;
  Vocabulary();  // only "<unk>"
  // Index 0 is "<unk>"; then every value seen at least min_count times, most frequent first (ties in
  // byte order), so the same data always gives the same indices.
  static Vocabulary build(const std::vector<std::string>& values, int64_t min_count = 1);

  int64_t index(std::string_view token) const;  // kUnknown when absent
  const std::string& token(int64_t index) const;
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> index_;
};

enum class ColumnType {
  automatic,  // numeric when every value parses as a number, else categorical
  numeric,
  categorical,
  ignore,
};

struct CsvOptions {
  std::optional<char> delimiter;  // unset: '\t' for a *.tsv file, ',' otherwise
  int64_t skip_rows = 0;          // lines of the file to ignore first (a preamble, such as the
                                  // count line of scikit-learn's CSVs; blank lines count too)
  bool header = true;             // the first line names the columns (else they are "0", "1", ...)
  std::map<std::string, ColumnType> column_types;  // columns not listed are `automatic`
  int64_t min_count = 1;                           // for the vocabularies built here
  std::map<std::string, Vocabulary> vocabularies;  // use these (e.g. the training file's) instead
  DType numeric_dtype = DType::float32;
};

struct CsvTable {
  int64_t rows = 0;
  std::vector<std::string> numeric_columns;      // in file order
  Tensor numeric;                                // [rows, numeric_columns.size()]
  std::vector<std::string> categorical_columns;  // in file order
  Tensor categorical;                            // int64 [rows, categorical_columns.size()]
  std::map<std::string, Vocabulary> vocabularies;

  // One column by name: a [rows] view of `numeric` or `categorical`.
  Tensor column(const std::string& name) const;
};

CsvTable read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace ember::data
