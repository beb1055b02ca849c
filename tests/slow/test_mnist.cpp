// Tests on the real data sets (fetched by scripts/fetch-mnist; Fashion-MNIST from Debian's
// dataset-fashion-mnist). Labelled `slow`: they read ~100 MB and train for a few epochs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "../support/model_to_teach.hpp"
#include "../support/styles.hpp"
#include "digits/builtin_model.hpp"
#include "digits/fine_tune.hpp"
#include "digits/kernels.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"
#include "digits/presets.hpp"
#include "digits/sha256.hpp"
#include "digits/trainer.hpp"

using namespace digits;

namespace {

std::filesystem::path mnist_dir() {
  if (const char* env = std::getenv("DIGITS_DATA"); env && *env) return env;
  return std::filesystem::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
}

const TrainTestData& mnist() {
  static const TrainTestData data = load_train_test(mnist_dir());
  return data;
}

// The guard's split of MNIST's training set, made once.
const std::pair<Dataset, Dataset>& guard_data() {
  static const std::pair<Dataset, Dataset> split = guard_split(mnist().train);
  return split;
}

// The realistic styles (tests/support/styles.hpp) the model reads wrong: at most 30% of 200
// drawings right. At most `count` of them, in styles_to_teach()'s order.
std::vector<digits::testing::Style> styles_read_wrong(const Network& network, std::size_t count) {
  std::vector<digits::testing::Style> wrong;
  for (const digits::testing::Style& style : digits::testing::styles_to_teach()) {
    if (wrong.size() == count) break;
    if (evaluate(network, digits::testing::style_dataset(style, 200, 99)).accuracy() <= 0.3) wrong.push_back(style);
  }
  return wrong;
}

}  // namespace

TEST(Mnist, LoadsWithTheChecksumsOfTheDesign) {
  EXPECT_EQ(mnist().train.size(), 60000u);
  EXPECT_EQ(mnist().test.size(), 10000u);
  EXPECT_EQ(mnist().train.features(), 784);
  EXPECT_EQ(mnist().sha256.at("train-images-idx3-ubyte"), "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db");
  EXPECT_EQ(mnist().sha256.at("t10k-labels-idx1-ubyte"), "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2");
}

TEST(Mnist, SeedPresetLearnsInAFewEpochs) {
  const Preset& seed = find_preset("seed");
  Network network(seed.sizes, seed.hidden, seed.input_scale);
  network.initialize(seed.init, 1);
  TrainingRecipe recipe = seed.recipe;
  recipe.epochs = 3;
  const std::vector<EpochReport> reports = fit(network, mnist().train, &mnist().test, recipe);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_LT(reports.back().loss, reports.front().loss);
  // The NumPy ancestor's recipe is past 93% on the test set after three epochs; chance is 10%.
  EXPECT_GT(reports.back().test_accuracy, 0.93);
  EXPECT_GT(reports.back().train_accuracy, 0.93);
}

// Dense networks must train bit for bit as they did before the network could hold other kinds of
// layer (issue 12): the seed preset, two epochs from seed 1 through the real fit(), then the SHA-256
// of the model file's data section (every tensor, fc1.weight, fc1.bias, fc2…, as stored). The value
// was recorded on main at bed06cd, before the change; it holds for the AVX-512 kernels of the
// release build (the plain products add in another order, so another build gets other last bits).
// Since issue 14 the first layer sums over lit pixels only (kernels.hpp), which adds the same terms
// in another order: with that switched off the recorded value still holds; with it on, two runs
// give the same bits, and other bits than the dense path (so fit() does take the sparse one).
namespace {

std::string seed_preset_tensors_sha256(bool skip_zero_inputs) {
  const Preset& seed = find_preset("seed");
  Network network(seed.sizes, seed.hidden, seed.input_scale);
  network.initialize(seed.init, 1);
  std::get<DenseLayer>(network.layers[0]).skip_zero_inputs = skip_zero_inputs;
  TrainingRecipe recipe = seed.recipe;
  recipe.epochs = 2;
  recipe.seed = 1;
  const std::vector<EpochReport> reports = fit(network, mnist().train, &mnist().test, recipe);
  EXPECT_EQ(reports.size(), 2u);
  const std::string file = serialize_model(network, {});
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, file.data(), 8);
  const std::string_view tensors = std::string_view(file).substr(8 + header_size);
  EXPECT_EQ(tensors.size(), sizeof(float) * network.parameter_count());
  return sha256_hex(tensors);
}

}  // namespace

TEST(Mnist, SeedPresetTrainsBitForBitAsRecorded) {
  if (!have_tuned_kernels()) GTEST_SKIP() << "the recorded hash is of the AVX-512 kernels; this build has the plain ones";
  EXPECT_EQ(seed_preset_tensors_sha256(false), "0fdf34697e9b89bf1fd8e6c50bd203122d3de66d40cf5f334f97c7b6383b2448");
  const std::string sparse = seed_preset_tensors_sha256(true);
  EXPECT_EQ(seed_preset_tensors_sha256(true), sparse);
  EXPECT_NE(sparse, "0fdf34697e9b89bf1fd8e6c50bd203122d3de66d40cf5f334f97c7b6383b2448");
}

