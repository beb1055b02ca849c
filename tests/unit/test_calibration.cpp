// Temperature scaling (calibration.hpp): the fit finds the temperature that made the labels, and
// folding it into the last layer divides the logits by it and nothing else.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "digits/calibration.hpp"
#include "digits/error.hpp"
#include "digits/network.hpp"
#include "digits/random.hpp"

using namespace digits;

namespace {

// Logits and labels drawn from softmax(z / T_true): the labels are exactly as sure as z / T_true
// says, so the temperature of least NLL on many of them is T_true.
struct Drawn {
  Matrix logits;
  std::vector<std::uint8_t> labels;
};
Drawn draw(double true_temperature, int count, std::uint64_t seed) {
  Rng rng(seed);
  Drawn d;
  d.logits.resize(count, 10);
  for (int i = 0; i < count; ++i) {
    for (int j = 0; j < 10; ++j) d.logits(i, j) = 4.0f * rng.normal();
    std::vector<double> p(10);
    double sum = 0;
    for (int j = 0; j < 10; ++j) sum += p[static_cast<std::size_t>(j)] = std::exp(d.logits(i, j) / true_temperature);
    double u = rng.uniform() * sum;
    int label = 0;
    while (label < 9 && (u -= p[static_cast<std::size_t>(label)]) > 0) ++label;
    d.labels.push_back(static_cast<std::uint8_t>(label));
  }
  return d;
}

}  // namespace

TEST(Calibration, TheFitFindsTheTemperatureThatMadeTheLabels) {
  for (const double truth : {0.5, 1.0, 2.5}) {
    const Drawn d = draw(truth, 20000, 7);
    const double fitted = fit_temperature(d.logits, d.labels);
    EXPECT_NEAR(fitted, truth, 0.05 * truth) << "drawn at T = " << truth;
    // Least: a little either side costs more.
    const double at = mean_negative_log_likelihood(d.logits, d.labels, fitted);
    EXPECT_LT(at, mean_negative_log_likelihood(d.logits, d.labels, fitted * 1.1));
    EXPECT_LT(at, mean_negative_log_likelihood(d.logits, d.labels, fitted / 1.1));
  }
}

// By hand: z = (2, 0), label 0. At T = 1, NLL = log(e² + 1) − 2 = 0.12693; at T = 2 it is log(e + 1) − 1 = 0.31326.
TEST(Calibration, TheLossIsTheMeanNegativeLogLikelihoodOfTheScaledSoftmax) {
  Matrix z(1, 2);
  z << 2, 0;
  const std::vector<std::uint8_t> label = {0};
  EXPECT_NEAR(mean_negative_log_likelihood(z, label, 1), 0.126928, 1e-6);
  EXPECT_NEAR(mean_negative_log_likelihood(z, label, 2), 0.313262, 1e-6);
  Matrix huge(1, 2);  // e^1000 overflows a double: the largest term is taken out first
  huge << 1000, 0;
  EXPECT_NEAR(mean_negative_log_likelihood(huge, label, 1), 0.0, 1e-12);
  EXPECT_THROW(mean_negative_log_likelihood(z, std::vector<std::uint8_t>{0, 1}, 1), Error);
}

TEST(Calibration, FoldingDividesTheLogitsByTheTemperature) {
  Network network(parse_layer_specs("conv3x3x4,bn,pool2,fc8,3"), {1, 8, 8}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 5);
  Dataset data;
  data.rows = data.cols = 8;
  Rng rng(3);
  for (int n = 0; n < 20; ++n) {
    for (int k = 0; k < 64; ++k) data.pixels.push_back(static_cast<std::uint8_t>(rng.below(256)));
    data.labels.push_back(static_cast<std::uint8_t>(n % 3));
  }
  const Matrix before = logits_of(network, data);
  network.fold_for_prediction();
  fold_temperature(network, 0.25);
  EXPECT_FALSE(network.folded_for_prediction()) << "the folded copy of the last layer is stale";
  EXPECT_TRUE(logits_of(network, data).isApprox(before * 4, 1e-5f));
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()})
    EXPECT_THROW(fold_temperature(network, bad), Error) << bad;
}
