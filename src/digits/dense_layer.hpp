// A fully connected layer: Z = X·W + b, A = f(Z). Its forward and backward sit side by side in
// dense_layer.cpp; docs/how-it-works.md derives them.
#pragma once

#include <memory>

#include "digits/activation.hpp"
#include "digits/gemm.hpp"
#include "digits/kernels.hpp"
#include "digits/random.hpp"
#include "digits/tensor.hpp"
#include "digits/worker_pool.hpp"

namespace digits {

// How the weights start. The biases always start at zero.
enum class Init {
  ancestor,  // W ~ N(0, 1) × 0.01, the NumPy ancestor's choice
  he,        // W ~ N(0, 2/in): keeps E[z²] from layer to layer under ReLU, which halves it (He et al., 2015)
  xavier,    // W ~ N(0, 2/(in+out)): between the forward's 1/in and the backward's 1/out, for f′(0) = 1
             // as tanh has (Glorot & Bengio, 2010); docs/how-it-works.md §6 derives both
};
std::string_view init_name(Init init);
Init parse_init(std::string_view name);

class DenseLayer {
 public:
  DenseLayer(int in, int out, Activation activation);

  int in() const { return static_cast<int>(W.rows()); }
  int out() const { return static_cast<int>(W.cols()); }
  Shape output_shape() const { return {out(), 1, 1}; }  // a vector of `out` features

  void initialize(Init init, Rng& rng);

  // Training forward: Z = X·W + b, A = f(Z); keeps X, Z and A for backward.
  // X: (batch × in) and must outlive the backward call; returns A: (batch × out).
  // With skip_zero_inputs, Z is summed over the non-zero inputs only where that is faster
  // (dense_forward_sparse_input in kernels.hpp: a first layer over pixels, with few neurons).
  // A large layer (kSplitWork multiply-adds or more) computes Z with our product (gemm.hpp), cut
  // into kShares shares by columns of Z (neurons), run on `pool`'s threads when given one; the
  // shares depend on the sizes alone.
  const Matrix& forward(const Matrix& X, WorkerPool* pool = nullptr);

  // Backward, given dA = ∂loss/∂A (batch × out):
  //   dZ = dA ⊙ f′(Z)                 (batch × out)
  //   dW = Xᵀ·dZ                      (in × out)
  //   db = Σ_rows dZ                  (1 × out)
  //   dX = dZ·Wᵀ                      (batch × in), only when wanted: the first layer's is unused
  // Returns dX (empty when not computed). A large layer splits dW by rows and dX by columns (both: inputs) into
  // kShares shares that depend on the sizes alone, so the number of threads changes no bit.
  const Matrix& backward(const Matrix& dA, bool compute_dX, WorkerPool* pool = nullptr);

  // Inference forward into a caller's buffer; keeps nothing, so it is safe to call concurrently.
  void infer(const Matrix& X, Matrix& A) const;
  // Keeps a copy of W with each input's weights W(k, ·) contiguous, for every infer to come: a
  // drawing or two at a time is then summed over its non-zero inputs only,
  //   Z(i, ·) = b + Σ_{k : X(i, k) ≠ 0} X(i, k)·W(k, ·),
  // reading those rows of W alone. After ReLU and pooling most inputs are 0 (61% of the built-in
  // model's 1,024 into fc1 on MNIST test), so that reads 0.4 of W's 1 MB instead of all of it:
  // the whole product, for one drawing, is memory-bound. Only for a layer whose W and b will not
  // change again (fold_for_prediction's layers, which are const): infer would not see a change.
  void pack_for_inference();

  Activation activation;
  WeightMatrix W;   // (in × out): column j holds the weights into neuron j
  RowVector b;      // (1 × out)
  WeightMatrix dW;  // ∂loss/∂W (in × out), set by backward
  RowVector db;  // ∂loss/∂b (1 × out), set by backward
  bool skip_zero_inputs = true;  // false: always the dense product (tests and benchmarks compare)

  // The split: shares enough for the cores we have; only products of at least kSplitWork
  // multiply-adds (batch·in·out) are split, below that handing out the shares costs more than it saves.
  static constexpr int kShares = 4;
  static constexpr long kSplitWork = 4'000'000;

 private:
  bool splits(Eigen::Index batch) const;  // whether this batch's products are cut into shares
  const Matrix* X_ = nullptr;  // the input of the last forward
  std::shared_ptr<const Matrix> inference_rows_;  // W row by row (in × out, row-major), or null
  Matrix Z_, A_, dZ_, dX_;     // workspaces, sized once per batch shape and reused
  SparseInputWorkspace sparse_;
  PackedA X_packed_, dZt_packed_, dZ_packed_;  // the split products' A, packed once for all shares
  PackBuffer panels_[2 * kShares];             // each task's packed block of B
};

}  // namespace digits
