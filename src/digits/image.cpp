#include "digits/image.hpp"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>

#include "digits/error.hpp"
#include "digits/file_util.hpp"

namespace digits {

GrayImage decode_image(std::span<const unsigned char> bytes, const std::string& source) {
  if (bytes.empty()) throw Error(source + ": empty file");
  if (bytes.size() > (std::size_t{1} << 30)) throw Error(source + ": larger than 1 GiB");
  int width = 0, height = 0, channels = 0;
  const int length = static_cast<int>(bytes.size());
  if (!stbi_info_from_memory(bytes.data(), length, &width, &height, &channels))
    throw Error(source + ": not an image this program reads (PNG, JPEG, BMP, PGM): " + stbi_failure_reason());
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide)
    throw Error(source + ": image is " + std::to_string(width) + "×" + std::to_string(height) + ", larger than " +
                std::to_string(kMaxImageSide) + "×" + std::to_string(kMaxImageSide));
  std::unique_ptr<unsigned char, decltype(&stbi_image_free)> decoded(
      stbi_load_from_memory(bytes.data(), length, &width, &height, &channels, 0), &stbi_image_free);
  if (!decoded) throw Error(source + ": cannot decode: " + stbi_failure_reason());

  GrayImage image{width, height, std::vector<float>(static_cast<std::size_t>(width) * static_cast<std::size_t>(height))};
  std::vector<float> alpha(image.pixels.size(), 255.0f);
  const unsigned char* p = decoded.get();
  for (std::size_t i = 0; i < image.pixels.size(); ++i, p += channels) {
    const bool colour = channels >= 3;
    image.pixels[i] = colour ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : p[0];
    if (channels == 2 || channels == 4) alpha[i] = p[channels - 1];
  }
  if (channels == 2 || channels == 4) {
    // Lay the image over a background opposite to what is drawn: the opaque pixels' mean gray.
    double drawn = 0, weight = 0;
    for (std::size_t i = 0; i < image.pixels.size(); ++i) {
      drawn += static_cast<double>(image.pixels[i]) * alpha[i];
      weight += alpha[i];
    }
    const float background = weight > 0 && drawn / weight < 128.0 ? 255.0f : 0.0f;
    for (std::size_t i = 0; i < image.pixels.size(); ++i) {
      const float a = alpha[i] / 255.0f;
      image.pixels[i] = a * image.pixels[i] + (1.0f - a) * background;
    }
  }
  return image;
}

GrayImage read_image(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path.string() + ": no such file");
  if (std::filesystem::file_size(path, ec) > (std::size_t{1} << 30)) throw Error(path.string() + ": larger than 1 GiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path.string() + ": read error");
  return decode_image(bytes, path.string());
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
