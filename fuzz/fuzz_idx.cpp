// IDX (MNIST's format), plain or gzipped: read_idx on an image file and a label file.
// The input is both files: its first 4 bytes (little-endian) say how many of the rest belong to the
// image file (modulo their number, plus one); the remainder is the label file. Each is written as it
// is, so the seeds hold plain and gzipped pairs and read_idx decides by content, as it does for users.
#include <algorithm>
#include <cstring>

#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  if (size < 4) return -1;
  std::uint32_t split = 0;
  std::memcpy(&split, data, 4);
  const std::span<const std::uint8_t> rest(data + 4, size - 4);
  const std::size_t image_bytes = split % (rest.size() + 1);
  const auto& dir = fuzzing::scratch_dir();
  fuzzing::write_bytes(dir / "images", rest.first(image_bytes));
  fuzzing::write_bytes(dir / "labels", rest.subspan(image_bytes));
  try {
    const Dataset set = read_idx(dir / "images", dir / "labels", "fuzz");
    // What read_idx promises its callers: whole images and a label 0–9 for each.
    if (set.pixels.size() != set.size() * static_cast<std::size_t>(set.features())) __builtin_trap();
    if (std::any_of(set.labels.begin(), set.labels.end(), [](std::uint8_t label) { return label > 9; })) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
