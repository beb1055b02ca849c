// A golden test against the NumPy ancestor's math: one fixed batch through a 784-50-20-10 ReLU
// network on raw 0–255 pixels, as the ancestor trained. tests/golden/ancestor_reference.py computes
// the logits, the loss, every gradient and the loss over a few SGD steps in float64; ours must
// agree to float32 accuracy. CnnGolden does the same for a small CNN against
// tests/golden/cnn_reference.py: the probabilities, the loss, every gradient and one SGD step;
// BatchNormGolden a batch normalization against tests/golden/batchnorm_reference.py.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <nlohmann/json.hpp>

#include "digits/batchnorm_layer.hpp"
#include "digits/loss.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"

using namespace digits;
using json = nlohmann::json;

namespace {

json run_reference(const json& input, const std::string& script = REFERENCE_SCRIPT) {
  // Named after the script: ctest runs the two golden tests at once.
  const std::string stem = testing::TempDir() + std::filesystem::path(script).stem().string();
  const std::string in_path = stem + "_case.json", out_path = stem + "_out.json";
  std::ofstream(in_path) << input.dump();
  const std::string command = std::string(PYTHON) + " " + script + " < " + in_path + " > " + out_path;
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
  for (const Layer& any : network.layers) {
    const DenseLayer& layer = std::get<DenseLayer>(any);
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
    const DenseLayer& layer = std::get<DenseLayer>(network.layers[l]);
    const Matrix dW = layer.dW;
    EXPECT_LT(relative_difference(dW, reference["dW"][l]), 1e-4) << "dW of layer " << l + 1;
    EXPECT_LT(relative_difference(layer.db, json::array({reference["db"][l]})), 1e-4) << "db of layer " << l + 1;
  }

  // A few steps of the ancestor's SGD follow the same losses.
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.005f});
  for (std::size_t step = 0; step < reference["losses"].size(); ++step) {
    const double expected = reference["losses"][step];
    EXPECT_NEAR(network.train_step(X, labels, sgd), expected, 1e-3 * std::abs(expected) + 1e-5) << "step " << step + 1;
  }
}

namespace {

// ‖ours − reference‖ / ‖reference‖ over a flat run of floats.
double relative_difference(const float* ours, const json& reference) {
  double difference = 0, norm = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i];
    difference += (ours[i] - r) * (ours[i] - r);
    norm += r * r;
  }
  return std::sqrt(difference / norm);
}

}  // namespace

