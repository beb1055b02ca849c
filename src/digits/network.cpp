#include "digits/network.hpp"

#include <algorithm>
#include <optional>

#include "digits/error.hpp"
#include "digits/loss.hpp"
#include "digits/optimizer.hpp"

namespace digits {

namespace {

std::vector<LayerSpec> dense_specs(const std::vector<int>& sizes) {
  if (sizes.size() < 2) throw Error("a network needs at least an input and an output size");
  std::vector<LayerSpec> specs;
  for (std::size_t i = 1; i < sizes.size(); ++i) {
    if (sizes[i] <= 0 || sizes[i - 1] <= 0)
      throw Error("a dense layer needs positive sizes, got " + std::to_string(sizes[i - 1]) + "×" + std::to_string(sizes[i]));
    specs.push_back({.kind = LayerSpec::Kind::dense, .size = sizes[i]});
  }
  return specs;
}

}  // namespace

Network::Network(std::vector<int> sizes, Activation hidden, float input_scale)
    : Network(dense_specs(sizes), Shape{sizes.empty() ? 0 : sizes.front(), 1, 1}, hidden, input_scale) {}

Network::Network(std::vector<LayerSpec> specs, Shape input, Activation hidden, float input_scale)
    : input_scale(input_scale), specs_(std::move(specs)), input_(input), hidden_(hidden) {
  if (!(input_scale > 0.0f)) throw Error("the input scale must be positive");
  if (input.channels <= 0 || input.height <= 0 || input.width <= 0) throw Error("the input needs positive sizes, got " + shape_text(input));
  const std::vector<Shape> shapes = plan_shapes(specs_, input);  // checks every size, inserts flattens
  Shape shape = input;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const LayerSpec& spec = specs_[i];
    // The last layer gives logits; a layer followed by bn gives it its sums, and bn applies the
    // activation (conv → bn → f, as Ioffe & Szegedy place it: the sums, not f's output, normalised).
    const bool normalised = i + 1 < specs_.size() && specs_[i + 1].kind == LayerSpec::Kind::batchnorm;
    const Activation activation = i + 1 == specs_.size() || normalised ? Activation::identity : hidden;
    switch (spec.kind) {
      case LayerSpec::Kind::dense: layers.emplace_back(DenseLayer(shape.size(), spec.size, activation)); break;
      case LayerSpec::Kind::conv2d:
        layers.emplace_back(Conv2dLayer(shape, spec.size, spec.kernel, spec.stride, spec.padding, activation));
        break;
      case LayerSpec::Kind::maxpool2: layers.emplace_back(MaxPool2Layer(shape)); break;
      case LayerSpec::Kind::flatten: layers.emplace_back(FlattenLayer(shape)); break;
      case LayerSpec::Kind::batchnorm: layers.emplace_back(BatchNormLayer(shape, activation)); break;
    }
    shape = shapes[i];
  }
}

void Network::initialize(Init init, std::uint64_t seed) {
  folded_.reset();
  Rng rng(seed);  // one stream through the layers in order, so a seed gives one set of weights
  for (Layer& layer : layers) {
    if (auto* dense = std::get_if<DenseLayer>(&layer)) dense->initialize(init, rng);
    if (auto* conv = std::get_if<Conv2dLayer>(&layer)) conv->initialize(init, rng);
    if (auto* bn = std::get_if<BatchNormLayer>(&layer)) bn->initialize();  // γ = 1, β = 0: draws nothing
  }
}

std::vector<int> Network::sizes() const {
  std::vector<int> sizes{inputs()};
  for (const Layer& layer : layers) sizes.push_back(layer_outputs(layer));
  return sizes;
}

bool Network::dense_only() const {
  for (const Layer& layer : layers)
    if (!std::holds_alternative<DenseLayer>(layer)) return false;
  return true;
}

std::size_t Network::parameter_count() const {
  std::size_t count = 0;
  for (const Layer& layer : layers) {
    const ConstParameters p = parameters(layer);
    if (p.W) count += static_cast<std::size_t>(p.W->size() + p.b->size());
  }
  return count;
}

std::vector<std::string> Network::parameter_names() const {
  std::vector<std::string> names;
  int convs = 0, denses = 0, norms = 0;
  for (const Layer& layer : layers) {
    if (std::holds_alternative<Conv2dLayer>(layer)) names.push_back("conv" + std::to_string(++convs));
    if (std::holds_alternative<DenseLayer>(layer)) names.push_back("fc" + std::to_string(++denses));
    if (std::holds_alternative<BatchNormLayer>(layer)) names.push_back("bn" + std::to_string(++norms));
  }
  return names;
}

