#include "feedback/drawing.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace digits::feedback {

namespace {

// One axis of an area-averaging resize: for each of `out` output cells, the source cells it covers
// and how much of each. Output cell o covers the source interval [o·s, (o+1)·s) with s = in/out;
// source cell i contributes the length of [i, i+1) ∩ that interval, divided by s, so the weights of
// each output cell sum to 1.
struct Tap {
  int from = 0;
  std::vector<float> weights;  // for source cells from, from+1, …
};

std::vector<Tap> area_taps(int out, int in) {
  const double s = static_cast<double>(in) / out;
  std::vector<Tap> taps(static_cast<std::size_t>(out));
  for (int o = 0; o < out; ++o) {
    const double begin = o * s, end = std::min<double>(in, (o + 1) * s);
    Tap& tap = taps[static_cast<std::size_t>(o)];
    tap.from = static_cast<int>(std::floor(begin));
    for (int i = tap.from; i < in && i < end; ++i) {
      const double covered = std::min<double>(i + 1, end) - std::max<double>(i, begin);
      tap.weights.push_back(static_cast<float>(covered / s));
    }
  }
  return taps;
}

}  // namespace

GrayImage area_resize(const GrayImage& image, int width, int height) {
  width = std::max(1, width), height = std::max(1, height);
  const std::vector<Tap> across = area_taps(width, image.width), down = area_taps(height, image.height);
  // Rows first (height_in × width), then columns: separable, so the cost is the source's pixels
  // once plus the narrower image's once.
  std::vector<float> narrow(static_cast<std::size_t>(image.height) * static_cast<std::size_t>(width));
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < width; ++x) {
      const Tap& tap = across[static_cast<std::size_t>(x)];
      float sum = 0;
      for (std::size_t k = 0; k < tap.weights.size(); ++k) sum += tap.weights[k] * image.at(tap.from + static_cast<int>(k), y);
      narrow[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)] = sum;
    }
  }
  GrayImage resized{width, height, std::vector<float>(static_cast<std::size_t>(width) * static_cast<std::size_t>(height))};
  for (int y = 0; y < height; ++y) {
    const Tap& tap = down[static_cast<std::size_t>(y)];
    for (int x = 0; x < width; ++x) {
      float sum = 0;
      for (std::size_t k = 0; k < tap.weights.size(); ++k)
        sum += tap.weights[k] * narrow[static_cast<std::size_t>(tap.from + static_cast<int>(k)) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)];
      resized.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)] = sum;
    }
  }
  return resized;
}

std::string stored_drawing(const GrayImage& drawing) {
  GrayImage image = drawing;
  if (const int longest = std::max(image.width, image.height); longest > kStoredDrawingSide) {
    const double scale = static_cast<double>(kStoredDrawingSide) / longest;
    image = area_resize(image, static_cast<int>(std::lround(image.width * scale)), static_cast<int>(std::lround(image.height * scale)));
  }
  std::string png = encode_png(image);
  // Halving ends: a 1×1 gray PNG is under 100 bytes. Noise at 280×280 needs one halving (about
  // 20 KB at 140×140); a drawn digit none.
  while (png.size() > kMaxStoredDrawingBytes && (image.width > 1 || image.height > 1)) {
    image = area_resize(image, (image.width + 1) / 2, (image.height + 1) / 2);
    png = encode_png(image);
  }
  return png;
}

}  // namespace digits::feedback
