// The data URL of a drawing ("data:image/png;base64,…") and its base64: decode_data_url on any text,
// and decode_base64 of our own encoding of any bytes, which must give those bytes back.
#include "digits/error.hpp"
#include "fuzz_support.hpp"
#include "server/api.hpp"

namespace {

std::string encode_base64(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string text;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16 | std::uint32_t(std::uint8_t(bytes[i + 1])) << 8 | std::uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) text += alphabet[v >> shift & 63];
  }
  if (const std::size_t left = bytes.size() - i; left > 0) {
    const std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16 | (left == 2 ? std::uint32_t(std::uint8_t(bytes[i + 1])) << 8 : 0);
    text += alphabet[v >> 18 & 63];
    text += alphabet[v >> 12 & 63];
    text += left == 2 ? alphabet[v >> 6 & 63] : '=';
    text += '=';
  }
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  const std::string_view text = fuzzing::as_text(data, size);
  try {
    const std::string bytes = server::decode_data_url(text);
    if (bytes.size() > text.size()) __builtin_trap();
  } catch (const server::RequestError& e) {
    if (e.status != 400) __builtin_trap();
  }
  if (server::decode_base64(encode_base64(text)) != text) __builtin_trap();
  return 0;
}
