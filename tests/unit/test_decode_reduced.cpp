// Large images are reduced as they are decoded (image.hpp, kReducedSide): every format's reduced
// decode is the full image's gray values area-averaged by the same factor (box_average, the plain
// loop), within float rounding for the lossless formats and within JPEG's own rounding for its
// scaled inverse DCT; odd sizes keep their partial last blocks. The reduction leaves what the
// network sees, preprocess()'s 28×28, all but unchanged on drawings. The server's own pixel cap
// refuses from the header; the library's cap still reads a 4096×3072 photo.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "digits/builtin_model.hpp"
#include "digits/dataset.hpp"
#include "digits/decoders.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"
#include "image_files.hpp"

using namespace digits;
using namespace digits::testing;

namespace {

void expect_near_image(const GrayImage& actual, const GrayImage& expected, float tolerance) {
  ASSERT_EQ(actual.width, expected.width);
  ASSERT_EQ(actual.height, expected.height);
  float worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < expected.pixels.size(); ++i)
    if (std::abs(actual.pixels[i] - expected.pixels[i]) > worst) worst = std::abs(actual.pixels[i] - expected.pixels[i]), at = i;
  EXPECT_LE(worst, tolerance) << "at pixel " << at % static_cast<std::size_t>(expected.width) << "," << at / static_cast<std::size_t>(expected.width) << ": "
                              << actual.pixels[at] << " against " << expected.pixels[at];
}

// Random samples, but in blocks of 3×3 pixels, so that a box average is not just the mean gray.
std::vector<std::uint16_t> blocky_samples(int width, int height, int channels, int depth, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(0, (1 << depth) - 1);
  const int bw = (width + 2) / 3;
  std::vector<std::uint16_t> blocks(static_cast<std::size_t>(bw) * static_cast<std::size_t>((height + 2) / 3) * static_cast<std::size_t>(channels));
  for (auto& b : blocks) b = static_cast<std::uint16_t>(value(rng));
  std::vector<std::uint16_t> samples;
  samples.reserve(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * static_cast<std::size_t>(channels));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) samples.push_back(blocks[(static_cast<std::size_t>(y / 3) * static_cast<std::size_t>(bw) + static_cast<std::size_t>(x / 3)) * static_cast<std::size_t>(channels) + static_cast<std::size_t>(c)]);
  return samples;
}

// The full-size gray image a PNG's samples stand for, made by to_gray (no reduction): 16-bit
// samples keep their high byte, a (gray) palette is looked up.
GrayImage full_gray(const Png& png) {
  const int channels = png.channels();
  Pixels pixels{png.width, png.height, png.colour_type == 3 ? 1 : channels, {}};
  for (std::uint16_t s : png.samples) {
    const int v = png.depth == 16 ? s >> 8 : png.colour_type == 3 ? static_cast<unsigned char>(png.plte[3 * s]) : s * 255 / ((1 << png.depth) - 1);
    pixels.samples.push_back(static_cast<unsigned char>(v));
  }
  return to_gray(pixels);
}

// A smooth drawing for JPEG, which keeps smooth content within a level or two: a gray gradient and
// a soft bright disc.
std::vector<unsigned char> smooth_samples(int width, int height, int components) {
  std::vector<unsigned char> samples;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double dx = x - width * 0.4, dy = y - height * 0.5, r = 0.3 * std::min(width, height);
      const double disc = 200 * std::exp(-(dx * dx + dy * dy) / (2 * r * r));
      const double base = 20 + 30.0 * x / width + 20.0 * y / height;
      for (int c = 0; c < components; ++c) samples.push_back(static_cast<unsigned char>(std::lround(std::min(255.0, base + disc * (c == 1 ? 0.8 : 1.0)))));
    }
  return samples;
}

GrayImage gray_of_samples(const std::vector<unsigned char>& samples, int width, int height, int components) {
  return to_gray(Pixels{width, height, components, samples});
}

}  // namespace

