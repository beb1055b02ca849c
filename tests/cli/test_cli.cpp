// The `digits` command as a user meets it: the real binary run as a process, its stdout, stderr
// and exit status checked. Exit codes: 0 success, 1 a failure while running, 2 a usage mistake.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "../support/not_a_digit.hpp"
#include "../support/strokes.hpp"
#include "digits/base64.hpp"
#include "digits/builtin_model.hpp"
#include "digits/classes.hpp"
#include "digits/dataset.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"
#include "feedback/model_versions.hpp"
#include "feedback/store.hpp"

extern char** environ;

using namespace digits;
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace strokes = digits::testing;

namespace {

struct Outcome {
  int status = -1;  // the exit code; -1 if the process did not exit normally
  std::string out, err;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

// A test of behaviour that src/ does not have yet: skipped, with the reason, unless
// DIGITS_KNOWN_BUGS=1 is set (run it that way after fixing, then remove the KNOWN_BUG line).
#define KNOWN_BUG(why)                                                        \
  do {                                                                        \
    const char* run_anyway = std::getenv("DIGITS_KNOWN_BUGS");                \
    if (!run_anyway || std::string(run_anyway) != "1") GTEST_SKIP() << why;   \
  } while (false)

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("digits-cli-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  // Runs `digits args…` in the test's directory, with stdin empty, DIGITS_DATA unset and the
  // output captured in files (no pipe can fill up and block).
  Outcome digits(const std::vector<std::string>& args) const {
    const fs::path out = dir / ".stdout", err = dir / ".stderr";
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&files, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addchdir_np(&files, dir.c_str());
    std::vector<std::string> all = {DIGITS_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e) {
      if (!std::string_view(*e).starts_with("DIGITS_DATA=")) envp.push_back(*e);
    }
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, DIGITS_BINARY, &files, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&files);
    Outcome run;
    if (spawned != 0) {
      ADD_FAILURE() << "cannot start " << DIGITS_BINARY << ": " << std::strerror(spawned);
      return run;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = read_bytes(out);
    run.err = read_bytes(err);
    return run;
  }

  // A thick, slightly slanted "1": dark ink on white paper, in the right half of a 200×300 image.
  fs::path good_png(const std::string& name = "one.png") const {
    const strokes::Placement placement{.canvas_width = 200, .canvas_height = 300, .left = 110, .top = 40, .width = 30, .height = 220, .pen = 24, .dark_on_light = true};
    const fs::path path = dir / name;
    write_png(path, strokes::draw({{{0.7, 0.0}, {0.3, 1.0}}}, placement));
    return path;
  }

  fs::path blank_png(const std::string& name, float value) const {
    const fs::path path = dir / name;
    write_png(path, GrayImage{64, 48, std::vector<float>(64 * 48, value)});
    return path;
  }

  // A model file of the built-in model, to corrupt.
  fs::path builtin_model_file(const std::string& name = "model.safetensors") const {
    const std::span<const unsigned char> bytes = builtin_model_bytes();
    const fs::path path = dir / name;
    write_bytes(path, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    return path;
  }

  fs::path dir;
};

// Drawn digits (the shapes tests/support/strokes.hpp knows), at a few sizes and places, made into
// MNIST's 28×28 input by the library's own preprocessing.
Dataset drawn_digits() {
  Dataset data;
  data.name = "drawn";
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    for (int variant = 0; variant < 3; ++variant) {
      strokes::Placement p;
      p.left += 15 * variant;
      p.top += 10 * variant;
      p.pen = 14 + 4 * variant;
      const Preprocessed input = preprocess(strokes::draw(strokes::digit_strokes(digit), p));
      for (float v : input.pixels) data.pixels.push_back(static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f))));
      data.labels.push_back(static_cast<std::uint8_t>(digit));
    }
  }
  return data;
}

// drawn_digits() as an MNIST-layout directory, the same images as training and test set.
Dataset write_drawn_mnist(const fs::path& data_dir) {
  const Dataset drawn = drawn_digits();
  fs::create_directories(data_dir);
  write_idx(drawn, data_dir / "train-images-idx3-ubyte", data_dir / "train-labels-idx1-ubyte");
  write_idx(drawn, data_dir / "t10k-images-idx3-ubyte", data_dir / "t10k-labels-idx1-ubyte");
  return drawn;
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

}  // namespace

// ---- usage mistakes: exit 2, and a message saying what was wrong ----

TEST_F(Cli, NoSubcommandIsAUsageError) {
  const Outcome run = digits({});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "subcommand");
  EXPECT_CONTAINS(run.err, "digits --help");
  EXPECT_EQ(run.out, "");
}

