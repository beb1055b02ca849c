// The network: an ordered list of dense layers, then softmax. Nothing more.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "digits/dense_layer.hpp"
#include "digits/tensor.hpp"

namespace digits {

class Optimizer;

class Network {
 public:
  // sizes: {784, 50, 20, 10} makes three dense layers 784→50→20→10; every layer but the last uses
  // `hidden`, the last gives logits for softmax. input_scale multiplies raw 0–255 pixels on the way in
  // (1 for the ancestor's raw pixels, 1/255 for pixels in 0–1). The weights start at zero: call
  // initialize() or load them.
  Network(std::vector<int> sizes, Activation hidden, float input_scale);

  void initialize(Init init, std::uint64_t seed);

  std::vector<int> sizes() const;
  int inputs() const { return layers.front().in(); }
  int classes() const { return layers.back().out(); }
  Activation hidden_activation() const { return hidden_; }
  std::size_t parameter_count() const;

  // Probabilities for each image. pixels: (n × inputs) raw pixel values in 0–255, white ink on
  // black, as preprocess() makes them; the input scaling is applied here. Returns (n × classes).
  // Const and keeps no state, so many threads may predict at once.
  Matrix predict_proba(const Matrix& pixels) const;
  // The most probable class of each image.
  std::vector<int> predict(const Matrix& pixels) const;

  // What every layer computed, for looking inside (the app's "Inside the network" panel).
  // pixels: (n × inputs) raw 0–255, as for predict_proba. Returns one matrix per layer, in order:
  // element i is layer i's output A = f(X·W + b), (n × layers[i].out()); the last element is the
  // softmax probabilities, equal to predict_proba's. Const like predict_proba; it keeps every
  // layer's output instead of dropping each after use, which is all that differs from it.
  std::vector<Matrix> activations(const Matrix& pixels) const;

  // One step of mini-batch gradient descent on an already scaled batch X (batch × inputs):
  // forward, loss, backward, then the optimizer's update. Returns the batch's mean loss.
  // With a dropout rate p > 0, each hidden activation is kept with probability 1 − p and scaled
  // by 1/(1 − p) ("inverted" dropout, Srivastava et al. 2014), so prediction needs no change; the
  // masks are drawn from dropout_seed alone.
  float train_step(const Matrix& X, std::span<const std::uint8_t> labels, Optimizer& optimizer,
                   float dropout = 0, std::uint64_t dropout_seed = 0);

  std::vector<DenseLayer> layers;
  float input_scale;

 private:
  Activation hidden_;
  Matrix P_, dZ_;                      // train_step's workspaces: probabilities and ∂loss/∂logits
  std::vector<Matrix> keep_, dropped_;  // dropout: each hidden layer's mask (0 or 1/(1−p)) and A ⊙ mask
  Matrix dA_;
};

}  // namespace digits
