// BMP: our own reader of the uncompressed kinds, as Windows and most tools write them today
// (a BITMAPINFOHEADER or its V2–V5 successors): 1, 4 and 8 bits a pixel through a palette; 24 bits
// BGR; 16 and 32 bits through bit masks (BI_BITFIELDS) or their defaults. RLE, embedded JPEG/PNG
// and the old OS/2 headers are refused. Every offset and length is checked against the input
// before it is read, and the size before anything is allocated. fuzz/ fuzzes it through
// decode_image. The layout: Microsoft's "BITMAPINFOHEADER structure" and "Bitmap Storage" pages.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <string>

#include "digits/decoders.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"

namespace digits {

namespace {

constexpr std::size_t kFileHeaderBytes = 14;
// Compression methods (biCompression)
constexpr std::uint32_t kUncompressed = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3, kJpeg = 4, kPng = 5;

std::string hex(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

// One channel of a 16- or 32-bit pixel: a run of contiguous bits, scaled to 0–255, through a table
// for runs of up to 8 bits (all the usual masks: 5-5-5, 5-6-5, 8-8-8-8), by division otherwise.
class Mask {
 public:
  Mask(std::uint32_t bits, const std::string& source) : mask_(bits) {
    if (bits == 0) return;
    shift_ = std::countr_zero(bits);
    max_ = bits >> shift_;
    if ((max_ & (max_ + 1)) != 0) throw Error(source + ": the BMP's colour mask " + hex(bits) + " is not one run of bits");
    if (max_ <= 255)
      for (std::uint32_t v = 0; v <= max_; ++v) table_[v] = scale(v);
  }
  unsigned char operator()(std::uint32_t pixel) const {
    const std::uint32_t value = (pixel & mask_) >> shift_;
    return max_ <= 255 ? table_[value] : scale(value);
  }

 private:
  unsigned char scale(std::uint64_t value) const { return max_ == 0 ? 0 : static_cast<unsigned char>((value * 255 + max_ / 2) / max_); }

  std::uint32_t mask_ = 0, max_ = 0;
  int shift_ = 0;
  std::array<unsigned char, 256> table_{};
};

}  // namespace

GrayImage decode_bmp(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits) {
  auto truncated = [&](const char* what) { return Error(source + ": the BMP file ends inside its " + what); };
  auto u16 = [&](std::size_t at) { return static_cast<std::uint32_t>(bytes[at] | bytes[at + 1] << 8); };
  auto u32 = [&](std::size_t at) { return u16(at) | u16(at + 2) << 16; };
  if (bytes.size() < kFileHeaderBytes + 4) throw truncated("header");
  const std::uint32_t data_offset = u32(10), header_bytes = u32(14);
  if (header_bytes == 12 || header_bytes == 64)
    throw UnsupportedImage(source + ": an OS/2 BMP, which digits does not read; it reads Windows BMP, and " + std::string(kImageFormats));
  if (header_bytes != 40 && header_bytes != 52 && header_bytes != 56 && header_bytes != 108 && header_bytes != 124)
    throw Error(source + ": not a BMP file digits knows: its header is " + std::to_string(header_bytes) + " bytes (expected 40, 52, 56, 108 or 124)");
  if (bytes.size() < kFileHeaderBytes + header_bytes) throw truncated("header");

  const auto width = static_cast<std::int32_t>(u32(18)), signed_height = static_cast<std::int32_t>(u32(22));
  const std::uint32_t planes = u16(26), bits = u16(28), compression = u32(30), colours_used = u32(46);
  if (width <= 0 || signed_height == 0 || signed_height == std::numeric_limits<std::int32_t>::min())
    throw Error(source + ": the BMP declares " + std::to_string(width) + "×" + std::to_string(signed_height) + " pixels");
  const bool top_down = signed_height < 0;  // rows are stored bottom-up unless the height is negative
  const std::uint32_t height = static_cast<std::uint32_t>(top_down ? -signed_height : signed_height);
  check_declared_size(static_cast<std::uint32_t>(width), height, source, limits);
  if (planes != 1) throw Error(source + ": the BMP has " + std::to_string(planes) + " planes, not 1");
  if (compression == kRle8 || compression == kRle4 || compression == kJpeg || compression == kPng)
    throw UnsupportedImage(source + ": a compressed BMP (" + (compression == kJpeg ? "JPEG" : compression == kPng ? "PNG" : "RLE") +
                           "), which digits does not read; save it uncompressed, or as PNG");
  const bool palette = bits == 1 || bits == 4 || bits == 8;
  if (!palette && bits != 16 && bits != 24 && bits != 32) throw Error(source + ": the BMP has " + std::to_string(bits) + " bits a pixel (digits reads 1, 4, 8, 16, 24 and 32)");
  if (compression != kUncompressed && !(compression == kBitfields && (bits == 16 || bits == 32)))
    throw Error(source + ": the BMP's compression method " + std::to_string(compression) + " does not go with " + std::to_string(bits) + " bits a pixel");

  // The colour masks: in the header from V2 (52 bytes) on, otherwise right after it; the defaults
  // without BI_BITFIELDS are 5-5-5 for 16 bits and 8-8-8 with the top byte as alpha for 32.
  std::size_t table = kFileHeaderBytes + header_bytes;  // where a palette or the masks start
  std::uint32_t red = 0, green = 0, blue = 0, alpha = 0;
  if (compression == kBitfields) {
    const std::size_t at = header_bytes >= 52 ? kFileHeaderBytes + 40 : table;
    if (bytes.size() < at + 12) throw truncated("colour masks");
    red = u32(at), green = u32(at + 4), blue = u32(at + 8);
    if (header_bytes >= 56) alpha = u32(at + 12);
    if (header_bytes == 40) table += 12;
  } else if (bits == 16) {
    red = 0x7c00, green = 0x03e0, blue = 0x001f;
  } else if (bits == 32) {
    red = 0x00ff0000, green = 0x0000ff00, blue = 0x000000ff, alpha = 0xff000000;
  }
  const Mask r(red, source), g(green, source), b(blue, source), a(alpha, source);

  // The palette: 4 bytes an entry (blue, green, red, unused), as many as colours_used says, or
  // when it says 0, as many as the bits allow and fit before the pixels.
  std::uint32_t entries = 0;
  if (palette) {
    if (colours_used > (1u << bits)) throw Error(source + ": the BMP's palette has " + std::to_string(colours_used) + " colours for " + std::to_string(bits) + " bits a pixel");
    entries = colours_used ? colours_used : 1u << bits;
    if (!colours_used && data_offset > table) entries = std::min<std::uint32_t>(entries, (data_offset - static_cast<std::uint32_t>(table)) / 4);
  }
  if (bytes.size() < table + 4 * std::size_t{entries}) throw truncated("palette");
  bool gray_palette = true;
  for (std::uint32_t i = 0; i < entries; ++i) {
    const unsigned char* entry = &bytes[table + 4 * i];
    gray_palette = gray_palette && entry[0] == entry[1] && entry[1] == entry[2];
  }

  // Rows are padded to a multiple of 4 bytes. All of them must be there.
  const std::size_t row_bytes = (static_cast<std::size_t>(width) * bits + 31) / 32 * 4;
  if (data_offset < table + 4 * std::size_t{entries} || data_offset > bytes.size() || (bytes.size() - data_offset) / row_bytes < height)
    throw Error(source + ": the BMP's pixel data is cut short: " + std::to_string(height) + " rows of " + std::to_string(row_bytes) + " bytes from offset " +
                std::to_string(data_offset) + ", in a file of " + std::to_string(bytes.size()) + " bytes");

  // Many writers leave the fourth byte of 32-bit pixels zero, meaning "unused", not "invisible":
  // alpha counts only if some pixel has it.
  bool any_alpha = false;
  if (alpha)
    for (std::uint32_t y = 0; y < height && !any_alpha; ++y) {
      const unsigned char* row = &bytes[data_offset + row_bytes * y];
      for (std::size_t x = 0; x < static_cast<std::size_t>(width) && !any_alpha; ++x)
        any_alpha = a(static_cast<std::uint32_t>(row[4 * x] | row[4 * x + 1] << 8 | row[4 * x + 2] << 16) | std::uint32_t{row[4 * x + 3]} << 24) != 0;
    }

  const int channels = palette ? (gray_palette ? 1 : 3) : (any_alpha ? 4 : 3);
  GrayReducer reducer(width, static_cast<int>(height), reduction_factor(width, static_cast<int>(height)), channels, channels >= 3, any_alpha);
  std::vector<unsigned char> line(static_cast<std::size_t>(width) * static_cast<std::size_t>(channels));
  for (std::uint32_t y = 0; y < height; ++y) {
    const unsigned char* row = &bytes[data_offset + row_bytes * (top_down ? y : height - 1 - y)];
    unsigned char* out = line.data();
    for (std::size_t x = 0; x < static_cast<std::size_t>(width); ++x) {
      if (palette) {
        const unsigned per_byte = 8 / bits, shift = 8 - bits * (1 + x % per_byte);  // the leftmost pixel in the high bits
        const unsigned index = (row[x / per_byte] >> shift) & ((1u << bits) - 1);
        if (index >= entries) throw Error(source + ": a pixel of the BMP uses colour " + std::to_string(index) + " of a palette of " + std::to_string(entries));
        const unsigned char* entry = &bytes[table + 4 * index];
        *out++ = entry[2];
        if (!gray_palette) {
          *out++ = entry[1];
          *out++ = entry[0];
        }
      } else if (bits == 24) {
        const unsigned char* bgr = &row[3 * x];
        *out++ = bgr[2];
        *out++ = bgr[1];
        *out++ = bgr[0];
      } else {
        const std::uint32_t pixel = bits == 16 ? static_cast<std::uint32_t>(row[2 * x] | row[2 * x + 1] << 8)
                                               : static_cast<std::uint32_t>(row[4 * x] | row[4 * x + 1] << 8 | row[4 * x + 2] << 16) | std::uint32_t{row[4 * x + 3]} << 24;
        *out++ = r(pixel);
        *out++ = g(pixel);
        *out++ = b(pixel);
        if (any_alpha) *out++ = a(pixel);
      }
    }
    reducer.add_row(static_cast<int>(y), line.data());
  }
  return reducer.finish();
}

}  // namespace digits