void Network::copy_weights_from(const Network& other) {
  if (other.architecture() != architecture() || other.inputs() != inputs()) throw Error("copy_weights_from: the networks differ in shape");
  folded_.reset();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Parameters to = parameters(layers[i]);
    const ConstParameters from = parameters(other.layers[i]);
    if (to.W) *to.W = *from.W, *to.b = *from.b;
    if (auto* bn = std::get_if<BatchNormLayer>(&layers[i])) {  // and what batch norm has beyond γ, β
      const auto& source = std::get<BatchNormLayer>(other.layers[i]);
      bn->running_mean = source.running_mean;
      bn->running_var = source.running_var;
      bn->batches_tracked = source.batches_tracked;
    }
  }
}

void Network::move_average_toward(const Network& live, float decay) {
  if (live.architecture() != architecture() || live.inputs() != inputs()) throw Error("move_average_toward: the networks differ in shape");
  folded_.reset();
  const float step = 1.0f - decay;
  // θ ← decay·θ + (1 − decay)·θ_live, written as θ += (1 − decay)·(θ_live − θ).
  auto toward = [step](auto& average, const auto& value) { average += step * (value - average); };
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Parameters to = parameters(layers[i]);
    const ConstParameters from = parameters(live.layers[i]);
    if (to.W) toward(*to.W, *from.W), toward(*to.b, *from.b);
    if (auto* bn = std::get_if<BatchNormLayer>(&layers[i])) {  // its running statistics are averaged too
      const auto& source = std::get<BatchNormLayer>(live.layers[i]);
      toward(bn->running_mean, source.running_mean);
      toward(bn->running_var, source.running_var);
      bn->batches_tracked = source.batches_tracked;
    }
  }
}

namespace {

// Layer `layer` followed by bn, as one layer (batchnorm_layer.hpp); null for a kind with no fold.
std::optional<Layer> folded_layer(const Layer& layer, const BatchNormLayer& bn) {
  if (const auto* conv = std::get_if<Conv2dLayer>(&layer)) return Layer(fold_batch_norm(*conv, bn));
  if (const auto* dense = std::get_if<DenseLayer>(&layer)) return Layer(fold_batch_norm(*dense, bn));
  return std::nullopt;
}

const BatchNormLayer* batch_norm_after(const std::vector<Layer>& layers, std::size_t i) {
  return i + 1 < layers.size() ? std::get_if<BatchNormLayer>(&layers[i + 1]) : nullptr;
}

}  // namespace

void Network::fold_for_prediction() {
  folded_.reset();
  const bool normalised = std::any_of(layers.begin(), layers.end(), [](const Layer& layer) { return std::holds_alternative<BatchNormLayer>(layer); });
  if (!normalised) return;
  std::vector<Layer> folded = fold_batch_norm(*this).layers;
  for (Layer& layer : folded) {  // const from here on: the weights can be laid out for inference once
    if (auto* conv = std::get_if<Conv2dLayer>(&layer)) conv->pack_for_inference();
    if (auto* dense = std::get_if<DenseLayer>(&layer)) dense->pack_for_inference();
  }
  folded_ = std::make_shared<const std::vector<Layer>>(std::move(folded));
}

Network fold_batch_norm(const Network& network) {
  std::vector<LayerSpec> specs;
  for (const LayerSpec& spec : network.specs())
    if (spec.kind != LayerSpec::Kind::batchnorm) specs.push_back(spec);
  Network folded(specs, network.input_shape(), network.hidden_activation(), network.input_scale);
  std::size_t j = 0;
  for (std::size_t i = 0; i < network.layers.size(); ++i, ++j) {
    if (const BatchNormLayer* bn = batch_norm_after(network.layers, i)) {
      folded.layers[j] = *folded_layer(network.layers[i], *bn);  // plan_shapes put bn after a conv or dense layer only
      ++i;
      continue;
    }
    const Parameters to = parameters(folded.layers[j]);
    const ConstParameters from = parameters(network.layers[i]);
    if (to.W) *to.W = *from.W, *to.b = *from.b;
  }
  return folded;
}

