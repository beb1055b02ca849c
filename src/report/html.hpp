// Small helpers for writing HTML and SVG text by hand.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace digits::report {

// Text made safe to put between tags or inside a quoted attribute: & < > " ' become entities.
// Every piece of text that comes from outside this program (file names, metadata) goes through it.
inline std::string escape_html(std::string_view text) {
  std::string safe;
  safe.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': safe += "&amp;"; break;
      case '<': safe += "&lt;"; break;
      case '>': safe += "&gt;"; break;
      case '"': safe += "&quot;"; break;
      case '\'': safe += "&#39;"; break;
      default: safe += c;
    }
  }
  return safe;
}

// printf-style formatting into a std::string, for numbers in coordinates and labels.
template <typename... Args>
std::string format(const char* pattern, Args... args) {
  const int size = std::snprintf(nullptr, 0, pattern, args...);
  std::string text(static_cast<std::size_t>(size > 0 ? size : 0), '\0');
  std::snprintf(text.data(), text.size() + 1, pattern, args...);
  return text;
}

}  // namespace digits::report
