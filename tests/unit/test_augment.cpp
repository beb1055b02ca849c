// Data augmentation keeps digits digits: the identity changes nothing, a seed fixes the image, a
// batch does not depend on how it is split, and an augmented digit stays inside its frame.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>
#include <vector>

#include "../support/strokes.hpp"
#include "digits/augment.hpp"
#include "digits/error.hpp"
#include "digits/preprocess.hpp"

using namespace digits;
using namespace digits::testing;

namespace {

constexpr int kSide = 28;
using Image = std::vector<std::uint8_t>;

// A pen-drawn digit made into a 28×28 input the way MNIST's were (20×20 box, centred by mass).
Image centred_digit(int digit) {
  const Preprocessed p = preprocess(draw(digit_strokes(digit), Placement{}));
  Image image(p.pixels.size());
  for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<std::uint8_t>(std::lround(p.pixels[i]));
  return image;
}

Image augmented(const Image& image, const AugmentSettings& settings, std::uint64_t seed) {
  Image out(image.size());
  Rng rng(seed);
  augment(image, kSide, kSide, settings, rng, std::span<std::uint8_t>(out));
  return out;
}

double mass(const Image& image) { return std::accumulate(image.begin(), image.end(), 0.0); }

bool ink_on_frame(const Image& image) {
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x)
      if ((y == 0 || x == 0 || y == kSide - 1 || x == kSide - 1) && image[static_cast<std::size_t>(y * kSide + x)] > 0) return true;
  return false;
}

Dataset small_dataset() {
  Dataset data;
  data.name = "strokes";
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    const Image image = centred_digit(digit);
    data.pixels.insert(data.pixels.end(), image.begin(), image.end());
    data.labels.push_back(static_cast<std::uint8_t>(digit));
  }
  return data;
}

AugmentSettings always_everything() {
  AugmentSettings s;
  s.elastic_probability = 1;
  s.thickness_probability = 1;
  return s;
}

}  // namespace

TEST(Augment, NoneLeavesEveryImageExactlyAsItWas) {
  // Including ink on the frame and full-scale noise, which the frame-keeping shift must not move.
  Image noise(kSide * kSide);
  Rng rng(5);
  for (auto& v : noise) v = static_cast<std::uint8_t>(rng.below(256));
  for (const Image& image : {centred_digit(3), centred_digit(7), noise}) {
    for (std::uint64_t seed = 0; seed < 20; ++seed) EXPECT_EQ(augmented(image, AugmentSettings::none(), seed), image);
    std::vector<float> out(image.size());
    Rng seeded(1);
    augment(image, kSide, kSide, AugmentSettings::none(), seeded, std::span<float>(out));
    for (std::size_t i = 0; i < image.size(); ++i) ASSERT_EQ(out[i], static_cast<float>(image[i]));
  }
  EXPECT_TRUE(AugmentSettings::none().is_none());
  EXPECT_FALSE(AugmentSettings{}.is_none());
}

TEST(Augment, TheSameSeedGivesTheSameImageAndAnotherSeedAnother) {
  const Image digit = centred_digit(2);
  for (const AugmentSettings& settings : {AugmentSettings{}, always_everything()}) {
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      EXPECT_EQ(augmented(digit, settings, seed), augmented(digit, settings, seed));
      EXPECT_NE(augmented(digit, settings, seed), augmented(digit, settings, seed + 1));
    }
  }
}

TEST(Augment, TheSameSeedGivesTheSameImageOnAnotherThread) {
  // The scratch memory is per thread: a second thread (fresh scratch) must agree with this one.
  const Image digit = centred_digit(4);
  const Image here = augmented(digit, always_everything(), 11);
  Image there;
  std::thread([&] { there = augmented(digit, always_everything(), 11); }).join();
  EXPECT_EQ(here, there);
}

TEST(Augment, EachTransformAloneChangesTheImage) {
  const Image digit = centred_digit(7);
  std::vector<AugmentSettings> alone(6, AugmentSettings::none());
  alone[0].max_shift = 2;
  alone[1].max_rotation_degrees = 12;
  alone[2].max_scale = 0.12f;
  alone[3].max_shear = 0.15f;
  alone[4].elastic_alpha = 34, alone[4].elastic_sigma = 4, alone[4].elastic_probability = 1;
  alone[5].thickness_probability = 1;
  for (const AugmentSettings& settings : alone) {
    int changed = 0;
    for (std::uint64_t seed = 0; seed < 10; ++seed) changed += augmented(digit, settings, seed) != digit;
    // Half the stroke changes are erosions, undone when they would wipe out the thin strokes.
    EXPECT_GE(changed, settings.thickness_probability > 0 ? 4 : 9) << describe(settings);
  }
}

