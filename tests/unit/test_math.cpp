// The network's math: known values, finite-difference gradient checks for every activation and
// the loss, a whole-network gradient check, and the softmax's overflow guard.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "digits/dense_layer.hpp"
#include "digits/error.hpp"
#include "digits/loss.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"

using namespace digits;

namespace {

Matrix random_matrix(int rows, int cols, Rng& rng, float scale = 1.0f) {
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.normal() * scale;
  return m;
}

// |a − n| / max(|a| + |n|, floor): a factor of two gives 1/3, a sign error gives 1.
double relative_error(double analytic, double numeric) {
  return std::abs(analytic - numeric) / std::max(std::abs(analytic) + std::abs(numeric), 1e-3);
}

// ‖a − n‖ / (‖a‖ + ‖n‖) over a whole gradient: robust to float32 noise in tiny entries, and a
// factor of two anywhere large gives about 1/3, a sign error 1.
double vector_relative_error(const std::vector<double>& analytic, const std::vector<double>& numeric) {
  double difference = 0, a = 0, n = 0;
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    difference += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
    a += analytic[i] * analytic[i];
    n += numeric[i] * numeric[i];
  }
  return std::sqrt(difference) / (std::sqrt(a) + std::sqrt(n));
}

struct GradientCheckResult {
  double worst = 0;
  int checked = 0, skipped = 0;
  double analytic_norm = 0;
};

}  // namespace

TEST(Softmax, KnownValues) {
  Matrix Z(2, 3);
  Z << 0, 0, 0, 0, std::log(2.0f), std::log(3.0f);
  Matrix P;
  softmax(Z, P);
  EXPECT_NEAR(P(0, 0), 1.0f / 3, 1e-6);
  EXPECT_NEAR(P(1, 0), 1.0f / 6, 1e-6);
  EXPECT_NEAR(P(1, 1), 2.0f / 6, 1e-6);
  EXPECT_NEAR(P(1, 2), 3.0f / 6, 1e-6);
}

TEST(Softmax, SurvivesLogitsThatOverflowExp) {
  // exp(100) is +inf in float32; without the row-max shift this row would be NaN.
  Matrix Z(1, 3);
  Z << 1000, 999, 100;
  Matrix P;
  softmax(Z, P);
  EXPECT_TRUE(P.allFinite());
  EXPECT_NEAR(P(0, 0), 1.0f / (1.0f + std::exp(-1.0f)), 1e-6);
  EXPECT_NEAR(P.sum(), 1.0f, 1e-6);
}

TEST(SoftmaxCrossEntropy, UniformLogitsGiveLogOfClassCount) {
  const Matrix Z = Matrix::Zero(4, 10);
  const std::vector<std::uint8_t> labels{0, 3, 9, 5};
  Matrix P, dZ;
  EXPECT_NEAR(softmax_cross_entropy(Z, labels, P, dZ), std::log(10.0f), 1e-6);
  // dZ = (P − Y) / batch: 0.1/4 everywhere except −0.9/4 at the label.
  EXPECT_NEAR(dZ(1, 3), -0.9f / 4, 1e-7);
  EXPECT_NEAR(dZ(1, 4), 0.1f / 4, 1e-7);
}

TEST(SoftmaxCrossEntropy, GradientMatchesFiniteDifferences) {
  Rng rng(7);
  Matrix Z = random_matrix(5, 10, rng, 3.0f);
  const std::vector<std::uint8_t> labels{1, 0, 9, 4, 4};
  Matrix P, dZ, scratch_P, scratch_dZ;
  softmax_cross_entropy(Z, labels, P, dZ);
  const float eps = 1e-2f;
  std::vector<double> analytic, numeric;
  for (Eigen::Index i = 0; i < Z.size(); ++i) {
    const float saved = Z.data()[i];
    Z.data()[i] = saved + eps;
    const double plus = softmax_cross_entropy(Z, labels, scratch_P, scratch_dZ);
    Z.data()[i] = saved - eps;
    const double minus = softmax_cross_entropy(Z, labels, scratch_P, scratch_dZ);
    Z.data()[i] = saved;
    analytic.push_back(dZ.data()[i]);
    numeric.push_back((plus - minus) / (2 * eps));
    // Entry by entry, with a floor for float32 noise on tiny entries.
    EXPECT_LT(relative_error(analytic.back(), numeric.back()), 0.05) << "logit " << i;
  }
  EXPECT_LT(vector_relative_error(analytic, numeric), 1e-2);
  EXPECT_GT(dZ.norm(), 1e-2);  // not trivially zero
}

