#include "digits/network.hpp"

#include <optional>

#include "digits/error.hpp"
#include "digits/loss.hpp"
#include "digits/optimizer.hpp"

namespace digits {

Network::Network(std::vector<int> sizes, Activation hidden, float input_scale)
    : input_scale(input_scale), hidden_(hidden) {
  if (sizes.size() < 2) throw Error("a network needs at least an input and an output size");
  if (!(input_scale > 0.0f)) throw Error("the input scale must be positive");
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    const bool last = i + 2 == sizes.size();
    layers.emplace_back(sizes[i], sizes[i + 1], last ? Activation::identity : hidden);
  }
}

void Network::initialize(Init init, std::uint64_t seed) {
  Rng rng(seed);
  for (DenseLayer& layer : layers) layer.initialize(init, rng);
}

std::vector<int> Network::sizes() const {
  std::vector<int> sizes{inputs()};
  for (const DenseLayer& layer : layers) sizes.push_back(layer.out());
  return sizes;
}

std::size_t Network::parameter_count() const {
  std::size_t count = 0;
  for (const DenseLayer& layer : layers) count += static_cast<std::size_t>(layer.W.size() + layer.b.size());
  return count;
}

Matrix Network::predict_proba(const Matrix& pixels) const {
  if (pixels.cols() != inputs())
    throw Error("the network takes " + std::to_string(inputs()) + " inputs per image, got " + std::to_string(pixels.cols()));
  Matrix A = pixels * input_scale;
  Matrix next;
  for (const DenseLayer& layer : layers) {
    layer.infer(A, next);
    A.swap(next);
  }
  softmax(A, A);
  return A;
}

std::vector<Matrix> Network::activations(const Matrix& pixels) const {
  if (pixels.cols() != inputs())
    throw Error("the network takes " + std::to_string(inputs()) + " inputs per image, got " + std::to_string(pixels.cols()));
  std::vector<Matrix> outputs(layers.size());
  Matrix X = pixels * input_scale;
  for (std::size_t i = 0; i < layers.size(); ++i) layers[i].infer(i == 0 ? X : outputs[i - 1], outputs[i]);
  softmax(outputs.back(), outputs.back());  // the last layer's logits become probabilities
  return outputs;
}

std::vector<int> Network::predict(const Matrix& pixels) const {
  const Matrix P = predict_proba(pixels);
  std::vector<int> classes(static_cast<std::size_t>(P.rows()));
  for (Eigen::Index i = 0; i < P.rows(); ++i) P.row(i).maxCoeff(&classes[static_cast<std::size_t>(i)]);
  return classes;
}

namespace {

// Fills mask with 0 (dropped, probability p) or 1/(1 − p) (kept), 16 random bits per entry.
void draw_dropout_mask(Matrix& mask, Eigen::Index rows, Eigen::Index cols, float p, Rng& rng) {
  mask.resize(rows, cols);
  const auto threshold = static_cast<std::uint64_t>(p * 65536.0f);
  const float kept = 1.0f / (1.0f - p);
  std::uint64_t bits = 0;
  for (Eigen::Index i = 0; i < mask.size(); ++i) {
    if (i % 4 == 0) bits = rng.engine()();
    mask.data()[i] = (bits & 0xffff) < threshold ? 0.0f : kept;
    bits >>= 16;
  }
}

}  // namespace

float Network::train_step(const Matrix& X, std::span<const std::uint8_t> labels, Optimizer& optimizer, float dropout,
                          std::uint64_t dropout_seed) {
  if (dropout < 0 || dropout >= 1) throw Error("the dropout rate must be in [0, 1)");
  const std::size_t hidden = layers.size() - 1;
  const bool dropping = dropout > 0;
  std::optional<Rng> rng;
  if (dropping) keep_.resize(hidden), dropped_.resize(hidden), rng.emplace(dropout_seed);
  // Forward: each layer's output is the next one's input (after dropout, when training with it).
  const Matrix* A = &X;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    A = &layers[i].forward(*A);
    if (dropping && i < hidden) {
      draw_dropout_mask(keep_[i], A->rows(), A->cols(), dropout, *rng);
      dropped_[i] = A->cwiseProduct(keep_[i]);  // A ⊙ mask
      A = &dropped_[i];
    }
  }
  // Loss and its gradient with respect to the logits: dZ = (P − Y) / batch.
  const float loss = softmax_cross_entropy(*A, labels, P_, dZ_);
  // Backward: each layer turns ∂loss/∂(its output) into ∂loss/∂(its input), last layer first.
  // Through dropout: ∂loss/∂A = ∂loss/∂(A ⊙ mask) ⊙ mask.
  const Matrix* dA = &dZ_;
  for (std::size_t i = layers.size(); i-- > 0;) {
    if (dropping && i < hidden) {
      dA_ = dA->cwiseProduct(keep_[i]);
      dA = &dA_;
    }
    dA = &layers[i].backward(*dA, /*compute_dX=*/i > 0);
  }
  optimizer.step(layers);
  return loss;
}

}  // namespace digits
