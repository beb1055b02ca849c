// A golden test against the NumPy ancestor's math: one fixed batch through a 784-50-20-10 ReLU
// network on raw 0–255 pixels, as the ancestor trained. tests/golden/ancestor_reference.py computes
// the logits, the loss, every gradient and the loss over a few SGD steps in float64; ours must
// agree to float32 accuracy.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "digits/loss.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"

using namespace digits;
using json = nlohmann::json;

namespace {

json run_reference(const json& input) {
  const std::string in_path = testing::TempDir() + "golden_case.json", out_path = testing::TempDir() + "golden_reference.json";
  std::ofstream(in_path) << input.dump();
  const std::string command = std::string(PYTHON) + " " + REFERENCE_SCRIPT + " < " + in_path + " > " + out_path;
  if (std::system(command.c_str()) != 0) throw std::runtime_error("the NumPy reference failed: " + command);
  return json::parse(std::ifstream(out_path));
}

double relative_difference(const Matrix& ours, const json& reference) {
  double difference = 0, norm = 0;
  for (Eigen::Index i = 0; i < ours.rows(); ++i)
    for (Eigen::Index j = 0; j < ours.cols(); ++j) {
      const double r = reference[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
      difference += (ours(i, j) - r) * (ours(i, j) - r);
      norm += r * r;
    }
  return std::sqrt(difference / norm);
}

}  // namespace

TEST(Golden, MatchesTheNumpyAncestorOnAFixedBatch) {
  Network network({784, 50, 20, 10}, Activation::relu, 1.0f);
  network.initialize(Init::ancestor, 2024);
  Rng rng(7);
  const int batch = 8;
  Matrix X(batch, 784);
  std::vector<std::uint8_t> labels(batch);
  for (int i = 0; i < batch; ++i) {
    labels[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i % 10);
    // Sparse bright strokes like MNIST: most pixels 0, some 255, a few in between.
    for (int k = 0; k < 784; ++k) X(i, k) = rng.uniform() < 0.8f ? 0.0f : std::round(rng.uniform() * 255.0f);
  }
  json input;
  input["lr"] = 0.005;
  input["steps"] = 5;
  input["labels"] = labels;
  input["X"] = json::array();
  for (int i = 0; i < batch; ++i) input["X"].push_back(std::vector<float>(X.row(i).data(), X.row(i).data() + 784));
  for (const DenseLayer& layer : network.layers) {
    json W = json::array();
    for (int k = 0; k < layer.in(); ++k) {
      std::vector<float> row(static_cast<std::size_t>(layer.out()));
      for (int j = 0; j < layer.out(); ++j) row[static_cast<std::size_t>(j)] = layer.W(k, j);
      W.push_back(row);
    }
    input["W"].push_back(W);
    input["b"].push_back(std::vector<float>(layer.b.data(), layer.b.data() + layer.b.size()));
  }
  const json reference = run_reference(input);

  // Logits and loss of the untouched network.
  const Matrix P = network.predict_proba(X);
  double loss = 0;
  for (int i = 0; i < batch; ++i) loss -= std::log(static_cast<double>(P(i, labels[static_cast<std::size_t>(i)])));
  EXPECT_NEAR(loss / batch, reference["loss"].get<double>(), 1e-4 * std::abs(reference["loss"].get<double>()));

  // One step with a learning rate of 0 leaves every gradient in the layers.
  Optimizer frozen({.kind = OptimizerKind::sgd, .learning_rate = 0});
  network.train_step(X, labels, frozen);
  for (std::size_t l = 0; l < network.layers.size(); ++l) {
    const Matrix dW = network.layers[l].dW;
    EXPECT_LT(relative_difference(dW, reference["dW"][l]), 1e-4) << "dW of layer " << l + 1;
    EXPECT_LT(relative_difference(network.layers[l].db, json::array({reference["db"][l]})), 1e-4) << "db of layer " << l + 1;
  }

  // A few steps of the ancestor's SGD follow the same losses.
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.005f});
  for (std::size_t step = 0; step < reference["losses"].size(); ++step) {
    const double expected = reference["losses"][step];
    EXPECT_NEAR(network.train_step(X, labels, sgd), expected, 1e-3 * std::abs(expected) + 1e-5) << "step " << step + 1;
  }
}