TEST_F(Cli, UnknownSubcommandIsAUsageErrorNamingIt) {
  const Outcome run = digits({"frobnicate"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "frobnicate");
}

TEST_F(Cli, UnknownFlagIsAUsageErrorNamingIt) {
  const Outcome run = digits({"predict", "--bogus-flag", "x.png"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "--bogus-flag");
}

TEST_F(Cli, PredictWithoutFilesIsAUsageError) {
  const Outcome run = digits({"predict"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "files");
}

// Each bad value must be refused before any data is read: --data points nowhere, so getting past
// the flags would give exit 1 ("no such data directory") instead of 2.
TEST_F(Cli, NegativeEpochsIsAUsageError) {
  const Outcome run = digits({"train", "--epochs", "-1", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "--epochs");
}

TEST_F(Cli, LabelSmoothingAndWeightAveragingOutsideTheirRangeAreUsageErrors) {
  for (const auto& [flag, value] : {std::pair{"--label-smoothing", "0.9"}, {"--label-smoothing", "-0.1"}, {"--ema", "1"}}) {
    const Outcome run = digits({"train", flag, value, "--data", "absent"});
    EXPECT_EQ(run.status, 2) << flag << " " << value << ": " << run.err;
    EXPECT_CONTAINS(run.err, flag);
  }
  // A checkpoint holds the trained weights, not their average: resuming would restart the average.
  const Outcome resumed = digits({"train", "--ema", "0.999", "--checkpoint", "c.safetensors", "--data", "absent"});
  EXPECT_EQ(resumed.status, 2) << resumed.err;
  EXPECT_CONTAINS(resumed.err, "--ema cannot be combined with --checkpoint");
}

// Calibration fits a temperature on the validation set: without one there is nothing to fit on.
TEST_F(Cli, CalibrationWithoutAValidationSetIsAUsageError) {
  const Outcome alone = digits({"train", "--calibrate", "--data", "absent"});  // the seed preset sets none aside
  EXPECT_EQ(alone.status, 2) << alone.err;
  EXPECT_CONTAINS(alone.err, "--calibrate needs a validation set (--validation N)");
  const Outcome both = digits({"train", "--calibrate", "--no-calibrate", "--validation", "100", "--data", "absent"});
  EXPECT_EQ(both.status, 2) << both.err;
  EXPECT_CONTAINS(both.err, "contradict");
}

TEST_F(Cli, NonNumericLayerSizeIsAUsageError) {
  const Outcome run = digits({"train", "--layers", "784,abc,10", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "--layers '784,abc,10'");
}

TEST_F(Cli, ConvLayersThatCannotWorkAreUsageErrorsNamingTheLayer) {
  // 28 → 24 → 12 → 6 → 3 → 1: the fifth pool meets a 1×1 map. Checked before any data is read.
  Outcome run = digits({"train", "--layers", "conv5x5x8,pool2,pool2,pool2,pool2,pool2,10", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "layer 6 (pool2): 2×2 pooling needs a map of at least 2×2, its input is 8×1×1");
  run = digits({"train", "--layers", "conv5x5x8,conv3x3x8s3,10", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "cannot read 'conv3x3x8s3'");
  run = digits({"train", "--layers", "conv5x5x8,pool2,fc12", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "the last layer must have 10 outputs");
}

TEST_F(Cli, LayerSizesWithSpacesOrATrailingCommaAreUsageErrors) {
  for (const char* layers : {"784, 50,10", "784,50,10,", " 784,10", "784,,10"}) {
    const Outcome run = digits({"train", "--layers", layers, "--data", "absent"});
    EXPECT_EQ(run.status, 2) << layers << ": " << run.err;
    EXPECT_CONTAINS(run.err, std::string("--layers '") + layers + "'");
  }
}

TEST_F(Cli, LayersNotStartingAt784IsAUsageError) {
  const Outcome run = digits({"train", "--layers", "100,10", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "--layers '100,10'");
  EXPECT_CONTAINS(run.err, "784");
}

TEST_F(Cli, LayersNotEndingAt10IsAUsageError) {
  const Outcome run = digits({"train", "--layers", "784,50,9", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "the last size must be 10");
}

TEST_F(Cli, UnknownPresetIsAUsageErrorListingTheChoices) {
  const Outcome run = digits({"train", "--preset", "nope", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "'nope'");
  EXPECT_CONTAINS(run.err, "seed");
}

TEST_F(Cli, UnknownActivationIsAUsageErrorNamingIt) {
  const Outcome run = digits({"train", "--activation", "foo", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "'foo'");
  EXPECT_CONTAINS(run.err, "relu");
}

TEST_F(Cli, IdentityActivationIsRefused) {
  const Outcome run = digits({"train", "--activation", "identity", "--data", "absent"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "linear");
}

TEST_F(Cli, NonNumericFlagValueIsAUsageError) {
  const Outcome run = digits({"improve", "--out", "x.safetensors", "--epochs", "many"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "many");
}

TEST_F(Cli, ServeImageCapsOutsideTheirRangeAreUsageErrors) {
  // The server's pixel cap may not pass the library's own (12,582,912); neither cap may be 0.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"serve", "--max-image-pixels", "12582913"}, {"serve", "--max-image-pixels", "0"}, {"app", "--max-image-bytes", "0"}}) {
    const Outcome run = digits(args);
    EXPECT_EQ(run.status, 2) << args[2] << " " << args[1] << ": " << run.err;
    EXPECT_CONTAINS(run.err, args[1]);
  }
}

TEST_F(Cli, ImproveNoMnistWithoutExtraImagesIsAUsageError) {
  const Outcome run = digits({"improve", "--no-mnist", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 2) << run.err;
  EXPECT_CONTAINS(run.err, "--no-mnist needs extra images");
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
}

TEST_F(Cli, HelpForEveryCommandExitsZeroAndDescribesIt) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"train", "--help"}, {"evaluate", "--help"}, {"predict", "--help"}, {"read", "--help"}, {"improve", "--help"}, {"serve", "--help"}, {"app", "--help"}, {"--help-all"}}) {
    const Outcome run = digits(args);
    const std::string shown = args.size() == 2 ? args[0] : "(top level)";
    EXPECT_EQ(run.status, 0) << shown << "\n" << run.err;
    EXPECT_CONTAINS(run.out, "Usage") << shown;
    if (args.size() == 2) {
      EXPECT_CONTAINS(run.out, args[0]) << shown;
    }
  }
  EXPECT_CONTAINS(digits({"train", "--help"}).out, "--epochs");
  EXPECT_CONTAINS(digits({"predict", "--help"}).out, "--json");
  EXPECT_CONTAINS(digits({"improve", "--help"}).out, "--no-mnist");
  EXPECT_CONTAINS(digits({"--help"}).out, "evaluate");
}

// ---- failures while running: exit 1, and a message naming the file ----

TEST_F(Cli, MissingModelFileIsNamed) {
  const Outcome run = digits({"predict", "--model", "absent.safetensors", good_png().string()});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "absent.safetensors: no such model file");
}

TEST_F(Cli, CorruptModelFileIsNamed) {
  write_bytes(dir / "corrupt.safetensors", "this is not a model file at all, just some text\n");
  const Outcome run = digits({"predict", "--model", "corrupt.safetensors", good_png().string()});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "corrupt.safetensors");
  EXPECT_CONTAINS(run.err, "not a safetensors file");
}

TEST_F(Cli, TruncatedModelFileIsNamed) {
  const fs::path model = builtin_model_file();
  const std::string bytes = read_bytes(model);
  write_bytes(dir / "cut.safetensors", bytes.substr(0, bytes.size() * 3 / 4));
  for (const std::string command : {"predict", "evaluate"}) {
    std::vector<std::string> args = {command, "--model", "cut.safetensors"};
    args.push_back(command == "predict" ? good_png().string() : "--data=absent");
    const Outcome run = digits(args);
    EXPECT_EQ(run.status, 1) << command;
    EXPECT_CONTAINS(run.err, "cut.safetensors") << command;
    EXPECT_CONTAINS(run.err, "truncated") << command;
  }
}

TEST_F(Cli, MissingDataDirectoryIsNamed) {
  const Outcome run = digits({"evaluate", "--data", "no-such-dir"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "no-such-dir: no such data directory");
}

TEST_F(Cli, DataDirectoryMissingAFileNamesIt) {
  const Dataset d = write_drawn_mnist(dir / "data");
  fs::remove(dir / "data/t10k-labels-idx1-ubyte");
  const Outcome run = digits({"evaluate", "--data", "data"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "missing t10k-labels-idx1-ubyte");
}

// ---- predict ----

TEST_F(Cli, PredictReadsAThickOneOffCentreDarkOnLight) {
  const Outcome run = digits({"predict", "--json", good_png().string()});
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 1u) << run.out;
  const json& result = lines[0];
  EXPECT_EQ(result.at("file"), (dir / "one.png").string());
  EXPECT_EQ(result.at("digit"), 1);
  EXPECT_EQ(result.at("inverted"), true);  // dark ink on light paper was detected
  const std::vector<double> p = result.at("probabilities").get<std::vector<double>>();
  ASSERT_EQ(p.size(), 10u);
  double sum = 0;
  for (double v : p) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
    sum += v;
  }
  if (!result.at("not_a_digit_probability").is_null()) sum += result.at("not_a_digit_probability").get<double>();  // the eleven-way softmax
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_DOUBLE_EQ(result.at("probability").get<double>(), p[1]);
  EXPECT_EQ(std::max_element(p.begin(), p.end()) - p.begin(), 1);
}

// The CLI keeps the library's own caps (4096 × 3072, a 12-megapixel photo), lower than which the
// server refuses (--max-image-pixels): such a photo is read, reduced as it is decoded.
TEST_F(Cli, PredictReadsA12MegapixelPhoto) {
  const strokes::Placement placement{.canvas_width = 4096, .canvas_height = 3072, .left = 1900, .top = 400, .width = 450, .height = 2300, .pen = 330, .dark_on_light = true};
  const fs::path photo = dir / "photo.png";
  write_png(photo, strokes::draw({{{0.7, 0.0}, {0.3, 1.0}}}, placement));
  const Outcome run = digits({"predict", "--json", photo.string()});
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 1u) << run.out;
  EXPECT_EQ(lines[0].at("digit"), 1) << run.out;
}

TEST_F(Cli, PredictPlainOutputGivesFileDigitAndPercent) {
  const fs::path png = good_png();
  const Outcome run = digits({"predict", png.string()});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, png.string() + ": 1 (");
  EXPECT_CONTAINS(run.out, "%)");
}

TEST_F(Cli, PredictWithASavedModelMatchesTheBuiltInOne) {
  const fs::path model = builtin_model_file();
  const Outcome builtin = digits({"predict", "--json", good_png().string()});
  const Outcome from_file = digits({"predict", "--json", "--model", model.string(), good_png().string()});
  ASSERT_EQ(from_file.status, 0) << from_file.err;
  EXPECT_EQ(json_lines(builtin.out).at(0).at("probabilities"), json_lines(from_file.out).at(0).at("probabilities"));
}

// `convert --dtype f16` halves the file; the F16 model reads the drawing as the F32 one does,
// within F16's rounding, and converting back to F32 gives the rounded weights, not the originals.
TEST_F(Cli, ConvertWritesAnF16ModelThatPredictsAlike) {
  const fs::path half = dir / "half.safetensors", back = dir / "back.safetensors";
  const Outcome run = digits({"convert", "--dtype", "f16", "--out", half.string()});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "weights as F16");
  const std::uintmax_t f32_size = fs::file_size(builtin_model_file());
  EXPECT_LT(fs::file_size(half), f32_size * 51 / 100);
  const auto f32 = json_lines(digits({"predict", "--json", good_png().string()}).out).at(0);
  const auto f16 = json_lines(digits({"predict", "--json", "--model", half.string(), good_png().string()}).out).at(0);
  EXPECT_EQ(f16.at("digit"), f32.at("digit"));
  for (int d = 0; d < 10; ++d) EXPECT_NEAR(f16.at("probabilities")[d].get<double>(), f32.at("probabilities")[d].get<double>(), 1e-3);
  ASSERT_EQ(digits({"convert", "--model", half.string(), "--dtype", "f32", "--out", back.string()}).status, 0);
  EXPECT_EQ(fs::file_size(back), f32_size);
  EXPECT_EQ(json_lines(digits({"predict", "--json", "--model", back.string(), good_png().string()}).out).at(0), f16);
  EXPECT_EQ(digits({"convert", "--dtype", "f8", "--out", back.string()}).status, 2);
}

TEST_F(Cli, PredictReportsEachBadFileAndStillPredictsTheOthers) {
  const fs::path good = good_png();
  write_bytes(dir / "notes.txt", "hello, I am not an image\n");
  const fs::path black = blank_png("black.png", 0.0f), white = blank_png("white.png", 255.0f);
  const Outcome run = digits({"predict", "--json", "missing.png", "notes.txt", black.string(), good.string(), white.string()});
  EXPECT_EQ(run.status, 1);

  EXPECT_CONTAINS(run.err, "missing.png: no such file");
  EXPECT_CONTAINS(run.err, "notes.txt: not an image");
  EXPECT_CONTAINS(run.err, black.string() + ": the image is empty");
  EXPECT_CONTAINS(run.err, white.string() + ": the image is empty");

  const std::vector<json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 5u) << run.out;  // one line per file, in order
  EXPECT_EQ(lines[0].at("file"), "missing.png");
  EXPECT_TRUE(lines[0].contains("error"));
  EXPECT_FALSE(lines[0].contains("digit"));
  EXPECT_EQ(lines[1].at("file"), "notes.txt");
  EXPECT_TRUE(lines[1].contains("error"));
  EXPECT_CONTAINS(lines[2].at("error").get<std::string>(), "empty");
  EXPECT_EQ(lines[3].at("file"), good.string());
  EXPECT_EQ(lines[3].at("digit"), 1);
  EXPECT_CONTAINS(lines[4].at("error").get<std::string>(), "empty");
}

TEST_F(Cli, PredictOfOnlyAnEmptyImageFails) {
  const Outcome run = digits({"predict", blank_png("black.png", 0.0f).string()});
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_CONTAINS(run.err, "black.png: the image is empty");
}

// ---- read ----

// "2047" drawn as pen strokes, dark on light, with a dash after it: a 420×180 PNG.
fs::path number_png(const fs::path& dir) {
  GrayImage canvas{420, 180, std::vector<float>(420 * 180, 255.0f)};
  auto add = [&](const std::vector<strokes::Stroke>& glyph, double left, double width) {
    const GrayImage one = strokes::draw(glyph, {.canvas_width = 420, .canvas_height = 180, .left = left, .top = 40, .width = width, .height = 100, .pen = 10, .dark_on_light = true});
    for (std::size_t i = 0; i < canvas.pixels.size(); ++i) canvas.pixels[i] = std::min(canvas.pixels[i], one.pixels[i]);
  };
  add(strokes::digit_strokes(2), 20, 60);
  add(strokes::digit_strokes(0), 100, 60);
  add(strokes::digit_strokes(4), 180, 60);
  add(strokes::digit_strokes(7), 260, 60);
  add({{{0.1, 0.5}, {0.9, 0.5}}}, 340, 60);  // a dash
  const fs::path path = dir / "number.png";
  write_png(path, canvas);
  return path;
}

TEST_F(Cli, ReadPrintsTheNumberAndItsDigitsAsJson) {
  const fs::path png = number_png(dir);
  const Outcome plain = digits({"read", png.string()});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out, png.string() + ": 2047 (and 1 part not digits)\n");

  const Outcome run = digits({"read", "--json", png.string(), good_png().string()});
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  const json& number = lines[0];
  EXPECT_EQ(number.at("file"), png.string());
  EXPECT_EQ(number.at("text"), "2047");
  EXPECT_EQ(number.at("inverted"), true);
  ASSERT_EQ(number.at("digits").size(), 4u);
  int previous_x = -1;
  for (const json& d : number.at("digits")) {
    const std::vector<double> p = d.at("probabilities").get<std::vector<double>>();
    ASSERT_EQ(p.size(), 10u);
    EXPECT_DOUBLE_EQ(d.at("probability").get<double>(), p[d.at("digit").get<std::size_t>()]);
    const std::vector<int> box = d.at("box").get<std::vector<int>>();
    ASSERT_EQ(box.size(), 4u);
    EXPECT_GT(box[0], previous_x);  // left to right
    EXPECT_GT(box[2], 0);
    EXPECT_GT(box[3], 50);  // the digits are 100 px tall, the pen 10
    previous_x = box[0];
  }
  ASSERT_EQ(number.at("not_digits").size(), 1u);
  EXPECT_GT(number.at("not_digits")[0].at("box")[0].get<int>(), 330);  // the dash, apart from the text
  // One digit: the same reading as predict's.
  EXPECT_EQ(lines[1].at("text"), "1");
  const Outcome predicted = digits({"predict", "--json", good_png().string()});
  const std::vector<double> p_read = lines[1].at("digits")[0].at("probabilities").get<std::vector<double>>();
  const std::vector<double> p_predict = json_lines(predicted.out).at(0).at("probabilities").get<std::vector<double>>();
  for (int d = 0; d < 10; ++d) EXPECT_NEAR(p_read[static_cast<std::size_t>(d)], p_predict[static_cast<std::size_t>(d)], 1e-5);
}

TEST_F(Cli, ReadReportsEachBadFileAndStillReadsTheOthers) {
  const fs::path png = number_png(dir);
  write_bytes(dir / "notes.txt", "hello, I am not an image\n");
  const fs::path black = blank_png("black.png", 0.0f);
  const Outcome run = digits({"read", "--json", "missing.png", "notes.txt", black.string(), png.string()});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "missing.png: no such file");
  EXPECT_CONTAINS(run.err, "notes.txt: not an image");
  EXPECT_CONTAINS(run.err, black.string() + ": the image is empty");
  const std::vector<json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 4u) << run.out;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(lines[static_cast<std::size_t>(i)].contains("error"));
  EXPECT_EQ(lines[3].at("text"), "2047");
  EXPECT_EQ(digits({"read"}).status, 2);
}

// ---- "not a digit": a model with an eleventh output (digits/classes.hpp) ----

// The built-in model with a made-up eleventh output that takes every drawing it reads as 7 for
// "not a digit" (tests/support/not_a_digit.hpp), e³ ≈ 20 times likelier than a 7: sure enough to
// be left out of a number too (segment.cpp's kAmongDigits), saved in the test's folder.
fs::path sevens_are_not_digits(const fs::path& dir) {
  const fs::path path = dir / "sevens.safetensors";
  const Model model = strokes::builtin_with_not_a_digit(7, 3.0f);
  save_model(path, model.network, model.metadata);
  return path;
}

TEST_F(Cli, PredictSaysNotADigitWithAModelThatHasTheEleventhOutput) {
  const fs::path model = sevens_are_not_digits(dir), seven = dir / "seven.png", one = good_png();
  write_png(seven, strokes::draw(strokes::digit_strokes(7), {}));
  const Outcome plain = digits({"predict", "--model", model.string(), seven.string(), one.string()});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_CONTAINS(plain.out, seven.string() + ": not a digit (");
  EXPECT_CONTAINS(plain.out, one.string() + ": 1 (");

  const Outcome run = digits({"predict", "--json", "--model", model.string(), seven.string(), one.string()});
  ASSERT_EQ(run.status, 0) << run.err;
  const std::vector<json> lines = json_lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  EXPECT_TRUE(lines[0].at("digit").is_null()) << lines[0];
  EXPECT_EQ(lines[0].at("not_a_digit"), true);
  EXPECT_DOUBLE_EQ(lines[0].at("probability").get<double>(), lines[0].at("not_a_digit_probability").get<double>());
  EXPECT_EQ(lines[0].at("probabilities").size(), 10u);
  EXPECT_EQ(lines[1].at("digit"), 1);
  EXPECT_EQ(lines[1].at("not_a_digit"), false);
  EXPECT_TRUE(lines[1].at("not_a_digit_probability").is_number());

  // A model of ten classes cannot say it: false, and null for the probability.
  const Model ten_classes = strokes::builtin_with_ten_classes();
  save_model(dir / "ten.safetensors", ten_classes.network, ten_classes.metadata);
  const json ten = json_lines(digits({"predict", "--json", "--model", (dir / "ten.safetensors").string(), seven.string()}).out).at(0);
  EXPECT_EQ(ten.at("digit"), 7);
  EXPECT_EQ(ten.at("not_a_digit"), false);
  EXPECT_TRUE(ten.at("not_a_digit_probability").is_null());
  // The built-in model has the class, and reads a drawn 7 as a 7.
  const json builtin = json_lines(digits({"predict", "--json", seven.string()}).out).at(0);
  EXPECT_EQ(builtin.at("digit"), 7);
  EXPECT_EQ(builtin.at("not_a_digit"), false);
  EXPECT_TRUE(builtin.at("not_a_digit_probability").is_number());
}

TEST_F(Cli, ReadLeavesPartsReadAsNotADigitOutOfTheNumber) {
  const fs::path png = number_png(dir), model = sevens_are_not_digits(dir);
  const Outcome plain = digits({"read", "--model", model.string(), png.string()});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out, png.string() + ": 204 (and 2 parts not digits)\n");  // the dash and the 7
  const Outcome run = digits({"read", "--json", "--model", model.string(), png.string()});
  ASSERT_EQ(run.status, 0) << run.err;
  const json number = json_lines(run.out).at(0);
  EXPECT_EQ(number.at("text"), "204");
  EXPECT_EQ(number.at("digits").size(), 3u);
  EXPECT_EQ(number.at("not_digits").size(), 2u);
}

