// The preprocessing contract: whatever the canvas, the network sees a digit made like MNIST's.
#include <gtest/gtest.h>

#include "../support/strokes.hpp"
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
