// The training recipe's parts: learning-rate schedules, weight decay, dropout, early stopping on a
// validation split, and checkpoints that resume training exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "digits/augment.hpp"
#include "digits/checkpoint.hpp"
#include "digits/error.hpp"
#include "digits/presets.hpp"
#include "digits/random.hpp"
#include "digits/schedule.hpp"
#include "digits/trainer.hpp"

using namespace digits;

namespace {

// Four classes, each lighting its own quadrant, with noise (as in test_training.cpp).
Dataset quadrants(std::size_t count, std::uint64_t seed) {
  Dataset data;
  data.name = "quadrants";
  data.rows = data.cols = 8;
  Rng rng(seed);
  for (std::size_t n = 0; n < count; ++n) {
    const int label = static_cast<int>(rng.below(4));
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const bool lit = (label % 2 == 0 ? x < 4 : x >= 4) && (label / 2 == 0 ? y < 4 : y >= 4);
        data.pixels.push_back(static_cast<std::uint8_t>(std::min(255.0f, (lit ? 150.0f : 0.0f) + rng.uniform() * 100.0f)));
      }
    data.labels.push_back(static_cast<std::uint8_t>(label));
  }
  return data;
}

Network network_for_quadrants(std::uint64_t seed) {
  Network network({64, 12, 4}, Activation::relu, 1.0f / 255.0f);
  network.initialize(Init::he, seed);
  return network;
}

bool same_weights(const Network& a, const Network& b) {
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    const ConstParameters p = parameters(a.layers[i]), q = parameters(b.layers[i]);
    if (p.W && (*p.W != *q.W || *p.b != *q.b)) return false;
  }
  return true;
}

}  // namespace

TEST(Schedule, KnownValues) {
  const Schedule constant;
  EXPECT_DOUBLE_EQ(learning_rate_at(constant, 0.1, 7.5, 10), 0.1);

  const Schedule step = parse_schedule("step:10:0.5");
  EXPECT_DOUBLE_EQ(learning_rate_at(step, 0.1, 9.99, 30), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate_at(step, 0.1, 10, 30), 0.05);
  EXPECT_DOUBLE_EQ(learning_rate_at(step, 0.1, 25, 30), 0.025);

  const Schedule cosine = parse_schedule("cosine");
  EXPECT_DOUBLE_EQ(learning_rate_at(cosine, 0.1, 0, 10), 0.1);
  EXPECT_NEAR(learning_rate_at(cosine, 0.1, 5, 10), 0.05, 1e-12);  // half-way: half the rate
  EXPECT_NEAR(learning_rate_at(cosine, 0.1, 10, 10), 0.0, 1e-12);

  const Schedule warm = parse_schedule("cosine:0.1,warmup:2");
  EXPECT_NEAR(learning_rate_at(warm, 0.1, 1, 12), 0.05, 1e-12);   // half-way up the ramp
  EXPECT_NEAR(learning_rate_at(warm, 0.1, 2, 12), 0.1, 1e-12);    // the top
  EXPECT_NEAR(learning_rate_at(warm, 0.1, 12, 12), 0.01, 1e-12);  // the floor: 10% of the base
}

TEST(Schedule, RejectsWhatItCannotRead) {
  for (const char* bad : {"", "linear", "step:10", "step:0:0.5", "cosine:x", "cosine,warm:3", "step:a:b"}) {
    EXPECT_THROW(parse_schedule(bad), Error) << bad;
  }
  try {
    parse_schedule("cosine,warmup:-1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("-1"), std::string::npos);
  }
}

TEST(Schedule, IsAppliedDuringTraining) {
  const Dataset train = quadrants(256, 1);
  Network network = network_for_quadrants(1);
  TrainingRecipe recipe;
  recipe.epochs = 4;
  recipe.batch = 32;
  recipe.optimizer = {.kind = OptimizerKind::sgd, .learning_rate = 0.1f};
  recipe.schedule = parse_schedule("step:1:0.5");
  const auto reports = fit(network, train, nullptr, recipe);
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_FLOAT_EQ(reports[0].learning_rate, 0.1f);
  EXPECT_FLOAT_EQ(reports[3].learning_rate, 0.0125f);
}

TEST(WeightDecay, ShrinksWeightsWithNoGradient) {
  // With a zero gradient, decay alone gives W ← W − η·λ·W = (1 − ηλ)·W; biases are untouched.
  std::vector<Layer> layers{DenseLayer(3, 2, Activation::identity)};
  DenseLayer& dense = std::get<DenseLayer>(layers[0]);
  dense.W.setConstant(2.0f);
  dense.b.setConstant(1.0f);
  dense.dW = WeightMatrix::Zero(3, 2);
  dense.db = RowVector::Zero(2);
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.5f, .weight_decay = 0.1f});
  sgd.step(layers);
  EXPECT_FLOAT_EQ(dense.W(1, 1), 2.0f * (1 - 0.05f));
  EXPECT_FLOAT_EQ(dense.b(0), 1.0f);
}

