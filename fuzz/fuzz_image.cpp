// An image from outside: decode_image (whatever decoders it uses) followed by preprocess, the two
// steps every image file and every drawing sent to the server go through.
#include <algorithm>
#include <cmath>

#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/preprocess.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  try {
    const GrayImage image = decode_image({data, size}, "fuzz");
    if (image.width < 1 || image.height < 1 || image.width > kMaxImageSide || image.height > kMaxImageSide) __builtin_trap();
    // Reduced as it was decoded (image.hpp): the longer side is under 2·kReducedSide.
    if (std::max(image.width, image.height) >= 2 * kReducedSide) __builtin_trap();
    if (image.pixels.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height)) __builtin_trap();
    for (float v : image.pixels)
      if (!(v >= 0 && v <= 255)) __builtin_trap();
    const Preprocessed input = preprocess(image);
    if (input.pixels.size() != static_cast<std::size_t>(kInputSide * kInputSide)) __builtin_trap();
    for (float v : input.pixels)
      if (!std::isfinite(v)) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
