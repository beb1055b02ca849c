// The one preprocessing function. Training data, `digits predict`, `digits evaluate --images` and
// the app's canvas all reach the network through it, so they cannot disagree.
#pragma once

#include <vector>

#include "digits/image.hpp"

namespace digits {

inline constexpr int kInputSide = 28;  // MNIST's field
inline constexpr int kDigitBox = 20;   // MNIST's digits fit a 20×20 box inside it

struct Preprocessed {
  std::vector<float> pixels;  // 28×28 = 784 values, row-major, 0–255, white ink on black
  bool inverted = false;      // the image was dark ink on light paper
};

// Makes any grayscale image into what the network was trained on, the way MNIST was made
// (LeCun et al.): white ink on black; the ink's bounding box scaled, aspect kept and area-averaged,
// to fit 20×20; placed in a 28×28 field with its centre of mass at the centre; brightest ink 255.
//  1. Polarity: the border's median decides the paper; light paper is inverted.
//  2. The paper's level is subtracted, so gray paper becomes black.
//  3. No ink (nothing brighter than 10% of full scale) is an Error, not a guess.
//  4. One resampling does crop, scale and centring: output pixel (X, Y) is the average of the
//     source area it covers, u = c + (X − 14)/s (and likewise for y), where c is the ink's centre
//     of mass and s = 20 / (longer side of the ink's box).
// The result is raw 0–255 values: the model's own input_scale is applied by Network::predict_proba.
Preprocessed preprocess(const GrayImage& image);

}  // namespace digits