// ---- evaluate ----

TEST_F(Cli, EvaluateJsonOnASyntheticMnistLayoutDirectory) {
  const Dataset test = write_drawn_mnist(dir / "data");
  const Outcome run = digits({"evaluate", "--json", "--data", "data", "--threads", "1"});
  ASSERT_EQ(run.status, 0) << run.err;
  const json result = json::parse(run.out);
  EXPECT_EQ(result.at("total"), test.size());
  EXPECT_EQ(result.at("data"), "data");
  EXPECT_EQ(result.at("model"), "built-in model");
  EXPECT_EQ(result.at("architecture"), parse_model(builtin_model_bytes(), "built-in").metadata.at("architecture"));
  const auto confusion = result.at("confusion").get<std::vector<std::vector<std::size_t>>>();
  // One row and column a class of the model: the ten digits, and "not a digit" when it has it.
  const auto classes = static_cast<std::size_t>(parse_model(builtin_model_bytes(), "built-in").network.classes());
  ASSERT_EQ(confusion.size(), classes);
  std::size_t all = 0, diagonal = 0;
  std::vector<std::size_t> per_label(classes, 0);
  for (std::size_t t = 0; t < classes; ++t) {
    ASSERT_EQ(confusion[t].size(), classes);
    for (std::size_t p = 0; p < classes; ++p) all += confusion[t][p], per_label[t] += confusion[t][p];
    diagonal += confusion[t][t];
  }
  EXPECT_EQ(all, test.size());
  for (std::size_t label = 0; label < 10; ++label) EXPECT_EQ(per_label[label], static_cast<std::size_t>(std::count(test.labels.begin(), test.labels.end(), label))) << label;
  EXPECT_EQ(result.at("correct"), diagonal);
  EXPECT_DOUBLE_EQ(result.at("accuracy").get<double>(), static_cast<double>(diagonal) / static_cast<double>(test.size()));
  // Clean drawn digits through the real preprocessing: the built-in model reads most of them. (A
  // wrong input scale or transposed image would give chance, about 10%.)
  EXPECT_GE(result.at("accuracy").get<double>(), 0.6);
}

