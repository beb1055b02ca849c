// The preprocessing contract: whatever the canvas, the network sees a digit made like MNIST's.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "../support/strokes.hpp"
#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/preprocess.hpp"
#include "digits/tensor.hpp"

using namespace digits;
using namespace digits::testing;

namespace {

Eigen::Map<const Matrix> as_field(const Preprocessed& p) { return {p.pixels.data(), kInputSide, kInputSide}; }

// Mean absolute difference of two 28×28 inputs, as a fraction of full scale.
double difference(const Preprocessed& a, const Preprocessed& b) {
  return (as_field(a) - as_field(b)).cwiseAbs().mean() / 255.0;
}

Placement centred() { return {}; }

// The preprocessing as it was before photographs (commit 3068347's find_ink): one paper level,
// the border's median. The built-in model was trained on what it makes of drawings, so for every
// drawing preprocess() must still make exactly that.
Preprocessed before_photographs(const GrayImage& image) {
  const int frame = std::max(1, std::min(image.width, image.height) / 20);
  std::vector<float> border;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (x < frame || y < frame || x >= image.width - frame || y >= image.height - frame) border.push_back(image.at(x, y));
    }
  }
  std::nth_element(border.begin(), border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2), border.end());
  Ink ink;
  float paper = border[border.size() / 2];
  ink.inverted = paper > 127.5f;
  if (ink.inverted) paper = 255.0f - paper;
  const float gain = 255.0f / std::max(255.0f - paper, 1.0f);
  ink.values.resize(image.height, image.width);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const float v = ink.inverted ? 255.0f - image.at(x, y) : image.at(x, y);
      ink.values(y, x) = std::max(0.0f, (v - paper) * gain);
    }
  }
  return fit_ink(ink);
}

// Scales an image up by an integer factor, bilinearly (clamped at the edges), as a browser
// smooths a small bitmap: the generator's lowres folder, whose ramps are no paper's flat level.
GrayImage upscale(const GrayImage& small, int factor) {
  GrayImage big{small.width * factor, small.height * factor, std::vector<float>(static_cast<std::size_t>(small.width * factor) * static_cast<std::size_t>(small.height * factor))};
  for (int y = 0; y < big.height; ++y) {
    for (int x = 0; x < big.width; ++x) {
      const double sx = std::clamp((x + 0.5) / factor - 0.5, 0.0, small.width - 1.0), sy = std::clamp((y + 0.5) / factor - 0.5, 0.0, small.height - 1.0);
      const int x0 = static_cast<int>(sx), y0 = static_cast<int>(sy);
      const double fx = sx - x0, fy = sy - y0;
      const int x1 = std::min(x0 + 1, small.width - 1), y1 = std::min(y0 + 1, small.height - 1);
      big.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(big.width) + static_cast<std::size_t>(x)] = static_cast<float>(
          (1 - fy) * ((1 - fx) * small.at(x0, y0) + fx * small.at(x1, y0)) + fy * ((1 - fx) * small.at(x0, y1) + fx * small.at(x1, y1)));
    }
  }
  return big;
}

// A photograph of a drawing on paper: dark ink on gray paper (`paper` at full light, ink at 30),
// under light that falls off by `falloff` from left to right and by 15% into the corners, with
// Gaussian sensor noise of `sigma` levels, stored in 8 bits.
GrayImage photographed(int digit, float paper, double falloff, double sigma, std::uint32_t seed = 7) {
  Placement light = centred();
  light.canvas_width = 400, light.canvas_height = 320, light.left = 150, light.top = 70, light.width = 120, light.height = 160, light.pen = 13;
  GrayImage image = draw(digit_strokes(digit), light);  // white ink on black: v is the ink's coverage
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double u = (x - image.width / 2.0) / image.width, v = (y - image.height / 2.0) / image.height;
      const double lit = (1 - falloff * x / image.width) * (1 - 0.3 * (u * u + v * v));
      float& p = image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x)];
      const double reflected = (paper + (30.0 - paper) * p / 255.0) * lit;
      p = static_cast<float>(std::clamp(std::round(reflected + noise(rng)), 0.0, 255.0));
    }
  }
  return image;
}

// The same digit as `photographed` draws it, but drawn: flat white paper, black ink, no noise.
GrayImage drawn(int digit) {
  Placement light = centred();
  light.canvas_width = 400, light.canvas_height = 320, light.left = 150, light.top = 70, light.width = 120, light.height = 160, light.pen = 13;
  light.dark_on_light = true;
  return draw(digit_strokes(digit), light);
}

}  // namespace

