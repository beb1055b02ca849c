// The data URL of a drawing ("data:image/png;base64,…") and its base64 (digits/base64.hpp):
// decode_data_url and decode_base64 on any text, which refuse it or give at most 3 bytes per 4
// characters, and decode_base64 of encode_base64 of any bytes, which must give those bytes back.
#include "digits/base64.hpp"
#include "digits/error.hpp"
#include "fuzz_support.hpp"
#include "server/api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  const std::string_view text = fuzzing::as_text(data, size);
  try {
    const std::string bytes = server::decode_data_url(text);
    if (bytes.size() > text.size()) __builtin_trap();
  } catch (const server::RequestError& e) {
    if (e.status != 400) __builtin_trap();
  }
  if (decode_base64(encode_base64(text)) != text) __builtin_trap();
  try {
    const std::string bytes = decode_base64(text);  // any text: refused with an Error, or 3 bytes per 4 characters
    if (bytes.size() > text.size() * 3 / 4) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
