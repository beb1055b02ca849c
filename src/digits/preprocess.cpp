#include "digits/preprocess.hpp"

#include <algorithm>
#include <cmath>

#include "digits/error.hpp"
#include "digits/tensor.hpp"

namespace digits {

namespace {

float border_median(const GrayImage& image) {
  const int frame = std::max(1, std::min(image.width, image.height) / 20);
  std::vector<float> border;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (x < frame || y < frame || x >= image.width - frame || y >= image.height - frame) border.push_back(image.at(x, y));
    }
  }
  std::nth_element(border.begin(), border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2), border.end());
  return border[border.size() / 2];
}

// The (out × in) matrix that averages, for each output pixel k, the input interval it covers:
// [centre + (k − out/2)/scale, centre + (k + 1 − out/2)/scale), clipped to the input [0, in).
// Entry (k, i) is the overlap of that interval with input pixel [i, i+1), times scale, so a fully
// covered output pixel's weights sum to 1 and the mean ink is kept.
Matrix area_weights(int out, int in, double centre, double scale) {
  Matrix weights = Matrix::Zero(out, in);
  for (int k = 0; k < out; ++k) {
    const double u0 = centre + (k - out / 2.0) / scale, u1 = centre + (k + 1 - out / 2.0) / scale;
    const int first = std::max(0, static_cast<int>(std::floor(u0))), last = std::min(in - 1, static_cast<int>(std::ceil(u1)) - 1);
    for (int i = first; i <= last; ++i) {
      const double overlap = std::min<double>(u1, i + 1) - std::max<double>(u0, i);
      if (overlap > 0) weights(k, i) = static_cast<float>(overlap * scale);
    }
  }
  return weights;
}

}  // namespace

Ink find_ink(const GrayImage& image) {
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height))
    throw Error("the image has no pixels");
  Ink result;

  // 1–2. Polarity and paper level: ink becomes bright, paper 0.
  float paper = border_median(image);
  result.inverted = paper > 127.5f;
  if (result.inverted) paper = 255.0f - paper;
  const float gain = 255.0f / std::max(255.0f - paper, 1.0f);
  result.values.resize(image.height, image.width);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const float v = result.inverted ? 255.0f - image.at(x, y) : image.at(x, y);
      result.values(y, x) = std::max(0.0f, (v - paper) * gain);
    }
  }
  return result;
}

Preprocessed fit_ink(const Ink& input) {
  const Matrix& ink = input.values;
  const int width = static_cast<int>(ink.cols()), height = static_cast<int>(ink.rows());
  Preprocessed result;
  result.inverted = input.inverted;

  // 3. The ink's bounding box and centre of mass.
  int left = width, right = -1, top = height, bottom = -1;
  double mass = 0, moment_x = 0, moment_y = 0;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const float v = ink(y, x);
      if (v <= kInkThreshold) continue;
      left = std::min(left, x), right = std::max(right, x), top = std::min(top, y), bottom = std::max(bottom, y);
      mass += v, moment_x += v * (x + 0.5), moment_y += v * (y + 0.5);  // pixel x covers [x, x+1)
    }
  }
  if (right < 0) throw Error("the image is empty: no ink brighter than 10% of full scale");

  // 4. One resampling: scale so the longer side of the box is 20, centre of mass to (14, 14).
  const double scale = static_cast<double>(kDigitBox) / std::max(right - left + 1, bottom - top + 1);
  const Matrix rows = area_weights(kInputSide, height, moment_y / mass, scale);  // (28 × height)
  const Matrix cols = area_weights(kInputSide, width, moment_x / mass, scale);   // (28 × width)
  Matrix field = rows * ink * cols.transpose();                                   // (28 × 28)

  const float brightest = field.maxCoeff();
  if (brightest > 0) field *= 255.0f / brightest;
  result.pixels.assign(field.data(), field.data() + field.size());
  return result;
}

Preprocessed preprocess(const GrayImage& image) { return fit_ink(find_ink(image)); }

}  // namespace digits
