#include "digits/preprocess.hpp"

#include <algorithm>
#include <cmath>

#include "digits/error.hpp"
#include "digits/tensor.hpp"

namespace digits {

namespace {

// The median of the pixels within `frame` of the edge: whole rows at the top and bottom, the two
// ends of the rows between (the interior is never looked at).
float border_median(const GrayImage& image) {
  const int frame = std::max(1, std::min(image.width, image.height) / 20);
  std::vector<float> border;
  for (int y = 0; y < image.height; ++y) {
    const float* row = &image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width)];
    const bool edge_row = y < frame || y >= image.height - frame;
    const int left_end = edge_row ? image.width : std::min(frame, image.width);  // x < frame, or the whole row
    const int right_start = std::max(left_end, image.width - frame);             // x ≥ width − frame, not counted twice
    border.insert(border.end(), row, row + left_end);
    border.insert(border.end(), row + right_start, row + image.width);
  }
  std::nth_element(border.begin(), border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2), border.end());
  return border[border.size() / 2];
}

// The (out × in) matrix that averages, for each output pixel k, the input interval it covers:
// [centre + (k − out/2)/scale, centre + (k + 1 − out/2)/scale), clipped to the input [0, in).
// Entry (k, i) is the overlap of that interval with input pixel [i, i+1), times scale, so a fully
// covered output pixel's weights sum to 1 and the mean ink is kept. Row k is zero outside the band
// first[k]…last[k] (empty when last[k] < first[k]: the interval misses the input), about 1/scale
// entries: the products below use only the band.
struct AreaWeights {
  Matrix weights;
  std::vector<int> first, last;
};

AreaWeights area_weights(int out, int in, double centre, double scale) {
  AreaWeights result{Matrix::Zero(out, in), std::vector<int>(static_cast<std::size_t>(out)), std::vector<int>(static_cast<std::size_t>(out))};
  for (int k = 0; k < out; ++k) {
    const double u0 = centre + (k - out / 2.0) / scale, u1 = centre + (k + 1 - out / 2.0) / scale;
    const int first = std::max(0, static_cast<int>(std::floor(u0))), last = std::min(in - 1, static_cast<int>(std::ceil(u1)) - 1);
    result.first[static_cast<std::size_t>(k)] = first, result.last[static_cast<std::size_t>(k)] = last;
    for (int i = first; i <= last; ++i) {
      const double overlap = std::min<double>(u1, i + 1) - std::max<double>(u0, i);
      if (overlap > 0) result.weights(k, i) = static_cast<float>(overlap * scale);
    }
  }
  return result;
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
  const Eigen::Map<const Matrix> gray(image.pixels.data(), image.height, image.width);
  if (result.inverted) result.values = ((255.0f - gray.array() - paper) * gain).cwiseMax(0.0f);
  else result.values = ((gray.array() - paper) * gain).cwiseMax(0.0f);
  return result;
}

Preprocessed fit_ink(const Ink& input) {
  const Matrix& ink = input.values;
  const int width = static_cast<int>(ink.cols()), height = static_cast<int>(ink.rows());
  Preprocessed result;
  result.inverted = input.inverted;

  // 3. The ink's bounding box and centre of mass, of the ink that counts: the rows that hold any
  // (their peaks, exact in float), then, row by row, each column's Σ v and Σ v·(y + ½) in double
  // (adding whole rows, which vectorises; Σ v·(x + ½) over the pixels is Σ (x + ½)·(Σ_y v)).
  const Matrix counted = (ink.array() > kInkThreshold).select(ink, 0.0f);
  const Eigen::VectorXf row_peak = counted.rowwise().maxCoeff();
  int top = 0, bottom = height - 1;
  while (top < height && !(row_peak(top) > 0)) ++top;
  if (top == height) throw Error("the image is empty: no ink brighter than 10% of full scale");
  while (!(row_peak(bottom) > 0)) --bottom;
  std::vector<double> column_mass(static_cast<std::size_t>(width)), column_moment_y(static_cast<std::size_t>(width));
  for (int y = top; y <= bottom; ++y) {
    const float* row = &counted(y, 0);
    const double centre_y = y + 0.5;  // pixel y covers [y, y+1)
    for (int x = 0; x < width; ++x) {
      column_mass[static_cast<std::size_t>(x)] += row[x];
      column_moment_y[static_cast<std::size_t>(x)] += centre_y * row[x];
    }
  }
  int left = 0, right = width - 1;
  while (column_mass[static_cast<std::size_t>(left)] == 0) ++left;
  while (column_mass[static_cast<std::size_t>(right)] == 0) --right;
  double mass = 0, moment_x = 0, moment_y = 0;
  for (int x = left; x <= right; ++x) {
    mass += column_mass[static_cast<std::size_t>(x)];
    moment_x += (x + 0.5) * column_mass[static_cast<std::size_t>(x)];
    moment_y += column_moment_y[static_cast<std::size_t>(x)];
  }

  // 4. One resampling: scale so the longer side of the box is 20, centre of mass to (14, 14):
  // field = rows · ink · colsᵀ, (28 × height)·(height × width)·(width × 28), each product taken
  // over the band of its weights alone (an output pixel covers about 1/scale input pixels a side:
  // the full products would multiply by zero 27 times in 28).
  const double scale = static_cast<double>(kDigitBox) / std::max(right - left + 1, bottom - top + 1);
  const AreaWeights rows = area_weights(kInputSide, height, moment_y / mass, scale);
  const AreaWeights cols = area_weights(kInputSide, width, moment_x / mass, scale);
  Matrix through_rows = Matrix::Zero(kInputSide, width);  // rows · ink, (28 × width)
  for (int k = 0; k < kInputSide; ++k) {
    const int first = rows.first[static_cast<std::size_t>(k)], n = rows.last[static_cast<std::size_t>(k)] - first + 1;
    if (n > 0) through_rows.row(k).noalias() = rows.weights.row(k).segment(first, n) * ink.middleRows(first, n);
  }
  Matrix field = Matrix::Zero(kInputSide, kInputSide);  // (rows · ink) · colsᵀ, (28 × 28)
  for (int k = 0; k < kInputSide; ++k) {
    const int first = cols.first[static_cast<std::size_t>(k)], n = cols.last[static_cast<std::size_t>(k)] - first + 1;
    if (n > 0) field.col(k).noalias() = through_rows.middleCols(first, n) * cols.weights.row(k).segment(first, n).transpose();
  }

  const float brightest = field.maxCoeff();
  if (brightest > 0) field *= 255.0f / brightest;
  result.pixels.assign(field.data(), field.data() + field.size());
  return result;
}

Preprocessed preprocess(const GrayImage& image) { return fit_ink(find_ink(image)); }

}  // namespace digits
