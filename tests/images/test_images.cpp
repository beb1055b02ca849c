// `digits evaluate --images DIR` as a user meets it, on folders that tools/make_digit_folders
// generates: exit status, the JSON report, skipped files and a missing folder.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../support/not_a_digit.hpp"
#include "run_program.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using namespace images_testing;

std::size_t count_png(const fs::path& dir) {
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) count += entry.path().extension() == ".png";
  return count;
}

class Images : public ::testing::Test {
 protected:
  static constexpr int kPerDigit = 3;

  void SetUp() override {
    dir = fs::temp_directory_path() / ("digits-images-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  // Runs a program as a process, its output captured in files under `dir`.
  Outcome run(const std::vector<std::string>& command) const { return run_program(command, dir); }

  Outcome evaluate(const std::vector<std::string>& args) const {
    std::vector<std::string> command = {DIGITS_BINARY, "evaluate"};
    command.insert(command.end(), args.begin(), args.end());
    return run(command);
  }

  // A small folder of stroke digits, kPerDigit of each: <dir>/<name>/strokes.
  fs::path generate(const std::string& name = "generated", const std::string& seed = "7") const {
    const Outcome made = run({GENERATOR_BINARY, "--out", (dir / name).string(), "--only", "strokes", "--per-digit", std::to_string(kPerDigit), "--seed", seed});
    EXPECT_EQ(made.status, 0) << made.err;
    EXPECT_CONTAINS(made.out, "strokes: " + std::to_string(10 * kPerDigit) + " images");
    return dir / name / "strokes";
  }

  fs::path dir;
};

TEST_F(Images, EvaluatesAGeneratedFolderAsJson) {
  const fs::path folder = generate();
  ASSERT_EQ(count_png(folder), 10u * kPerDigit);
  const Outcome result = evaluate({"--images", folder.string(), "--json"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.err, "");
  const json report = json::parse(result.out);  // throws, failing the test, if it is not JSON
  EXPECT_EQ(report.at("total").get<std::size_t>(), 10u * kPerDigit);
  EXPECT_EQ(report.at("data").get<std::string>(), folder.string());
  EXPECT_TRUE(report.at("skipped").empty());
  // Chance is 10%; the built-in model reads these strokes almost all correctly.
  EXPECT_GT(report.at("accuracy").get<double>(), 0.6);
  const auto classes = static_cast<std::size_t>(digits::parse_model(digits::builtin_model_bytes(), "built-in").network.classes());
  ASSERT_EQ(report.at("per_class_accuracy").size(), classes);
  for (std::size_t label = 0; label < 10; ++label) EXPECT_TRUE(report.at("per_class_accuracy")[label].is_number()) << label;
  // The folder has no "not a digit" image: that class has no accuracy.
  if (classes == 11) {
    EXPECT_TRUE(report.at("per_class_accuracy")[10].is_null());
  }
  std::size_t in_matrix = 0, on_diagonal = 0;
  for (std::size_t t = 0; t < 10; ++t) {
    std::size_t row = 0;
    for (std::size_t p = 0; p < 10; ++p) row += report.at("confusion")[t][p].get<std::size_t>();
    EXPECT_EQ(row, static_cast<std::size_t>(kPerDigit)) << "digit " << t;
    in_matrix += row;
    on_diagonal += report.at("confusion")[t][t].get<std::size_t>();
  }
  EXPECT_EQ(in_matrix, 10u * kPerDigit);
  EXPECT_EQ(on_diagonal, report.at("correct").get<std::size_t>());
}

TEST_F(Images, PrintsTheSameReportAsForMnist) {
  const Outcome result = evaluate({"--images", generate().string()});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_CONTAINS(result.out, "(30 images, 0 skipped)");
  EXPECT_CONTAINS(result.out, "accuracy: ");
  EXPECT_CONTAINS(result.out, "/30)");
  EXPECT_CONTAINS(result.out, "per class:");
  EXPECT_CONTAINS(result.out, "confusion matrix");
}

TEST_F(Images, TheSameSeedMakesTheSameImages) {
  const fs::path a = generate("a"), b = generate("b"), c = generate("c", "8");
  for (const auto& entry : fs::directory_iterator(a)) {
    EXPECT_EQ(read_bytes(entry.path()), read_bytes(b / entry.path().filename())) << entry.path().filename();
  }
  std::size_t same = 0;
  for (const auto& entry : fs::directory_iterator(a)) {
    for (const auto& other : fs::directory_iterator(c)) same += read_bytes(entry.path()) == read_bytes(other.path());
  }
  EXPECT_EQ(same, 0u) << "another seed should draw other images";
}

TEST_F(Images, AFileWithoutALabelIsReportedAndSkipped) {
  const fs::path folder = generate();
  fs::copy_file(folder / fs::directory_iterator(folder)->path().filename(), folder / "drawing.png");
  std::ofstream(folder / "4_broken.png") << "not a PNG";
  const Outcome result = evaluate({"--images", folder.string(), "--json"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_CONTAINS(result.err, "skipped");
  EXPECT_CONTAINS(result.err, "drawing.png");
  EXPECT_CONTAINS(result.err, "4_broken.png");
  const json report = json::parse(result.out);
  EXPECT_EQ(report.at("total").get<std::size_t>(), 10u * kPerDigit);
  EXPECT_EQ(report.at("skipped").size(), 2u);
}

// A folder of many unreadable files names the first few and counts the rest, so that the report
// of the run itself stays readable; the JSON report still lists every one.
TEST_F(Images, ManySkippedFilesAreCountedAfterTheFirstFew) {
  const fs::path folder = generate();
  for (int i = 0; i < 12; ++i) std::ofstream(folder / ("4_broken" + std::to_string(i) + ".png")) << "not a PNG";
  const Outcome result = evaluate({"--images", folder.string(), "--json"});
  ASSERT_EQ(result.status, 0) << result.err;
  std::size_t named = 0;
  for (std::size_t at = result.err.find("_broken"); at != std::string::npos; at = result.err.find("_broken", at + 1)) ++named;
  EXPECT_EQ(named, 5u) << result.err;
  EXPECT_CONTAINS(result.err, "skipped 7 more in " + folder.string() + " (12 in all)");
  EXPECT_EQ(json::parse(result.out).at("skipped").size(), 12u);
}

// none_anything.png is "not a digit": a model of ten classes cannot be scored on it, so it is
// skipped, saying why; training an eleven-class network takes it as the label 10.
TEST_F(Images, NotADigitImagesAreSkippedByATenClassModelAndTrainedOnByAnElevenClassOne) {
  const fs::path folder = generate();
  fs::copy_file(folder / fs::directory_iterator(folder)->path().filename(), folder / "none_scribble.png");
  const digits::Model ten_classes = digits::testing::builtin_with_ten_classes();
  digits::save_model(dir / "ten.safetensors", ten_classes.network, ten_classes.metadata);
  const Outcome result = evaluate({"--images", folder.string(), "--model", (dir / "ten.safetensors").string(), "--json"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_CONTAINS(result.err, "none_scribble.png: not a digit");
  EXPECT_EQ(json::parse(result.out).at("total").get<std::size_t>(), 10u * kPerDigit);

  if (!have_mnist()) GTEST_SKIP() << "no MNIST in " << mnist_dir() << " (scripts/fetch-mnist)";
  const fs::path model = dir / "eleven.safetensors";
  const Outcome ten = run({DIGITS_BINARY, "train", "--layers", "784,16,10", "--epochs", "0", "--images", folder.string(), "--data", mnist_dir().string(), "--out", model.string()});
  EXPECT_CONTAINS(ten.err, "none_scribble.png: not a digit");
  const Outcome eleven = run({DIGITS_BINARY, "train", "--layers", "784,16,11", "--epochs", "1", "--images", folder.string(), "--data", mnist_dir().string(), "--out", model.string()});
  ASSERT_EQ(eleven.status, 0) << eleven.err;
  EXPECT_CONTAINS(eleven.out, std::to_string(10 * kPerDigit + 1) + " extra training images (1 of them not digits)");
  const Outcome scored = evaluate({"--images", folder.string(), "--model", model.string(), "--json"});
  ASSERT_EQ(scored.status, 0) << scored.err;
  EXPECT_EQ(json::parse(scored.out).at("total").get<std::size_t>(), 10u * kPerDigit + 1);
}

TEST_F(Images, AMissingFolderFailsNamingIt) {
  const std::string missing = (dir / "no-such-folder").string();
  const Outcome result = evaluate({"--images", missing});
  EXPECT_EQ(result.status, 1);
  EXPECT_CONTAINS(result.err, missing);
  EXPECT_EQ(result.out, "");
}

TEST_F(Images, AFolderWithNoUsableImageFails) {
  fs::create_directories(dir / "unlabelled");
  std::ofstream(dir / "unlabelled" / "seven.png") << "not even a PNG";
  const Outcome result = evaluate({"--images", (dir / "unlabelled").string()});
  EXPECT_EQ(result.status, 1);
  EXPECT_CONTAINS(result.err, "seven.png");
  EXPECT_CONTAINS(result.err, "no usable image");
}

TEST_F(Images, ImagesAndDataTogetherAreAUsageError) {
  const Outcome result = evaluate({"--images", dir.string(), "--data", dir.string()});
  EXPECT_EQ(result.status, 2);
  EXPECT_CONTAINS(result.err, "--images");
}

}  // namespace