TEST_F(Cli, EvaluatePlainOutputHasAccuracyAndConfusionMatrix) {
  const Dataset test = write_drawn_mnist(dir / "data");
  const Outcome run = digits({"evaluate", "--data", "data"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "accuracy: ");
  EXPECT_CONTAINS(run.out, "/" + std::to_string(test.size()) + ")");
  EXPECT_CONTAINS(run.out, "confusion matrix");
}

TEST_F(Cli, EvaluateRejectsACorruptDataFileNamingIt) {
  const Dataset d = write_drawn_mnist(dir / "data");
  std::string labels = read_bytes(dir / "data/t10k-labels-idx1-ubyte");
  labels.pop_back();
  write_bytes(dir / "data/t10k-labels-idx1-ubyte", labels);
  const Outcome run = digits({"evaluate", "--data", "data"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "t10k-labels-idx1-ubyte");
  EXPECT_CONTAINS(run.err, "truncated");
}

// ---- improve ----

TEST_F(Cli, ImproveOnAFolderOfLabelledImagesWritesALoadableModel) {
  fs::create_directories(dir / "extra");
  int labelled = 0;
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    for (int variant = 0; variant < 2; ++variant) {
      strokes::Placement p;
      p.left += 30 * variant;
      p.dark_on_light = variant == 1;
      write_png(dir / "extra" / (std::to_string(digit) + "_drawn" + std::to_string(variant) + ".png"), strokes::draw(strokes::digit_strokes(digit), p));
      ++labelled;
    }
  }
  write_png(dir / "extra/unlabelled.png", strokes::draw(strokes::digit_strokes(7), {}));
  write_png(dir / "extra/x_wrong.png", strokes::draw(strokes::digit_strokes(7), {}));

  const Outcome run = digits({"improve", "--no-mnist", "--images", "extra", "--out", "better.safetensors", "--epochs", "2", "--batch", "4"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.err, "unlabelled.png");
  EXPECT_CONTAINS(run.err, "x_wrong.png");
  EXPECT_CONTAINS(run.err, "name does not start with its label");
  EXPECT_CONTAINS(run.out, std::to_string(labelled) + " extra images");
  EXPECT_CONTAINS(run.out, "saved better.safetensors");

  const Model improved = load_model(dir / "better.safetensors");
  EXPECT_EQ(improved.metadata.at("improved.extra_images"), std::to_string(labelled));
  EXPECT_EQ(improved.metadata.at("improved.from"), "built-in model");
  EXPECT_FALSE(improved.metadata.contains("accuracy.test"));  // no longer measured on MNIST
  const Model builtin = parse_model(builtin_model_bytes(), "built-in");
  ASSERT_EQ(improved.network.sizes(), builtin.network.sizes());
  EXPECT_NE(std::get<DenseLayer>(improved.network.layers.back()).W, std::get<DenseLayer>(builtin.network.layers.back()).W) << "training changed nothing";

  // The improved model is usable by the command itself.
  const Outcome predicted = digits({"predict", "--model", "better.safetensors", "--json", good_png().string()});
  EXPECT_EQ(predicted.status, 0) << predicted.err;
  EXPECT_EQ(json_lines(predicted.out).at(0).at("digit"), 1);
}

TEST_F(Cli, TrainAddsAFolderOfLabelledImagesToTheTrainingSet) {
  const Dataset drawn = write_drawn_mnist(dir / "data");
  fs::create_directories(dir / "extra");
  for (int digit : {1, 4, 7}) write_png(dir / "extra" / (std::to_string(digit) + "_stroke.png"), strokes::draw(strokes::digit_strokes(digit), {}));

  Outcome run = digits({"train", "--layers", "784,16,10", "--init", "he", "--epochs", "1", "--batch", "8", "--validation", "10", "--images", "extra",
                        "--data", "data", "--out", "m.safetensors", "--threads", "1"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "and 3 extra training images from extra");
  EXPECT_EQ(load_model(dir / "m.safetensors").metadata.at("training.extra_images"), "3 from extra");

  run = digits({"train", "--epochs", "1", "--images", "absent-folder", "--data", "data", "--out", "n.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "absent-folder");
  EXPECT_FALSE(fs::exists(dir / "n.safetensors"));
}

// The presets that keep their best validation epoch read the test set once, at the end, for the
// final figure; --test-each-epoch reads it after every epoch again. Either way the file records it.
TEST_F(Cli, TrainReadsTheTestSetOnceUnlessAskedForItsCurve) {
  write_drawn_mnist(dir / "data");
  const std::vector<std::string> small = {"train", "--preset", "best", "--layers", "784,16,10", "--epochs", "2", "--batch", "8", "--augment", "none",
                                          "--data", "data", "--threads", "1"};
  auto train = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = small;
    args.insert(args.end(), extra.begin(), extra.end());
    return digits(args);
  };
  Outcome run = train({"--validation", "10", "--out", "once.safetensors"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "epoch   2  loss");
  EXPECT_CONTAINS(run.out, "validation");
  EXPECT_EQ(run.out.find("  test "), std::string::npos) << run.out;  // no epoch line reads the test set
  EXPECT_TRUE(load_model(dir / "once.safetensors").metadata.contains("accuracy.test"));

  run = train({"--validation", "0", "--out", "none.safetensors"});  // nothing to choose on: the last epoch's weights, read once
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out.find("  test "), std::string::npos) << run.out;
  EXPECT_TRUE(load_model(dir / "none.safetensors").metadata.contains("accuracy.test"));

  run = train({"--validation", "10", "--test-each-epoch", "--out", "curve.safetensors"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("  test "), std::string::npos) << run.out;
  EXPECT_EQ(load_model(dir / "curve.safetensors").metadata.at("accuracy.test"), load_model(dir / "once.safetensors").metadata.at("accuracy.test"));
}

// A model file is handed to others: it records the data by its SHA-256s, never where it lay here.
TEST_F(Cli, ModelFilesRecordNoPathOfThisMachine) {
  write_drawn_mnist(dir / "data");
  fs::create_directories(dir / "extra");
  for (int digit : {1, 4, 7}) write_png(dir / "extra" / (std::to_string(digit) + "_stroke.png"), strokes::draw(strokes::digit_strokes(digit), {}));
  // Every path given as an absolute one, as a user's would be.
  Outcome run = digits({"train", "--layers", "784,16,10", "--epochs", "1", "--batch", "8", "--data", (dir / "data").string(), "--images",
                        (dir / "extra").string() + "/", "--out", "m.safetensors", "--threads", "1"});
  ASSERT_EQ(run.status, 0) << run.err;
  const Metadata trained = load_model(dir / "m.safetensors").metadata;
  EXPECT_TRUE(trained.contains("dataset.sha256.train-images-idx3-ubyte"));
  EXPECT_EQ(trained.at("training.extra_images"), "3 from extra");
  run = digits({"improve", "--model", (dir / "m.safetensors").string(), "--images", (dir / "extra").string(), "--data", (dir / "data").string(),
                "--epochs", "1", "--out", "better.safetensors"});
  ASSERT_EQ(run.status, 0) << run.err;
  const Metadata improved = load_model(dir / "better.safetensors").metadata;
  EXPECT_EQ(improved.at("improved.from"), "m.safetensors");
  const Metadata builtin = parse_model(builtin_model_bytes(), "built-in").metadata;
  EXPECT_EQ(builtin.at("dataset.sha256.t10k-images-idx3-ubyte"), "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7");
  for (const Metadata* metadata : {&trained, &improved, &builtin}) {
    EXPECT_FALSE(metadata->contains("dataset.directory"));
    for (const auto& [key, value] : *metadata) {
      EXPECT_EQ(value.find(dir.string()), std::string::npos) << key << " = " << value;
      EXPECT_FALSE(value.starts_with("/")) << key << " = " << value << ": an absolute path";
    }
  }
}

TEST_F(Cli, ImproveOnAMissingFolderNamesIt) {
  const Outcome run = digits({"improve", "--no-mnist", "--images", "absent-folder", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "absent-folder");
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
}

TEST_F(Cli, ImproveRecordsTheEpochsItRan) {
  fs::create_directories(dir / "extra");
  for (int digit : {1, 7}) write_png(dir / "extra" / (std::to_string(digit) + "_a.png"), strokes::draw(strokes::digit_strokes(digit), {}));
  const Outcome run = digits({"improve", "--no-mnist", "--images", "extra", "--out", "better.safetensors", "--epochs", "3", "--batch", "2"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(load_model(dir / "better.safetensors").metadata.at("improved.epochs"), "3");
}

// ---- learning from corrections: feedback export, model list / rollback, improve --feedback ----

namespace {

std::vector<std::uint8_t> input_bytes(const GrayImage& drawing) {
  std::vector<std::uint8_t> bytes;
  for (float v : preprocess(drawing).pixels) bytes.push_back(static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f))));
  return bytes;
}

// An "X" drawn with a pen: a style the built-in model does not read as any one digit.
std::vector<std::uint8_t> cross_input(int variant) {
  strokes::Placement p;
  p.left = 30 + 9 * (variant % 7);
  p.top = 20 + 5 * (variant % 5);
  p.width = 130 + 4 * (variant % 9);
  p.pen = 12 + variant % 11;
  return input_bytes(strokes::draw({{{0.1, 0.1}, {0.9, 0.9}}, {{0.9, 0.1}, {0.1, 0.9}}}, p));
}

feedback::Judgement judgement(std::vector<std::uint8_t> input, int label, int predicted) {
  feedback::Judgement j;
  j.input = std::move(input);
  j.drawing_png = "\x89PNG";
  j.label = label;
  j.predicted = predicted;
  j.correct = label == predicted;
  j.probabilities[static_cast<std::size_t>(predicted)] = 0.9f;
  j.client_id = "test";
  return j;
}

}  // namespace

class CliFeedback : public Cli {
 protected:
  // An MNIST-layout folder big enough for the guard's 5,000 validation images: the drawn digits
  // over and over (the guard measures drops, and the built-in model reads most of them).
  void write_small_mnist() const {
    const Dataset drawn = drawn_digits();
    Dataset train;
    train.name = "drawn train";
    for (int copy = 0; copy < 300; ++copy) train.append(drawn);
    fs::create_directories(dir / "data");
    write_idx(train, dir / "data/train-images-idx3-ubyte", dir / "data/train-labels-idx1-ubyte");
    write_idx(drawn, dir / "data/t10k-images-idx3-ubyte", dir / "data/t10k-labels-idx1-ubyte");
  }

  // A state directory holding `crosses` drawn crosses corrected to 4 and one confirmed drawn 7.
  // Crosses (an X) labelled `label`, and one ordinary 7 judged right. The built-in model reads
  // many crosses as 4 already, so the tests that learn use another label: a style it gets wrong.
  std::vector<std::int64_t> store_crosses(int crosses, int label = 4) const {
    feedback::Store store(dir / "state" / "feedback.db");
    std::vector<std::int64_t> ids;
    for (int i = 0; i < crosses; ++i) ids.push_back(store.add(judgement(cross_input(i), label, 1)));
    ids.push_back(store.add(judgement(input_bytes(strokes::draw(strokes::digit_strokes(7), {})), 7, 7)));
    return ids;
  }
};

TEST_F(CliFeedback, ExportWritesTheJudgementsAsAnIdxPairAndLabelledPngs) {
  const std::vector<std::int64_t> ids = store_crosses(3);
  const Outcome run = digits({"feedback", "export", "--state-dir", "state", "--out", "exported", "--png"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "exported 4 judgements (3 corrections, 1 confirmed right)");
  EXPECT_CONTAINS(run.out, "4 PNG files");
  const Dataset exported = read_idx(dir / "exported/feedback-images-idx3-ubyte", dir / "exported/feedback-labels-idx1-ubyte", "exported");
  ASSERT_EQ(exported.size(), 4u);
  EXPECT_EQ(exported.labels, (std::vector<std::uint8_t>{4, 4, 4, 7}));
  const std::vector<std::uint8_t> first = cross_input(0);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), exported.image(0).begin()));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const fs::path png = dir / "exported" / (std::to_string(exported.labels[i]) + "_" + std::to_string(ids[i]) + ".png");
    ASSERT_TRUE(fs::exists(png)) << png;
    const GrayImage image = read_image(png);
    EXPECT_EQ(image.width, 28);
    EXPECT_EQ(image.height, 28);
  }
  // The PNG files are what `digits evaluate --images` reads.
  const Outcome evaluated = digits({"evaluate", "--images", "exported", "--json"});
  ASSERT_EQ(evaluated.status, 0) << evaluated.err;
  EXPECT_EQ(json::parse(evaluated.out).at("total"), 4);
}

TEST_F(CliFeedback, ExportWithoutAnythingStoredFailsNamingWhatIsMissing) {
  Outcome run = digits({"feedback", "export", "--state-dir", "absent-state", "--out", "exported"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "absent-state: no such state directory");
  fs::create_directories(dir / "state");
  run = digits({"feedback", "export", "--state-dir", "state", "--out", "exported"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "state/feedback.db: no feedback database here");
  EXPECT_FALSE(fs::exists(dir / "state/feedback.db")) << "a reader must not create the database";
  { feedback::Store empty(dir / "state" / "feedback.db"); }
  run = digits({"feedback", "export", "--state-dir", "state", "--out", "exported"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "holds no judgements yet");
  EXPECT_FALSE(fs::exists(dir / "exported"));
}

TEST_F(CliFeedback, ExportOfAFileThatIsNotADatabaseNamesIt) {
  fs::create_directories(dir / "state");
  write_bytes(dir / "state/feedback.db", std::string(4096, 'x'));
  const Outcome run = digits({"feedback", "export", "--state-dir", "state", "--out", "exported"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "feedback.db: not a feedback database");
}

TEST_F(CliFeedback, UsageMistakesAreExit2) {
  EXPECT_EQ(digits({"feedback", "export", "--state-dir", "state"}).status, 2);  // no --out
  Outcome run = digits({"feedback"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "'feedback' needs a subcommand: export");
  run = digits({"model"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "'model' needs a subcommand: list or rollback");
  run = digits({"model", "rollback", "seven", "--state-dir", "state"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "'seven' is not a version number");
  run = digits({"model", "rollback", "-1", "--state-dir", "state"});
  EXPECT_EQ(run.status, 2);
  run = digits({"improve", "--feedback", "state", "--images", "extra", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "--feedback");
  run = digits({"improve", "--steps", "10", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 2);
  EXPECT_CONTAINS(run.err, "--steps requires --feedback");
  run = digits({"improve", "--feedback", "state", "--steps", "0", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 2);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{"feedback", "export", "--help"}, {"model", "list", "--help"}, {"model", "rollback", "--help"}}) {
    run = digits(args);
    EXPECT_EQ(run.status, 0) << args[1];
    EXPECT_CONTAINS(run.out, "--state-dir");
  }
}

TEST_F(CliFeedback, ModelListShowsEveryVersionAndWhichIsCurrent) {
  const Model builtin = parse_model(builtin_model_bytes(), "built-in");
  feedback::ModelVersions versions(dir / "state");
  Metadata first;
  feedback::record_learning(first, 0.9912, 20);
  first["created"] = "2026-01-02T03:04:05Z";
  versions.add(builtin.network, first);
  Metadata second;
  feedback::record_learning(second, 0.9908, 45);
  versions.add(builtin.network, second);
  Outcome run = digits({"model", "list", "--state-dir", "state"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "version  created");
  EXPECT_CONTAINS(run.out, "        0  (the starting model)");
  EXPECT_CONTAINS(run.out, "        1  2026-01-02T03:04:05Z       0      99.12%           20");
  EXPECT_CONTAINS(run.out, "*       2  ");
  EXPECT_CONTAINS(run.out, "99.08%           45");

  run = digits({"model", "rollback", "--state-dir", "state"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "rolled back from version 2 to version 1");
  EXPECT_EQ(versions.current(), 1);
  EXPECT_CONTAINS(digits({"model", "list", "--state-dir", "state"}).out, "*       1  2026-01-02T03:04:05Z");

  run = digits({"model", "rollback", "0", "--state-dir", "state"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "to version 0 (the starting model)");
  EXPECT_EQ(versions.current(), 0);
  run = digits({"model", "rollback", "2", "--state-dir", "state"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(versions.current(), 2);

  run = digits({"model", "rollback", "7", "--state-dir", "state"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "model version 7 does not exist (saved: 1, 2)");
  EXPECT_EQ(versions.current(), 2);
}

TEST_F(CliFeedback, ModelCommandsUseXdgDataHomeByDefaultAndNameAMissingStateDir) {
  const char* saved = std::getenv("XDG_DATA_HOME");
  const std::string saved_value = saved ? saved : "";
  setenv("XDG_DATA_HOME", (dir / "xdg").c_str(), 1);
  Outcome run = digits({"model", "list"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, (dir / "xdg" / "digits").string() + ": no such state directory");
  fs::create_directories(dir / "xdg" / "digits");
  run = digits({"model", "list"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, (dir / "xdg" / "digits" / "models").string());
  EXPECT_CONTAINS(run.out, "*       0  (the starting model)");
  run = digits({"model", "rollback"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "already current");
  if (saved) setenv("XDG_DATA_HOME", saved_value.c_str(), 1);
  else unsetenv("XDG_DATA_HOME");
}

TEST_F(CliFeedback, ImproveFeedbackLearnsANewStyleAndWritesTheModel) {
  write_small_mnist();
  store_crosses(20, 5);
  const Outcome run = digits({"improve", "--feedback", "state/feedback.db", "--data", "data", "--out", "better.safetensors"});
  ASSERT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_CONTAINS(run.out, "on 21 judgements from state/feedback.db");
  EXPECT_CONTAINS(run.out, "guard: 5000 held-out");
  std::smatch counts;
  ASSERT_TRUE(std::regex_search(run.out, counts, std::regex(R"(accepted: the new corrections went from (\d+)/21 to 21/21)"))) << run.out;
  EXPECT_LE(std::stoi(counts[1]), 2) << "the built-in model already read the crosses as 5: the test shows no learning";
  EXPECT_CONTAINS(run.out, "saved better.safetensors");
  const Model better = load_model(dir / "better.safetensors");
  EXPECT_EQ(better.metadata.at("improved.feedback"), "feedback.db");
  EXPECT_EQ(better.metadata.at("improved.extra_images"), "21");
  EXPECT_EQ(better.metadata.at(feedback::kCorrectionsLearnedKey), "21");
  EXPECT_EQ(better.metadata.at("improved.steps"), "150");

  // The improved model reads crosses it was not shown as 4.
  write_png(dir / "cross.png", strokes::draw({{{0.1, 0.1}, {0.9, 0.9}}, {{0.9, 0.1}, {0.1, 0.9}}}, {.left = 50, .top = 60, .width = 150, .height = 150, .pen = 20}));
  const Outcome predicted = digits({"predict", "--model", "better.safetensors", "--json", "cross.png"});
  ASSERT_EQ(predicted.status, 0) << predicted.err;
  EXPECT_EQ(json_lines(predicted.out).at(0).at("digit"), 5);
  const Outcome before = digits({"predict", "--json", "cross.png"});
  EXPECT_NE(json_lines(before.out).at(0).at("digit"), 5) << "the built-in model already read it";
}

// "Not a digit" (label 10) goes out as none_<id>.png and label 10 in the IDX file, and a model with
// the eleventh output learns it: crosses, which it read as some digit, become "not a digit".
TEST_F(CliFeedback, AModelWithElevenOutputsLearnsNotADigitFromTheStoreAndTheExport) {
  write_small_mnist();
  const std::vector<std::int64_t> ids = store_crosses(20, 10);
  const Model never = strokes::builtin_with_not_a_digit(-1, -10.0f);  // "not a digit" far below every digit
  save_model(dir / "eleven.safetensors", never.network, never.metadata);

  Outcome run = digits({"feedback", "export", "--state-dir", "state", "--out", "exported", "--png"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_TRUE(fs::exists(dir / "exported" / ("none_" + std::to_string(ids[0]) + ".png")));
  EXPECT_TRUE(fs::exists(dir / "exported" / ("7_" + std::to_string(ids.back()) + ".png")));
  const Dataset exported = read_idx(dir / "exported/feedback-images-idx3-ubyte", dir / "exported/feedback-labels-idx1-ubyte", "exported", kNotADigit);
  EXPECT_EQ(std::count(exported.labels.begin(), exported.labels.end(), kNotADigit), 20);

  write_png(dir / "cross.png", strokes::draw({{{0.1, 0.1}, {0.9, 0.9}}, {{0.9, 0.1}, {0.1, 0.9}}}, {.left = 50, .top = 60, .width = 150, .height = 150, .pen = 20}));
  const json before = json_lines(digits({"predict", "--json", "--model", "eleven.safetensors", "cross.png"}).out).at(0);
  EXPECT_EQ(before.at("not_a_digit"), false);
  for (const std::string source : {"state/feedback.db", "exported"}) {
    run = digits({"improve", "--feedback", source, "--model", "eleven.safetensors", "--data", "data", "--out", "better.safetensors"});
    ASSERT_EQ(run.status, 0) << source << "\n" << run.out << run.err;
    EXPECT_CONTAINS(run.out, "accepted: the new corrections went from 1/21 to 21/21");  // the 7 was right before
    EXPECT_EQ(run.err, "");
    // A cross it was not shown: not a digit.
    const json after = json_lines(digits({"predict", "--json", "--model", "better.safetensors", "cross.png"}).out).at(0);
    EXPECT_EQ(after.at("not_a_digit"), true) << source << ": " << after;
    EXPECT_TRUE(after.at("digit").is_null());
  }
}

// A model of ten classes cannot learn "not a digit": such judgements are passed over, said so.
TEST_F(CliFeedback, AModelWithTenOutputsPassesOverNotADigit) {
  write_small_mnist();
  store_crosses(20, 10);
  const Model ten_classes = strokes::builtin_with_ten_classes();
  save_model(dir / "ten.safetensors", ten_classes.network, ten_classes.metadata);
  Outcome run = digits({"improve", "--feedback", "state", "--model", "ten.safetensors", "--data", "data", "--out", "better.safetensors", "--steps", "20"});
  EXPECT_CONTAINS(run.err, "passed over 20 judgements of \"not a digit\": ten.safetensors has 10 outputs");
  EXPECT_CONTAINS(run.out, "on 1 judgements from state");
  // Nothing but "not a digit": nothing to learn.
  write_bytes(dir / "export.json", R"({"format": "digits-feedback", "version": 1, "judgements": [{"label": 10, "drawing": ")" +
                                       std::string("data:image/png;base64,") + encode_base64(encode_png(strokes::draw(strokes::digit_strokes(7), {}))) + "\"}]}");
  run = digits({"improve", "--feedback", "export.json", "--model", "ten.safetensors", "--data", "data", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "export.json: every judgement says \"not a digit\", which ten.safetensors cannot learn; use a model with 11 outputs");
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
}

TEST_F(CliFeedback, ImproveFeedbackAlsoReadsAnExportAndTheStateDirectory) {
  write_small_mnist();
  store_crosses(20);
  ASSERT_EQ(digits({"feedback", "export", "--state-dir", "state", "--out", "exported"}).status, 0);
  for (const std::string path : {"exported/feedback-images-idx3-ubyte", "exported", "state"}) {
    const Outcome run = digits({"improve", "--feedback", path, "--data", "data", "--out", "better.safetensors", "--steps", "60", "--batch", "16"});
    EXPECT_EQ(run.status, 0) << path << "\n" << run.out << run.err;
    EXPECT_CONTAINS(run.out, "on 21 judgements from " + path);
    EXPECT_CONTAINS(run.out, "60 steps of 16");
  }
}

TEST_F(CliFeedback, ImproveFeedbackRejectedByTheGuardWritesNothing) {
  write_small_mnist();
  // Three hundred drawn 1s, all "corrected" to 7.
  {
    feedback::Store store(dir / "state" / "feedback.db");
    const Dataset drawn = drawn_digits();
    for (int copy = 0; copy < 100; ++copy) {
      for (std::size_t i = 0; i < drawn.size(); ++i) {
        if (drawn.labels[i] == 1) store.add(judgement({drawn.image(i).begin(), drawn.image(i).end()}, 7, 1));
      }
    }
    ASSERT_EQ(store.count(), 300);
  }
  const Outcome run = digits({"improve", "--feedback", "state/feedback.db", "--data", "data", "--out", "poisoned.safetensors"});
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_CONTAINS(run.out, "rejected: ");
  EXPECT_CONTAINS(run.err, "the guard rejected the fine-tuned model, so poisoned.safetensors was not written");
  EXPECT_FALSE(fs::exists(dir / "poisoned.safetensors"));
}

TEST_F(CliFeedback, ImproveFeedbackNamesABadSource) {
  write_small_mnist();
  Outcome run = digits({"improve", "--feedback", "absent.db", "--data", "data", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "absent.db: no such feedback file");
  write_bytes(dir / "notes.txt", "hello");
  run = digits({"improve", "--feedback", "notes.txt", "--data", "data", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "notes.txt: neither a feedback database, nor the page's export (JSON), nor an IDX images file");
  // The page's export (web/wasm-mode.js): JSON, checked field by field.
  const std::vector<std::pair<std::string, std::string>> exports = {
      {"{\"judgements\": []}", "JSON, but not the page's export"},
      {R"({"format": "digits-feedback", "version": 2, "judgements": []})", "export version 2"},
      {R"({"format": "digits-feedback", "version": 1, "judgements": []})", "holds no judgements"},
      {R"({"format": "digits-feedback", "version": 1, "judgements": [{"label": 12, "drawing": ""}]})", "judgement 1: \"label\" must be a digit 0–9, or 10 for \"not a digit\""},
      {R"({"format": "digits-feedback", "version": 1, "judgements": [{"label": 1, "drawing": "data:text/plain;base64,aGk="}]})", "judgement 1: \"image\" is a data URL of 'text/plain;base64'"},
      {R"({"format": "digits-feedback", "version": 1, "judgements": [{"label": 1, "drawing": "data:image/png;base64,aGk="}]})", "judgement 1: not an image digits reads"},
      {"{\"format\": ", "not valid JSON"},
  };
  for (const auto& [text, message] : exports) {
    write_bytes(dir / "export.json", text);
    run = digits({"improve", "--feedback", "export.json", "--data", "data", "--out", "x.safetensors"});
    EXPECT_EQ(run.status, 1) << text;
    EXPECT_CONTAINS(run.err, "export.json: " + message);
  }
  fs::create_directories(dir / "lonely");
  write_idx(drawn_digits(), dir / "lonely/feedback-images-idx3-ubyte", dir / "elsewhere-labels");
  run = digits({"improve", "--feedback", "lonely/feedback-images-idx3-ubyte", "--data", "data", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "its labels file lonely/feedback-labels-idx1-ubyte is missing");
  run = digits({"improve", "--feedback", "data", "--data", "data", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "data: a folder with neither feedback.db nor feedback-images-idx3-ubyte");
  // Too little MNIST for the guard's 5,000 validation images.
  store_crosses(2);
  write_idx(drawn_digits(), dir / "data/train-images-idx3-ubyte", dir / "data/train-labels-idx1-ubyte");
  run = digits({"improve", "--feedback", "state", "--data", "data", "--out", "x.safetensors"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "cannot set aside 5000");
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
}