TEST(Preprocess, OutputIsA28By28FieldWithFullScaleInk) {
  const Preprocessed p = preprocess(draw(digit_strokes(7), centred()));
  ASSERT_EQ(p.pixels.size(), 784u);
  EXPECT_FLOAT_EQ(as_field(p).maxCoeff(), 255.0f);
  EXPECT_GE(as_field(p).minCoeff(), 0.0f);
  EXPECT_FALSE(p.inverted);
}

TEST(Preprocess, InkFitsTheTwentyPixelBoxAndItsCentreOfMassIsCentred) {
  const Preprocessed p = preprocess(draw(digit_strokes(1), centred()));
  const auto field = as_field(p);
  double mass = 0, mx = 0, my = 0;
  int top = 28, bottom = -1;
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      mass += field(y, x), mx += field(y, x) * (x + 0.5), my += field(y, x) * (y + 0.5);
      if (field(y, x) > 0) top = std::min(top, y), bottom = std::max(bottom, y);
    }
  EXPECT_NEAR(mx / mass, 14.0, 0.5);
  EXPECT_NEAR(my / mass, 14.0, 0.5);
  EXPECT_LE(bottom - top + 1, 22);  // 20 plus the anti-aliased edge rows
  EXPECT_GE(bottom - top + 1, 19);  // the long side fills the box
}

TEST(Preprocess, ShiftedOrScaledOnALargeCanvasGivesNearlyTheSameInput) {
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    const Preprocessed reference = preprocess(draw(digit_strokes(digit), centred()));
    Placement off_centre{.canvas_width = 1000, .canvas_height = 700, .left = 640, .top = 380, .width = 240, .height = 300, .pen = 27};
    Placement small{.canvas_width = 600, .canvas_height = 600, .left = 20, .top = 30, .width = 48, .height = 60, .pen = 5.4};
    for (const Placement& placement : {off_centre, small}) {
      const double d = difference(reference, preprocess(draw(digit_strokes(digit), placement)));
      EXPECT_LT(d, 0.03) << "digit " << digit << " on a " << placement.canvas_width << "×" << placement.canvas_height << " canvas";
    }
    // A different digit is far away, so the bound above is meaningful.
    const int other = digit == 1 ? 0 : 1;
    EXPECT_GT(difference(reference, preprocess(draw(digit_strokes(other), centred()))), 0.08);
  }
}

TEST(Preprocess, DarkInkOnLightPaperIsInverted) {
  Placement light = centred();
  light.dark_on_light = true;
  const Preprocessed inverted = preprocess(draw(digit_strokes(3), light));
  EXPECT_TRUE(inverted.inverted);
  EXPECT_LT(difference(inverted, preprocess(draw(digit_strokes(3), centred()))), 1e-3);
}

TEST(Preprocess, GrayPaperBecomesBlack) {
  GrayImage image = draw(digit_strokes(4), centred());
  for (float& v : image.pixels) v = 40.0f + v * (215.0f / 255.0f);  // paper at 40, ink at 255
  EXPECT_LT(difference(preprocess(image), preprocess(draw(digit_strokes(4), centred()))), 1e-3);
}

TEST(Preprocess, AlreadyMnistShapedInputIsKeptAlmostExactly) {
  // A digit already drawn in MNIST's frame (20-pixel box, centred) comes back nearly unchanged:
  // its anti-aliased rim counts as ink, so the box grows a pixel and the digit shrinks by ~5%.
  const Preprocessed once = preprocess(draw(digit_strokes(2), centred()));
  GrayImage small{28, 28, once.pixels};
  EXPECT_LT(difference(preprocess(small), once), 0.04);
}

TEST(Preprocess, AnEmptyImageIsAnErrorNotAGuess) {
  GrayImage black{300, 300, std::vector<float>(300 * 300, 0.0f)};
  EXPECT_THROW(preprocess(black), Error);
  GrayImage white{300, 300, std::vector<float>(300 * 300, 255.0f)};
  EXPECT_THROW(preprocess(white), Error);
  GrayImage faint = black;
  faint.pixels[150 * 300 + 150] = 20.0f;  // below the 10% ink threshold
  try {
    preprocess(faint);
    FAIL() << "a faint speck was read as a digit";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos);
  }
}