TEST(Dropout, ChangesTrainingYetStillLearnsAndIsSeeded) {
  // Compare one step's gradient with and without dropout on a network whose hidden layer is wide:
  // dropout must change it (masks are used) but training with it must still learn.
  const Dataset train = quadrants(512, 3), test = quadrants(200, 4);
  Network with = network_for_quadrants(2), without = network_for_quadrants(2);
  TrainingRecipe recipe;
  recipe.epochs = 6;
  recipe.batch = 32;
  recipe.optimizer = {.kind = OptimizerKind::nesterov, .learning_rate = 0.05f};
  TrainingRecipe dropping = recipe;
  dropping.dropout = 0.3f;
  fit(without, train, nullptr, recipe);
  const auto reports = fit(with, train, &test, dropping);
  EXPECT_FALSE(same_weights(with, without));
  EXPECT_GT(reports.back().test_accuracy, 0.95);  // prediction uses every unit, unscaled

  // The same seed gives the same masks.
  Network again = network_for_quadrants(2);
  fit(again, train, nullptr, dropping);
  EXPECT_TRUE(same_weights(with, again));
}

TEST(Dropout, RejectsRatesOutsideZeroToOne) {
  Network network = network_for_quadrants(1);
  Optimizer sgd({});
  const Matrix X = Matrix::Zero(2, 64);
  const std::vector<std::uint8_t> labels{0, 1};
  EXPECT_THROW(network.train_step(X, labels, sgd, 1.0f), Error);
  EXPECT_THROW(network.train_step(X, labels, sgd, -0.1f), Error);
}

TEST(EarlyStopping, TheSplitInPlaceIsTheSplitByCopy) {
  Dataset train = quadrants(600, 5);
  const std::size_t features = static_cast<std::size_t>(train.features());
  for (std::size_t i = 0; i < train.size(); ++i) train.pixels[i * features] = static_cast<std::uint8_t>(i % 251);  // every row told apart
  const auto [validation, rest] = split_validation(train, 100, 42);
  Dataset moved = train;
  const auto [validation_in_place, rest_in_place] = split_validation(std::move(moved), 100, 42);
  EXPECT_EQ(validation_in_place.name, validation.name);
  EXPECT_EQ(rest_in_place.name, rest.name);
  EXPECT_EQ(validation_in_place.pixels, validation.pixels);
  EXPECT_EQ(validation_in_place.labels, validation.labels);
  EXPECT_EQ(rest_in_place.pixels, rest.pixels);
  EXPECT_EQ(rest_in_place.labels, rest.labels);
  EXPECT_NE(rest.pixels, std::vector<std::uint8_t>(train.pixels.begin() + static_cast<std::ptrdiff_t>(100 * features), train.pixels.end()));  // a real shuffle
  EXPECT_THROW(split_validation(Dataset(train), 600, 9), Error);
}

TEST(EarlyStopping, ValidationComesFromTrainingDataAndTheBestEpochIsKept) {
  const Dataset train = quadrants(600, 5);
  // fit() carves its validation set with the fixed kValidationSplitSeed, whatever recipe.seed is.
  const auto [validation, rest] = split_validation(train, 100, kValidationSplitSeed);
  EXPECT_EQ(validation.size(), 100u);
  EXPECT_EQ(rest.size(), 500u);
  EXPECT_THROW(split_validation(train, 600, 9), Error);

  Network network = network_for_quadrants(3);
  TrainingRecipe recipe;
  recipe.epochs = 30;
  recipe.batch = 32;
  recipe.optimizer = {.kind = OptimizerKind::sgd, .learning_rate = 0.05f};
  recipe.validation = 100;
  recipe.patience = 3;
  const auto reports = fit(network, train, nullptr, recipe);
  ASSERT_FALSE(reports.empty());
  double best = 0;
  for (const EpochReport& r : reports) {
    EXPECT_GE(r.validation_accuracy, 0);
    best = std::max(best, r.validation_accuracy);
  }
  EXPECT_LT(reports.size(), 30u);  // it stopped early: this problem is learned within a few epochs
  EXPECT_DOUBLE_EQ(evaluate(network, validation).accuracy(), best);  // the kept weights are the best epoch's
}

