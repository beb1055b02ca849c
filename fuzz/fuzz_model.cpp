// The model file (safetensors): parse_model on any bytes. What it accepts must save and load again
// to the same bytes (the format's round trip is bit-exact, docs/model-format.md).
#include "digits/error.hpp"
#include "digits/model_file.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  try {
    const Model model = parse_model({data, size}, "fuzz");
    const std::string saved = serialize_model(model.network, model.metadata, model.extra);
    const auto* bytes = reinterpret_cast<const unsigned char*>(saved.data());
    const Model again = parse_model({bytes, saved.size()}, "fuzz (saved again)");
    if (serialize_model(again.network, again.metadata, again.extra) != saved) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
