// The one preprocessing function. Training data, `digits predict`, `digits evaluate --images` and
// the app's canvas all reach the network through it, so they cannot disagree.
#pragma once

#include <vector>

#include "digits/image.hpp"
#include "digits/tensor.hpp"

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
//  (1–2 are so for a drawing, whose paper is exactly one level. A photograph of paper, lit
//  unevenly and noisy, gets the paper's level region by region, its ink measured against its own
//  paper's light and above the noise, and specks of dust dropped: preprocess.cpp gives the math.)
//  3. No ink (nothing brighter than 10% of full scale) is an Error, not a guess.
//  4. One resampling does crop, scale and centring: output pixel (X, Y) is the average of the
//     source area it covers, u = c + (X − 14)/s (and likewise for y), where c is the ink's centre
//     of mass and s = 20 / (longer side of the ink's box).
// The result is raw 0–255 values: the model's own input_scale is applied by Network::predict_proba.
// preprocess(image) is fit_ink(find_ink(image)): steps 1–2, then 3–4. Reading a number
// (segment.hpp) runs step 1–2 once on the whole image and steps 3–4 on each digit candidate's ink.
Preprocessed preprocess(const GrayImage& image);

// Ink brighter than this (10% of full scale) counts for the box and the centre of mass; fainter is
// paper, noise or anti-aliasing.
inline constexpr float kInkThreshold = 25.5f;

struct Ink {
  Matrix values;          // (height × width): 0 for paper, up to 255 for the darkest ink
  bool inverted = false;  // the image was dark ink on light paper
};

// Steps 1–2: polarity and paper level. Throws Error for an image with no pixels.
Ink find_ink(const GrayImage& image);

// Steps 3–4 on ink as find_ink makes it. Throws Error when no value passes kInkThreshold.
Preprocessed fit_ink(const Ink& ink);

}  // namespace digits
