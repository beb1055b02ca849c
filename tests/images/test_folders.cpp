// The folders of issue 20 as a user meets them: tools/make_digit_folders's variation folders (each way
// people draw) and folders of things that are not digits, and tools/not_a_digit on them. The real
// binaries run as processes. The variation folders need MNIST's test digits (data/mnist, or
// $DIGITS_DATA); without them those tests are skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../support/not_a_digit.hpp"
#include "digits/image.hpp"
#include "digits/preprocess.hpp"
#include "run_program.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using namespace images_testing;

const char* const kVariations[] = {"pen_stylus", "pen_marker", "narrow", "wide", "slant", "broken", "doubled", "overshoot", "touching", "lowres", "photo"};

std::vector<std::string> file_names(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class Folders : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("digits-folders-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  // Runs a program as a process, its output captured in files under `dir`.
  Outcome run(const std::vector<std::string>& command) const { return run_program(command, dir); }

  Outcome generate(const fs::path& out, std::vector<std::string> args) const {
    std::vector<std::string> command = {GENERATOR_BINARY, "--out", out.string(), "--data", mnist_dir().string()};
    command.insert(command.end(), args.begin(), args.end());
    return run(command);
  }

  fs::path dir;
};

TEST_F(Folders, EachVariationFolderHoldsEveryDigitAndDigitsEvaluateReadsIt) {
  if (!have_mnist()) GTEST_SKIP() << "no MNIST test set in " << mnist_dir() << " (scripts/fetch-mnist)";
  const Outcome made = generate(dir / "out", {"--only", "variations", "--per-digit", "2", "--seed", "3"});
  ASSERT_EQ(made.status, 0) << made.err;
  for (const char* name : kVariations) {
    SCOPED_TRACE(name);
    const fs::path folder = dir / "out" / name;
    const std::vector<std::string> names = file_names(folder);
    ASSERT_EQ(names.size(), 20u);
    std::multiset<char> labels;
    for (const std::string& file : names) {
      ASSERT_GE(file.size(), 2u);
      EXPECT_EQ(file[1], '_') << file;
      labels.insert(file[0]);
    }
    for (char digit = '0'; digit <= '9'; ++digit) EXPECT_EQ(labels.count(digit), 2u) << "digit " << digit;
    const Outcome read = run({DIGITS_BINARY, "evaluate", "--images", folder.string(), "--json"});
    ASSERT_EQ(read.status, 0) << read.err;
    const json report = json::parse(read.out);
    EXPECT_EQ(report.at("total").get<std::size_t>(), 20u);  // every image decoded and preprocessed
    EXPECT_TRUE(report.at("skipped").empty()) << report.at("skipped").dump();
  }
  EXPECT_EQ(fs::path(file_names(dir / "out" / "photo").front()).extension(), ".jpg");  // photographs are JPEGs
}

TEST_F(Folders, TheSameSeedMakesTheSameNegativesAndAnotherSeedOthers) {
  const std::vector<std::string> only = {"--only", "neg_scribbles,neg_pieces,neg_blobs,neg_doodles,heldout_shapes", "--negatives", "4"};
  auto with_seed = [&](std::vector<std::string> args, const std::string& seed) {
    args.insert(args.end(), {"--seed", seed});
    return args;
  };
  ASSERT_EQ(generate(dir / "a", with_seed(only, "5")).status, 0);
  ASSERT_EQ(generate(dir / "b", with_seed(only, "5")).status, 0);
  ASSERT_EQ(generate(dir / "c", with_seed(only, "6")).status, 0);
  for (const char* name : {"neg_scribbles", "neg_pieces", "neg_blobs", "neg_doodles", "heldout_shapes"}) {
    SCOPED_TRACE(name);
    const std::vector<std::string> names = file_names(dir / "a" / name);
    ASSERT_EQ(names.size(), 4u);
    ASSERT_EQ(names, file_names(dir / "b" / name));
    bool any_differs = false;
    for (std::size_t i = 0; i < names.size(); ++i) {
      EXPECT_TRUE(names[i].starts_with("none_")) << names[i];  // no label: `digits evaluate --images` skips them
      EXPECT_EQ(read_bytes(dir / "a" / name / names[i]), read_bytes(dir / "b" / name / names[i]));
      const std::vector<std::string> others = file_names(dir / "c" / name);
      any_differs = any_differs || others.size() != names.size() || read_bytes(dir / "c" / name / others[i]) != read_bytes(dir / "a" / name / names[i]);
    }
    EXPECT_TRUE(any_differs);
  }
}

// neg_doodles: pictures of its twelve kinds, each with ink the preprocessing finds (an image it
// refused would teach nothing), none drawn with a marker's pen (it would fill them into blobs).
TEST_F(Folders, DoodlesAreInkedPicturesOfTheirKinds) {
  ASSERT_EQ(generate(dir / "out", {"--only", "neg_doodles", "--negatives", "60", "--seed", "3"}).status, 0);
  const std::set<std::string> kinds = {"house", "sun", "cloud", "flower", "stickfigure", "tree", "fish", "wavy", "loops", "zigzagline", "grid", "ship", "car", "hatch"};
  std::set<std::string> seen;
  const std::vector<std::string> names = file_names(dir / "out" / "neg_doodles");
  ASSERT_EQ(names.size(), 60u);
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(name.starts_with("none_"));
    const std::string kind = name.substr(5, name.find('_', 5) - 5);
    EXPECT_TRUE(kinds.count(kind)) << kind;
    seen.insert(kind);
    EXPECT_EQ(name.find("_thick_"), std::string::npos);
    const digits::Preprocessed input = digits::preprocess(digits::read_image(dir / "out" / "neg_doodles" / name));  // throws on an image without ink
    int inked = 0;
    for (float v : input.pixels) inked += v > 128;
    EXPECT_GE(inked, 10);  // a picture, not a speck
  }
  EXPECT_GE(seen.size(), 10u);  // 60 draws of 12 kinds (the wave has three styles): most of them
}