TEST(Preprocess, ATinyDotStillGivesAValidField) {
  GrayImage dot{50, 50, std::vector<float>(50 * 50, 0.0f)};
  dot.pixels[25 * 50 + 25] = 255.0f;
  const Preprocessed p = preprocess(dot);
  EXPECT_TRUE(as_field(p).allFinite());
  EXPECT_FLOAT_EQ(as_field(p).maxCoeff(), 255.0f);
}

TEST(Preprocess, RejectsAnImageWithoutPixels) {
  EXPECT_THROW(preprocess(GrayImage{}), Error);
  EXPECT_THROW(preprocess(GrayImage{10, 10, std::vector<float>(5)}), Error);
}

// Point 1 of the photographs' change: every drawing (flat paper, no noise) gets exactly the input
// it got before, bit for bit, whatever its size, polarity, paper level, pen or place, so that
// the built-in model, trained on those inputs, reads drawings as it did. The gate that sends
// these to the drawings' path is what this tests: σ = 0 and half the cells at one level.
TEST(Preprocess, DrawingsGiveExactlyTheInputsTheBuiltInModelWasTrainedOn) {
  std::vector<std::pair<std::string, GrayImage>> drawings;
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    const std::string name = "digit " + std::to_string(digit);
    Placement light = centred();
    light.dark_on_light = true;
    Placement off_centre{.canvas_width = 1000, .canvas_height = 700, .left = 640, .top = 380, .width = 240, .height = 300, .pen = 27};
    Placement small{.canvas_width = 600, .canvas_height = 600, .left = 20, .top = 30, .width = 48, .height = 60, .pen = 5.4};
    Placement marker{.canvas_width = 300, .canvas_height = 300, .left = 40, .top = 30, .width = 200, .height = 240, .pen = 70};
    Placement touching{.canvas_width = 280, .canvas_height = 280, .left = -10, .top = -12, .width = 300, .height = 304, .pen = 30, .dark_on_light = true};
    Placement stylus{.canvas_width = 900, .canvas_height = 900, .left = 200, .top = 150, .width = 400, .height = 600, .pen = 1.2};
    for (const auto& [how, placement] : {std::pair{"", centred()}, {" dark on light", light}, {" off centre", off_centre}, {" small", small},
                                         {" marker", marker}, {" touching the box", touching}, {" stylus", stylus}})
      drawings.emplace_back(name + how, draw(digit_strokes(digit), placement));
    GrayImage gray = draw(digit_strokes(digit), centred());
    for (float& v : gray.pixels) v = 40.0f + v * (215.0f / 255.0f);  // paper at 40, ink at 255
    drawings.emplace_back(name + " on gray paper", gray);
    const Preprocessed once = preprocess(draw(digit_strokes(digit), centred()));
    drawings.emplace_back(name + " already 28×28", GrayImage{28, 28, once.pixels});
    // A small bitmap scaled up smoothly: its ramps are no flat level, but half of it is paper.
    Placement tiny{.canvas_width = 16, .canvas_height = 16, .left = 3, .top = 2, .width = 9, .height = 12, .pen = 2.2};
    drawings.emplace_back(name + " 16×16 scaled up 20×", upscale(draw(digit_strokes(digit), tiny), 20));
    // A thick stroke cropped tight: mostly ink, little paper at the border's level.
    Placement cropped{.canvas_width = 44, .canvas_height = 90, .left = 0, .top = 0, .width = 44, .height = 90, .pen = 30};
    drawings.emplace_back(name + " thick, cropped tight", draw(digit_strokes(digit), cropped));
    cropped.dark_on_light = true;
    drawings.emplace_back(name + " thick, cropped tight, dark on light", draw(digit_strokes(digit), cropped));
  }
  {
    // A thick 1 cut out of a number, as read_number's pieces are: ink but for a strip of paper at
    // each side, a fifth of the image (the border's level, under the gate's share).
    GrayImage one{30, 80, std::vector<float>(30 * 80, 255.0f)};
    for (int y = 0; y < 80; ++y)
      for (int x : {0, 1, 2, 27, 28, 29}) one.pixels[static_cast<std::size_t>(y * 30 + x)] = 0;
    drawings.emplace_back("a thick 1 cropped tight", one);
    for (float& v : one.pixels) v = 255.0f - v;
    drawings.emplace_back("a thick 1 cropped tight, dark on light", one);
  }
  // The CLI's examples, and MNIST test digits placed on a canvas, as the mnist_placed folder has them.
  const std::filesystem::path source(DIGITS_SOURCE_DIR);
  for (const auto& entry : std::filesystem::directory_iterator(source / "examples" / "images")) drawings.emplace_back(entry.path().filename().string(), read_image(entry.path()));
  const std::filesystem::path mnist = source / "data" / "mnist";
  if (std::filesystem::exists(mnist / "t10k-images-idx3-ubyte")) {
    const Dataset test = read_idx(mnist / "t10k-images-idx3-ubyte", mnist / "t10k-labels-idx1-ubyte", "t10k");
    for (int i = 0; i < 40; ++i) {
      GrayImage digit{28, 28, std::vector<float>(784)};
      for (int k = 0; k < 784; ++k) digit.pixels[static_cast<std::size_t>(k)] = test.pixels[static_cast<std::size_t>(i) * 784 + static_cast<std::size_t>(k)];
      GrayImage placed = upscale(digit, 6 + i % 5);
      if (i % 2 == 1)
        for (float& v : placed.pixels) v = 255.0f - v;  // dark on light
      drawings.emplace_back("MNIST test " + std::to_string(i), placed);
    }
  }
  ASSERT_GE(drawings.size(), 60u);
  for (const auto& [name, image] : drawings) {
    const Preprocessed now = preprocess(image), before = before_photographs(image);
    EXPECT_EQ(now.inverted, before.inverted) << name;
    EXPECT_TRUE(now.pixels == before.pixels) << name << ": the input changed by " << difference(now, before) * 255 << " levels on average";
  }
}

