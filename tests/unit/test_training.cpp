// The training loop: determinism, convergence on a small problem with a known answer, improve,
// the optimizers, and evaluation's bookkeeping.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <utility>

#include "digits/batchnorm_layer.hpp"
#include "digits/calibration.hpp"
#include "digits/error.hpp"
#include "digits/network.hpp"
#include "../support/same_weights.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"
#include "digits/trainer.hpp"

using namespace digits;

namespace {

// A small separable problem in MNIST's shape: each class lights its own 3×3 block, with noise.
Dataset blocks_dataset(std::size_t count, std::uint64_t seed) {
  Dataset data;
  data.name = "blocks";
  data.rows = data.cols = 8;
  Rng rng(seed);
  for (std::size_t n = 0; n < count; ++n) {
    const int label = static_cast<int>(rng.below(4));
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        const bool lit = (label % 2 == 0 ? x < 4 : x >= 4) && (label / 2 == 0 ? y < 4 : y >= 4) && (x % 4 < 3) && (y % 4 < 3);
        const float noise = rng.uniform() * 60.0f;
        data.pixels.push_back(static_cast<std::uint8_t>(std::min(255.0f, (lit ? 180.0f : 0.0f) + noise)));
      }
    }
    data.labels.push_back(static_cast<std::uint8_t>(label));
  }
  return data;
}

Network small_network(std::uint64_t seed) {
  Network network({64, 16, 4}, Activation::relu, 1.0f / 255.0f);
  network.initialize(Init::he, seed);
  return network;
}

TrainingRecipe quick_recipe(OptimizerKind kind = OptimizerKind::sgd, float learning_rate = 0.1f) {
  TrainingRecipe recipe;
  recipe.epochs = 5;
  recipe.batch = 16;
  recipe.optimizer.kind = kind;
  recipe.optimizer.learning_rate = learning_rate;
  recipe.seed = 9;
  return recipe;
}

bool same_weights(const Network& a, const Network& b) {
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    const ConstParameters p = parameters(a.layers[i]), q = parameters(b.layers[i]);
    if (p.W && (*p.W != *q.W || *p.b != *q.b)) return false;
  }
  return true;
}

}  // namespace

TEST(Training, SameSeedGivesBitIdenticalWeights) {
  const Dataset train = blocks_dataset(500, 1);
  Network a = small_network(3), b = small_network(3), c = small_network(4);
  fit(a, train, nullptr, quick_recipe());
  fit(b, train, nullptr, quick_recipe());
  fit(c, train, nullptr, quick_recipe());
  EXPECT_TRUE(same_weights(a, b));
  EXPECT_FALSE(same_weights(a, c));
}

TEST(Training, OneThreadAndManyGiveTheSameWeightsAndReports) {
  const Dataset train = blocks_dataset(500, 1), test = blocks_dataset(100, 2);
  Network a = small_network(3), b = small_network(3);
  TrainingRecipe one = quick_recipe(), two = quick_recipe();
  one.threads = 1;
  two.threads = 2;
  const auto reports_one = fit(a, train, &test, one);
  const auto reports_two = fit(b, train, &test, two);
  EXPECT_TRUE(same_weights(a, b));
  ASSERT_EQ(reports_two.size(), reports_one.size());
  for (std::size_t i = 0; i < reports_one.size(); ++i) {
    EXPECT_EQ(reports_two[i].epoch, static_cast<int>(i) + 1);  // reported in order
    EXPECT_EQ(reports_two[i].loss, reports_one[i].loss);
    EXPECT_EQ(reports_two[i].test_accuracy, reports_one[i].test_accuracy);
    EXPECT_EQ(reports_two[i].train_accuracy, reports_one[i].train_accuracy);
  }
}

// A recipe that chooses its epoch on a validation set reads the test set once, at the end, not after
// every epoch (TrainingRecipe::measure_test_each_epoch); the weights do not depend on it.
TEST(Training, TheTestSetCanBeLeftUnreadUntilTheEnd) {
  const Dataset train = blocks_dataset(500, 1), test = blocks_dataset(100, 2);
  Network a = small_network(3), b = small_network(3);
  TrainingRecipe each = quick_recipe(), once = quick_recipe();
  each.validation = once.validation = 100;
  once.measure_test_each_epoch = false;
  const auto reports_each = fit(a, train, &test, each);
  const auto reports_once = fit(b, train, &test, once);
  EXPECT_TRUE(same_weights(a, b));
  ASSERT_EQ(reports_once.size(), reports_each.size());
  for (std::size_t i = 0; i < reports_once.size(); ++i) {
    EXPECT_GE(reports_each[i].test_accuracy, 0);
    EXPECT_EQ(reports_once[i].test_accuracy, -1);
    EXPECT_EQ(reports_once[i].validation_accuracy, reports_each[i].validation_accuracy);
  }
}

