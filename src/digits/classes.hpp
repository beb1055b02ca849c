// What a network's outputs mean. Ten outputs are the digits 0–9. An eleventh, when a model has one,
// is "not a digit": trained on letters, signs, scribbles, crossings-out and stray strokes labelled
// 10 beside the digits (docs/robustness.md, "Not a digit"), so that the softmax over eleven classes
// can put its mass on "none of the ten" instead of on the least unlikely digit.
#pragma once

#include <cstdint>

namespace digits {

inline constexpr int kDigitClasses = 10;
// The label and output index of "not a digit" in a model with kDigitClasses + 1 outputs. A folder
// of images names such an image none_anything.png (image_folder.hpp).
inline constexpr std::uint8_t kNotADigit = 10;

// True for a network's class count that has the "not a digit" output.
constexpr bool has_not_a_digit(int classes) { return classes == kDigitClasses + 1; }

}  // namespace digits