// neg_cuts: pieces of single digits as the number reader cuts them, from MNIST's training digits
// (never validation or test: indices among the 55,000) and the pen strokes; never of a 1 or a 7
// (their pieces are still a 1 or a 7), right pieces only of a 0 or a 4 and middle ones only of a 0
// or a 6 (the others' are still digits to a person); each an image with ink, the same for the same
// seed.
TEST_F(Folders, CutsArePiecesOfTrainingDigitsAPersonWouldNotCallADigit) {
  if (!have_mnist()) GTEST_SKIP() << "no MNIST in " << mnist_dir() << " (scripts/fetch-mnist)";
  const std::vector<std::string> args = {"--only", "neg_cuts", "--negatives", "30", "--seed", "3"};
  const Outcome made = generate(dir / "a", args);
  ASSERT_EQ(made.status, 0) << made.err;
  ASSERT_EQ(generate(dir / "b", args).status, 0);
  const std::vector<std::string> names = file_names(dir / "a" / "neg_cuts");
  ASSERT_EQ(names.size(), 30u);
  ASSERT_EQ(names, file_names(dir / "b" / "neg_cuts"));
  std::set<std::string> sides, sources;
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    EXPECT_EQ(read_bytes(dir / "a" / "neg_cuts" / name), read_bytes(dir / "b" / "neg_cuts" / name));
    ASSERT_TRUE(name.starts_with("none_cut"));  // none_cut<digit><side>_<source>_<weight>_<number>.png
    const char digit = name[8];
    EXPECT_TRUE(std::string("02345689").find(digit) != std::string::npos);
    const std::size_t source_at = name.find('_', 9) + 1;
    const std::string side = name.substr(9, source_at - 10), source = name.substr(source_at, name.find('_', source_at) - source_at);
    EXPECT_TRUE(side == "left" || side == "middle" || side == "right") << side;
    if (side == "right") {
      EXPECT_TRUE(digit == '0' || digit == '4');
    }
    if (side == "middle") {
      EXPECT_TRUE(digit == '0' || digit == '6');
    }
    if (source.starts_with("mnist")) {
      EXPECT_LT(std::stoul(source.substr(5)), 55000u);
      sources.insert("mnist");
    } else {
      EXPECT_EQ(source, "strokes");
      sources.insert(source);
    }
    sides.insert(side);
    const digits::Preprocessed input = digits::preprocess(digits::read_image(dir / "a" / "neg_cuts" / name));  // throws on an image without ink
    int inked = 0;
    for (float v : input.pixels) inked += v > 128;
    EXPECT_GE(inked, 10);
  }
  EXPECT_EQ(sources.size(), 2u);
  EXPECT_GE(sides.size(), 2u);
  // Without MNIST: a clear error, not a crash.
  const Outcome missing = run({GENERATOR_BINARY, "--out", (dir / "c").string(), "--data", (dir / "nowhere").string(), "--only", "neg_cuts", "--negatives", "1"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_CONTAINS(missing.err, "nowhere");
}

TEST_F(Folders, NotADigitMeasuresDigitsAndNegatives) {
  if (!have_mnist()) GTEST_SKIP() << "no MNIST in " << mnist_dir() << " (scripts/fetch-mnist)";
  ASSERT_EQ(generate(dir / "measured", {"--only", "strokes,neg_blobs,neg_letters", "--per-digit", "3", "--negatives", "20"}).status, 0);
  ASSERT_EQ(generate(dir / "train", {"--only", "neg_blobs", "--negatives", "20", "--seed", "101"}).status, 0);
  // A model of ten classes, for the frozen network's eleventh class (a model with its own is
  // measured as it is: tools/not_a_digit.cpp).
  const digits::Model ten_classes = digits::testing::builtin_with_ten_classes();
  digits::save_model(dir / "ten.safetensors", ten_classes.network, ten_classes.metadata);
  const Outcome result = run({NOT_A_DIGIT_BINARY, "--folders", (dir / "measured").string(), "--data", mnist_dir().string(), "--train-negatives", (dir / "train").string(),
                              "--model", (dir / "ten.safetensors").string()});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_CONTAINS(result.out, "temperature fit on MNIST validation");
  EXPECT_CONTAINS(result.out, "strokes");
  EXPECT_CONTAINS(result.out, "neg_blobs");
  EXPECT_CONTAINS(result.out, "(a digit answered)");
  EXPECT_CONTAINS(result.out, "an eleventh class on the frozen network");
}

TEST_F(Folders, BadRequestsFailWithAMessage) {
  Outcome result = generate(dir / "x", {"--only", "stretched"});
  EXPECT_EQ(result.status, 2);
  EXPECT_CONTAINS(result.err, "--only 'stretched'");
  result = generate(dir / "x", {"--training-set", "--only", "fonts"});
  EXPECT_EQ(result.status, 2);
  EXPECT_CONTAINS(result.err, "--training-set makes only strokes and the variation folders, not fonts");
  ASSERT_EQ(generate(dir / "x", {"--only", "neg_blobs", "--negatives", "1"}).status, 0);
  result = generate(dir / "x", {"--only", "neg_blobs", "--negatives", "1"});  // never overwrites
  EXPECT_EQ(result.status, 1);
  EXPECT_CONTAINS(result.err, "not empty");

  result = run({NOT_A_DIGIT_BINARY, "--folders", (dir / "missing").string()});
  EXPECT_EQ(result.status, 1);
  EXPECT_CONTAINS(result.err, (dir / "missing").string() + ": no such directory");
  fs::create_directories(dir / "empty");
  result = run({NOT_A_DIGIT_BINARY, "--folders", (dir / "empty").string(), "--data", mnist_dir().string()});
  EXPECT_EQ(result.status, 1);
  result = run({NOT_A_DIGIT_BINARY, "--folders", (dir / "x").string(), "--model", (dir / "no-model.safetensors").string(), "--data", mnist_dir().string()});
  EXPECT_EQ(result.status, 1);
  EXPECT_CONTAINS(result.err, "no-model.safetensors");
}

}  // namespace
