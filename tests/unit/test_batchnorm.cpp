// Batch normalization (issue 20, item 1): finite-difference gradient checks of X, γ and β in both
// forms (per channel after a conv, per feature after a dense layer), the running statistics, the
// fold into the layer before it, the layer syntax, the model file under PyTorch's names, weight
// decay, learning, and weights that do not depend on the number of threads. The NumPy golden test
// is BatchNormGolden in tests/golden/test_golden.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>

#include "../support/same_weights.hpp"
#include "digits/batchnorm_layer.hpp"
#include "digits/checkpoint.hpp"
#include "digits/error.hpp"
#include "digits/layer.hpp"
#include "digits/loss.hpp"
#include "digits/model_file.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"

using namespace digits;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text) << "\nexpected to contain: " << (part)

Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed, float mean = 0, float spread = 1) {
  Rng rng(seed);
  Matrix M(rows, cols);
  for (Eigen::Index i = 0; i < M.size(); ++i) M.data()[i] = mean + spread * rng.normal();
  return M;
}

double score(const Matrix& A, const Matrix& R) { return (A.cast<double>().array() * R.cast<double>().array()).sum(); }

// The largest disagreement between gradient[k] and the central difference of f in parameter[k],
// relative to max(1, |numeric|), and the gradient's norm (an all-zero gradient agrees with nothing
// to check). Batch norm is smooth (with tanh, or no activation): no kinks to skip.
struct Agreement {
  double largest_error = 0, norm = 0;
};
template <typename Evaluate>
Agreement finite_differences(float* parameter, const float* gradient, Eigen::Index count, float epsilon, Evaluate f) {
  Agreement a;
  for (Eigen::Index k = 0; k < count; ++k) {
    const float saved = parameter[k];
    parameter[k] = saved + epsilon;
    const double up = f();
    parameter[k] = saved - epsilon;
    const double down = f();
    parameter[k] = saved;
    const double numeric = (up - down) / (2.0 * epsilon);
    a.largest_error = std::max(a.largest_error, std::abs(numeric - gradient[k]) / std::max(1.0, std::abs(numeric)));
    a.norm += static_cast<double>(gradient[k]) * gradient[k];
  }
  a.norm = std::sqrt(a.norm);
  return a;
}

void expect_agreement(const Agreement& a, const std::string& what) {
  EXPECT_LT(a.largest_error, 2e-3) << what;
  EXPECT_GT(a.norm, 1e-2) << what << ": an all-zero gradient would agree with anything";
}

// γ, β and the running statistics away from their start, so that nothing is checked at the identity.
void randomise(BatchNormLayer& bn, std::uint64_t seed) {
  Rng rng(seed);
  for (int c = 0; c < bn.channels(); ++c) {
    bn.gamma(0, c) = 1.0f + 0.4f * rng.normal();
    bn.beta(c) = 0.3f * rng.normal();
    bn.running_mean(c) = 0.5f * rng.normal();
    bn.running_var(c) = 0.5f + rng.uniform();
  }
}

std::span<const unsigned char> as_bytes(const std::string& text) { return {reinterpret_cast<const unsigned char*>(text.data()), text.size()}; }

nlohmann::json header_of(const std::string& bytes) {
  std::uint64_t size = 0;
  std::memcpy(&size, bytes.data(), 8);
  return nlohmann::json::parse(bytes.substr(8, size));
}

// The file with its header replaced by `header` (the data section kept).
std::string with_header(const std::string& bytes, const nlohmann::json& header) {
  std::uint64_t size = 0;
  std::memcpy(&size, bytes.data(), 8);
  const std::string text = header.dump();
  std::string file(8, '\0');
  const std::uint64_t new_size = text.size();
  std::memcpy(file.data(), &new_size, 8);
  return file + text + bytes.substr(8 + size);
}

