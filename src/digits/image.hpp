// Grayscale images in and out: decoding PNG, JPEG, BMP and PGM (through stb_image) and writing PNG.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace digits {

struct GrayImage {
  int width = 0, height = 0;
  std::vector<float> pixels;  // height rows of width values, 0 (black) to 255 (white)

  float at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
};

inline constexpr int kMaxImageSide = 4096;

// Decodes an encoded image (PNG, JPEG, BMP, PGM/PPM, GIF's first frame) to gray. Colour becomes
// luma (0.299 R + 0.587 G + 0.114 B). Transparency is laid over a background that contrasts with
// the opaque pixels, so both dark strokes and light strokes on a transparent canvas stay visible.
// Throws Error naming `source` if the bytes are no image or the image is larger than kMaxImageSide.
GrayImage decode_image(std::span<const unsigned char> bytes, const std::string& source);
GrayImage read_image(const std::filesystem::path& path);

// Writes an 8-bit grayscale PNG (values rounded and clamped to 0–255), atomically.
void write_png(const std::filesystem::path& path, const GrayImage& image);
std::string encode_png(const GrayImage& image);

}  // namespace digits
