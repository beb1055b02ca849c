// What a network's outputs mean. Ten outputs are the digits 0–9. An eleventh, when a model has one,
// is "not a digit": trained on letters, signs, scribbles, crossings-out and stray strokes labelled
// 10 beside the digits (docs/robustness.md, "Not a digit"), so that the softmax over eleven classes
// can put its mass on "none of the ten" instead of on the least unlikely digit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace digits {

inline constexpr int kDigitClasses = 10;
// The label and output index of "not a digit" in a model with kDigitClasses + 1 outputs. A folder
// of images names such an image none_anything.png (image_folder.hpp).
inline constexpr std::uint8_t kNotADigit = 10;

// True for a network's class count that has the "not a digit" output.
constexpr bool has_not_a_digit(int classes) { return classes == kDigitClasses + 1; }

// One image's probabilities, as every answer reads them (the API, the CLI, reading a number):
// the most probable digit, and whether "not a digit" is more probable still. With eleven classes
// the probabilities are the eleven-way softmax's, so the ten digit values add up to
// 1 − not_a_digit_probability, not to 1: nothing is renormalised.
struct ClassReading {
  int digit = 0;                                   // the most probable of the digits 0–9
  float probability = 0;                           // its probability
  bool not_a_digit = false;                        // "not a digit" is the most probable of all the classes
  std::optional<float> not_a_digit_probability;    // empty for a model without that output
};

// probabilities: one image's softmax output, 10 values (or 11 with "not a digit"; a model of fewer
// classes reads as digits 0 to classes − 1). A tie between a digit and "not a digit" goes to the digit.
inline ClassReading read_classes(std::span<const float> probabilities) {
  ClassReading reading;
  const std::size_t digits = std::min<std::size_t>(probabilities.size(), kDigitClasses);
  const auto top = std::max_element(probabilities.begin(), probabilities.begin() + static_cast<std::ptrdiff_t>(digits));
  reading.digit = static_cast<int>(top - probabilities.begin());
  reading.probability = digits ? *top : 0.0f;
  if (has_not_a_digit(static_cast<int>(probabilities.size()))) {
    reading.not_a_digit_probability = probabilities[kNotADigit];
    reading.not_a_digit = probabilities[kNotADigit] > reading.probability;
  }
  return reading;
}

}  // namespace digits