void Network::set_threads(int threads) {
  if (threads <= 1) pool_.reset();
  else if (!pool_ || pool_->threads() != threads) pool_ = std::make_shared<WorkerPool>(threads);
}

Matrix Network::predict_proba(const Matrix& pixels, WorkerPool* pool) const {
  if (pixels.cols() != inputs())
    throw Error("the network takes " + std::to_string(inputs()) + " inputs per image, got " + std::to_string(pixels.cols()));
  // im2col copies each image k² times: a few hundred images at a time keep a conv network's
  // workspaces to tens of megabytes (evaluate() hands over a thousand, which would take hundreds).
  constexpr Eigen::Index kRowsAtOnce = 256;
  if (!dense_only() && pixels.rows() > kRowsAtOnce) {
    Matrix P(pixels.rows(), classes());
    for (Eigen::Index first = 0; first < pixels.rows(); first += kRowsAtOnce) {
      const Eigen::Index count = std::min(kRowsAtOnce, pixels.rows() - first);
      P.middleRows(first, count) = predict_proba(pixels.middleRows(first, count), pool);
    }
    return P;
  }
  Matrix A = pixels * input_scale;
  Matrix next;
  if (folded_) {  // folded once, by fold_for_prediction
    for (const Layer& layer : *folded_) {
      infer(layer, A, next, pool);
      A.swap(next);
    }
    softmax(A, A);
    return A;
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    // A layer followed by batch norm is folded with it into one layer, here, at each call: the
    // network in memory stays as trained (γ, β and the running statistics apart, as training,
    // learning from corrections and the file need them), and nothing folded can go stale after
    // a training step. Folding costs one pass over the layer's weights: about 17 µs for a dense
    // layer of 512 × 128, where fold_for_prediction's layers spare it.
    if (const BatchNormLayer* bn = batch_norm_after(layers, i)) {
      infer(*folded_layer(layers[i], *bn), A, next, pool);
      ++i;
    } else {
      infer(layers[i], A, next, pool);
    }
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
  for (std::size_t i = 0; i < layers.size(); ++i) infer(layers[i], i == 0 ? X : outputs[i - 1], outputs[i]);
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
                          std::uint64_t dropout_seed, float label_smoothing) {
  if (label_smoothing < 0 || label_smoothing >= 1) throw Error("label smoothing must be in [0, 1)");
  if (dropout < 0 || dropout >= 1) throw Error("the dropout rate must be in [0, 1)");
  folded_.reset();  // the weights are about to change
  const std::size_t last = layers.size() - 1;
  const bool dropping = dropout > 0;
  // Dropout acts on the hidden dense layers' outputs, masks drawn in layer order.
  // A dense layer followed by batch norm: on the bn's output, after the activation.
  auto drops = [&](std::size_t i) {
    if (!dropping || i >= last) return false;
    if (std::holds_alternative<DenseLayer>(layers[i])) return batch_norm_after(layers, i) == nullptr;
    return std::holds_alternative<BatchNormLayer>(layers[i]) && std::holds_alternative<DenseLayer>(layers[i - 1]);
  };
  std::optional<Rng> rng;
  if (dropping) keep_.resize(layers.size()), dropped_.resize(layers.size()), rng.emplace(dropout_seed);
  // Forward: each layer's output is the next one's input (after dropout, when training with it).
  const Matrix* A = &X;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    A = &forward(layers[i], *A, pool_.get());
    if (drops(i)) {
      draw_dropout_mask(keep_[i], A->rows(), A->cols(), dropout, *rng);
      dropped_[i] = A->cwiseProduct(keep_[i]);  // A ⊙ mask
      A = &dropped_[i];
    }
  }
  // Loss and its gradient with respect to the logits: dZ = (P − Y) / batch.
  const float loss = softmax_cross_entropy(*A, labels, P_, dZ_, label_smoothing);
  // Backward: each layer turns ∂loss/∂(its output) into ∂loss/∂(its input), last layer first.
  // Through dropout: ∂loss/∂A = ∂loss/∂(A ⊙ mask) ⊙ mask.
  const Matrix* dA = &dZ_;
  for (std::size_t i = layers.size(); i-- > 0;) {
    if (drops(i)) {
      dA_ = dA->cwiseProduct(keep_[i]);
      dA = &dA_;
    }
    dA = &backward(layers[i], *dA, /*compute_dX=*/i > 0, pool_.get());
  }
  optimizer.step(layers, pool_.get());
  return loss;
}

}  // namespace digits
