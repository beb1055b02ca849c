// Image files made in the tests themselves, so every field is under the test's control and no
// image is committed: PNG, BMP and PGM written byte by byte here (PNG's compression through zlib),
// JPEG through libjpeg-turbo's encoder. Used by test_decode.cpp and test_decode_hostile.cpp.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <cstdlib>
#include <jpeglib.h>
#include <span>
#include <string>
#include <vector>

#include "digits/image.hpp"

namespace digits::testing {

inline std::span<const unsigned char> as_bytes(const std::string& bytes) {
  return {reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()};
}
inline GrayImage decode(const std::string& bytes) { return decode_image(as_bytes(bytes), "test image"); }

inline void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift & 0xff));
}
inline void put_le16(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8 & 0xff));
}
inline void put_le32(std::string& out, std::uint32_t v) {
  put_le16(out, v & 0xffff);
  put_le16(out, v >> 16);
}

inline std::string zlib_compress(const std::string& data) {
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::string out(size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(data.data()), static_cast<uLong>(data.size()), 9) != Z_OK) std::abort();
  out.resize(size);
  return out;
}

// The mean of each factor×factor block (a block cut by the right or bottom edge: of the pixels it
// has), as decode_image reduces a large image (image.hpp, kReducedSide): the plain loop the
// decoders' row-by-row reduction is tested against.
inline GrayImage box_average(const GrayImage& image, int factor) {
  const int width = (image.width + factor - 1) / factor, height = (image.height + factor - 1) / factor;
  GrayImage out{width, height, std::vector<float>(static_cast<std::size_t>(width) * static_cast<std::size_t>(height))};
  for (int Y = 0; Y < height; ++Y)
    for (int X = 0; X < width; ++X) {
      double sum = 0;
      int n = 0;
      for (int y = Y * factor; y < std::min(image.height, (Y + 1) * factor); ++y)
        for (int x = X * factor; x < std::min(image.width, (X + 1) * factor); ++x, ++n) sum += image.at(x, y);
      out.pixels[static_cast<std::size_t>(Y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(X)] = static_cast<float>(sum / n);
    }
  return out;
}

// ---- PNG (the W3C PNG specification, 3rd edition) ----

// A chunk: length, type, data, CRC-32 of type and data.
inline std::string png_chunk(const std::string& type, const std::string& data) {
  std::string chunk;
  put_be32(chunk, static_cast<std::uint32_t>(data.size()));
  chunk += type + data;
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(chunk.data() + 4), static_cast<uInt>(chunk.size() - 4));
  put_be32(chunk, static_cast<std::uint32_t>(crc));
  return chunk;
}

inline const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

inline std::string png_ihdr(std::uint32_t width, std::uint32_t height, int depth, int colour_type, bool interlaced = false) {
  std::string data;
  put_be32(data, width);
  put_be32(data, height);
  data += {static_cast<char>(depth), static_cast<char>(colour_type), 0, 0, static_cast<char>(interlaced)};
  return png_chunk("IHDR", data);
}

struct Png {
  int width = 0, height = 0, depth = 8;
  int colour_type = 0;  // 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
  bool interlaced = false;
  std::vector<std::uint16_t> samples{};  // height rows of width × channels() samples, each < 2^depth
  std::string plte{}, trns{};          // the chunks' data, written when not empty

  int channels() const { return colour_type == 2 ? 3 : colour_type == 4 ? 2 : colour_type == 6 ? 4 : 1; }
  std::uint16_t at(int x, int y, int c) const { return samples[static_cast<std::size_t>((y * width + x) * channels() + c)]; }

  // One scanline of the pixels (x0 + k·dx, y) for k = 0, 1…: filter type 0 (none), then the
  // samples packed big-endian, several to a byte below 8 bits.
  std::string scanline(int y, int x0, int dx) const {
    std::string line(1, '\0');
    int bits = 0, byte = 0;
    for (int x = x0; x < width; x += dx)
      for (int c = 0; c < channels(); ++c) {
        const std::uint16_t v = at(x, y, c);
        if (depth == 16) {
          line += {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
          continue;
        }
        byte = byte << depth | v;
        bits += depth;
        if (bits == 8) line.push_back(static_cast<char>(byte)), bits = 0, byte = 0;
      }
    if (bits) line.push_back(static_cast<char>(byte << (8 - bits)));
    return line;
  }

  std::string encode() const {
    std::string raw;
    if (!interlaced) {
      for (int y = 0; y < height; ++y) raw += scanline(y, 0, 1);
    } else {
      // Adam7: seven passes over sub-images, each pixel in exactly one; empty passes are left out.
      static constexpr int pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
      for (const auto& [x0, y0, dx, dy] : pass)
        if (x0 < width && y0 < height)
          for (int y = y0; y < height; y += dy) raw += scanline(y, x0, dx);
    }
    std::string png = kPngSignature + png_ihdr(static_cast<std::uint32_t>(width), static_cast<std::uint32_t>(height), depth, colour_type, interlaced);
    if (!plte.empty()) png += png_chunk("PLTE", plte);
    if (!trns.empty()) png += png_chunk("tRNS", trns);
    return png + png_chunk("IDAT", zlib_compress(raw)) + png_chunk("IEND", "");
  }
};

// ---- JPEG through libjpeg-turbo's encoder ----

struct Jpeg {
  int width = 0, height = 0, components = 1;  // 1 gray, 3 RGB, 4 CMYK (written with Adobe's marker: 255 − ink)
  std::vector<unsigned char> samples{};        // height rows of width × components
  int quality = 95;
  bool progressive = false;
  std::vector<jpeg_scan_info> scans{};  // a scan script of our own, if not empty

