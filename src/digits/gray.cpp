// Decoded pixels turned gray (decoders.hpp): in a file of its own, apart from the decoders, so the
// WebAssembly build (src/web_wasm), which gets its pixels from a canvas, makes the same gray values
// from them as `digits predict` makes from the same drawing's PNG.
#include <cstddef>

#include "digits/decoders.hpp"
#include "digits/image.hpp"

namespace digits {

// Colour becomes luma, 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as JPEG's Y and MNIST's tools).
// Transparency is laid over a background opposite to what is drawn: the opaque pixels' mean gray
// decides it, so white strokes on a transparent canvas come out on black and black ones on white.
GrayImage to_gray(const Pixels& decoded) {
  const auto channels = static_cast<std::size_t>(decoded.channels);
  GrayImage image{decoded.width, decoded.height, std::vector<float>(static_cast<std::size_t>(decoded.width) * static_cast<std::size_t>(decoded.height))};
  const unsigned char* p = decoded.samples.data();
  for (std::size_t i = 0; i < image.pixels.size(); ++i, p += channels)
    image.pixels[i] = channels >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
  if (channels == 2 || channels == 4) {
    auto alpha = [&](std::size_t i) { return static_cast<float>(decoded.samples[i * channels + channels - 1]); };
    double drawn = 0, weight = 0;
    for (std::size_t i = 0; i < image.pixels.size(); ++i) {
      drawn += static_cast<double>(image.pixels[i]) * alpha(i);
      weight += alpha(i);
    }
    const float background = weight > 0 && drawn / weight < 128.0 ? 255.0f : 0.0f;
    for (std::size_t i = 0; i < image.pixels.size(); ++i) {
      const float a = alpha(i) / 255.0f;
      image.pixels[i] = a * image.pixels[i] + (1.0f - a) * background;
    }
  }
  return image;
}

}  // namespace digits
