#include "digits/base64.hpp"

#include <algorithm>
#include <cstdint>

#include "digits/error.hpp"

namespace digits {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A character's 6-bit value, or −1 when it is not in the alphabet.
int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string encode_base64(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    // Three bytes (24 bits) → four 6-bit digits; a short last group is padded with '='.
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t group = 0;  // the missing bytes are 0
    for (std::size_t k = 0; k < 3; ++k) group = group << 8 | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) text.push_back(k <= n ? kAlphabet[group >> (18 - 6 * k) & 63] : '=');
  }
  return text;
}

std::string decode_base64(std::string_view text) {
  const std::size_t length = text.size();
  std::size_t padding = 0;
  while (padding < length && text[length - 1 - padding] == '=') ++padding;
  if (padding > 2 || (padding > 0 && length % 4 != 0))
    throw Error("base64 text ends in " + std::to_string(padding) + " '=' in " + std::to_string(length) +
                " characters; padding is one or two '=' that make the length a multiple of 4");
  text.remove_suffix(padding);
  if (text.size() % 4 == 1)
    throw Error("base64 text has a wrong length: " + std::to_string(text.size()) + " characters leave 6 bits, not a whole byte");
  std::string bytes;
  bytes.reserve(text.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int value = sextet(text[i]);
    if (value < 0)
      throw Error("base64 text holds a character that is not base64 at position " + std::to_string(i) +
                  " (byte " + std::to_string(static_cast<unsigned char>(text[i])) + "); the alphabet is A–Z a–z 0–9 + /");
    buffer = buffer << 6 | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>(buffer >> bits & 0xff));
    }
  }
  return bytes;
}

}  // namespace digits