TEST(DecodeReduced, TheFactorIsTheLongerSideOverTheReducedSide) {
  EXPECT_EQ(reduction_factor(280, 280), 1);
  EXPECT_EQ(reduction_factor(2 * kReducedSide - 1, 10), 1);
  EXPECT_EQ(reduction_factor(10, 2 * kReducedSide), 2);
  EXPECT_EQ(reduction_factor(4096, 3072), 4096 / kReducedSide);
  EXPECT_EQ(decode(encode_png(GrayImage{2 * kReducedSide, 3, std::vector<float>(2 * kReducedSide * 3, 9.0f)})).width, kReducedSide);
}

// Every PNG colour type and depth, interlaced or not, at odd sizes (partial last blocks).
TEST(DecodeReduced, PngIsTheBoxAverageOfTheFullImage) {
  struct Kind {
    int depth, colour_type;
    bool interlaced;
  };
  for (const Kind kind : {Kind{8, 0, false}, Kind{16, 0, false}, Kind{1, 0, false}, Kind{8, 2, false}, Kind{16, 2, true}, Kind{8, 4, false}, Kind{16, 4, false},
                          Kind{8, 6, false}, Kind{16, 6, false}, Kind{8, 6, true}, Kind{8, 3, false}}) {
    SCOPED_TRACE("depth " + std::to_string(kind.depth) + ", colour type " + std::to_string(kind.colour_type) + (kind.interlaced ? ", interlaced" : ""));
    const int width = 3 * kReducedSide + 7, height = 2 * kReducedSide + 5;  // factor 3, both edges cut
    Png png{.width = width, .height = height, .depth = kind.depth, .colour_type = kind.colour_type, .interlaced = kind.interlaced};
    png.samples = blocky_samples(width, height, png.channels(), kind.colour_type == 3 ? 8 : kind.depth, 7);
    if (kind.colour_type == 3)
      for (int i = 0; i < 256; ++i) png.plte += {static_cast<char>(255 - i), static_cast<char>(255 - i), static_cast<char>(255 - i)};
    if (kind.colour_type == 4 || kind.colour_type == 6)  // a transparent stripe: the background counts too
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width / 5; ++x) png.samples[(static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * static_cast<std::size_t>(png.channels()) + static_cast<std::size_t>(png.channels() - 1)] = 0;
    expect_near_image(decode(png.encode()), box_average(full_gray(png), 3), 0.01f);
  }
}

TEST(DecodeReduced, BmpAndPgmAreTheBoxAverageOfTheFullImage) {
  const int width = 2 * kReducedSide + 3, height = 333;  // factor 2
  const std::vector<std::uint16_t> gray = blocky_samples(width, height, 1, 8, 3);
  GrayImage full{width, height, std::vector<float>(gray.begin(), gray.end())};

  Bmp bmp{.width = width, .height = height, .bits = 24};
  for (std::uint16_t v : gray) bmp.pixels.push_back(std::uint32_t{v} * 0x010101u);
  expect_near_image(decode(bmp.encode()), box_average(full, 2), 0.01f);

  Bmp bits{.width = width, .height = height, .bits = 1, .palette = {0x000000, 0xffffff}};
  GrayImage two{width, height, {}};
  for (std::uint16_t v : gray) bits.pixels.push_back(v > 127), two.pixels.push_back(v > 127 ? 255.0f : 0.0f);
  expect_near_image(decode(bits.encode()), box_average(two, 2), 0.01f);

  std::string p5 = "P5\n" + std::to_string(width) + " " + std::to_string(height) + "\n65535\n", p2 = "P2\n" + std::to_string(width) + " " + std::to_string(height) + "\n255\n";
  for (std::uint16_t v : gray) {
    p5 += {static_cast<char>(v), static_cast<char>(0x80)};  // 16-bit v·256 + 128 → (v·256 + 128)·255/65535 ≈ v
    p2 += std::to_string(v) + " ";
  }
  GrayImage sixteen{width, height, {}};
  for (std::uint16_t v : gray) sixteen.pixels.push_back(static_cast<float>((std::uint64_t{v} * 256 + 128) * 255 + 32767) / 65535);
  for (float& v : sixteen.pixels) v = std::floor(v);
  expect_near_image(decode(p5), box_average(sixteen, 2), 0.01f);
  expect_near_image(decode(p2), box_average(full, 2), 0.01f);
}

