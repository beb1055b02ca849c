// The decoders behind decode_image (image.cpp), one file each: decode_png.cpp (libspng),
// decode_jpeg.cpp (libjpeg-turbo), decode_bmp.cpp and decode_pgm.cpp (our own readers). image.cpp
// picks one by the magic bytes. Each decoder reads the size from its header, calls
// check_declared_size, and only then allocates; it hands its rows, as they are decoded, to a
// GrayReducer (gray.cpp), which turns them gray and reduces them (image.hpp, kReducedSide), so no
// full-size copy of a large image is ever held. The work is bounded by the declared size and the
// length of the input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "digits/image.hpp"

namespace digits {

// Decoded pixels, not yet gray: height rows of width pixels of `channels` bytes each, 0–255:
// 1 gray, 2 gray and alpha, 3 red green blue, 4 red green blue alpha.
struct Pixels {
  int width = 0, height = 0, channels = 0;
  std::vector<unsigned char> samples;
};

// Throws ImageTooLarge (see image.hpp) if a header's width × height is over the limits, and Error
// if either is zero. Call it before allocating anything for pixels.
void check_declared_size(std::uint64_t width, std::uint64_t height, const std::string& source, const ImageLimits& limits);

// Each expects bytes that start with its format's magic bytes, and throws Error naming `source`.
GrayImage decode_png(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits);
GrayImage decode_jpeg(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits);
GrayImage decode_bmp(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits);
GrayImage decode_pgm(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits);

// Decoded rows made gray and reduced by an integer factor as they arrive (gray.cpp).
//  - Colour becomes luma, 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, as JPEG's Y and MNIST's tools).
//  - Transparency is laid over a background opposite to what is drawn: the opaque pixels' mean
//    gray (weighted by alpha) decides it, so white strokes on a transparent canvas come out on
//    black and black ones on white. That mean is only known at the end, but laying over is linear:
//    an output pixel over a block of n pixels is (Σ a·g + (n − Σ a)·background) / n, a in 0–1, so
//    the reducer keeps Σ a·g and Σ a for each block and lays over in finish().
//  - Reduction: output pixel (X, Y) is the mean of the input pixels (x, y) with ⌊x/f⌋ = X and
//    ⌊y/f⌋ = Y (image.hpp, kReducedSide). f = 1 keeps every pixel.
// Memory: one float an output pixel, two with alpha.
class GrayReducer {
 public:
  // A pixel is `bytes_per_pixel` 8-bit samples: gray or R G B first (`colour`), and alpha last
  // when `alpha`. Throws nothing; the sizes were checked by check_declared_size.
  GrayReducer(int width, int height, int factor, int bytes_per_pixel, bool colour, bool alpha);
  // `count` pixels of row y, at x = x0, x0 + dx, x0 + 2·dx, … (an interlaced PNG's pass gives
  // every dx-th pixel of a row). Each input pixel must be given exactly once.
  void add(int y, const unsigned char* samples, int x0, int dx, int count);
  void add_row(int y, const unsigned char* samples) { add(y, samples, 0, 1, width_); }
  GrayImage finish();

 private:
  int width_, height_, factor_, bytes_per_pixel_;
  bool colour_, alpha_;
  int out_width_, out_height_;
  std::vector<float> sum_;        // Σ g (no alpha) or Σ a·g, a in 0–255, per output pixel
  std::vector<float> sum_alpha_;  // Σ a, a in 0–255, with alpha
  // Over the whole image, for the background: Σ a·s for each sample s (gray, or red, green and
  // blue) and Σ a, in integers, so exact and the same in any order (add's loops are vectorised).
  std::uint64_t drawn_[3] = {0, 0, 0}, weight_ = 0;
};

// Colour becomes luma and transparency is laid over, as GrayReducer does, without reducing:
// the browser build's first step (a canvas's RGBA pixels are Pixels with 4 channels).
GrayImage to_gray(const Pixels& decoded);

}  // namespace digits
