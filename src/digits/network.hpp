// The network: an ordered list of layers (layer.hpp: dense, conv2d, maxpool2, flatten, batch norm), then softmax.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "digits/layer.hpp"
#include "digits/tensor.hpp"
#include "digits/worker_pool.hpp"

namespace digits {

class Optimizer;

class Network {
 public:
  // sizes: {784, 50, 20, 10} makes three dense layers 784→50→20→10; every layer but the last uses
  // `hidden`, the last gives logits for softmax. input_scale multiplies raw 0–255 pixels on the way in
  // (1 for the ancestor's raw pixels, 1/255 for pixels in 0–1). The weights start at zero: call
  // initialize() or load them.
  Network(std::vector<int> sizes, Activation hidden, float input_scale);
  // Layers of any kind over images of shape `input` (1×28×28 for MNIST), as parse_layer_specs reads
  // them: "conv5x5x32,pool2,conv5x5x64,pool2,fc256,10". Every conv and dense layer but the last
  // uses `hidden`. Throws Error for a shape that cannot work, naming the layer and the sizes.
  Network(std::vector<LayerSpec> specs, Shape input, Activation hidden, float input_scale);

  void initialize(Init init, std::uint64_t seed);

  // Values per sample: the input's, then each layer's output ({784, 50, 20, 10} for the seed).
  std::vector<int> sizes() const;
  // The layer list with every flatten written out, "conv5x5x32,pool2,flatten,fc10" (layer.hpp).
  std::string architecture() const { return layer_specs_text(specs_); }
  const std::vector<LayerSpec>& specs() const { return specs_; }
  bool dense_only() const;  // only dense layers (whatever the input's shape): the model file's version 1 describes it
  Shape input_shape() const { return input_; }
  int inputs() const { return input_.size(); }
  int classes() const { return layer_outputs(layers.back()); }
  Activation hidden_activation() const { return hidden_; }
  std::size_t parameter_count() const;
  // The model file's name of each layer with weights, in order: conv1, conv2 … for convolutions,
  // fc1, fc2 … for dense layers, as PyTorch's MNIST example names them, bn1, bn2 … for batch norms.
  std::vector<std::string> parameter_names() const;
  // Copies W and b of every layer (γ, β and the running statistics of a batch norm) from `other`,
  // a network of the same architecture.
  void copy_weights_from(const Network& other);

  // Probabilities for each image. pixels: (n × inputs) raw pixel values in 0–255, white ink on
  // black, as preprocess() makes them; the input scaling is applied here. Returns (n × classes).
  // Const and keeps no state, so many threads may predict at once. Batch norm uses its running
  // statistics, folded into the layer before it (fold_batch_norm below): by fold_for_prediction's
  // layers when they are there, else at each call.
  // With a `pool`, its threads share each convolution (conv2d_layer.hpp: for one drawing, its
  // output positions), the same bits as without: for a caller who wants one drawing's answer
  // sooner, not for a server answering many at once (a pool runs one job at a time, so callers
  // sharing one take turns).
  Matrix predict_proba(const Matrix& pixels, WorkerPool* pool = nullptr) const;
  // The most probable class of each image.
  std::vector<int> predict(const Matrix& pixels) const;

  // What every layer computed, for looking inside (the app's "Inside the network" panel).
  // pixels: (n × inputs) raw 0–255, as for predict_proba. Returns one matrix per layer, in order:
  // element i is layer i's output, (n × layer_outputs(layers[i])), NCHW rows for a map; the last
  // element is the softmax probabilities, equal to predict_proba's (within rounding when batch
  // norm is folded there: here every layer runs by itself, so a conv's sums before its bn are seen).
  // Const like predict_proba; it keeps every layer's output instead of dropping each after use.
  std::vector<Matrix> activations(const Matrix& pixels) const;

  // One step of mini-batch gradient descent on an already scaled batch X (batch × inputs):
  // forward, loss, backward, then the optimizer's update. Returns the batch's mean loss.
  // With a dropout rate p > 0, each hidden dense layer's activation is kept with probability 1 − p
  // and scaled by 1/(1 − p) ("inverted" dropout, Srivastava et al. 2014), so prediction needs no
  // change; the masks are drawn from dropout_seed alone.
  // label_smoothing ε > 0 trains toward (1 − ε)·one-hot + ε/classes instead of one-hot (loss.hpp).
  float train_step(const Matrix& X, std::span<const std::uint8_t> labels, Optimizer& optimizer,
                   float dropout = 0, std::uint64_t dropout_seed = 0, float label_smoothing = 0);

  // Weight averaging: moves every weight, bias and batch-norm running statistic of this network a
  // step toward `live`'s (same architecture), θ ← decay·θ + (1 − decay)·θ_live. Called after each
  // training step on a copy of the network, it keeps an exponential moving average of the weights
  // (Polyak & Juditsky 1992; the "EMA" of modern recipes): the average of the last ~1/(1 − decay)
  // steps' weights, which sits nearer the middle of the valley the noisy steps bounce around in.
  void move_average_toward(const Network& live, float decay);

  // Folds every batch norm into the layer before it once, for predict_proba to use until the
  // weights change: parse_model calls it, so a loaded model predicts without folding at each call.
  // train_step, initialize and copy_weights_from drop the folded layers (predict_proba then folds
  // at each call again); whoever changes `layers` by hand must call it again or drop them
  // (forget_folded). Does nothing for a network without batch norm.
  void fold_for_prediction();
  void forget_folded() { folded_.reset(); }
  bool folded_for_prediction() const { return folded_ != nullptr; }

  // How many threads train_step may use (1: the caller's alone). The batch's shares and the
  // order their gradients are added in never depend on it, so neither do the weights.
  void set_threads(int threads);
  int threads() const { return pool_ ? pool_->threads() : 1; }
  WorkerPool* pool() const { return pool_.get(); }  // the threads set_threads gave it (null: one)

  std::vector<Layer> layers;
  float input_scale;

 private:
  std::vector<LayerSpec> specs_;  // one per layer
  Shape input_;
  Activation hidden_;
  Matrix P_, dZ_;                      // train_step's workspaces: probabilities and ∂loss/∂logits
  std::vector<Matrix> keep_, dropped_;  // dropout: each hidden dense layer's mask (0 or 1/(1−p)) and A ⊙ mask
  Matrix dA_;
  std::shared_ptr<WorkerPool> pool_;  // shared by copies (snapshots), which only predict
  std::shared_ptr<const std::vector<Layer>> folded_;  // fold_for_prediction's layers, or null
};

// The same function for prediction with every batch norm folded into the conv or dense layer
// before it (batchnorm_layer.hpp): the architecture without its bn layers, each folded layer
// taking the bn's activation. Equal to `network`'s predictions within rounding; for inspecting
// or exporting, since predict_proba folds by itself. It cannot be trained as the original was.
Network fold_batch_norm(const Network& network);

}  // namespace digits
