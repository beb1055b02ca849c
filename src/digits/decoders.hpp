// The decoders behind decode_image (image.cpp), one file each: decode_png.cpp (libspng),
// decode_jpeg.cpp (libjpeg-turbo), decode_bmp.cpp and decode_pgm.cpp (our own readers). image.cpp
// picks one by the magic bytes and turns its pixels gray (gray.cpp). Each decoder reads the size from its
// header, calls check_declared_size, and only then allocates the pixels; the work it does is
// bounded by that size and the length of its input.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace digits {

// Decoded pixels, not yet gray: height rows of width pixels of `channels` bytes each, 0–255:
// 1 gray, 2 gray and alpha, 3 red green blue, 4 red green blue alpha.
struct Pixels {
  int width = 0, height = 0, channels = 0;
  std::vector<unsigned char> samples;
};

// Throws ImageTooLarge (see image.hpp) if a header's width × height is over kMaxImageSide or
// kMaxImagePixels, and Error if either is zero. Call it before allocating anything for pixels.
void check_declared_size(std::uint64_t width, std::uint64_t height, const std::string& source);

// Each expects bytes that start with its format's magic bytes, and throws Error naming `source`.
Pixels decode_png(std::span<const unsigned char> bytes, const std::string& source);
Pixels decode_jpeg(std::span<const unsigned char> bytes, const std::string& source);
Pixels decode_bmp(std::span<const unsigned char> bytes, const std::string& source);
Pixels decode_pgm(std::span<const unsigned char> bytes, const std::string& source);

struct GrayImage;
// Colour becomes luma (0.299 R + 0.587 G + 0.114 B); transparency is laid over a background that
// contrasts with the opaque pixels (gray.cpp). decode_image's last step, and the browser build's
// first: a canvas's RGBA pixels are Pixels with 4 channels.
GrayImage to_gray(const Pixels& decoded);

}  // namespace digits