std::string refusal(const std::string& bytes) {
  try {
    parse_model(as_bytes(bytes), "edited");
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The math: gradients, statistics, inference.

TEST(BatchNormGradientCheck, XGammaAndBetaPerChannelAndPerFeature) {
  struct Case {
    Shape shape;
    int batch;
    Activation activation;
  };
  // After a conv (channels over batch × H × W) and after a dense layer (features over the batch).
  const Case cases[] = {{{3, 4, 5}, 3, Activation::identity}, {{3, 4, 5}, 3, Activation::tanh},
                        {{7, 1, 1}, 6, Activation::identity}, {{7, 1, 1}, 6, Activation::tanh}};
  for (const Case& c : cases) {
    const std::string what = shape_text(c.shape) + " batch " + std::to_string(c.batch) + " " + std::string(activation_name(c.activation));
    BatchNormLayer bn(c.shape, c.activation);
    randomise(bn, 5);
    Matrix X = random_matrix(c.batch, bn.in(), 6, 0.5f, 2.0f);
    const Matrix R = random_matrix(c.batch, bn.out(), 7);
    bn.forward(X);
    const Matrix dX = bn.backward(R, true);
    const WeightMatrix dgamma = bn.dgamma;
    const RowVector dbeta = bn.dbeta;
    // The loss Σ R ⊙ A through the training forward: the batch's own statistics, which move with X.
    auto f = [&] { return score(bn.forward(X), R); };
    expect_agreement(finite_differences(X.data(), dX.data(), X.size(), 1e-2f, f), what + " dX");
    expect_agreement(finite_differences(bn.gamma.data(), dgamma.data(), bn.gamma.size(), 1e-2f, f), what + " dγ");
    expect_agreement(finite_differences(bn.beta.data(), dbeta.data(), bn.beta.size(), 1e-2f, f), what + " dβ");
  }
}

TEST(BatchNormGradientCheck, FrozenStatisticsXGammaAndBeta) {
  // forward_frozen normalises with the running statistics (fine-tuning): the loss through it, its
  // gradients from backward_frozen, for a map and for a vector, with and without an activation.
  struct Case {
    Shape shape;
    int batch;
    Activation activation;
  };
  const Case cases[] = {{{3, 4, 5}, 3, Activation::identity}, {{3, 4, 5}, 3, Activation::tanh},
                        {{7, 1, 1}, 6, Activation::identity}, {{7, 1, 1}, 1, Activation::tanh}};
  for (const Case& c : cases) {
    const std::string what = shape_text(c.shape) + " batch " + std::to_string(c.batch) + " " + std::string(activation_name(c.activation));
    BatchNormLayer bn(c.shape, c.activation);
    randomise(bn, 5);
    const RowVector mean = bn.running_mean, var = bn.running_var;
    const std::int64_t batches = bn.batches_tracked;
    Matrix X = random_matrix(c.batch, bn.in(), 6, 0.5f, 2.0f);
    const Matrix R = random_matrix(c.batch, bn.out(), 7);
    // The function prediction computes, and the running statistics untouched.
    Matrix inferred;
    bn.infer(X, inferred);
    EXPECT_LT((bn.forward_frozen(X) - inferred).cwiseAbs().maxCoeff(), 1e-5f) << what;
    EXPECT_EQ(bn.running_mean, mean) << what;
    EXPECT_EQ(bn.running_var, var) << what;
    EXPECT_EQ(bn.batches_tracked, batches) << what;
    const Matrix dX = bn.backward_frozen(R, true);
    const WeightMatrix dgamma = bn.dgamma;
    const RowVector dbeta = bn.dbeta;
    auto f = [&] { return score(bn.forward_frozen(X), R); };
    expect_agreement(finite_differences(X.data(), dX.data(), X.size(), 1e-2f, f), what + " dX");
    expect_agreement(finite_differences(bn.gamma.data(), dgamma.data(), bn.gamma.size(), 1e-2f, f), what + " dγ");
    expect_agreement(finite_differences(bn.beta.data(), dbeta.data(), bn.beta.size(), 1e-2f, f), what + " dβ");
    EXPECT_EQ(bn.backward_frozen(R, false).size(), 0) << what << ": no dX asked for";
  }
}

TEST(BatchNorm, NormalisesEachChannelAndMovesTheRunningStatistics) {
  // Two channels of 2×2, batch 2: channel 0 holds 1…8, channel 1 is 5 everywhere.
  BatchNormLayer bn({2, 2, 2}, Activation::identity);
  Matrix X(2, 8);
  X << 1, 2, 3, 4, 5, 5, 5, 5,  //
      5, 6, 7, 8, 5, 5, 5, 5;
  const Matrix Y = bn.forward(X);
  // Channel 0: μ = 4.5, biased var = 5.25 (Σ(x − 4.5)² = 42 over 8), unbiased 6.
  EXPECT_NEAR(Y(0, 0), (1 - 4.5) / std::sqrt(5.25 + 1e-5), 1e-6);
  EXPECT_NEAR(Y(1, 3), (8 - 4.5) / std::sqrt(5.25 + 1e-5), 1e-6);
  EXPECT_NEAR(Y.block(0, 0, 2, 4).sum(), 0.0, 1e-5);
  // Channel 1 has no spread: X̂ = 0, and ε keeps σ away from 0 (no NaN).
  EXPECT_TRUE((Y.block(0, 4, 2, 4).array() == 0).all());
  EXPECT_NEAR(bn.running_mean(0), 0.1 * 4.5, 1e-6);
  EXPECT_NEAR(bn.running_var(0), 0.9 + 0.1 * 6.0, 1e-6);  // the unbiased variance
  EXPECT_NEAR(bn.running_mean(1), 0.5, 1e-6);
  EXPECT_NEAR(bn.running_var(1), 0.9, 1e-6);
  EXPECT_EQ(bn.batches_tracked, 1);
  // Inference uses the running statistics, not the batch's: one image alone gets the same answer.
  Matrix A, one;
  bn.infer(X, A);
  bn.infer(X.topRows(1), one);
  EXPECT_NEAR(A(0, 0), (1 - 0.45) / std::sqrt(1.5 + 1e-5), 1e-6);
  EXPECT_EQ(Matrix(A.topRows(1)), one);
}

TEST(BatchNorm, OneSampleAfterADenseLayerLeavesTheRunningStatistics) {
  BatchNormLayer bn({4, 1, 1}, Activation::relu);
  randomise(bn, 3);
  const RowVector mean = bn.running_mean, var = bn.running_var;
  const Matrix A = bn.forward(random_matrix(1, 4, 2));
  EXPECT_EQ(bn.running_mean, mean);  // m − 1 = 0: no unbiased variance to move toward
  EXPECT_EQ(bn.running_var, var);
  for (int c = 0; c < 4; ++c) EXPECT_FLOAT_EQ(A(0, c), std::max(0.0f, bn.beta(c)));  // X̂ = 0: Y = β
}

// ---------------------------------------------------------------------------------------------
// Folding into the layer before it, for prediction.

TEST(BatchNormFold, FoldedNetworkPredictsAsTheUnfoldedOneWithinRounding) {
  Network network(parse_layer_specs("conv3x3x4same,bn,pool2,conv3x3x5,bn,fc8,bn,3"), {1, 10, 10}, Activation::relu, 1.0f / 255);
  ASSERT_EQ(network.architecture(), "conv3x3x4same,bn,pool2,conv3x3x5,bn,flatten,fc8,bn,fc3");
  network.initialize(Init::he, 9);
  std::uint64_t seed = 10;
  for (Layer& layer : network.layers) {
    if (auto* bn = std::get_if<BatchNormLayer>(&layer)) randomise(*bn, seed++);
    if (auto* conv = std::get_if<Conv2dLayer>(&layer)) conv->b.setConstant(0.05f);
    if (auto* dense = std::get_if<DenseLayer>(&layer)) dense->b.setConstant(-0.05f);
  }
  const Matrix pixels = random_matrix(6, network.inputs(), 11, 120, 60).cwiseMax(0).cwiseMin(255);
  // Unfolded: every layer by itself, batch norm with its running statistics.
  Matrix A = pixels * network.input_scale, next;
  for (const Layer& layer : network.layers) {
    infer(layer, A, next);
    A.swap(next);
  }
  const Matrix logits = A;
  const Network folded = fold_batch_norm(network);
  EXPECT_EQ(folded.architecture(), "conv3x3x4same,pool2,conv3x3x5,flatten,fc8,fc3");
  EXPECT_EQ(folded.parameter_count(), network.parameter_count() - 2 * (4 + 5 + 8));
  A = pixels * folded.input_scale;
  for (const Layer& layer : folded.layers) {
    infer(layer, A, next);
    A.swap(next);
  }
  EXPECT_LT((A - logits).norm() / logits.norm(), 1e-5);
  EXPECT_GT((logits.rowwise() - logits.colwise().mean()).norm(), 1e-2) << "the logits should differ between images";
  // predict_proba folds by itself, the same way; activations() runs the layers unfolded.
  Matrix P;
  softmax(logits, P);
  EXPECT_LT((network.predict_proba(pixels) - P).cwiseAbs().maxCoeff(), 1e-6);
  EXPECT_EQ(network.predict_proba(pixels), folded.predict_proba(pixels));
  EXPECT_LT((network.activations(pixels).back() - P).cwiseAbs().maxCoeff(), 1e-6);
}

TEST(BatchNormFold, ALoadedModelFoldsOnceAndATrainingStepDropsTheFold) {
  Network network(parse_layer_specs("conv3x3x4,bn,pool2,fc6,bn,10"), {1, 8, 8}, Activation::relu, 1);
  network.initialize(Init::he, 3);
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.1f});
  const std::vector<std::uint8_t> labels{1, 2, 3, 4};
  for (int step = 0; step < 3; ++step) network.train_step(random_matrix(4, network.inputs(), 50 + step), labels, sgd);
  const std::string bytes = serialize_model(network, {});
  Model loaded = parse_model(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), "bn");
  const Matrix X = random_matrix(5, network.inputs(), 60);
  EXPECT_TRUE(loaded.network.folded_for_prediction());
  EXPECT_FALSE(network.folded_for_prediction());
  // Folded at load or at each call: the same folding, so the same bits.
  EXPECT_EQ(loaded.network.predict_proba(X), network.predict_proba(X));
  const Matrix before = loaded.network.predict_proba(X);
  // A training step changes the weights: what it predicts next is the new weights' fold, not the old.
  loaded.network.train_step(random_matrix(4, network.inputs(), 70), labels, sgd);
  EXPECT_FALSE(loaded.network.folded_for_prediction());
  const Matrix after = loaded.network.predict_proba(X);
  EXPECT_GT((after - before).cwiseAbs().maxCoeff(), 1e-4);
  EXPECT_EQ(after, fold_batch_norm(loaded.network).predict_proba(X));
  loaded.network.fold_for_prediction();
  EXPECT_TRUE(loaded.network.folded_for_prediction());
  EXPECT_EQ(loaded.network.predict_proba(X), after);
  // A network without batch norm has nothing to fold.
  Network plain(parse_layer_specs("conv3x3x4,pool2,10"), {1, 8, 8}, Activation::relu, 1);
  plain.fold_for_prediction();
  EXPECT_FALSE(plain.folded_for_prediction());
}

