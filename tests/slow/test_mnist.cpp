// Tests on the real data sets (fetched by scripts/fetch-mnist; Fashion-MNIST from Debian's
// dataset-fashion-mnist). Labelled `slow`: they read ~100 MB and train for a few epochs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "digits/builtin_model.hpp"
#include "digits/model_file.hpp"
#include "digits/presets.hpp"
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