TEST(Augment, ABatchRowDependsOnlyOnTheSeedAndItsPosition) {
  const Dataset data = small_dataset();
  const std::vector<std::size_t> indices = {3, 0, 5, 1};
  const AugmentSettings settings = always_everything();
  Matrix whole, first_half, second_half, reversed;
  std::vector<std::uint8_t> labels, labels_first, labels_second, labels_reversed;
  augment_batch(data, indices, settings, 42, 1.0f / 255, whole, labels);
  ASSERT_EQ(whole.rows(), 4);
  ASSERT_EQ(whole.cols(), 784);
  EXPECT_EQ(labels, (std::vector<std::uint8_t>{data.labels[3], data.labels[0], data.labels[5], data.labels[1]}));

  // Split in two calls, second half first, positions kept: the same rows.
  const std::span<const std::size_t> all(indices);
  augment_batch(data, all.subspan(2), settings, 42, 1.0f / 255, second_half, labels_second, 2);
  augment_batch(data, all.first(2), settings, 42, 1.0f / 255, first_half, labels_first, 0);
  EXPECT_EQ(first_half, whole.topRows(2));
  EXPECT_EQ(second_half, whole.bottomRows(2));

  // Each row is augment() with the row's own seed, times scale.
  for (std::size_t r = 0; r < indices.size(); ++r) {
    std::vector<float> out(784);
    Rng rng(augment_seed(42, r));
    augment(data.image(indices[r]), 28, 28, settings, rng, std::span<float>(out));
    for (int c = 0; c < 784; ++c) ASSERT_EQ(whole(static_cast<Eigen::Index>(r), c), out[static_cast<std::size_t>(c)] * (1.0f / 255)) << r;
  }

  // Shared among a pool's threads: the same rows.
  WorkerPool pool(3);
  Matrix shared;
  std::vector<std::uint8_t> labels_shared;
  augment_batch(data, indices, settings, 42, 1.0f / 255, shared, labels_shared, 0, &pool);
  EXPECT_EQ(shared, whole);
  EXPECT_EQ(labels_shared, labels);

  // A different seed gives different images of the same labels.
  augment_batch(data, indices, settings, 43, 1.0f / 255, reversed, labels_reversed);
  EXPECT_NE(reversed, whole);
  EXPECT_EQ(labels_reversed, labels);

  // With none() it is gather_batch.
  Matrix plain, gathered;
  augment_batch(data, indices, AugmentSettings::none(), 42, 1.0f / 255, plain, labels);
  gather_batch(data, indices, 1.0f / 255, gathered, labels);
  EXPECT_EQ(plain, gathered);
}

TEST(Augment, ABatchRejectsAnIndexOutsideTheData) {
  const Dataset data = small_dataset();
  const std::vector<std::size_t> indices = {0, 6};
  Matrix X;
  std::vector<std::uint8_t> labels;
  EXPECT_THROW(augment_batch(data, indices, AugmentSettings{}, 1, 1.0f, X, labels), Error);
}

TEST(Augment, ADigitStaysInsideTheFrameWithItsInk) {
  // Default settings over many seeds: nothing on the outer 1-pixel frame; and with the
  // transforms that keep the area (shift, rotation, shear) at least 90% of the ink kept, so none
  // was pushed out. (Elastic distortion and scaling change the mass themselves: next test.)
  AugmentSettings area_keeping = AugmentSettings::none();
  area_keeping.max_shift = 2, area_keeping.max_rotation_degrees = 12, area_keeping.max_shear = 0.15f;
  // (Not the 7: centring its mass, high up in the bar, puts its foot on the bottom row already.)
  for (int digit : {0, 1, 2, 3, 4}) {
    const Image image = centred_digit(digit);
    ASSERT_FALSE(ink_on_frame(image));
    const double before = mass(image);
    for (std::uint64_t seed = 0; seed < 500; ++seed) {
      const Image out = augmented(image, AugmentSettings{}, seed);
      ASSERT_FALSE(ink_on_frame(out)) << "digit " << digit << " seed " << seed;
      ASSERT_FALSE(ink_on_frame(augmented(image, always_everything(), seed))) << "digit " << digit << " seed " << seed;
      const double kept = mass(augmented(image, area_keeping, seed)) / before;
      ASSERT_GE(kept, 0.9) << "digit " << digit << " seed " << seed;
      ASSERT_LE(kept, 1.1) << "digit " << digit << " seed " << seed;
    }
  }
}