// ---------------------------------------------------------------------------------------------
// The layer syntax.

TEST(BatchNormSyntax, FollowsAConvOrADenseLayerAndTakesItsActivation) {
  const Network network(parse_layer_specs("conv3x3x8,bn,pool2,fc16,bn,10"), {1, 12, 12}, Activation::tanh, 1);
  EXPECT_EQ(network.architecture(), "conv3x3x8,bn,pool2,flatten,fc16,bn,fc10");
  // The layer before bn gives its sums; bn applies the hidden activation.
  EXPECT_EQ(std::get<Conv2dLayer>(network.layers[0]).activation, Activation::identity);
  EXPECT_EQ(std::get<BatchNormLayer>(network.layers[1]).activation, Activation::tanh);
  EXPECT_EQ(std::get<BatchNormLayer>(network.layers[1]).output_shape(), (Shape{8, 10, 10}));
  EXPECT_EQ(std::get<BatchNormLayer>(network.layers[5]).output_shape(), (Shape{16, 1, 1}));
  EXPECT_EQ(network.parameter_names(), (std::vector<std::string>{"conv1", "bn1", "fc1", "bn2", "fc2"}));
  EXPECT_EQ(network.parameter_count(), (72u + 8) + 16 + (200u * 16 + 16) + 32 + (160u + 10));
  // A dense layer after a conv's bn reads the map flattened.
  EXPECT_EQ(Network(parse_layer_specs("conv3x3x4,bn,10"), {1, 6, 6}, Activation::relu, 1).architecture(), "conv3x3x4,bn,flatten,fc10");
  for (const char* wrong : {"bn,fc10", "conv3x3x4,pool2,bn,10", "conv3x3x4,bn,bn,10", "conv3x3x4,flatten,bn,10"}) {
    try {
      Network(parse_layer_specs(wrong), {1, 8, 8}, Activation::relu, 1);
      ADD_FAILURE() << wrong << " was accepted";
    } catch (const Error& e) {
      EXPECT_CONTAINS(e.what(), "batch normalization must follow a conv or dense layer");
    }
  }
  EXPECT_THROW(parse_layer_specs("conv3x3x4,bnx,10"), Error);
}