// JPEG at 1/8, 1/4 and 1/2 scale, gray and colour, against the box average of the image it was
// made from: the scaled IDCT's output pixel is (close to) its block's mean, and quality 100 keeps
// smooth content within a level or two.
TEST(DecodeReduced, JpegAtReducedScaleIsTheBoxAverage) {
  struct Case {
    int width, height, components;
    bool progressive;
  };
  for (const Case c : {Case{4096, 3072, 1, false}, Case{4 * kReducedSide + 13, 1000, 3, false}, Case{2 * kReducedSide + 9, 515, 3, true}, Case{2 * kReducedSide + 1, 300, 4, false}}) {
    SCOPED_TRACE(std::to_string(c.width) + "×" + std::to_string(c.height) + ", " + std::to_string(c.components) + " components");
    Jpeg jpeg{.width = c.width, .height = c.height, .components = c.components, .quality = 100, .progressive = c.progressive};
    jpeg.samples = smooth_samples(c.width, c.height, c.components);
    GrayImage source = gray_of_samples(jpeg.samples, c.width, c.height, c.components == 4 ? 1 : c.components);
    if (c.components == 4) {  // Adobe's CMYK stores 255 − ink (image_files.hpp): C M Y = R G B and K = 255 (no black ink) give R G B
      std::vector<unsigned char> cmyk;
      for (std::size_t i = 0; i < jpeg.samples.size(); i += 4) cmyk.insert(cmyk.end(), {jpeg.samples[i], jpeg.samples[i + 1], jpeg.samples[i + 2], 255});
      std::vector<unsigned char> rgb;
      for (std::size_t i = 0; i < jpeg.samples.size(); i += 4) rgb.insert(rgb.end(), {jpeg.samples[i], jpeg.samples[i + 1], jpeg.samples[i + 2]});
      source = gray_of_samples(rgb, c.width, c.height, 3);
      jpeg.samples = cmyk;
    }
    const int factor = reduction_factor(c.width, c.height);
    const GrayImage decoded = decode(jpeg.encode());
    expect_near_image(decoded, box_average(source, factor), 3.0f);
  }
}