TEST(EarlyStopping, ExtraImagesJoinTrainingButNeverTheValidationSet) {
  const Dataset train = quadrants(600, 5);
  // Extra images with wrong labels: had any of them been put in the validation set, the best
  // validation accuracy could not equal the kept weights' accuracy on the split's 100 images.
  Dataset extra = quadrants(64, 11);
  for (std::uint8_t& label : extra.labels) label = static_cast<std::uint8_t>((label + 1) % 4);
  const Dataset validation = split_validation(train, 100, kValidationSplitSeed).first;
  TrainingRecipe recipe;
  recipe.epochs = 3;
  recipe.batch = 32;
  recipe.optimizer = {.kind = OptimizerKind::sgd, .learning_rate = 0.05f};
  recipe.validation = 100;
  recipe.seed = 4;  // not the split's seed: the validation set must not depend on it
  std::size_t batches = 0;
  TrainingObserver observer;
  observer.on_batch = [&](const BatchProgress& progress) { batches = progress.batches; };
  Network network = network_for_quadrants(3);
  TrainingState state{Optimizer(recipe.optimizer), 0};
  const auto reports = fit(network, train, nullptr, recipe, state, observer, &extra);
  EXPECT_EQ(batches, (500u + 64u + 31u) / 32u) << "the 500 training images left after validation, plus the 64 extra";
  // The kept weights are the best epoch's on exactly the split's 100 images: the extras did not
  // change which images validate.
  double best = 0;
  for (const EpochReport& r : reports) best = std::max(best, r.validation_accuracy);
  EXPECT_GT(best, 0.9);
  EXPECT_DOUBLE_EQ(evaluate(network, validation).accuracy(), best);
}

class Resume : public ::testing::TestWithParam<OptimizerKind> {};

TEST_P(Resume, FromACheckpointIsBitIdenticalToNeverStopping) {
  const Dataset train = quadrants(300, 6);
  TrainingRecipe recipe;
  recipe.epochs = 4;
  recipe.batch = 16;
  recipe.optimizer = {.kind = GetParam(), .learning_rate = GetParam() == OptimizerKind::adam ? 0.005f : 0.05f, .weight_decay = 1e-4f};
  recipe.schedule = parse_schedule("cosine,warmup:1");
  recipe.dropout = 0.2f;

  // One uninterrupted run that also leaves a checkpoint on disk after its second epoch…
  const std::filesystem::path path = std::filesystem::temp_directory_path() / ("digits-resume-" + std::string(optimizer_name(GetParam())) + ".safetensors");
  Network straight = network_for_quadrants(4);
  TrainingState state{Optimizer(recipe.optimizer), 0};
  long long steps_after_two = 0;
  TrainingObserver observer;
  observer.on_checkpoint = [&](const Network& n, const TrainingState& s) {
    if (s.epochs_done != 2) return;
    save_checkpoint(path, n, s, {});
    steps_after_two = s.optimizer.steps_taken;
  };
  fit(straight, train, nullptr, recipe, state, observer);

  // …and the same recipe resumed from that checkpoint ends with the same bits.
  Model loaded = load_model(path);
  ASSERT_TRUE(is_checkpoint(loaded));
  TrainingState resumed = restore_training_state(loaded, recipe.optimizer);
  EXPECT_EQ(resumed.epochs_done, 2);
  EXPECT_EQ(resumed.optimizer.steps_taken, steps_after_two);
  EXPECT_GT(steps_after_two, 0);
  const auto reports = fit(loaded.network, train, nullptr, recipe, resumed);
  EXPECT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports.front().epoch, 3);
  EXPECT_TRUE(same_weights(straight, loaded.network));
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(EveryOptimizer, Resume, ::testing::Values(OptimizerKind::sgd, OptimizerKind::nesterov, OptimizerKind::adam),
                         [](const auto& info) { return std::string(optimizer_name(info.param)); });

