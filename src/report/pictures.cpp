#include "report/pictures.hpp"

#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

#include "digits/base64.hpp"
#include "digits/error.hpp"

namespace digits::report {

namespace {

using Rgb = std::array<float, 3>;

// ColorBrewer RdBu (Cynthia Brewer, colorbrewer2.org), five of its eleven stops, from −1 to +1.
// White in the middle, so a weight of zero looks like blank paper.
constexpr std::array<Rgb, 5> kDiverging = {{
    {33, 102, 172},   // −1: deep blue
    {103, 169, 207},  // −½
    {247, 247, 247},  //  0: near white
    {239, 138, 98},   // +½
    {178, 24, 43},    // +1: deep red
}};

Rgb diverging(float t) {
  const float position = (std::clamp(t, -1.0f, 1.0f) + 1.0f) * 2.0f;  // 0 … 4 along the stops
  const int below = std::min(3, static_cast<int>(position));
  const float f = position - static_cast<float>(below);
  Rgb colour;
  for (int c = 0; c < 3; ++c)
    colour[static_cast<std::size_t>(c)] = kDiverging[static_cast<std::size_t>(below)][static_cast<std::size_t>(c)] * (1 - f) +
                                           kDiverging[static_cast<std::size_t>(below + 1)][static_cast<std::size_t>(c)] * f;
  return colour;
}

std::string png_data_url(const unsigned char* pixels, int width, int height, int channels) {
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, width, height, channels, pixels, width * channels))
    throw Error("cannot encode a " + std::to_string(width) + "×" + std::to_string(height) + " PNG for the report");
  return "data:image/png;base64," + encode_base64(png);
}

}  // namespace

std::string gray_png_data_url(std::span<const std::uint8_t> pixels, int width, int height) {
  if (pixels.size() != static_cast<std::size_t>(width) * static_cast<std::size_t>(height)) throw Error("a gray picture's size does not match its pixels");
  return png_data_url(pixels.data(), width, height, 1);
}

std::string diverging_png_data_url(std::span<const float> values, int width, int height, float limit, std::span<const std::uint8_t> shown) {
  if (values.size() != static_cast<std::size_t>(width) * static_cast<std::size_t>(height) || (!shown.empty() && shown.size() != values.size()))
    throw Error("a picture's size does not match its values");
  const float scale = limit > 0 ? 1.0f / limit : 0.0f;
  const Rgb gray = {207, 211, 218};  // kNotShownColour
  std::vector<unsigned char> rgb;
  rgb.reserve(values.size() * 3);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const Rgb colour = shown.empty() || shown[i] ? diverging(values[i] * scale) : gray;
    for (float channel : colour) rgb.push_back(static_cast<unsigned char>(std::lround(channel)));
  }
  return png_data_url(rgb.data(), width, height, 3);
}

std::string diverging_colour(float t) {
  const Rgb c = diverging(t);
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", static_cast<unsigned>(std::lround(c[0])), static_cast<unsigned>(std::lround(c[1])),
                static_cast<unsigned>(std::lround(c[2])));
  return text;
}

}  // namespace digits::report
