// Message text for errors, built by plain string concatenation: never iostreams, never locales.
// A toolchain that links libstdc++ statically (the first GPU machine's) crashed inside
// std::ostream's locale facets on the first error message; std::to_chars touches neither.
//
//   throw std::invalid_argument(text::cat("x must be 4-D; got ", ndim, " dimensions"));
#pragma once
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace fastconv::text {

// Integers in decimal and doubles in their shortest round-trip form (as Python's repr would write
// them, but "2" for 2.0), through std::to_chars.
template <typename T>
void append(std::string& out, T v) {
  static_assert(std::is_arithmetic_v<T>, "text::append takes numbers, strings and chars");
  if constexpr (std::is_same_v<T, bool>) {
    out += v ? "True" : "False";
  } else if constexpr (std::is_same_v<T, char>) {
    out += v;
  } else {
    char buf[64];
    std::to_chars_result r;
    if constexpr (std::is_floating_point_v<T>)
      r = std::to_chars(buf, buf + sizeof buf, static_cast<double>(v));
    else
      r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

inline void append(std::string& out, const char* s) { out += s ? s : "(null)"; }
inline void append(std::string& out, std::string_view s) { out += s; }
inline void append(std::string& out, const std::string& s) { out += s; }

// All parts, in order, as one string.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (append(out, parts), ...);
  return out;
}

// "(2, 3)", "(4,)", "()": a shape as Python writes a tuple.
template <typename Seq>
std::string tuple_str(const Seq& dims) {
  std::string out = "(";
  std::size_t i = 0;
  for (const auto& d : dims) {
    if (i++) out += ", ";
    append(out, d);
  }
  out += i == 1 ? ",)" : ")";
  return out;
}

}  // namespace fastconv::text
