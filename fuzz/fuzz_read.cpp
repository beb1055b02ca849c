// Reading a whole number from an image from outside: decode_image, then read_number (components,
// merges, cuts scored by a small network, each candidate through fit_ink), what `digits read` and
// POST /api/read do. Checks the promises of segment.hpp: boxes inside the image, probabilities in
// [0, 1], and the bounded work: at most kMaxComponents groups, each cut into at most
// kMaxCutsPerGroup + 1 pieces.
#include <cmath>

#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/segment.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  static const Network network = fuzzing::small_network();
  try {
    const GrayImage image = decode_image({data, size}, "fuzz");
    const NumberReading reading = read_number(network, image);
    const auto inside = [&](const Box& b) { return b.x >= 0 && b.y >= 0 && b.width > 0 && b.height > 0 && b.x + b.width <= image.width && b.y + b.height <= image.height; };
    if (reading.not_digits.size() > static_cast<std::size_t>(kMaxComponents)) __builtin_trap();
    if (reading.digits.size() > static_cast<std::size_t>(kMaxComponents) * (kMaxCutsPerGroup + 1)) __builtin_trap();
    if (reading.text().size() != reading.digits.size()) __builtin_trap();
    for (const Box& b : reading.not_digits)
      if (!inside(b)) __builtin_trap();
    for (const DigitCandidate& d : reading.digits) {
      if (!inside(d.box) || d.digit < 0 || d.digit > 9) __builtin_trap();
      for (float p : d.probabilities)
        if (!(p >= 0 && p <= 1)) __builtin_trap();
    }
  } catch (const Error&) {
  }
  return 0;
}
