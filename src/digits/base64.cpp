#include "digits/base64.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "digits/error.hpp"

namespace digits {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Each byte's 6-bit value, or −1 when it is not in the alphabet: one lookup a character, as a
// server decodes megabytes of data URLs (the branchy version took 20 ms for a 4 MiB body).
constexpr std::array<std::int8_t, 256> kSextets = [] {
  std::array<std::int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}();
int sextet(char c) { return kSextets[static_cast<unsigned char>(c)]; }

[[noreturn]] void not_base64(std::string_view text, std::size_t i) {
  throw Error("base64 text holds a character that is not base64 at position " + std::to_string(i) + " (byte " +
              std::to_string(static_cast<unsigned char>(text[i])) + "); the alphabet is A–Z a–z 0–9 + /");
}

}  // namespace

std::string encode_base64(std::string_view bytes) {
  // Three bytes (24 bits) → four 6-bit digits, written in place; a short last group is padded with
  // '='. (push_back a character at a time took twice as long: the maps of a /api/predict answer are
  // 28 KB.)
  std::string text((bytes.size() + 2) / 3 * 4, '=');
  const auto byte = [&](std::size_t i) { return i < bytes.size() ? static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) : 0u; };
  char* out = text.data();
  for (std::size_t i = 0; i < bytes.size(); i += 3, out += 4) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    const std::uint32_t group = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);  // the missing bytes are 0
    out[0] = kAlphabet[group >> 18 & 63];
    out[1] = kAlphabet[group >> 12 & 63];
    if (n > 1) out[2] = kAlphabet[group >> 6 & 63];
    if (n > 2) out[3] = kAlphabet[group & 63];
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
  // Four characters (24 bits) → three bytes; a last group of 2 or 3 characters gives 1 or 2.
  std::string bytes(text.size() * 3 / 4, '\0');
  char* out = bytes.data();
  std::size_t i = 0;
  for (; i + 4 <= text.size(); i += 4) {
    const int a = sextet(text[i]), b = sextet(text[i + 1]), c = sextet(text[i + 2]), d = sextet(text[i + 3]);
    if ((a | b | c | d) < 0)
      for (std::size_t k = i;; ++k)
        if (sextet(text[k]) < 0) not_base64(text, k);
    const auto group = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6 | d);
    *out++ = static_cast<char>(group >> 16);
    *out++ = static_cast<char>(group >> 8 & 0xff);
    *out++ = static_cast<char>(group & 0xff);
  }
  std::uint32_t buffer = 0;
  int bits = 0;
  for (; i < text.size(); ++i) {
    const int value = sextet(text[i]);
    if (value < 0) not_base64(text, i);
    buffer = buffer << 6 | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *out++ = static_cast<char>(buffer >> bits & 0xff);
    }
  }
  return bytes;
}

}  // namespace digits