TEST(Checkpoint, APlainModelIsNoCheckpointAndAMismatchedOptimizerIsAnError) {
  const Network network = network_for_quadrants(1);
  const std::string bytes = serialize_model(network, {});
  const Model plain = parse_model(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), "plain");
  EXPECT_FALSE(is_checkpoint(plain));
  EXPECT_TRUE(plain.extra.empty());
  EXPECT_THROW(restore_training_state(plain, {}), Error);

  const std::filesystem::path path = std::filesystem::temp_directory_path() / "digits-checkpoint-adam.safetensors";
  TrainingState state{Optimizer({.kind = OptimizerKind::adam}), 0};
  Network trained = network;
  TrainingRecipe recipe;
  recipe.epochs = 1;
  recipe.batch = 16;
  recipe.optimizer.kind = OptimizerKind::adam;
  fit(trained, quadrants(64, 1), nullptr, recipe, state);
  save_checkpoint(path, trained, state, {});
  const Model checkpoint = load_model(path);
  EXPECT_TRUE(is_checkpoint(checkpoint));
  EXPECT_EQ(checkpoint.extra.size(), 4 * trained.layers.size());
  try {
    restore_training_state(checkpoint, {.kind = OptimizerKind::sgd});
    FAIL() << "an adam checkpoint resumed with sgd";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adam"), std::string::npos);
  }
  std::filesystem::remove(path);
}

TEST(Augmentation, InTrainingIsSeededAndIndependentOfThreads) {
  // 28×28 images, as augmentation's transforms expect: quadrant blocks scaled up.
  Dataset train;
  train.name = "blocks";
  Rng rng(3);
  for (int n = 0; n < 200; ++n) {
    const int label = static_cast<int>(rng.below(4));
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x) {
        const bool lit = x >= 4 && x < 24 && y >= 4 && y < 24 && (label % 2 == 0 ? x < 14 : x >= 14) && (label / 2 == 0 ? y < 14 : y >= 14);
        train.pixels.push_back(lit ? 200 : 0);
      }
    train.labels.push_back(static_cast<std::uint8_t>(label));
  }
  auto trained = [&](const AugmentSettings& augment, int threads) {
    Network network({784, 16, 4}, Activation::relu, 1.0f / 255.0f);
    network.initialize(Init::he, 1);
    TrainingRecipe recipe;
    recipe.epochs = 2;
    recipe.batch = 20;
    recipe.optimizer = {.kind = OptimizerKind::sgd, .learning_rate = 0.05f};
    recipe.augment = augment;
    recipe.threads = threads;
    fit(network, train, nullptr, recipe);
    return network;
  };
  const AugmentSettings standard = parse_augment("default");
  const Network one = trained(standard, 1), two = trained(standard, 2), plain = trained(AugmentSettings::none(), 1);
  EXPECT_TRUE(same_weights(one, two));
  EXPECT_FALSE(same_weights(one, plain));
}

// The frontier preset (docs/frontier.md) is the cnn network with batch norm, and the techniques
// its measured mean came from: a change to any of them changes what the table measured.
TEST(Presets, CnnBestIsTheCnnNetworkWithBatchNormSmoothingAveragingAndLightDistortions) {
  const Preset& best = find_preset("cnn-best");
  EXPECT_EQ(build_network(best).architecture(), "conv5x5x32,bn,pool2,conv5x5x64,bn,pool2,flatten,fc256,fc10");
  EXPECT_FLOAT_EQ(best.recipe.label_smoothing, 0.1f);
  EXPECT_FLOAT_EQ(best.recipe.weight_averaging, 0.999f);
  EXPECT_EQ(describe(best.recipe.augment), describe(parse_augment("shift=2,rotate=10,scale=0.1,shear=0.1,thickness=0.2")));
  EXPECT_EQ(best.recipe.epochs, find_preset("cnn").recipe.epochs);
  EXPECT_EQ(best.recipe.validation, 5000u);
  EXPECT_THROW(find_preset("frontier"), Error);
}
