#pragma once
#include <cstdint>
#include <string>

#include "ember/error.h"

namespace ember {

class Device {
 public:
  enum class Type : uint8_t { cpu, cuda };
  constexpr Device() = default;
  constexpr Device(Type type, int index) : type_(type), index_(index) {}
  static constexpr Device cpu() { return Device(Type::cpu, 0); }
  static constexpr Device cuda(int index = 0) { return Device(Type::cuda, index); }
  constexpr bool is_cpu() const { return type_ == Type::cpu; }
  constexpr bool is_cuda() const { return type_ == Type::cuda; }
  constexpr int index() const { return index_; }
  constexpr Type type() const { return type_; }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index_); }
  constexpr bool operator==(const Device&) const = default;

 private:
  Type type_ = Type::cpu;
  int index_ = 0;
};

inline constexpr Device kCPU = Device::cpu();

}  // namespace ember

template <>
struct fmt::formatter<ember::Device> : fmt::formatter<std::string> {
  auto format(const ember::Device& d, format_context& ctx) const {
    return fmt::formatter<std::string>::format(d.str(), ctx);
  }
};
