// Decoded pixels turned gray and reduced (decoders.hpp, GrayReducer): in a file of its own, apart
// from the decoders, so the WebAssembly build (src/web_wasm), which gets its pixels from a canvas,
// makes the same gray values from them as `digits predict` makes from the same drawing's PNG.
#include <algorithm>
#include <cstddef>

#include "digits/decoders.hpp"
#include "digits/image.hpp"

namespace digits {

int reduction_factor(int width, int height) { return std::max(1, std::max(width, height) / kReducedSide); }

GrayReducer::GrayReducer(int width, int height, int factor, int bytes_per_pixel, bool colour, bool alpha)
    : width_(width),
      height_(height),
      factor_(factor),
      bytes_per_pixel_(bytes_per_pixel),
      colour_(colour),
      alpha_(alpha),
      out_width_((width + factor - 1) / factor),
      out_height_((height + factor - 1) / factor),
      sum_(static_cast<std::size_t>(out_width_) * static_cast<std::size_t>(out_height_)),
      sum_alpha_(alpha ? sum_.size() : 0) {}

void GrayReducer::add(int y, const unsigned char* samples, int x0, int dx, int count) {
  const std::size_t row = static_cast<std::size_t>(y / factor_) * static_cast<std::size_t>(out_width_);
  float* sum = &sum_[row];
  float* sum_alpha = alpha_ ? &sum_alpha_[row] : nullptr;
  // The output column X = ⌊x/f⌋, followed as x grows rather than divided for every pixel.
  int column = x0 / factor_, next_edge = (column + 1) * factor_;
  const unsigned char* p = samples;
  for (int k = 0, x = x0; k < count; ++k, x += dx, p += bytes_per_pixel_) {
    while (x >= next_edge) ++column, next_edge += factor_;
    const float g = colour_ ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
    if (!alpha_) {
      sum[column] += g;
      continue;
    }
    const float a = p[bytes_per_pixel_ - 1];
    sum[column] += a * g;
    sum_alpha[column] += a;
    drawn_ += static_cast<double>(a) * g;
    weight_ += a;
  }
}

GrayImage GrayReducer::finish() {
  GrayImage image{out_width_, out_height_, std::move(sum_)};
  const float background = alpha_ && weight_ > 0 && drawn_ / weight_ < 128.0 ? 255.0f : 0.0f;
  for (int Y = 0; Y < out_height_; ++Y) {
    const int rows = std::min(factor_, height_ - Y * factor_);
    for (int X = 0; X < out_width_; ++X) {
      const float n = static_cast<float>(rows * std::min(factor_, width_ - X * factor_));
      const std::size_t i = static_cast<std::size_t>(Y) * static_cast<std::size_t>(out_width_) + static_cast<std::size_t>(X);
      float& v = image.pixels[i];
      if (alpha_) v = (v / 255.0f + (n - sum_alpha_[i] / 255.0f) * background) / n;  // (Σ a·g + (n − Σ a)·background) / n
      else if (factor_ > 1) v /= n;
    }
  }
  return image;
}

GrayImage to_gray(const Pixels& decoded) {
  const bool colour = decoded.channels >= 3, alpha = decoded.channels == 2 || decoded.channels == 4;
  GrayReducer gray(decoded.width, decoded.height, 1, decoded.channels, colour, alpha);
  const std::size_t stride = static_cast<std::size_t>(decoded.width) * static_cast<std::size_t>(decoded.channels);
  for (int y = 0; y < decoded.height; ++y) gray.add_row(y, &decoded.samples[static_cast<std::size_t>(y) * stride]);
  return gray.finish();
}

}  // namespace digits