TEST(SoftmaxCrossEntropy, LabelSmoothingTargetsSpreadProbability) {
  // Uniform logits over 10 classes, ε = 0.1: every target is 0.01 but the label's, 0.91. The loss
  // is −Σ_k Y_k log(1/10) = log 10 whatever the targets, and dZ = (P − Y)/batch.
  const Matrix Z = Matrix::Zero(2, 10);
  const std::vector<std::uint8_t> labels{3, 7};
  Matrix P, dZ;
  EXPECT_NEAR(softmax_cross_entropy(Z, labels, P, dZ, 0.1f), std::log(10.0f), 1e-6);
  EXPECT_NEAR(dZ(0, 3), (0.1f - 0.91f) / 2, 1e-7);
  EXPECT_NEAR(dZ(0, 4), (0.1f - 0.01f) / 2, 1e-7);
  EXPECT_NEAR(dZ.row(1).sum(), 0.0f, 1e-6);  // P and Y both add up to 1
  // A network sure of the label (P = 1 there) is no longer at zero loss: its gradient pulls the
  // label's logit down, which is the point of smoothing.
  Matrix sure = Matrix::Zero(1, 10);
  sure(0, 3) = 30;
  const std::vector<std::uint8_t> three{3};
  EXPECT_GT(softmax_cross_entropy(sure, three, P, dZ, 0.1f), 1.0f);
  EXPECT_GT(dZ(0, 3), 0.05f);
  Network tiny({4, 3}, Activation::relu, 1.0f);
  Optimizer sgd(OptimizerSettings{});
  const std::vector<std::uint8_t> zero{0};
  EXPECT_THROW(tiny.train_step(Matrix::Zero(1, 4), zero, sgd, 0, 0, 1.0f), Error);  // ε = 1 leaves no label
}

TEST(SoftmaxCrossEntropy, SmoothedGradientMatchesFiniteDifferences) {
  Rng rng(8);
  Matrix Z = random_matrix(4, 11, rng, 3.0f);
  const std::vector<std::uint8_t> labels{1, 10, 9, 4};
  Matrix P, dZ, scratch_P, scratch_dZ;
  softmax_cross_entropy(Z, labels, P, dZ, 0.2f);
  const float eps = 1e-2f;
  std::vector<double> analytic, numeric;
  for (Eigen::Index i = 0; i < Z.size(); ++i) {
    const float saved = Z.data()[i];
    Z.data()[i] = saved + eps;
    const double plus = softmax_cross_entropy(Z, labels, scratch_P, scratch_dZ, 0.2f);
    Z.data()[i] = saved - eps;
    const double minus = softmax_cross_entropy(Z, labels, scratch_P, scratch_dZ, 0.2f);
    Z.data()[i] = saved;
    analytic.push_back(dZ.data()[i]);
    numeric.push_back((plus - minus) / (2 * eps));
    EXPECT_LT(relative_error(analytic.back(), numeric.back()), 0.05) << "logit " << i;
  }
  EXPECT_LT(vector_relative_error(analytic, numeric), 1e-2);
  EXPECT_GT(dZ.norm(), 1e-2);
}

class LayerGradient : public ::testing::TestWithParam<Activation> {};