  std::string encode() const {
    jpeg_compress_struct info{};
    jpeg_error_mgr errors{};
    info.err = jpeg_std_error(&errors);
    jpeg_create_compress(&info);
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&info, &buffer, &size);
    info.image_width = static_cast<JDIMENSION>(width);
    info.image_height = static_cast<JDIMENSION>(height);
    info.input_components = components;
    info.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    if (progressive) jpeg_simple_progression(&info);
    if (!scans.empty()) {
      info.scan_info = scans.data();
      info.num_scans = static_cast<int>(scans.size());
    }
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
      JSAMPROW row = const_cast<unsigned char*>(&samples[static_cast<std::size_t>(info.next_scanline) * static_cast<std::size_t>(width * components)]);
      jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    std::string jpeg(reinterpret_cast<const char*>(buffer), size);
    std::free(buffer);
    return jpeg;
  }
};

// ---- BMP (Microsoft's BITMAPINFOHEADER and BITMAPV5HEADER) ----

struct Bmp {
  int width = 0, height = 0, bits = 24;
  bool top_down = false;
  std::uint32_t compression = 0;    // 0 BI_RGB, 3 BI_BITFIELDS
  std::uint32_t info_bytes = 40;    // 40, or 124 for a V5 header (which holds the masks)
  std::vector<std::uint32_t> masks{};  // red, green, blue (and alpha in a V5 header) for BI_BITFIELDS
  std::vector<std::uint32_t> palette{};  // 0x00RRGGBB
  std::vector<std::uint32_t> pixels{};  // height rows, top row first: a palette index or the raw 16/24/32-bit value

  std::string encode() const {
    const std::size_t row_bytes = (static_cast<std::size_t>(width) * bits + 31) / 32 * 4;
    const bool masks_after = compression == 3 && info_bytes == 40;
    const std::uint32_t offset = static_cast<std::uint32_t>(14 + info_bytes + (masks_after ? 12 : 0) + 4 * palette.size());
    std::string bmp = "BM";
    put_le32(bmp, offset + static_cast<std::uint32_t>(row_bytes * height));
    put_le32(bmp, 0);
    put_le32(bmp, offset);
    put_le32(bmp, info_bytes);
    put_le32(bmp, static_cast<std::uint32_t>(width));
    put_le32(bmp, static_cast<std::uint32_t>(top_down ? -height : height));
    put_le16(bmp, 1);
    put_le16(bmp, static_cast<std::uint32_t>(bits));
    put_le32(bmp, compression);
    put_le32(bmp, static_cast<std::uint32_t>(row_bytes * height));
    put_le32(bmp, 2835);  // 72 dpi
    put_le32(bmp, 2835);
    put_le32(bmp, static_cast<std::uint32_t>(palette.size()));
    put_le32(bmp, 0);
    if (info_bytes == 124) {
      for (std::size_t i = 0; i < 4; ++i) put_le32(bmp, i < masks.size() ? masks[i] : 0);
      put_le32(bmp, 0x73524742);  // 'sRGB'
      bmp.append(124 - 60, '\0');  // the colour space endpoints, gamma, intent, profile: unused
    } else if (masks_after) {
      for (std::size_t i = 0; i < 3; ++i) put_le32(bmp, masks[i]);
    }
    for (std::uint32_t colour : palette) put_le32(bmp, colour);
    for (int row = 0; row < height; ++row) {
      const int y = top_down ? row : height - 1 - row;
      std::string line;
      int bit = 0, byte = 0;
      for (int x = 0; x < width; ++x) {
        const std::uint32_t v = pixels[static_cast<std::size_t>(y * width + x)];
        if (bits < 8) {
          byte = byte << bits | static_cast<int>(v);
          bit += bits;
          if (bit == 8) line.push_back(static_cast<char>(byte)), bit = 0, byte = 0;
        } else {
          for (int b = 0; b < bits / 8; ++b) line.push_back(static_cast<char>(v >> (8 * b) & 0xff));
        }
      }
      if (bit) line.push_back(static_cast<char>(byte << (8 - bit)));
      line.resize(row_bytes, '\0');
      bmp += line;
    }
    return bmp;
  }
};

}  // namespace digits::testing