TEST(CnnGolden, OneForwardPassAndOneSgdStepMatchNumpy) {
  // Two channels in, "same" padding, pooling, stride 2, flatten, two dense layers; batch 4.
  const Shape input{2, 12, 12};
  Network network(parse_layer_specs("conv3x3x3same,pool2,conv3x3x4s2,fc6,5"), input, Activation::relu, 1.0f);
  ASSERT_EQ(network.architecture(), "conv3x3x3same,pool2,conv3x3x4s2,flatten,fc6,fc5");
  network.initialize(Init::he, 2025);
  Rng rng(8);
  for (Layer& layer : network.layers) {
    const Parameters p = parameters(layer);
    if (p.W) for (Eigen::Index o = 0; o < p.b->size(); ++o) (*p.b)(o) = 0.1f * rng.normal();
  }
  const int batch = 4;
  Matrix X(batch, input.size());
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.uniform();
  const std::vector<std::uint8_t> labels{0, 3, 1, 4};

  json layers = json::array();
  for (const Layer& layer : network.layers) {
    const ConstParameters p = parameters(layer);
    json entry;
    // W's bytes are torch's layout ([out][in] or [out][in][kh][kw]); NumPy reshapes them.
    if (const auto* conv = std::get_if<Conv2dLayer>(&layer)) {
      const int o = conv->output_shape().channels, c = conv->input_shape().channels, k = conv->kernel();
      json W = json::array();
      for (int a = 0; a < o; ++a) {
        json per_in = json::array();
        for (int b = 0; b < c; ++b) {
          json rows = json::array();
          for (int ky = 0; ky < k; ++ky) {
            std::vector<float> row;
            for (int kx = 0; kx < k; ++kx) row.push_back(conv->W((b * k + ky) * k + kx, a));
            rows.push_back(row);
          }
          per_in.push_back(rows);
        }
        W.push_back(per_in);
      }
      entry = {{"kind", "conv2d"}, {"W", W}, {"stride", conv->stride()}, {"pad", conv->pad()}, {"relu", true}};
    } else if (const auto* dense = std::get_if<DenseLayer>(&layer)) {
      json W = json::array();
      for (int j = 0; j < dense->out(); ++j) W.push_back(std::vector<float>(dense->W.col(j).data(), dense->W.col(j).data() + dense->in()));
      entry = {{"kind", "dense"}, {"W", W}, {"relu", dense->activation == Activation::relu}};
    } else {
      entry = {{"kind", std::holds_alternative<MaxPool2Layer>(layer) ? "maxpool2" : "flatten"}};
    }
    if (p.b) entry["b"] = std::vector<float>(p.b->data(), p.b->data() + p.b->size());
    layers.push_back(entry);
  }
  json input_case = {{"input_shape", {input.channels, input.height, input.width}}, {"labels", labels}, {"lr", 0.1}, {"layers", layers}};
  input_case["X"] = json::array();
  for (int i = 0; i < batch; ++i) input_case["X"].push_back(std::vector<float>(X.row(i).data(), X.row(i).data() + X.cols()));
  const json reference = run_reference(input_case, CNN_REFERENCE_SCRIPT);

  // The forward pass: probabilities and loss.
  const Matrix P = network.predict_proba(X);
  EXPECT_LT(relative_difference(P, reference["P"]), 1e-5);
  // One step of SGD with learning rate 0.1: its loss, its gradients, the weights it leaves.
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.1f});
  const float loss = network.train_step(X, labels, sgd);
  EXPECT_NEAR(loss, reference["loss"].get<double>(), 1e-5 * std::abs(reference["loss"].get<double>()));
  std::size_t l = 0;
  for (Layer& layer : network.layers) {
    const Parameters p = parameters(layer);
    if (!p.W) continue;
    ASSERT_LT(l, reference["gradients"].size());
    const json& g = reference["gradients"][l];
    EXPECT_GT(std::sqrt(std::inner_product(g["dW"].begin(), g["dW"].end(), g["dW"].begin(), 0.0,
                                           std::plus<>(), [](const json& a, const json& b) { return a.get<double>() * b.get<double>(); })),
              1e-3) << "layer " << l + 1 << "'s reference gradient is all but zero: the test would prove little";
    EXPECT_LT(relative_difference(p.dW->data(), g["dW"]), 1e-4) << "dW of weighted layer " << l + 1;
    EXPECT_LT(relative_difference(p.db->data(), g["db"]), 1e-4) << "db of weighted layer " << l + 1;
    EXPECT_LT(relative_difference(p.W->data(), reference["stepped"][l]["W"]), 1e-5) << "W after the step, layer " << l + 1;
    EXPECT_LT(relative_difference(p.b->data(), reference["stepped"][l]["b"]), 1e-5) << "b after the step, layer " << l + 1;
    ++l;
  }
  EXPECT_EQ(l, 4u);
  const Matrix P_after = network.predict_proba(X);
  double loss_after = 0;
  for (int i = 0; i < batch; ++i) loss_after -= std::log(static_cast<double>(P_after(i, labels[static_cast<std::size_t>(i)])));
  EXPECT_NEAR(loss_after / batch, reference["loss_after"].get<double>(), 1e-5 * std::abs(reference["loss_after"].get<double>()));
  EXPECT_LT(reference["loss_after"].get<double>(), reference["loss"].get<double>());  // the step helped
}