// A dense layer under the loss L = Σ A ⊙ R for a fixed random R, so dA = R. Every entry of
// dW, db and dX is compared with a central difference of L.
TEST_P(LayerGradient, MatchesFiniteDifferences) {
  const Activation activation = GetParam();
  Rng rng(42);
  DenseLayer layer(6, 4, activation);
  layer.initialize(Init::xavier, rng);
  layer.b = random_matrix(1, 4, rng, 0.1f);
  Matrix X = random_matrix(3, 6, rng);
  const Matrix R = random_matrix(3, 4, rng);

  auto loss = [&](const Matrix& input) {
    Matrix A;
    layer.infer(input, A);
    return static_cast<double>((A.array() * R.array()).sum());
  };
  // Whether a change of ±eps in the layer's parameters or input flips some ReLU unit across its kink.
  auto crosses_kink = [&](const Matrix& input_plus, const Matrix& input_minus, const DenseLayer& plus, const DenseLayer& minus) {
    if (activation != Activation::relu) return false;
    Matrix Zp = input_plus * plus.W, Zm = input_minus * minus.W;
    Zp.rowwise() += plus.b;
    Zm.rowwise() += minus.b;
    return ((Zp.array() > 0) != (Zm.array() > 0)).any();
  };

  layer.forward(X);
  const Matrix dX = layer.backward(R, /*compute_dX=*/true);
  const WeightMatrix dW = layer.dW;
  const RowVector db = layer.db;
  ASSERT_EQ(dX.rows(), 3);
  ASSERT_EQ(dX.cols(), 6);

  const float eps = 1e-3f;
  GradientCheckResult result;
  auto check = [&](float& parameter, double analytic, Matrix& input) {
    const float saved = parameter;
    parameter = saved + eps;
    const DenseLayer plus = layer;
    const Matrix input_plus = input;
    const double up = loss(input);
    parameter = saved - eps;
    const DenseLayer minus = layer;
    const Matrix input_minus = input;
    const double down = loss(input);
    parameter = saved;
    if (crosses_kink(input_plus, input_minus, plus, minus)) {
      ++result.skipped;
      return;
    }
    ++result.checked;
    result.analytic_norm += analytic * analytic;
    result.worst = std::max(result.worst, relative_error(analytic, (up - down) / (2 * eps)));
  };
  for (Eigen::Index i = 0; i < layer.W.size(); ++i) check(layer.W.data()[i], dW.data()[i], X);
  for (Eigen::Index i = 0; i < layer.b.size(); ++i) check(layer.b.data()[i], db.data()[i], X);
  for (Eigen::Index i = 0; i < X.size(); ++i) check(X.data()[i], dX.data()[i], X);

  EXPECT_LT(result.worst, 2e-2) << activation_name(activation);
  EXPECT_GT(result.checked, 40);                 // most entries were really checked…
  EXPECT_LT(result.skipped, result.checked / 4);
  EXPECT_GT(std::sqrt(result.analytic_norm), 0.1);  // …and the gradient is not trivially zero
}

INSTANTIATE_TEST_SUITE_P(EveryActivation, LayerGradient,
                         ::testing::Values(Activation::relu, Activation::sigmoid, Activation::tanh, Activation::identity),
                         [](const auto& info) { return std::string(activation_name(info.param)); });

class NetworkGradient : public ::testing::TestWithParam<Activation> {};

// The whole chain: three layers, softmax cross-entropy, backpropagation through train_step with a
// learning rate of 0 (so the weights stay put and dW, db are left in the layers).
TEST_P(NetworkGradient, TrainStepGradientsMatchFiniteDifferences) {
  Network network({8, 7, 5, 4}, GetParam(), 1.0f);
  network.initialize(Init::xavier, 3);
  Rng rng(5);
  for (Layer& layer : network.layers) std::get<DenseLayer>(layer).b = random_matrix(1, std::get<DenseLayer>(layer).out(), rng, 0.1f);
  const Matrix X = random_matrix(6, 8, rng);
  const std::vector<std::uint8_t> labels{0, 1, 2, 3, 1, 2};
  Optimizer frozen({.kind = OptimizerKind::sgd, .learning_rate = 0.0f});
  network.train_step(X, labels, frozen);

  auto loss = [&] {
    Matrix P = network.predict_proba(X), dZ;
    double total = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) total -= std::log(P(static_cast<Eigen::Index>(i), labels[i]));
    return total / static_cast<double>(labels.size());
  };
  const float eps = 1e-3f;
  std::vector<double> analytic, numeric;
  double norm = 0;
  int checked = 0;
  for (Layer& any : network.layers) {
    DenseLayer& layer = std::get<DenseLayer>(any);
    const WeightMatrix dW = layer.dW;
    for (Eigen::Index i = 0; i < layer.W.size(); ++i) {
      const float saved = layer.W.data()[i];
      layer.W.data()[i] = saved + eps;
      const double up = loss();
      layer.W.data()[i] = saved - eps;
      const double down = loss();
      layer.W.data()[i] = saved;
      const double numeric_value = (up - down) / (2 * eps);
      // Near a ReLU kink the two sides disagree with the one-sided analytic value; those are few.
      if (GetParam() == Activation::relu && std::abs(numeric_value - dW.data()[i]) > 0.05) continue;
      analytic.push_back(dW.data()[i]);
      numeric.push_back(numeric_value);
      norm += dW.data()[i] * dW.data()[i];
      ++checked;
    }
  }
  EXPECT_LT(vector_relative_error(analytic, numeric), 1e-2);
  EXPECT_GT(checked, 100);
  EXPECT_GT(std::sqrt(norm), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(EveryActivation, NetworkGradient, ::testing::Values(Activation::relu, Activation::sigmoid, Activation::tanh),
                         [](const auto& info) { return std::string(activation_name(info.param)); });

TEST(Network, AGradientStepLowersTheLoss) {
  Network network({8, 16, 4}, Activation::relu, 1.0f);
  network.initialize(Init::he, 11);
  Rng rng(12);
  const Matrix X = random_matrix(32, 8, rng);
  std::vector<std::uint8_t> labels(32);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 4);
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.1f});
  const float first = network.train_step(X, labels, sgd);
  float last = first;
  for (int step = 0; step < 200; ++step) last = network.train_step(X, labels, sgd);
  EXPECT_LT(last, first * 0.5f);
}