// A dense layer large enough to split its products (DenseLayer::kSplitWork) cuts them into shares
// fixed by the sizes alone, so one thread or several train the same weights, bit for bit, as
// ConvTraining.WeightsDoNotDependOnTheNumberOfThreads checks for convolutions. Batch 130 makes
// uneven shares of rows; 300 and 200 columns uneven shares of dW's columns.
TEST(Training, LargeDenseLayersGiveTheSameWeightsOnAnyNumberOfThreads) {
  EXPECT_GE(130L * 784 * 300, DenseLayer::kSplitWork);
  EXPECT_GE(130L * 300 * 200, DenseLayer::kSplitWork);
  auto train = [](int threads) {
    Network network({784, 300, 200, 10}, Activation::relu, 1.0f / 255.0f);
    network.initialize(Init::he, 2);
    network.set_threads(threads);
    Optimizer optimizer({.kind = OptimizerKind::nesterov, .learning_rate = 0.05f, .momentum = 0.9f});
    std::vector<std::uint8_t> labels(130);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    for (std::uint64_t step = 0; step < 4; ++step) {
      Rng rng(40 + step);
      Matrix X(130, 784);
      for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<float>(rng.below(256)) / 255.0f;
      network.train_step(X, labels, optimizer);
    }
    return network;
  };
  support::expect_same_weights_whatever_the_threads(train);
}

TEST(Evaluation, ThreadsSplitTheWorkWithoutChangingTheCount) {
  const Dataset test = blocks_dataset(5000, 2);
  const Network network = small_network(5);
  const Evaluation one = evaluate(network, test, 1), three = evaluate(network, test, 3);
  EXPECT_EQ(one.total, three.total);
  EXPECT_EQ(one.correct, three.correct);
  EXPECT_EQ(one.confusion, three.confusion);
}

TEST(Training, ShuffleSeedMatters) {
  const Dataset train = blocks_dataset(500, 1);
  Network a = small_network(3), b = small_network(3);
  TrainingRecipe other = quick_recipe();
  other.seed = 10;
  fit(a, train, nullptr, quick_recipe());
  fit(b, train, nullptr, other);
  EXPECT_FALSE(same_weights(a, b));
}

class Convergence : public ::testing::TestWithParam<std::pair<OptimizerKind, float>> {};

TEST_P(Convergence, LearnsASeparableProblem) {
  const Dataset train = blocks_dataset(800, 1), test = blocks_dataset(200, 2);
  Network network = small_network(5);
  const double before = evaluate(network, test).accuracy();
  const auto reports = fit(network, train, &test, quick_recipe(GetParam().first, GetParam().second));
  ASSERT_EQ(reports.size(), 5u);
  EXPECT_LT(reports.back().loss, reports.front().loss);
  EXPECT_GT(reports.back().test_accuracy, 0.97);
  EXPECT_GT(reports.back().train_accuracy, 0.97);
  EXPECT_LT(before, 0.8);  // it was learned, not given
}

INSTANTIATE_TEST_SUITE_P(EveryOptimizer, Convergence,
                         ::testing::Values(std::pair{OptimizerKind::sgd, 0.1f}, std::pair{OptimizerKind::momentum, 0.02f},
                                           std::pair{OptimizerKind::nesterov, 0.02f}, std::pair{OptimizerKind::adam, 0.003f}),
                         [](const auto& info) { return std::string(optimizer_name(info.param.first)); });

TEST(Optimizer, SgdStepIsLearningRateTimesGradient) {
  std::vector<Layer> layers{DenseLayer(2, 1, Activation::identity)};
  DenseLayer& dense = std::get<DenseLayer>(layers[0]);
  dense.W << 1.0f, 2.0f;
  dense.b << 0.5f;
  dense.dW = Matrix(2, 1);
  dense.dW << 0.1f, -0.2f;
  dense.db = RowVector(1);
  dense.db << 1.0f;
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.5f});
  sgd.step(layers);
  EXPECT_FLOAT_EQ(dense.W(0, 0), 0.95f);
  EXPECT_FLOAT_EQ(dense.W(1, 0), 2.1f);
  EXPECT_FLOAT_EQ(dense.b(0), 0.0f);
}