TEST(Augment, InkMassChangesWithinSaneBounds) {
  // Scaling by 1 ± 0.12 changes the area by 0.77–1.25; the elastic field locally compresses and
  // stretches (0.68–1.40 for 98% of MNIST); a stroke one pixel thicker or thinner can roughly
  // double or halve it, and erosion is undone if it would keep less than 40% of the ink.
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    const Image image = centred_digit(digit);
    const double before = mass(image);
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
      const double ratio = mass(augmented(image, always_everything(), seed)) / before;
      EXPECT_GT(ratio, 0.3) << "digit " << digit << " seed " << seed;
      EXPECT_LT(ratio, 3.0) << "digit " << digit << " seed " << seed;
    }
  }
}

TEST(Augment, AShiftMovesTheInkByUpToTheLimit) {
  AugmentSettings shift_only = AugmentSettings::none();
  shift_only.max_shift = 2;
  const Image image = centred_digit(0);
  auto centre_x = [](const Image& im) {
    double m = 0, mx = 0;
    for (int y = 0; y < kSide; ++y)
      for (int x = 0; x < kSide; ++x) m += im[static_cast<std::size_t>(y * kSide + x)], mx += x * im[static_cast<std::size_t>(y * kSide + x)];
    return mx / m;
  };
  double largest = 0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const double moved = centre_x(augmented(image, shift_only, seed)) - centre_x(image);
    EXPECT_LE(std::abs(moved), 2.05);
    largest = std::max(largest, std::abs(moved));
  }
  EXPECT_GT(largest, 1.5);
}

// aspect=F changes the ink's width against its height by a factor between 1/(1 + F) and 1 + F,
// both ways, and its draws leave the other transforms' draws alone (a recipe without it is unchanged).
TEST(Augment, AnAspectChangeNarrowsAndWidensWithinTheLimit) {
  auto ratio = [](const Image& im) {  // the ink box's width over its height (ink: > half a grey level)
    int x0 = kSide, x1 = -1, y0 = kSide, y1 = -1;
    for (int y = 0; y < kSide; ++y)
      for (int x = 0; x < kSide; ++x)
        if (im[static_cast<std::size_t>(y * kSide + x)] > 64) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    return static_cast<double>(x1 - x0 + 1) / (y1 - y0 + 1);
  };
  AugmentSettings aspect_only = AugmentSettings::none();
  aspect_only.max_aspect = 1.0f;  // width × 1/2 to × 2
  const Image zero = centred_digit(0);
  const double before = ratio(zero);
  double narrowest = 1e9, widest = 0;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    const Image out = augmented(zero, aspect_only, seed);
    EXPECT_FALSE(ink_on_frame(out));
    const double change = ratio(out) / before;
    narrowest = std::min(narrowest, change), widest = std::max(widest, change);
  }
  // Pixel counting blurs the factor by a pixel or two of the box.
  EXPECT_LT(narrowest, 0.7);
  EXPECT_GT(narrowest, 0.4);
  EXPECT_GT(widest, 1.4);
  EXPECT_LT(widest, 2.3);

  const Image seven = centred_digit(7);
  AugmentSettings with_aspect{};
  with_aspect.max_aspect = 0;
  EXPECT_EQ(augmented(seven, with_aspect, 5), augmented(seven, AugmentSettings{}, 5));
  EXPECT_FLOAT_EQ(parse_augment("aspect=0.5").max_aspect, 0.5f);
  EXPECT_EQ(parse_augment(describe(parse_augment("default,aspect=0.8"))), parse_augment("default,aspect=0.8"));
  EXPECT_THROW(parse_augment("aspect=4"), Error);
}

// aspect=F:P changes the width of about a share P of the images and leaves the rest as they were.
TEST(Augment, AnAspectProbabilityChangesOnlyThatShareOfImages) {
  AugmentSettings some = AugmentSettings::none();
  some.max_aspect = 1.0f;
  some.aspect_probability = 0.25f;
  const Image zero = centred_digit(0);
  int changed = 0;
  const int images = 400;
  for (std::uint64_t seed = 0; seed < images; ++seed) changed += augmented(zero, some, seed) != zero;
  EXPECT_GT(changed, images * 0.15);
  EXPECT_LT(changed, images * 0.35);

  const AugmentSettings parsed = parse_augment("aspect=1.5:0.3");
  EXPECT_FLOAT_EQ(parsed.max_aspect, 1.5f);
  EXPECT_FLOAT_EQ(parsed.aspect_probability, 0.3f);
  EXPECT_EQ(parse_augment(describe(parsed)), parsed);
  EXPECT_EQ(describe(parsed), "aspect=1.5:0.3");
  EXPECT_FLOAT_EQ(parse_augment("aspect=0.5").aspect_probability, 1.0f);  // every image, as before
  EXPECT_TRUE(parse_augment("aspect=1:0").is_none());
  EXPECT_THROW(parse_augment("aspect=1:1.5"), Error);
  EXPECT_THROW(parse_augment("aspect=1:0.5:2"), Error);
}