// ---------------------------------------------------------------------------------------------
// The model file: PyTorch's names, dtypes and shapes; a bit-exact round trip; refusals.

TEST(BatchNormModelFile, RoundTripIsBitExactUnderTorchNames) {
  Network network(parse_layer_specs("conv3x3x4,bn,pool2,fc6,bn,10"), {1, 8, 8}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 1);
  Optimizer sgd({.kind = OptimizerKind::sgd, .learning_rate = 0.1f});
  const std::vector<std::uint8_t> labels{1, 2, 3, 4};
  for (int step = 0; step < 3; ++step) network.train_step(random_matrix(4, network.inputs(), 20 + step), labels, sgd);
  const std::string bytes = serialize_model(network, {});
  const Model loaded = parse_model(as_bytes(bytes), "bn.safetensors");
  EXPECT_EQ(serialize_model(loaded.network, loaded.metadata), bytes);  // every byte
  const auto& bn = std::get<BatchNormLayer>(loaded.network.layers[1]);
  EXPECT_EQ(bn.batches_tracked, 3);
  EXPECT_EQ(bn.running_var, std::get<BatchNormLayer>(network.layers[1]).running_var);
  EXPECT_NE(bn.gamma, WeightMatrix::Ones(1, 4)) << "three steps should have moved γ";

  const auto header = header_of(bytes);
  EXPECT_EQ(loaded.metadata.at("architecture"), "conv3x3x4,bn,pool2,flatten,fc6,bn,fc10");
  for (const char* name : {"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"}) {
    EXPECT_EQ(header.at(name).at("shape"), nlohmann::json({4})) << name;
    EXPECT_EQ(header.at(name).at("dtype"), "F32") << name;
  }
  EXPECT_EQ(header.at("bn2.running_var").at("shape"), nlohmann::json({6}));
  EXPECT_EQ(header.at("bn1.num_batches_tracked").at("dtype"), "I64");  // torch.long
  EXPECT_EQ(header.at("bn1.num_batches_tracked").at("shape"), nlohmann::json::array());
  EXPECT_EQ(header.size(), 1u + 2 + 5 + 2 + 5 + 2);  // __metadata__, conv1, bn1, fc1, bn2, fc2

  // F16: γ and β halve, the running statistics stay F32.
  const auto half = header_of(serialize_model(network, {}, {}, Storage::f16));
  EXPECT_EQ(half.at("bn1.weight").at("dtype"), "F16");
  EXPECT_EQ(half.at("bn1.running_var").at("dtype"), "F32");
  EXPECT_EQ(half.at("bn1.num_batches_tracked").at("dtype"), "I64");
  const std::string f16_bytes = serialize_model(network, {}, {}, Storage::f16);
  EXPECT_EQ(serialize_model(parse_model(as_bytes(f16_bytes), "f16").network, {}, {}, Storage::f16), serialize_model(network, {}, {}, Storage::f16));
}