// Batch normalization against tests/golden/batchnorm_reference.py, which writes the backward as the
// plain chain rule through μ and var (ours is the compact form): both forms, per channel after a
// conv (3 channels of 4×5, batch 3) and per feature after a dense layer (6 features, batch 5); the
// training output, dX, dγ, dβ, the running statistics after three batches, and the inference output.
TEST(BatchNormGolden, ForwardBackwardAndRunningStatisticsMatchNumpy) {
  struct Case {
    Shape shape;
    int batch;
  };
  const Case cases[] = {{{3, 4, 5}, 3}, {{6, 1, 1}, 5}};
  constexpr int kSteps = 3;
  Rng rng(77);
  std::vector<BatchNormLayer> layers;
  std::vector<Matrix> inputs, upstream;
  json request = {{"cases", json::array()}};
  for (const Case& c : cases) {
    BatchNormLayer& bn = layers.emplace_back(c.shape, Activation::identity);
    for (int k = 0; k < bn.channels(); ++k) {
      bn.gamma(0, k) = 1.0f + 0.3f * rng.normal();
      bn.beta(k) = 0.2f * rng.normal();
      bn.running_mean(k) = 0.1f * rng.normal();
      bn.running_var(k) = 1.0f + 0.2f * rng.uniform();
    }
    Matrix& X = inputs.emplace_back(c.batch, c.shape.size());
    Matrix& dY = upstream.emplace_back(c.batch, c.shape.size());
    // Channel k's values around 2k − 1 with spread 1 + k/2: each channel has its own statistics.
    for (Eigen::Index n = 0; n < X.rows(); ++n)
      for (Eigen::Index j = 0; j < X.cols(); ++j) {
        const int channel = static_cast<int>(j / (c.shape.height * c.shape.width));
        X(n, j) = (2.0f * channel - 1.0f) + (1.0f + 0.5f * channel) * rng.normal();
        dY(n, j) = rng.normal();
      }
    json entry = {{"shape", {c.shape.channels, c.shape.height, c.shape.width}},
                  {"gamma", std::vector<float>(bn.gamma.data(), bn.gamma.data() + bn.channels())},
                  {"beta", std::vector<float>(bn.beta.data(), bn.beta.data() + bn.channels())},
                  {"running_mean", std::vector<float>(bn.running_mean.data(), bn.running_mean.data() + bn.channels())},
                  {"running_var", std::vector<float>(bn.running_var.data(), bn.running_var.data() + bn.channels())},
                  {"steps", kSteps}, {"X", json::array()}, {"dY", json::array()}};
    for (Eigen::Index n = 0; n < X.rows(); ++n) {
      entry["X"].push_back(std::vector<float>(X.row(n).data(), X.row(n).data() + X.cols()));
      entry["dY"].push_back(std::vector<float>(dY.row(n).data(), dY.row(n).data() + dY.cols()));
    }
    request["cases"].push_back(entry);
  }
  const json reference = run_reference(request, BN_REFERENCE_SCRIPT);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    BatchNormLayer& bn = layers[i];
    const json& r = reference["cases"][i];
    const std::string what = "case " + std::to_string(i + 1) + " (" + shape_text(bn.input_shape()) + ")";
    const Matrix Y = bn.forward(inputs[i]);
    EXPECT_LT(relative_difference(Y, r["Y"]), 1e-6) << what;
    const Matrix dX = bn.backward(upstream[i], true);
    EXPECT_LT(relative_difference(dX, r["dX"]), 1e-5) << what;
    EXPECT_LT(relative_difference(bn.dgamma.data(), r["dgamma"]), 1e-5) << what;
    EXPECT_LT(relative_difference(bn.dbeta.data(), r["dbeta"]), 1e-6) << what;
    for (int step = 1; step < kSteps; ++step) bn.forward(inputs[i]);
    EXPECT_EQ(bn.batches_tracked, kSteps) << what;
    EXPECT_LT(relative_difference(bn.running_mean.data(), r["running_mean"]), 1e-6) << what;
    EXPECT_LT(relative_difference(bn.running_var.data(), r["running_var"]), 1e-6) << what;
    Matrix inferred;
    bn.infer(inputs[i], inferred);
    EXPECT_LT(relative_difference(inferred, r["inferred"]), 1e-6) << what;
  }
}