TEST(Augment, ParsesTheDocumentedForms) {
  EXPECT_EQ(parse_augment("none"), AugmentSettings::none());
  EXPECT_EQ(parse_augment("default"), AugmentSettings{});
  const AugmentSettings s = parse_augment("shift=2,rotate=10,scale=0.1,shear=0.1,elastic=34:4,thickness=0.3");
  EXPECT_FLOAT_EQ(s.max_shift, 2);
  EXPECT_FLOAT_EQ(s.max_rotation_degrees, 10);
  EXPECT_FLOAT_EQ(s.max_scale, 0.1f);
  EXPECT_FLOAT_EQ(s.max_shear, 0.1f);
  EXPECT_FLOAT_EQ(s.elastic_alpha, 34);
  EXPECT_FLOAT_EQ(s.elastic_sigma, 4);
  EXPECT_FLOAT_EQ(s.elastic_probability, 0.5f);
  EXPECT_FLOAT_EQ(s.thickness_probability, 0.3f);

  // Only what is listed; or the defaults with some changed.
  const AugmentSettings rotate_only = parse_augment("rotate=15");
  EXPECT_FLOAT_EQ(rotate_only.max_rotation_degrees, 15);
  EXPECT_EQ(rotate_only.max_shift, 0);
  EXPECT_EQ(rotate_only.elastic_probability, 0);
  const AugmentSettings no_elastic = parse_augment("default, elastic=0");
  EXPECT_EQ(no_elastic.elastic_alpha, 0);
  EXPECT_FLOAT_EQ(no_elastic.max_shift, AugmentSettings{}.max_shift);
  EXPECT_FLOAT_EQ(parse_augment("elastic=36:6:0.8").elastic_probability, 0.8f);

  // describe() writes what parse_augment reads back.
  for (const AugmentSettings& settings : {AugmentSettings{}, AugmentSettings::none(), s, rotate_only, no_elastic})
    EXPECT_EQ(parse_augment(describe(settings)), settings) << describe(settings);
  EXPECT_EQ(describe(AugmentSettings::none()), "none");
}

TEST(Augment, RejectsBadSettingsNamingThePart) {
  auto message = [](const char* spec) {
    try {
      parse_augment(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message("").find("empty"), std::string::npos);
  EXPECT_NE(message("shift=x").find("'x' in 'shift=x'"), std::string::npos);
  EXPECT_NE(message("shift=2,wobble=3").find("'wobble'"), std::string::npos);
  EXPECT_NE(message("rotate").find("'rotate'"), std::string::npos);
  EXPECT_NE(message("rotate=200").find("rotate must be 0 to 180"), std::string::npos);
  EXPECT_NE(message("scale=1.5").find("scale"), std::string::npos);
  EXPECT_NE(message("shift=-1").find("shift"), std::string::npos);
  EXPECT_NE(message("elastic=34").find("'elastic=34'"), std::string::npos);
  EXPECT_NE(message("elastic=34:0").find("sigma"), std::string::npos);
  EXPECT_NE(message("elastic=34:4:2").find("elastic probability"), std::string::npos);
  EXPECT_NE(message("thickness=1.5").find("thickness"), std::string::npos);
  EXPECT_NE(message("shift=1,shift=2").find("'shift' is given twice"), std::string::npos);
  EXPECT_NE(message("defaults").find("'defaults'"), std::string::npos);
  EXPECT_NE(message("shift=nan").find("'nan' in 'shift=nan'"), std::string::npos);

  // augment() checks its settings and sizes too.
  Image image(784), out(784), small(100);
  Rng rng(1);
  AugmentSettings bad;
  bad.max_rotation_degrees = -5;
  EXPECT_THROW(augment(image, 28, 28, bad, rng, std::span<std::uint8_t>(out)), Error);
  EXPECT_THROW(augment(image, 28, 28, AugmentSettings{}, rng, std::span<std::uint8_t>(small)), Error);
  EXPECT_THROW(augment(small, 28, 28, AugmentSettings{}, rng, std::span<std::uint8_t>(out)), Error);
}
