#include "digits/image.hpp"

#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>

#include "digits/decoders.hpp"
#include "digits/error.hpp"
#include "digits/file_util.hpp"

namespace digits {

namespace {

bool has_at(std::span<const unsigned char> bytes, std::size_t at, std::string_view magic) {
  if (bytes.size() < at + magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), bytes.begin() + static_cast<std::ptrdiff_t>(at),
                    [](char m, unsigned char b) { return static_cast<unsigned char>(m) == b; });
}

// Formats we recognise but do not read, so that the refusal can name them.
struct OtherFormat {
  std::size_t at;
  std::string_view magic, name;
};
constexpr std::array kOtherFormats = {
    OtherFormat{0, "GIF87a", "a GIF image"},
    OtherFormat{0, "GIF89a", "a GIF image"},
    OtherFormat{8, "WEBP", "a WebP image"},
    OtherFormat{0, std::string_view("II*\0", 4), "a TIFF image"},
    OtherFormat{0, std::string_view("MM\0*", 4), "a TIFF image"},
    OtherFormat{0, "#?RADIANCE", "a Radiance HDR image"},
    OtherFormat{0, "#?RGBE", "a Radiance HDR image"},
    OtherFormat{0, "8BPS", "a Photoshop image"},
    OtherFormat{0, "\x53\x80\xf6\x34", "a Softimage PIC image"},
    OtherFormat{0, "qoif", "a QOI image"},
    OtherFormat{4, "ftyp", "an ISO media file (AVIF, HEIC…)"},
    OtherFormat{0, "\xff\x0a", "a JPEG XL image"},
    OtherFormat{0, std::string_view("\0\0\0\x0cjP  ", 8), "a JPEG 2000 image"},
    OtherFormat{0, std::string_view("\0\0\0\x0cJXL ", 8), "a JPEG XL image"},
    OtherFormat{0, "P1", "a PBM image"},
    OtherFormat{0, "P4", "a PBM image"},
    OtherFormat{0, "P3", "a PPM image"},
    OtherFormat{0, "P6", "a PPM image"},
    OtherFormat{0, "P7", "a PAM image"},
    OtherFormat{0, "<svg", "an SVG image"},
    OtherFormat{0, "<?xml", "an XML file"},
};

[[noreturn]] void refuse_format(std::span<const unsigned char> bytes, const std::string& source) {
  for (const OtherFormat& other : kOtherFormats)
    if (has_at(bytes, other.at, other.magic))
      throw UnsupportedImage(source + ": " + std::string(other.name) + ", which digits does not read; it reads " + std::string(kImageFormats));
  throw UnsupportedImage(source + ": not an image digits reads; it reads " + std::string(kImageFormats));
}

// The format from the magic bytes alone: a file's name or a data URL's MIME type may lie.
GrayImage decode_any(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits) {
  if (has_at(bytes, 0, "\x89PNG\r\n\x1a\n")) return decode_png(bytes, source, limits);
  if (has_at(bytes, 0, "\xff\xd8\xff")) return decode_jpeg(bytes, source, limits);
  if (has_at(bytes, 0, "BM")) return decode_bmp(bytes, source, limits);
  if (has_at(bytes, 0, "P5") || has_at(bytes, 0, "P2")) return decode_pgm(bytes, source, limits);
  refuse_format(bytes, source);
}

}  // namespace

void check_declared_size(std::uint64_t width, std::uint64_t height, const std::string& source, const ImageLimits& limits) {
  if (width == 0 || height == 0) throw Error(source + ": the header declares an image of " + std::to_string(width) + "×" + std::to_string(height) + " pixels");
  // The library's own caps hold whatever a caller asks for: the decoders' sizes and sums rely on them.
  const auto side = static_cast<std::uint64_t>(std::clamp(limits.max_side, 1, kMaxImageSide));
  const auto pixels = static_cast<std::uint64_t>(std::clamp<std::int64_t>(limits.max_pixels, 1, kMaxImagePixels));
  if (width > side || height > side || width * height > pixels)
    throw ImageTooLarge(source + ": " + std::to_string(width) + "×" + std::to_string(height) + " pixels is more than digits accepts (at most " +
                        std::to_string(side) + " pixels a side and " + std::to_string(pixels) + " in all)");
}

GrayImage decode_image(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits) {
  if (bytes.empty()) throw Error(source + ": empty file");
  if (bytes.size() > (std::size_t{1} << 30)) throw Error(source + ": larger than 1 GiB");
  return decode_any(bytes, source, limits);
}

GrayImage read_image(const std::filesystem::path& path, const ImageLimits& limits) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path.string() + ": no such file");
  if (std::filesystem::file_size(path, ec) > (std::size_t{1} << 30)) throw Error(path.string() + ": larger than 1 GiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path.string() + ": read error");
  return decode_image(bytes, path.string(), limits);
}

std::string encode_png(const GrayImage& image) {
  std::vector<unsigned char> bytes(image.pixels.size());
  std::transform(image.pixels.begin(), image.pixels.end(), bytes.begin(),
                 [](float v) { return static_cast<unsigned char>(std::clamp(std::lround(v), 0L, 255L)); });
  std::string png;
  auto append = [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size)); };
  if (!stbi_write_png_to_func(append, &png, image.width, image.height, 1, bytes.data(), image.width))
    throw Error("cannot encode a " + std::to_string(image.width) + "×" + std::to_string(image.height) + " PNG");
  return png;
}

void write_png(const std::filesystem::path& path, const GrayImage& image) { write_file_atomically(path, encode_png(image)); }

}  // namespace digits