TEST(BatchNormModelFile, RefusesBadStatisticsAndCounts) {
  Network network(parse_layer_specs("fc6,bn,10"), {1, 4, 4}, Activation::relu, 1);
  network.initialize(Init::he, 1);
  const std::string bytes = serialize_model(network, {});
  EXPECT_EQ(refusal(bytes), "accepted");
  const auto header = header_of(bytes);
  auto edited = [&](const std::string& name, const std::string& key, const nlohmann::json& value) {
    nlohmann::json h = header;
    h[name][key] = value;
    return refusal(with_header(bytes, h));
  };
  EXPECT_CONTAINS(edited("bn1.num_batches_tracked", "dtype", "F32"), "edited: tensor bn1.num_batches_tracked has dtype \"F32\", expected \"I64\"");
  EXPECT_CONTAINS(edited("bn1.num_batches_tracked", "shape", {1}), "has shape [1], expected [] (one number)");
  EXPECT_CONTAINS(edited("bn1.running_var", "shape", {5}), "tensor bn1.running_var has shape [5] but the architecture needs [6]");
  nlohmann::json without = header;
  without.erase("bn1.running_mean");
  EXPECT_CONTAINS(refusal(with_header(bytes, without)), "tensor bn1.running_mean is missing");
  // A negative variance (its bytes edited in place) would make σ a NaN.
  std::string negative = bytes;
  std::uint64_t size = 0;
  std::memcpy(&size, bytes.data(), 8);
  const std::size_t at = 8 + size + header.at("bn1.running_var").at("data_offsets")[0].get<std::size_t>();
  const float minus_one = -1.0f;
  std::memcpy(negative.data() + at, &minus_one, sizeof minus_one);
  EXPECT_CONTAINS(refusal(negative), "tensor bn1.running_var holds a negative variance");
  std::string counted = bytes;
  const std::int64_t minus = -3;
  std::memcpy(counted.data() + 8 + size + header.at("bn1.num_batches_tracked").at("data_offsets")[0].get<std::size_t>(), &minus, 8);
  EXPECT_CONTAINS(refusal(counted), "tensor bn1.num_batches_tracked is negative (-3)");
}

