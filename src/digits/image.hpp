// Grayscale images in and out: decoding PNG, JPEG, BMP and PGM, and writing PNG.
//
// Images come from people we do not know (HTTP requests, downloaded files), so decoding goes only
// through parsers that are fuzzed: PNG through libspng and JPEG through libjpeg-turbo (both fuzzed
// continuously by OSS-Fuzz), BMP and PGM through our own small strict readers (fuzz/). The format
// is told by the bytes alone, never by a file name or a MIME type. Every decoder checks the size
// its header declares before it allocates anything for the pixels. Writing goes through
// stb_image_write, which only ever sees our own pixels.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "digits/error.hpp"

namespace digits {

struct GrayImage {
  int width = 0, height = 0;
  std::vector<float> pixels;  // height rows of width values, 0 (black) to 255 (white)

  float at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
};

// The largest image decoded: at most 4096 pixels a side, and at most 12.6 million pixels in all
// (4096×3072: a 12-megapixel photo fits, in either orientation). These are the CLI's limits
// (`digits predict` reads a photo of a page); the server lowers the pixel cap (ImageLimits below,
// `digits serve --max-image-pixels`), since a drawing needs no more than a megapixel and decoding
// costs CPU time in proportion to the pixels (docs/security.md, "What one request costs").
inline constexpr int kMaxImageSide = 4096;
inline constexpr std::int64_t kMaxImagePixels = std::int64_t{4096} * 3072;

// The limits of one decode, checked against the header before anything is decoded.
struct ImageLimits {
  int max_side = kMaxImageSide;               // at most kMaxImageSide
  std::int64_t max_pixels = kMaxImagePixels;  // at most kMaxImagePixels
};

// Images larger than a drawing needs are reduced as they are decoded, so no full-size copy is ever
// made: by the integer factor f = ⌊longer side / kReducedSide⌋ when that is 2 or more, each output
// pixel the mean of an f×f block of input pixels (a block cut by the right or bottom edge: the mean
// of the pixels it has). The reduced image's longer side is then kReducedSide to 2·kReducedSide − 1.
// preprocess() area-averages the ink's box down to 20×20 anyway, so a prior box average of a
// drawing this large changes its 28×28 input by at most a few gray levels out of 255
// (tests/unit/test_decode_reduced.cpp measures it). JPEG goes further: libjpeg-turbo decodes at
// 1/2, 1/4 or 1/8 scale (its scaled inverse DCT), which skips most of the work.
inline constexpr int kReducedSide = 512;
// f above: 1 (no reduction) for an image up to 2·kReducedSide − 1 pixels on its longer side.
int reduction_factor(int width, int height);

// What decode_image reads, for messages: "PNG, JPEG, BMP and PGM".
inline constexpr std::string_view kImageFormats = "PNG, JPEG, BMP and PGM";

// Two refusals that callers answer differently from a broken file (the server: 400
// unsupported_image and 413 image_too_large instead of 400 bad_image). Both are Errors.
class UnsupportedImage : public Error {  // not one of kImageFormats: GIF, WebP, TGA, text…
 public:
  using Error::Error;
};
class ImageTooLarge : public Error {  // the header declares more than the ImageLimits allow
 public:
  using Error::Error;
};

// Decodes an encoded image to gray, reduced as kReducedSide says. The format comes from the first bytes: PNG (any bit depth and
// colour type, interlaced or not), JPEG (baseline or progressive; gray, YCbCr, RGB or CMYK),
// uncompressed BMP (1, 4, 8, 16, 24 or 32 bits a pixel) or PGM (binary P5 or plain P2, 8 or 16
// bits). Colour becomes luma (0.299 R + 0.587 G + 0.114 B); 16-bit samples keep their high 8 bits.
// Transparency is laid over a background that contrasts with the opaque pixels, so both dark
// strokes and light strokes on a transparent canvas stay visible.
// Throws UnsupportedImage for another format, ImageTooLarge for a declared size over `limits`
// (before decoding anything), and Error for a broken file; every message starts with `source`.
GrayImage decode_image(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits = {});
GrayImage read_image(const std::filesystem::path& path, const ImageLimits& limits = {});

// Writes an 8-bit grayscale PNG (values rounded and clamped to 0–255), atomically.
void write_png(const std::filesystem::path& path, const GrayImage& image);
std::string encode_png(const GrayImage& image);

}  // namespace digits
