// Decoded pixels turned gray and reduced (decoders.hpp, GrayReducer): in a file of its own, apart
// from the decoders, so the WebAssembly build (src/web_wasm), which gets its pixels from a canvas,
// makes the same gray values from them as `digits predict` makes from the same drawing's PNG.
#include <algorithm>
#include <cstddef>
#include <cstdint>

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

namespace {

// A pixel's gray: its luma, 0.299 R + 0.587 G + 0.114 B, or its gray sample.
template <bool kColour>
float gray_of(const unsigned char* p) {
  if constexpr (kColour) return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
  return p[0];
}

// Σ a·s for each sample s (gray, or red, green, blue) and Σ a, a pixel's contribution to what
// decides the background (finish()).
void count_drawn(const unsigned char* p, unsigned a, bool colour, std::uint64_t drawn[3], std::uint64_t& weight) {
  for (int c = 0; c < (colour ? 3 : 1); ++c) drawn[c] += a * p[c];
  weight += a;
}

// A row whose pixels are the output pixels themselves (f = 1, every pixel of the row in order:
// any image under kReducedSide that is not interlaced, the page's drawing among them). There is
// no block to follow, and with the pixel's size and kind known to the compiler the loop is
// vectorised: for the page's 280×280 RGBA drawing, about ten times faster than the general loop
// in add(), with the same float operations on every pixel, so the same values bit for bit.
template <int kBytes, bool kColour, bool kAlpha>
void add_whole_row(const unsigned char* samples, int count, float* sum, float* sum_alpha, std::uint64_t drawn[3], std::uint64_t& weight) {
  // Σ a·s and Σ a over the row, added to drawn and weight at the end: at most 255² a pixel, so
  // 32 bits hold a row of up to 66,051 pixels (add() sends at most kMaxImageSide), and the
  // vectorised sums stay 32 bits wide.
  std::uint32_t r = 0, g = 0, b = 0, w = 0;
  for (int x = 0; x < count; ++x) {
    const unsigned char* p = samples + static_cast<std::ptrdiff_t>(x) * kBytes;
    const float gray = gray_of<kColour>(p);
    if constexpr (!kAlpha) {
      sum[x] += gray;
    } else {
      const unsigned a = p[kBytes - 1];
      sum[x] += static_cast<float>(a) * gray;
      sum_alpha[x] += static_cast<float>(a);
      r += a * p[0];
      if constexpr (kColour) g += a * p[1], b += a * p[2];
      w += a;
    }
  }
  drawn[0] += r, drawn[1] += g, drawn[2] += b, weight += w;
}

}  // namespace

void GrayReducer::add(int y, const unsigned char* samples, int x0, int dx, int count) {
  const std::size_t row = static_cast<std::size_t>(y / factor_) * static_cast<std::size_t>(out_width_);
  float* sum = &sum_[row];
  float* sum_alpha = alpha_ ? &sum_alpha_[row] : nullptr;
  if (factor_ == 1 && dx == 1 && count <= kMaxImageSide) {
    float* s = sum + x0;
    float* s_alpha = alpha_ ? sum_alpha + x0 : nullptr;
    if (bytes_per_pixel_ == 1 && !colour_ && !alpha_) return add_whole_row<1, false, false>(samples, count, s, s_alpha, drawn_, weight_);
    if (bytes_per_pixel_ == 2 && !colour_ && alpha_) return add_whole_row<2, false, true>(samples, count, s, s_alpha, drawn_, weight_);
    if (bytes_per_pixel_ == 3 && colour_ && !alpha_) return add_whole_row<3, true, false>(samples, count, s, s_alpha, drawn_, weight_);
    if (bytes_per_pixel_ == 4 && colour_ && alpha_) return add_whole_row<4, true, true>(samples, count, s, s_alpha, drawn_, weight_);
  }
  // The output column X = ⌊x/f⌋, followed as x grows rather than divided for every pixel.
  int column = x0 / factor_, next_edge = (column + 1) * factor_;
  const unsigned char* p = samples;
  for (int k = 0, x = x0; k < count; ++k, x += dx, p += bytes_per_pixel_) {
    while (x >= next_edge) ++column, next_edge += factor_;
    const float g = colour_ ? gray_of<true>(p) : gray_of<false>(p);
    if (!alpha_) {
      sum[column] += g;
      continue;
    }
    const unsigned a = p[bytes_per_pixel_ - 1];
    sum[column] += static_cast<float>(a) * g;
    sum_alpha[column] += static_cast<float>(a);
    count_drawn(p, a, colour_, drawn_, weight_);
  }
}

GrayImage GrayReducer::finish() {
  GrayImage image{out_width_, out_height_, std::move(sum_)};
  // The opaque pixels' mean gray, Σ a·g / Σ a, from the integer sums: g is linear in the samples.
  const double drawn = colour_ ? 0.299 * static_cast<double>(drawn_[0]) + 0.587 * static_cast<double>(drawn_[1]) + 0.114 * static_cast<double>(drawn_[2])
                               : static_cast<double>(drawn_[0]);
  const float background = alpha_ && weight_ > 0 && drawn / static_cast<double>(weight_) < 128.0 ? 255.0f : 0.0f;
  if (factor_ == 1) {  // n = 1 pixel a block: nothing to divide, and the loop below vectorises
    if (alpha_)
      for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = image.pixels[i] / 255.0f + (1.0f - sum_alpha_[i] / 255.0f) * background;
    return image;
  }
  for (int Y = 0; Y < out_height_; ++Y) {
    const int rows = std::min(factor_, height_ - Y * factor_);
    for (int X = 0; X < out_width_; ++X) {
      const float n = static_cast<float>(rows * std::min(factor_, width_ - X * factor_));
      const std::size_t i = static_cast<std::size_t>(Y) * static_cast<std::size_t>(out_width_) + static_cast<std::size_t>(X);
      float& v = image.pixels[i];
      if (alpha_) v = (v / 255.0f + (n - sum_alpha_[i] / 255.0f) * background) / n;  // (Σ a·g + (n − Σ a)·background) / n
      else v /= n;
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