TEST(BatchNormCheckpoint, GammaAndBetaMomentsRoundTripAndTrainingResumesExactly) {
  auto fresh = [] {
    Network network(parse_layer_specs("conv3x3x4,bn,pool2,fc6,bn,10"), {1, 8, 8}, Activation::relu, 1);
    network.initialize(Init::he, 1);
    return network;
  };
  const std::vector<std::uint8_t> labels{1, 2, 3, 4, 5};
  auto batch = [&](int step) { return random_matrix(5, 64, 30 + static_cast<std::uint64_t>(step)); };
  // Three Adam steps straight, against one step, a checkpoint, a load and two more.
  Network straight = fresh();
  Optimizer adam({.kind = OptimizerKind::adam, .learning_rate = 0.01f});
  for (int step = 0; step < 3; ++step) straight.train_step(batch(step), labels, adam);

  Network first = fresh();
  TrainingState state{Optimizer({.kind = OptimizerKind::adam, .learning_rate = 0.01f}), 1};
  first.train_step(batch(0), labels, state.optimizer);
  const std::filesystem::path path = testing::TempDir() + "bn_checkpoint.safetensors";
  save_checkpoint(path, first, state, {});
  Model model = load_model(path);
  bool named = false;
  for (const NamedTensor& t : model.extra) named |= t.name == "optimizer.bn1.weight.m";
  EXPECT_TRUE(named);
  TrainingState restored = restore_training_state(model, state.optimizer.settings);
  ASSERT_EQ(restored.optimizer.state.size(), 5u);  // conv1, bn1, fc1, bn2, fc2
  for (int step = 1; step < 3; ++step) model.network.train_step(batch(step), labels, restored.optimizer);
  support::expect_same_weights(straight, model.network);  // γ, β and the running statistics too
}