TEST(Optimizer, AdamFirstStepMovesEachWeightByTheLearningRate) {
  // With bias correction, Adam's first step is −η·sign(g) (up to ε), whatever the gradient's size.
  std::vector<Layer> layers{DenseLayer(2, 1, Activation::identity), DenseLayer(1, 1, Activation::identity)};
  for (Layer& any : layers) {
    DenseLayer& layer = std::get<DenseLayer>(any);
    layer.W.setZero();
    layer.b.setZero();
    layer.dW = Matrix::Constant(layer.W.rows(), 1, 1e-3f);
    layer.db = RowVector::Constant(1, -50.0f);
  }
  Optimizer adam({.kind = OptimizerKind::adam, .learning_rate = 0.01f});
  adam.step(layers);
  EXPECT_EQ(adam.steps_taken, 1);  // once per step, not once per tensor
  for (const Layer& layer : layers) {
    EXPECT_NEAR(std::get<DenseLayer>(layer).W(0, 0), -0.01f, 1e-6);
    EXPECT_NEAR(std::get<DenseLayer>(layer).b(0), 0.01f, 1e-6);
  }
}

TEST(Training, ImproveContinuesFromTheCurrentWeightsWithExtraImages) {
  Dataset train = blocks_dataset(400, 1);
  // Extra images teach a class the training set lacks: label 3 is removed from train.
  Dataset without_three;
  without_three.name = "train";
  without_three.rows = without_three.cols = 8;
  Dataset threes = without_three;
  threes.name = "threes";
  for (std::size_t i = 0; i < train.size(); ++i) {
    Dataset& target = train.labels[i] == 3 ? threes : without_three;
    const auto image = train.image(i);
    target.pixels.insert(target.pixels.end(), image.begin(), image.end());
    target.labels.push_back(train.labels[i]);
  }
  const Dataset test = blocks_dataset(200, 2);
  Network network = small_network(5);
  fit(network, without_three, nullptr, quick_recipe());
  const Evaluation before = evaluate(network, test);
  EXPECT_LT(before.class_accuracy(3), 0.1);
  improve(network, without_three, threes, nullptr, quick_recipe());
  const Evaluation after = evaluate(network, test);
  EXPECT_GT(after.class_accuracy(3), 0.9);
  EXPECT_GT(after.accuracy(), 0.95);
}

TEST(Evaluation, CountsTheConfusionMatrix) {
  const Dataset test = blocks_dataset(300, 2);
  const Network network = small_network(5);
  const Evaluation result = evaluate(network, test);
  std::size_t total = 0, diagonal = 0;
  for (std::size_t t = 0; t < 10; ++t)
    for (std::size_t p = 0; p < 10; ++p) total += result.confusion[t][p], diagonal += t == p ? result.confusion[t][p] : 0;
  EXPECT_EQ(total, test.size());
  EXPECT_EQ(result.total, test.size());
  EXPECT_EQ(diagonal, result.correct);
}

TEST(Training, RejectsDataThatDoesNotFitTheNetwork) {
  Dataset wrong = blocks_dataset(10, 1);
  wrong.rows = wrong.cols = 4;  // 16 pixels per image for a 64-input network
  wrong.pixels.resize(10 * 16);
  Network network = small_network(1);
  EXPECT_THROW(fit(network, wrong, nullptr, quick_recipe()), std::runtime_error);
}