// The reduction is invisible to the network: preprocess()'s 28×28 of a drawing barely moves, and
// the built-in model reads the same digit. Drawings: the examples (a small 3 in a corner, a dark 7
// on light paper) and MNIST's first test digits when data/mnist is there, each enlarged smoothly
// (bilinear) to sizes that reduce by 2 to 8.
TEST(DecodeReduced, PreprocessingBarelyChangesOnDrawings) {
  const std::filesystem::path source(DIGITS_SOURCE_DIR);
  std::vector<GrayImage> drawings;
  for (const char* name : {"3_small_corner.png", "7_dark_on_light.png"}) drawings.push_back(read_image(source / "examples" / "images" / name));
  try {
    const Dataset mnist = load_train_test(source / "data" / "mnist").test;
    for (int n = 0; n < 12; ++n) drawings.push_back(GrayImage{28, 28, std::vector<float>(mnist.pixels.begin() + n * 784, mnist.pixels.begin() + (n + 1) * 784)});
  } catch (const Error&) {
  }
  const Model model = parse_model(builtin_model_bytes(), "built-in model");
  float worst = 0;
  int n = 0, disagreements = 0;
  for (const GrayImage& drawing : drawings) {
    const int target = 1100 + 500 * (n % 4);  // longer side 1100–2600: factors 2 to 5
    const double scale = static_cast<double>(target) / std::max(drawing.width, drawing.height);
    const int width = static_cast<int>(drawing.width * scale), height = static_cast<int>(drawing.height * scale);
    // Bilinear enlargement, rounded to 8 bits as a decoder would give it.
    std::vector<unsigned char> samples(static_cast<std::size_t>(width) * static_cast<std::size_t>(height));
    GrayImage full{width, height, std::vector<float>(samples.size())};
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const double u = std::clamp((x + 0.5) / scale - 0.5, 0.0, drawing.width - 1.0), v = std::clamp((y + 0.5) / scale - 0.5, 0.0, drawing.height - 1.0);
        const int x0 = std::min(static_cast<int>(u), drawing.width - 2 < 0 ? 0 : drawing.width - 2), y0 = std::min(static_cast<int>(v), drawing.height - 2 < 0 ? 0 : drawing.height - 2);
        const double fx = u - x0, fy = v - y0;
        const double value = (1 - fy) * ((1 - fx) * drawing.at(x0, y0) + fx * drawing.at(x0 + 1, y0)) + fy * ((1 - fx) * drawing.at(x0, y0 + 1) + fx * drawing.at(x0 + 1, y0 + 1));
        const std::size_t i = static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x);
        samples[i] = static_cast<unsigned char>(std::lround(value));
        full.pixels[i] = samples[i];
      }
    GrayReducer reducer(width, height, reduction_factor(width, height), 1, false, false);
    for (int y = 0; y < height; ++y) reducer.add_row(y, &samples[static_cast<std::size_t>(y) * static_cast<std::size_t>(width)]);
    const GrayImage reduced = reducer.finish();
    ASSERT_LT(reduced.width, width);
    const Preprocessed a = preprocess(full), b = preprocess(reduced);
    for (std::size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(a.pixels[i] - b.pixels[i]));
    const auto as_row = [](const Preprocessed& p) { return Eigen::Map<const Matrix>(p.pixels.data(), 1, 784); };
    disagreements += model.network.predict(as_row(a))[0] != model.network.predict(as_row(b))[0];
    ++n;
  }
  RecordProperty("worst_difference", std::to_string(worst));
  std::printf("  %d drawings: 28×28 inputs differ by at most %.2f of 255; %d read differently\n", n, worst, disagreements);
  EXPECT_LE(worst, 12.0f);  // 6.6 measured with kReducedSide 512 (10.2 with factors up to 7)
  EXPECT_EQ(disagreements, 0);
}

// The library's own cap, the CLI's: a 12-megapixel photo is read (reduced); the server's lower cap
// refuses it from the header, naming the cap.
TEST(DecodeReduced, TheCliReadsA4096By3072ImageAndALowerCapRefusesIt) {
  GrayImage photo{4096, 3072, std::vector<float>(std::size_t{4096} * 3072, 30.0f)};
  for (int y = 1000; y < 2000; ++y)
    for (int x = 1500; x < 1800; ++x) photo.pixels[static_cast<std::size_t>(y) * 4096 + static_cast<std::size_t>(x)] = 220.0f;
  const std::string png = encode_png(photo);
  const GrayImage read = decode(png);
  EXPECT_EQ(read.width, 4096 / reduction_factor(4096, 3072));
  EXPECT_EQ(read.height, 3072 / reduction_factor(4096, 3072));
  EXPECT_NO_THROW(preprocess(read));
  try {
    decode_image(as_bytes(png), "image", ImageLimits{4096, std::int64_t{1} << 20});
    ADD_FAILURE() << "decoded over the cap";
  } catch (const ImageTooLarge& e) {
    EXPECT_NE(std::string(e.what()).find("4096×3072 pixels is more than digits accepts (at most 4096 pixels a side and 1048576 in all)"), std::string::npos) << e.what();
  }
}