// ---------------------------------------------------------------------------------------------
// Training.

TEST(BatchNormOptimizer, WeightDecayLeavesGammaAndBetaAlone) {
  Network network(parse_layer_specs("fc4,bn,3"), {1, 1, 5}, Activation::relu, 1);
  network.initialize(Init::he, 2);
  auto& bn = std::get<BatchNormLayer>(network.layers[1]);
  randomise(bn, 4);
  for (Layer& layer : network.layers) {  // zero gradients: only the decay could move anything
    const Parameters p = parameters(layer);
    p.dW->setZero(p.W->rows(), p.W->cols());
    p.db->setZero(p.b->size());
  }
  const WeightMatrix gamma = bn.gamma, W = std::get<DenseLayer>(network.layers[0]).W;
  Optimizer optimizer({.kind = OptimizerKind::sgd, .learning_rate = 0.1f, .weight_decay = 0.5f});
  optimizer.step(network.layers);
  EXPECT_EQ(bn.gamma, gamma);
  const WeightMatrix decayed = W * (1 - 0.1f * 0.5f);
  EXPECT_TRUE(std::get<DenseLayer>(network.layers[0]).W.isApprox(decayed));
}

TEST(BatchNormTraining, LossFallsOnAFixedBatch) {
  Network network(parse_layer_specs("conv3x3x6same,bn,pool2,conv3x3x8s2,bn,fc16,bn,10"), {1, 12, 12}, Activation::relu, 1);
  network.initialize(Init::he, 2);
  const Matrix X = random_matrix(10, network.inputs(), 3);
  std::vector<std::uint8_t> labels(10);
  std::iota(labels.begin(), labels.end(), std::uint8_t{0});
  Optimizer optimizer({.kind = OptimizerKind::nesterov, .learning_rate = 0.05f});
  const float first = network.train_step(X, labels, optimizer, 0.2f, 1);
  float last = first;
  for (int step = 0; step < 40; ++step) last = network.train_step(X, labels, optimizer, 0.2f, static_cast<std::uint64_t>(step));
  EXPECT_LT(last, 0.3f * first);
  // The running statistics followed the batches: prediction with them reads most of the batch.
  const std::vector<int> predicted = network.predict(X);
  int right = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) right += predicted[i] == labels[i];
  EXPECT_GE(right, 8);
}

// Each channel's sums run in one fixed order on one thread, and the channels' shares depend on the
// sizes alone: one thread or several train the same weights and statistics, bit for bit.
TEST(BatchNormTraining, WeightsDoNotDependOnTheNumberOfThreads) {
  auto train = [](int threads) {
    Network network(parse_layer_specs("conv3x3x6same,bn,pool2,conv3x3x8,bn,fc16,bn,10"), {1, 12, 12}, Activation::relu, 1);
    network.initialize(Init::he, 2);
    network.set_threads(threads);
    Optimizer optimizer({.kind = OptimizerKind::nesterov, .learning_rate = 0.05f, .momentum = 0.9f});
    std::vector<std::uint8_t> labels(10);
    std::iota(labels.begin(), labels.end(), std::uint8_t{0});
    for (int step = 0; step < 5; ++step)
      network.train_step(random_matrix(10, network.inputs(), 40 + static_cast<std::uint64_t>(step)), labels, optimizer, 0.1f, 7);
    return network;
  };
  support::expect_same_weights_whatever_the_threads(train);
}
