// decode_image decodes right: every PNG colour type and bit depth (16-bit, palette with tRNS,
// gray+alpha, Adam7-interlaced), gray, colour, progressive and CMYK JPEGs, the BMP and PGM kinds
// our readers take, and the format told by the bytes alone. Colour becomes luma; transparency is
// laid over a background that contrasts with the opaque pixels. Fixtures: image_files.hpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "digits/image.hpp"
#include "image_files.hpp"

using namespace digits;
using namespace digits::testing;
namespace fs = std::filesystem;

namespace {

float luma(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

void expect_pixels(const GrayImage& image, int width, int height, const std::vector<float>& expected, float tolerance = 1e-3f) {
  ASSERT_EQ(image.width, width);
  ASSERT_EQ(image.height, height);
  ASSERT_EQ(image.pixels.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(image.pixels[i], expected[i], tolerance) << "pixel " << i % static_cast<std::size_t>(width) << "," << i / static_cast<std::size_t>(width);
}

std::vector<std::uint16_t> random_samples(std::size_t count, int depth, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(0, (1 << depth) - 1);
  std::vector<std::uint16_t> samples(count);
  for (auto& s : samples) s = static_cast<std::uint16_t>(value(rng));
  return samples;
}

// ---- PNG ----

TEST(DecodePng, EightBitGrayIsExact) {
  Png png{.width = 7, .height = 3, .depth = 8, .colour_type = 0, .samples = random_samples(21, 8, 1)};
  std::vector<float> expected(png.samples.begin(), png.samples.end());
  expect_pixels(decode(png.encode()), 7, 3, expected, 0.0f);
}

TEST(DecodePng, LowBitDepthGrayIsScaledToTheFullRange) {
  for (int depth : {1, 2, 4}) {
    Png png{.width = 11, .height = 3, .depth = depth, .colour_type = 0, .samples = random_samples(33, depth, 2)};
    std::vector<float> expected;
    for (auto s : png.samples) expected.push_back(static_cast<float>(s * 255 / ((1 << depth) - 1)));
    SCOPED_TRACE(depth);
    expect_pixels(decode(png.encode()), 11, 3, expected, 0.0f);
  }
}

TEST(DecodePng, SixteenBitSamplesKeepTheirHighByte) {
  Png gray{.width = 2, .height = 2, .depth = 16, .colour_type = 0, .samples = {0x0000, 0xabcd, 0x80ff, 0xffff}};
  expect_pixels(decode(gray.encode()), 2, 2, {0, 0xab, 0x80, 0xff}, 0.0f);
  Png rgb{.width = 2, .height = 1, .depth = 16, .colour_type = 2, .samples = {0xff00, 0x0000, 0x1234, 0x0101, 0xc0de, 0xfffe}};
  expect_pixels(decode(rgb.encode()), 2, 1, {luma(0xff, 0, 0x12), luma(0x01, 0xc0, 0xff)});
}

TEST(DecodePng, ColourBecomesLuma) {
  Png rgb{.width = 3, .height = 1, .depth = 8, .colour_type = 2, .samples = {255, 0, 0, 0, 255, 0, 10, 20, 30}};
  expect_pixels(decode(rgb.encode()), 3, 1, {luma(255, 0, 0), luma(0, 255, 0), luma(10, 20, 30)});
}

TEST(DecodePng, PaletteWithTransparencyIsLaidOverAContrastingBackground) {
  // Entry 0 transparent, 1 opaque white, 2 half-transparent white, 3 opaque red (no tRNS entry: opaque).
  const std::string plte = {0, 0, 0, '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', 0, 0};
  Png png{.width = 4, .height = 2, .depth = 8, .colour_type = 3, .samples = {0, 1, 2, 3, 0, 0, 1, 1}, .plte = plte, .trns = {0, '\xff', '\x80'}};
  // The opaque pixels are light (their mean is above 128), so the background is black.
  const float half = 128.0f / 255.0f;
  expect_pixels(decode(png.encode()), 4, 2, {0, 255, half * 255, luma(255, 0, 0), 0, 0, 255, 255});

  // The same with 2-bit indices, and black ink: the background becomes white.
  Png dark{.width = 3, .height = 1, .depth = 2, .colour_type = 3, .samples = {0, 1, 0}, .plte = {'\xff', '\xff', '\xff', 0, 0, 0}, .trns = {0}};
  expect_pixels(decode(dark.encode()), 3, 1, {255, 0, 255});
}

TEST(DecodePng, GrayAlphaIsLaidOverAContrastingBackground) {
  // Black strokes on a transparent canvas: the background is white.
  Png png{.width = 3, .height = 1, .depth = 8, .colour_type = 4, .samples = {0, 255, 0, 0, 0, 64}};
  const float a = 64.0f / 255.0f;
  expect_pixels(decode(png.encode()), 3, 1, {0, 255, (1 - a) * 255});
  // White strokes: black background. 16-bit gray+alpha too.
  Png light{.width = 2, .height = 1, .depth = 16, .colour_type = 4, .samples = {0xffff, 0xffff, 0xffff, 0x0000}};
  expect_pixels(decode(light.encode()), 2, 1, {255, 0});
}

TEST(DecodePng, GrayWithATransparentShadeAndRgba) {
  // tRNS on a gray image names the one shade that is transparent.
  Png gray{.width = 3, .height = 1, .depth = 8, .colour_type = 0, .samples = {7, 250, 7}, .trns = {0, 7}};
  expect_pixels(decode(gray.encode()), 3, 1, {0, 250, 0});
  Png rgba{.width = 2, .height = 1, .depth = 8, .colour_type = 6, .samples = {0, 0, 200, 255, 9, 9, 9, 0}};
  expect_pixels(decode(rgba.encode()), 2, 1, {luma(0, 0, 200), 255});
}

TEST(DecodePng, InterlacedDecodesLikeNonInterlaced) {
  // Sizes that leave some of Adam7's seven passes empty, and some not a multiple of 8.
  struct Case {
    int width, height, depth, colour_type;
  };
  for (const Case& c : {Case{1, 1, 8, 0}, Case{3, 5, 8, 2}, Case{13, 11, 8, 6}, Case{9, 17, 16, 4}, Case{7, 9, 8, 4}, Case{10, 3, 1, 0}, Case{8, 8, 4, 3}}) {
    SCOPED_TRACE(std::to_string(c.width) + "×" + std::to_string(c.height) + " depth " + std::to_string(c.depth) + " type " + std::to_string(c.colour_type));
    Png png{.width = c.width, .height = c.height, .depth = c.depth, .colour_type = c.colour_type};
    png.samples = random_samples(static_cast<std::size_t>(c.width * c.height * png.channels()), c.depth, 3);
    if (c.colour_type == 3) {
      for (int i = 0; i < 16; ++i) png.plte += {static_cast<char>(i * 16), static_cast<char>(255 - i * 16), static_cast<char>(i * 5)};
    }
    const GrayImage plain = decode(png.encode());
    png.interlaced = true;
    const std::string interlaced = png.encode();
    EXPECT_EQ(interlaced[28], 1) << "the IHDR says Adam7";
    expect_pixels(decode(interlaced), c.width, c.height, plain.pixels, 0.0f);
  }
}

TEST(DecodePng, WhatEncodePngWritesComesBack) {
  // 2048×2048 of noise: encode_png (stb_image_write) puts it in one IDAT chunk of about 4 MB,
  // above libspng's cap on ancillary chunks, which must not apply to the pixels. At this size it
  // comes back reduced 4×4 (image.hpp, kReducedSide).
  GrayImage image{2048, 2048, {}};
  for (std::uint16_t s : random_samples(2048 * 2048, 8, 4)) image.pixels.push_back(s);
  const std::string png = encode_png(image);
  ASSERT_GT(png.size(), std::size_t{4} << 20);
  expect_pixels(decode(png), 512, 512, box_average(image, 4).pixels, 1e-3f);
}

TEST(DecodePng, WhatEncodePngWritesComesBackExactlyBelowTheReduction) {
  GrayImage image{kReducedSide * 2 - 1, 301, {}};
  for (std::uint16_t s : random_samples(static_cast<std::size_t>(image.width) * 301, 8, 5)) image.pixels.push_back(s);
  expect_pixels(decode(encode_png(image)), image.width, 301, image.pixels, 0.0f);
}

// ---- JPEG ----

// A gray gradient with a bright bar: smooth enough that quality 100 keeps it within 2 levels.
Jpeg gray_jpeg(int width, int height) {
  Jpeg jpeg{.width = width, .height = height, .components = 1, .quality = 100};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) jpeg.samples.push_back(static_cast<unsigned char>(x > width / 2 && x < width / 2 + 8 ? 240 : 40 + x + y));
  return jpeg;
}

// 16×16 blocks of solid colours (chroma is subsampled by 2: a block keeps its colour).
Jpeg colour_jpeg(int components, const std::vector<std::vector<unsigned char>>& colours) {
  Jpeg jpeg{.width = 16 * static_cast<int>(colours.size()), .height = 16, .components = components, .quality = 100};
  for (int y = 0; y < 16; ++y)
    for (const auto& colour : colours)
      for (int x = 0; x < 16; ++x) jpeg.samples.insert(jpeg.samples.end(), colour.begin(), colour.end());
  return jpeg;
}

// The value in the middle of each 16×16 block.
std::vector<float> block_centres(const GrayImage& image) {
  std::vector<float> centres;
  for (int x = 8; x < image.width; x += 16) centres.push_back(image.at(x, 8));
  return centres;
}

TEST(DecodeJpeg, GrayIsCloseToTheSource) {
  const Jpeg jpeg = gray_jpeg(64, 48);
  const GrayImage image = decode(jpeg.encode());
  expect_pixels(image, 64, 48, std::vector<float>(jpeg.samples.begin(), jpeg.samples.end()), 2.0f);
}

TEST(DecodeJpeg, ColourBecomesLuma) {
  const GrayImage image = decode(colour_jpeg(3, {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {250, 250, 250}, {30, 60, 90}}).encode());
  const std::vector<float> expected = {luma(255, 0, 0), luma(0, 255, 0), luma(0, 0, 255), 250, luma(30, 60, 90)};
  const std::vector<float> centres = block_centres(image);
  ASSERT_EQ(centres.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(centres[i], expected[i], 3.0f) << "block " << i;
}

TEST(DecodeJpeg, ProgressiveDecodesExactlyLikeBaseline) {
  // Progression reorders how the coefficients are coded, not what they are: the pixels are equal.
  for (Jpeg jpeg : {gray_jpeg(61, 37), colour_jpeg(3, {{200, 10, 10}, {10, 200, 10}, {10, 10, 200}})}) {
    const std::string baseline = jpeg.encode();
    jpeg.progressive = true;
    const std::string progressive = jpeg.encode();
    ASSERT_NE(progressive.find("\xff\xc2"), std::string::npos) << "SOF2: a progressive frame";
    ASSERT_EQ(baseline.find("\xff\xc2"), std::string::npos);
    const GrayImage expected = decode(baseline);
    expect_pixels(decode(progressive), jpeg.width, jpeg.height, expected.pixels, 0.0f);
  }
}

TEST(DecodeJpeg, AdobeCmykIsInvertedInk) {
  // Stored as Adobe does, 255 − ink: (255,255,255,255) is white paper; K = 0 is full black ink;
  // C = 0 is full cyan: R 0, G 255, B 255.
  const GrayImage image = decode(colour_jpeg(4, {{255, 255, 255, 255}, {255, 255, 255, 0}, {0, 255, 255, 255}}).encode());
  const std::vector<float> centres = block_centres(image);
  ASSERT_EQ(centres.size(), 3u);
  EXPECT_NEAR(centres[0], 255, 3.0f);
  EXPECT_NEAR(centres[1], 0, 3.0f);
  EXPECT_NEAR(centres[2], luma(0, 255, 255), 3.0f);
}

// ---- BMP ----

TEST(DecodeBmp, TwentyFourBitsBottomUpAndTopDown) {
  Bmp bmp{.width = 3, .height = 2, .bits = 24, .pixels = {0xff0000, 0x00ff00, 0x0000ff, 0x102030, 0xffffff, 0x000000}};
  const std::vector<float> expected = {luma(255, 0, 0), luma(0, 255, 0), luma(0, 0, 255), luma(0x10, 0x20, 0x30), 255, 0};
  expect_pixels(decode(bmp.encode()), 3, 2, expected);
  bmp.top_down = true;
  expect_pixels(decode(bmp.encode()), 3, 2, expected);
}

TEST(DecodeBmp, PalettesOfOneFourAndEightBits) {
  // A gray palette gives gray exactly; rows of 5 pixels need padding at every depth.
  std::vector<std::uint32_t> gray_palette;
  for (std::uint32_t v = 0; v < 256; ++v) gray_palette.push_back(v * 0x010101);
  Bmp eight{.width = 5, .height = 3, .bits = 8, .palette = gray_palette, .pixels = {0, 1, 2, 3, 4, 100, 101, 102, 103, 104, 251, 252, 253, 254, 255}};
  expect_pixels(decode(eight.encode()), 5, 3, {0, 1, 2, 3, 4, 100, 101, 102, 103, 104, 251, 252, 253, 254, 255}, 0.0f);

  Bmp four{.width = 5, .height = 2, .bits = 4, .palette = {0x000000, 0xff0000, 0x00ff00, 0xffffff}, .pixels = {0, 1, 2, 3, 0, 3, 3, 2, 1, 0}};
  const float red = luma(255, 0, 0), green = luma(0, 255, 0);
  expect_pixels(decode(four.encode()), 5, 2, {0, red, green, 255, 0, 255, 255, green, red, 0});

  Bmp one{.width = 11, .height = 2, .bits = 1, .palette = {0xffffff, 0x000000}, .pixels = {0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}};
  std::vector<float> expected;
  for (std::uint32_t index : one.pixels) expected.push_back(index ? 0.0f : 255.0f);
  expect_pixels(decode(one.encode()), 11, 2, expected, 0.0f);
}

TEST(DecodeBmp, SixteenBitsDefaultAndBitfields) {
  // No masks: 5-5-5. Five bits of 16 become (16·255 + 15)/31 = 132.
  Bmp rgb555{.width = 3, .height = 1, .bits = 16, .pixels = {31u << 10, 16u << 5, 0x7fff}};
  expect_pixels(decode(rgb555.encode()), 3, 1, {luma(255, 0, 0), luma(0, 132, 0), 255});
  // BI_BITFIELDS 5-6-5, the masks after a 40-byte header: six bits of 32 become (32·255 + 31)/63 = 130.
  Bmp rgb565{.width = 2, .height = 1, .bits = 16, .compression = 3, .masks = {0xf800, 0x07e0, 0x001f}, .pixels = {32u << 5, 0xffff}};
  expect_pixels(decode(rgb565.encode()), 2, 1, {luma(0, 130, 0), 255});
}

TEST(DecodeBmp, ThirtyTwoBitsWithAlphaAndWithout) {
  // BI_RGB: the top byte is alpha, unless it is zero everywhere (then it means "unused").
  Bmp alpha{.width = 2, .height = 1, .bits = 32, .pixels = {0xff000000, 0x00000000}};
  expect_pixels(decode(alpha.encode()), 2, 1, {0, 255});  // black ink, transparent: white background
  Bmp unused{.width = 2, .height = 1, .bits = 32, .pixels = {0x00ffffff, 0x00102030}};
  expect_pixels(decode(unused.encode()), 2, 1, {255, luma(0x10, 0x20, 0x30)});
  // A V5 header with its own masks, alpha in the low byte.
  Bmp v5{.width = 2, .height = 1, .bits = 32, .compression = 3, .info_bytes = 124, .masks = {0xff000000, 0x00ff0000, 0x0000ff00, 0x000000ff}, .pixels = {0xffffffff, 0x00000000}};
  expect_pixels(decode(v5.encode()), 2, 1, {255, 0});
}

// ---- PGM ----

TEST(DecodePgm, BinaryEightAndSixteenBits) {
  expect_pixels(decode(std::string("P5\n3 2\n255\n") + std::string("\x00\x10\x80\xfe\xff\x01", 6)), 3, 2, {0, 16, 128, 254, 255, 1}, 0.0f);
  // maxval 1000, two bytes a sample: 500 → 127.5 rounds to 128.
  expect_pixels(decode(std::string("P5 2 1 1000\n") + std::string("\x01\xf4\x03\xe8", 4)), 2, 1, {128, 255}, 0.0f);
  // maxval 15 is scaled to 0–255.
  expect_pixels(decode(std::string("P5\t2\r\n1 15 ") + std::string("\x0f\x07", 2)), 2, 1, {255, 119}, 0.0f);
}

TEST(DecodePgm, PlainWithComments) {
  expect_pixels(decode("P2\n# made by hand\n4 # four wide\n2\n255\n0 1 2 3\n 250\t251\n252   255"), 4, 2, {0, 1, 2, 3, 250, 251, 252, 255}, 0.0f);
}

// ---- the format comes from the bytes ----

TEST(DecodeImage, FormatComesFromTheBytesNotTheName) {
  const fs::path dir = fs::temp_directory_path() / ("digits-decode-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Png png{.width = 2, .height = 1, .depth = 8, .colour_type = 0, .samples = {9, 200}};
  const Jpeg jpeg = gray_jpeg(16, 16);
  for (const auto& [name, bytes] : {std::pair{"png.jpg", png.encode()}, std::pair{"jpeg.png", jpeg.encode()}, std::pair{"pgm.bmp", std::string("P2 1 1 255 77")}}) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    EXPECT_NO_THROW(read_image(dir / name)) << name;
  }
  expect_pixels(read_image(dir / "png.jpg"), 2, 1, {9, 200}, 0.0f);
  expect_pixels(read_image(dir / "pgm.bmp"), 1, 1, {77}, 0.0f);
  fs::remove_all(dir);
}

}  // namespace