// Weight averaging (EMA): θ ← d·θ + (1 − d)·θ_live for every weight, bias and batch-norm statistic.
TEST(WeightAveraging, MovesEveryWeightAndStatisticTowardTheLiveNetwork) {
  const auto specs = parse_layer_specs("conv3x3x4,bn,pool2,fc6,bn,4");
  Network average(specs, {1, 8, 8}, Activation::relu, 1), live(specs, {1, 8, 8}, Activation::relu, 1);
  average.initialize(Init::he, 1);
  live.initialize(Init::he, 2);
  auto& live_bn = std::get<BatchNormLayer>(live.layers[1]);
  live_bn.running_mean.setConstant(2.0f);
  live_bn.running_var.setConstant(5.0f);
  const Network before = average;
  average.move_average_toward(live, 0.75f);
  for (std::size_t i = 0; i < average.layers.size(); ++i) {
    const ConstParameters now = parameters(std::as_const(average).layers[i]), was = parameters(before.layers[i]), to = parameters(std::as_const(live).layers[i]);
    if (!now.W) continue;
    EXPECT_TRUE(now.W->isApprox(0.75f * *was.W + 0.25f * *to.W, 1e-6f)) << "layer " << i;
    EXPECT_TRUE(now.b->isApprox(0.75f * *was.b + 0.25f * *to.b, 1e-6f)) << "layer " << i;
  }
  const auto& bn = std::get<BatchNormLayer>(average.layers[1]);  // from mean 0, variance 1
  EXPECT_NEAR(bn.running_mean(0), 0.5f, 1e-6f);
  EXPECT_NEAR(bn.running_var(0), 2.0f, 1e-6f);
  Network other(parse_layer_specs("conv3x3x4,pool2,4"), {1, 8, 8}, Activation::relu, 1);
  EXPECT_THROW(average.move_average_toward(other, 0.5f), Error);
}

TEST(WeightAveraging, FitReturnsTheAverageOfTheStepsNotTheLastStep) {
  const Dataset train = blocks_dataset(500, 1), test = blocks_dataset(200, 2);
  Network plain = small_network(3), averaged = small_network(3), barely = small_network(3);
  TrainingRecipe recipe = quick_recipe();
  fit(plain, train, nullptr, recipe);
  recipe.weight_averaging = 0.9f;
  fit(averaged, train, nullptr, recipe);
  recipe.weight_averaging = 1e-6f;  // the average is the last step's weights, within rounding
  fit(barely, train, nullptr, recipe);
  EXPECT_FALSE(same_weights(plain, averaged));
  for (std::size_t i = 0; i < plain.layers.size(); ++i) {
    const ConstParameters p = parameters(std::as_const(plain).layers[i]), q = parameters(std::as_const(barely).layers[i]);
    if (p.W) {
      EXPECT_TRUE(q.W->isApprox(*p.W, 1e-5f)) << "layer " << i;
    }
  }
  // The average of a converging run reads the problem as well as the run.
  EXPECT_GT(evaluate(averaged, test).accuracy(), 0.95);
  EXPECT_GT(evaluate(plain, test).accuracy(), 0.95);
  recipe.weight_averaging = 1.0f;
  EXPECT_THROW(fit(averaged, train, nullptr, recipe), Error);
}

// Temperature scaling after training (calibration.hpp): fit refuses it without a validation set
// to fit on, and with one it folds the temperature of least validation loss into the last layer.
TEST(Calibration, FitFoldsTheTemperatureOfLeastValidationLossIntoTheLastLayer) {
  const Dataset train = blocks_dataset(1500, 1);
  TrainingRecipe recipe = quick_recipe();
  recipe.label_smoothing = 0.2f;  // modest probabilities on purpose: the temperature must sharpen them
  recipe.validation = 500;
  Network plain = small_network(3), calibrated = small_network(3);
  TrainingState plain_state{Optimizer(recipe.optimizer), 0};
  fit(plain, train, nullptr, recipe, plain_state);
  EXPECT_EQ(plain_state.temperature, 1.0);
  recipe.calibrate = true;
  TrainingState state{Optimizer(recipe.optimizer), 0};
  fit(calibrated, train, nullptr, recipe, state);
  EXPECT_LT(state.temperature, 0.9) << "label smoothing's modest probabilities are sharpened";
  const Dataset validation = split_validation(train, recipe.validation, kValidationSplitSeed).first;
  const Matrix before = logits_of(plain, validation), after = logits_of(calibrated, validation);
  EXPECT_TRUE(after.isApprox(before / state.temperature, 1e-5f));  // the same training, then z/T
  EXPECT_LT(mean_negative_log_likelihood(after, validation.labels, 1), mean_negative_log_likelihood(before, validation.labels, 1));
  for (Eigen::Index i = 0; i < before.rows(); ++i) {  // dividing by T > 0 never changes the largest
    Eigen::Index a = 0, b = 0;
    before.row(i).maxCoeff(&a), after.row(i).maxCoeff(&b);
    EXPECT_EQ(a, b) << "image " << i;
  }

  recipe.validation = 0;
  Network unvalidated = small_network(3);
  EXPECT_THROW(fit(unvalidated, train, nullptr, recipe), Error);
}