TEST(Network, InputScaleIsAppliedInPrediction) {
  // Two networks with the same weights, one fed pre-scaled inputs, agree exactly.
  Network raw({4, 3, 2}, Activation::tanh, 1.0f / 255.0f);
  raw.initialize(Init::xavier, 1);
  Network unit = raw;
  unit.input_scale = 1.0f;
  Matrix pixels(1, 4);
  pixels << 0, 64, 128, 255;
  const Matrix scaled = pixels * (1.0f / 255.0f);
  EXPECT_TRUE(raw.predict_proba(pixels).isApprox(unit.predict_proba(scaled), 1e-6f));
}

TEST(Network, AncestorInitHasTheAncestorsSpread) {
  Network network({784, 50, 20, 10}, Activation::relu, 1.0f);
  network.initialize(Init::ancestor, 1);
  const Matrix& W = std::get<DenseLayer>(network.layers[0]).W;
  const double mean = W.mean();
  const double stddev = std::sqrt((W.array() - mean).square().mean());
  EXPECT_NEAR(mean, 0.0, 1e-3);
  EXPECT_NEAR(stddev, 0.01, 5e-4);
  EXPECT_EQ(network.parameter_count(), 784u * 50 + 50 + 50 * 20 + 20 + 20 * 10 + 10);
}

TEST(Network, ActivationsAreEachLayersOutputComputedByHand) {
  Network network({6, 5, 4, 3}, Activation::relu, 1.0f / 255.0f);
  network.initialize(Init::he, 3);
  for (Layer& layer : network.layers) std::get<DenseLayer>(layer).b.setConstant(0.1f);  // nonzero biases, so forgetting b shows
  Rng rng(4);
  const Matrix pixels = (random_matrix(2, 6, rng).array().abs() * 200.0f).matrix();
  const std::vector<Matrix> A = network.activations(pixels);
  ASSERT_EQ(A.size(), 3u);
  // By hand: A1 = relu(s·X·W1 + b1), A2 = relu(A1·W2 + b2), P = softmax(A2·W3 + b3).
  const Matrix X = pixels * network.input_scale;
  const Matrix A1 = ((X * std::get<DenseLayer>(network.layers[0]).W).rowwise() + std::get<DenseLayer>(network.layers[0]).b).cwiseMax(0.0f);
  const Matrix A2 = ((A1 * std::get<DenseLayer>(network.layers[1]).W).rowwise() + std::get<DenseLayer>(network.layers[1]).b).cwiseMax(0.0f);
  EXPECT_EQ(A[0].rows(), 2);
  EXPECT_EQ(A[0].cols(), 5);
  EXPECT_EQ(A[1].cols(), 4);
  EXPECT_TRUE(A[0].isApprox(A1, 1e-5f));
  EXPECT_TRUE(A[1].isApprox(A2, 1e-5f));
  EXPECT_GT(A[0].maxCoeff(), 0.0f) << "every unit is silent: the comparison proves nothing";
  // The last is the probabilities, the same as predict_proba's.
  EXPECT_TRUE(A[2].isApprox(network.predict_proba(pixels), 1e-6f));
  EXPECT_NEAR(A[2].row(0).sum(), 1.0f, 1e-5f);
  EXPECT_THROW(network.activations(Matrix::Zero(1, 7)), Error);
}