TEST(Mnist, BuiltInModelKeepsItsRecordedAccuracy) {
  const Model model = parse_model(builtin_model_bytes(), "built-in model");
  const double accuracy = evaluate(model.network, mnist().test).accuracy();
  EXPECT_GE(accuracy, 0.98);
  EXPECT_NEAR(100 * accuracy, std::stod(model.metadata.at("accuracy.test")), 0.01);
}

TEST(FashionMnist, LoadsGzippedFromDebiansPackage) {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  ASSERT_TRUE(std::filesystem::exists(dir / "train-images-idx3-ubyte.gz")) << "install Debian's dataset-fashion-mnist (scripts/setup does)";
  const TrainTestData fashion = load_train_test(dir);
  EXPECT_EQ(fashion.train.size(), 60000u);
  EXPECT_EQ(fashion.test.size(), 10000u);
  // A quick linear-ish model beats chance by far: the data really is images with their labels.
  Network network({784, 32, 10}, Activation::relu, 1.0f / 255.0f);
  network.initialize(Init::he, 1);
  TrainingRecipe recipe;
  recipe.epochs = 1;
  recipe.batch = 64;
  recipe.optimizer = {.kind = OptimizerKind::nesterov, .learning_rate = 0.02f};
  recipe.measure_train_accuracy = false;
  EXPECT_GT(fit(network, fashion.train, &fashion.test, recipe).back().test_accuracy, 0.75);
}

// ---- learning from corrections (fine_tune.hpp) with the built-in model ----

TEST(FineTuneMnist, TwentyCorrectionsOfARealStyleAreLearnedWhileValidationHolds) {
  // Three ways people write digits that the model reads wrong (a mirrored 3, a seven-segment 8, a
  // 1 with a long flag, … whichever it gets wrong), each taught by 20 corrections in one guarded
  // round with the default recipe; 200 other drawings of the style, other places, sizes, slants
  // and pens, are read right afterwards, and neither validation nor the test set falls by more
  // than the guard's margin.
  const Model& model = digits::testing::model_to_teach();
  const auto& [replay, validation] = guard_data();
  const std::vector<digits::testing::Style> styles = styles_read_wrong(model.network, 3);
  ASSERT_EQ(styles.size(), 3u) << digits::testing::model_to_teach_name() << " reads most styles of styles_to_teach() right; add styles it gets wrong";
  const double test_before = evaluate(model.network, mnist().test).accuracy();
  for (const digits::testing::Style& style : styles) {
    const Dataset corrections = digits::testing::style_dataset(style, 20, 7);
    const Dataset unseen = digits::testing::style_dataset(style, 200, 99);
    const FineTuneSettings settings;
    const FineTuneResult result = fine_tune_guarded(model.network, corrections, {}, replay, validation, settings);
    EXPECT_TRUE(result.verdict.accepted) << style.name << ": " << result.verdict.reason;
    EXPECT_EQ(result.verdict.corrections_after, 1.0) << style.name;
    EXPECT_GE(result.verdict.validation_after, result.verdict.validation_before - settings.max_validation_drop) << style.name;
    const double unseen_after = evaluate(result.candidate, unseen).accuracy(), test_after = evaluate(result.candidate, mnist().test).accuracy();
    EXPECT_GE(unseen_after, 0.9) << style.name;
    // The test set, never seen by the guard, stays within the margin too.
    EXPECT_GE(test_after, test_before - settings.max_validation_drop) << style.name;
    if (std::getenv("DIGITS_TEST_LOG"))
      std::printf("  %s: %s; unseen %.1f%% -> %.1f%%; test %.2f%% -> %.2f%%\n", style.name.c_str(), result.verdict.reason.c_str(),
                  100 * evaluate(model.network, unseen).accuracy(), 100 * unseen_after, 100 * test_before, 100 * test_after);
  }
}

TEST(FineTuneMnist, HundredsOfOnesLabelledSevenAreRejected) {
  const Model& model = digits::testing::model_to_teach();
  const auto& [replay, validation] = guard_data();
  Dataset poison;
  poison.name = "ones labelled 7";
  for (std::size_t i = 0; i < replay.size() && poison.size() < 300; ++i) {
    if (replay.labels[i] != 1) continue;
    const auto image = replay.image(i);
    poison.pixels.insert(poison.pixels.end(), image.begin(), image.end());
    poison.labels.push_back(7);
  }
  const FineTuneSettings settings;
  const FineTuneResult result = fine_tune_guarded(model.network, poison, {}, replay, validation, settings);
  EXPECT_FALSE(result.verdict.accepted) << result.verdict.reason;
  EXPECT_LT(result.verdict.validation_after, result.verdict.validation_before - settings.max_validation_drop) << result.verdict.reason;
  if (std::getenv("DIGITS_TEST_LOG")) std::printf("  300 ones labelled 7: %s\n", result.verdict.reason.c_str());
}

TEST(FineTuneMnist, GuardSplitHoldsOutFiveThousandTrainingImages) {
  const auto& [replay, validation] = guard_data();
  EXPECT_EQ(validation.size(), 5000u);
  EXPECT_EQ(replay.size(), 55000u);
  // Every digit is there in about its share (MNIST's classes are 9–11% each).
  for (int digit = 0; digit < 10; ++digit) {
    const auto count = std::count(validation.labels.begin(), validation.labels.end(), digit);
    EXPECT_GT(count, 400) << digit;
    EXPECT_LT(count, 600) << digit;
  }
}