// Point 2: a photograph of paper (light falling off across the page and into its corners, sensor
// noise, gray paper) gives nearly the drawing's input; the one paper level of the drawings' path
// took the darker side of the page, or the noise, for ink and made the digit a speck in its box.
TEST(Preprocess, APhotographOfPaperUnderUnevenLightGivesTheDrawingsInput) {
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    const Preprocessed reference = preprocess(drawn(digit));
    for (const auto& [falloff, sigma] : {std::pair{0.35, 5.0}, {0.2, 8.0}, {0.4, 0.0}, {0.0, 6.0}}) {
      const GrayImage photo = photographed(digit, 200, falloff, sigma);
      const Preprocessed p = preprocess(photo);
      EXPECT_TRUE(p.inverted);
      EXPECT_LT(difference(p, reference), 0.01) << "digit " << digit << ", light falling off by " << falloff << ", noise σ " << sigma;
      EXPECT_GT(difference(before_photographs(photo), reference), 0.04) << "the drawings' path reads this photograph, so the test shows nothing";
    }
  }
}

TEST(Preprocess, LightInkOnADarkUnevenlyLitBoardIsNotInverted) {
  GrayImage board = photographed(3, 200, 0.3, 5);
  for (float& v : board.pixels) v = 255.0f - v;  // chalk on a board, lit from the right
  const Preprocessed p = preprocess(board);
  EXPECT_FALSE(p.inverted);
  EXPECT_LT(difference(p, preprocess(drawn(3))), 0.03);
}

// A speck of dirt or a burst of noise far from the digit is not ink: it would make the ink's box
// the page and the digit a speck in the 20×20 box.
TEST(Preprocess, SpecksOnAPhotographDoNotMoveTheInksBox) {
  GrayImage photo = photographed(7, 190, 0.25, 4);
  const Preprocessed clean = preprocess(photo);
  for (const auto& [x, y] : {std::pair{10, 10}, {385, 300}, {20, 290}}) {
    for (int dy = 0; dy < 2; ++dy) {
      for (int dx = 0; dx < 2; ++dx) photo.pixels[static_cast<std::size_t>(y + dy) * 400 + static_cast<std::size_t>(x + dx)] -= 40;
    }
  }
  EXPECT_LT(difference(preprocess(photo), clean), 0.005);
}

TEST(Preprocess, APhotographWithNoInkIsEmpty) {
  GrayImage blank = photographed(1, 200, 0.3, 5);
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 5.0);
  for (int y = 0; y < blank.height; ++y) {
    for (int x = 0; x < blank.width; ++x) {
      const double lit = (1 - 0.3 * x / blank.width);
      blank.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(blank.width) + static_cast<std::size_t>(x)] = static_cast<float>(std::clamp(std::round(200 * lit + noise(rng)), 0.0, 255.0));
    }
  }
  EXPECT_THROW(preprocess(blank), Error);
}
