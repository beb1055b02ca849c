// Batch normalization (Ioffe & Szegedy 2015), then the hidden activation: each channel's values
// are brought to mean 0 and variance 1, then scaled and shifted by two learnt numbers,
//   X̂ = (X − μ) / σ,   σ = √(var + ε),   Y = γ·X̂ + β,   A = f(Y)
// per channel after a convolution (the statistics over batch × H × W, as torch.nn.BatchNorm2d) and
// per feature after a dense layer (over the batch, as torch.nn.BatchNorm1d): both are C channels of
// P = H·W positions, P = 1 for a vector. Training uses the batch's own μ and var; prediction uses
// running averages of them, so one image's answer does not depend on the others in its batch.
// For prediction the layer is folded into the conv or dense layer before it (fold_batch_norm):
// both are affine per channel, so their composition is one affine layer. Forward and backward side
// by side in batchnorm_layer.cpp; docs/how-it-works.md, "Batch normalization", derives them.
#pragma once

#include <cstdint>

#include "digits/activation.hpp"
#include "digits/conv2d_layer.hpp"
#include "digits/dense_layer.hpp"
#include "digits/tensor.hpp"
#include "digits/worker_pool.hpp"

namespace digits {

class BatchNormLayer {
 public:
  // input: the shape of the layer before's output, C×H×W after a conv, n×1×1 after a dense layer.
  BatchNormLayer(Shape input, Activation activation);

  Shape input_shape() const { return input_; }
  Shape output_shape() const { return input_; }
  int in() const { return input_.size(); }
  int out() const { return input_.size(); }
  int channels() const { return input_.channels; }

  // γ = 1, β = 0, running mean 0, running variance 1, no batch seen: the identity, as PyTorch starts.
  void initialize();

  // Training forward, X: (batch × C·P) → A: (batch × C·P), with the batch's statistics per channel
  // over its m = batch·P values (the biased variance, dividing by m, normalises), and the running
  // statistics moved toward them (the unbiased variance, dividing by m − 1, as PyTorch does):
  //   μ = Σ X / m,  var = Σ (X − μ)² / m,  X̂ = (X − μ)/σ,  Y = γ·X̂ + β,  A = f(Y)
  //   running_mean ← (1 − 0.1)·running_mean + 0.1·μ
  //   running_var  ← (1 − 0.1)·running_var  + 0.1·var·m/(m − 1)
  // With m = 1 (one sample after a dense layer) X̂ = 0 and no unbiased variance exists: the running
  // statistics stay as they were (PyTorch refuses such a batch). Keeps X (which must outlive
  // backward), μ, 1/σ and A for backward, which makes X̂ and f′(Y) again from them (f′ through A:
  // ReLU's y > 0 is a > 0).
  // Channels are cut into kShares shares, each channel summed in one fixed order by one thread,
  // so the result does not depend on the number of threads.
  const Matrix& forward(const Matrix& X, WorkerPool* pool = nullptr);

  // Backward, given dA = ∂loss/∂A (batch × C·P), per channel, sums over its m values:
  //   dY = dA ⊙ f′(Y)
  //   dβ = Σ dY                                                    (1 × C)
  //   dγ = Σ dY ⊙ X̂                                                (1 × C)
  //   dX = (γ/σ)·(dY − mean(dY) − X̂·mean(dY ⊙ X̂))                 (batch × C·P)
  //      = (γ/σ)·(dY − dβ/m − X̂·dγ/m)
  // (μ and σ depend on every X of the channel; this compact form already counts those paths.)
  // dX only when compute_dX. Returns dX (empty otherwise).
  const Matrix& backward(const Matrix& dA, bool compute_dX, WorkerPool* pool = nullptr);

  // Training with the statistics frozen, as fine-tuning on a few new examples wants (fine_tune.hpp):
  // a batch that is a quarter corrections of one style is no sample of the digits the running
  // statistics describe, so normalise with those, leave them alone, and learn only γ and β:
  //   X̂ = (X − running_mean)/σ,  σ = √(running_var + ε),  Y = γ·X̂ + β,  A = f(Y)
  // the function prediction computes. Keeps X̂, 1/σ, Y and A for backward_frozen.
  const Matrix& forward_frozen(const Matrix& X);

  // Its backward: μ and σ are constants now, so the layer is affine per channel:
  //   dY = dA ⊙ f′(Y),  dβ = Σ dY,  dγ = Σ dY ⊙ X̂,  dX = (γ/σ)·dY      (sums over a channel's values)
  const Matrix& backward_frozen(const Matrix& dA, bool compute_dX);

  // Inference with the running statistics, into a caller's buffer, keeping nothing:
  //   A = f(X·s + t),  s = γ/√(running_var + ε),  t = β − running_mean·s
  // Network::predict_proba does not call it after a conv or dense layer: it folds (fold_batch_norm).
  void infer(const Matrix& X, Matrix& A) const;

  // The per-channel scale and shift of inference above: s = γ/√(running_var + ε), t = β − μ·s.
  void inference_affine(RowVector& s, RowVector& t) const;

  static constexpr float kMomentum = 0.1f;  // torch.nn.BatchNorm's default
  static constexpr float kEpsilon = 1e-5f;  // likewise
  static constexpr int kShares = 4;

  Activation activation;  // the hidden activation, applied after the affine (conv → bn → f)
  // γ (1 × C): a WeightMatrix so that the optimizer and checkpoints treat it as a layer's W; the
  // model file stores it as bnK.weight [C].
  WeightMatrix gamma;
  RowVector beta;           // β (1 × C), bnK.bias
  WeightMatrix dgamma;      // ∂loss/∂γ (1 × C), set by backward
  RowVector dbeta;          // ∂loss/∂β (1 × C), set by backward
  RowVector running_mean;   // (1 × C), bnK.running_mean
  RowVector running_var;    // (1 × C), bnK.running_var
  std::int64_t batches_tracked = 0;  // training batches seen, bnK.num_batches_tracked (int64, as PyTorch)

 private:
  Shape input_;
  const Matrix* X_ = nullptr;       // the training forward's input, which backward reads again
  Matrix X_hat_, Y_, A_, dY_, dX_;  // workspaces, sized once per batch and reused (X̂, Y, dY: the frozen path's)
  RowVector inv_sigma_;             // 1/σ of the last training batch (1 × C)
  Eigen::VectorXd mean_, exact_inv_sigma_;  // μ and 1/σ in double, as X̂ = (X − μ)/σ was made from them
};

// The conv or dense layer `layer` followed by `bn`, as one layer with bn's activation: bn's affine
// per channel o, y = s_o·z + t_o, applied to z = W(·, o)ᵀx + b_o, is
//   W′(·, o) = W(·, o)·s_o,   b′_o = (b_o − running_mean_o)·s_o + β_o,   s_o = γ_o/√(running_var_o + ε)
// the same function of x, within rounding. The workspaces of `layer` are not copied.
Conv2dLayer fold_batch_norm(const Conv2dLayer& layer, const BatchNormLayer& bn);
DenseLayer fold_batch_norm(const DenseLayer& layer, const BatchNormLayer& bn);

}  // namespace digits
