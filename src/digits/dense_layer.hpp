// A fully connected layer: Z = X·W + b, A = f(Z). Its forward and backward sit side by side in
// dense_layer.cpp; docs/how-it-works.md derives them.
#pragma once

#include "digits/activation.hpp"
#include "digits/random.hpp"
#include "digits/tensor.hpp"

namespace digits {

// How the weights start. The biases always start at zero.
enum class Init {
  ancestor,  // W ~ N(0, 1) × 0.01, the NumPy ancestor's choice
  he,        // W ~ N(0, 2/in): keeps ReLU activations' variance from layer to layer (He et al., 2015)
  xavier,    // W ~ N(0, 2/(in+out)): the same for tanh and sigmoid (Glorot & Bengio, 2010)
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
  const Matrix& forward(const Matrix& X);

  // Backward, given dA = ∂loss/∂A (batch × out):
  //   dZ = dA ⊙ f′(Z)                 (batch × out)
  //   dW = Xᵀ·dZ                      (in × out)
  //   db = Σ_rows dZ                  (1 × out)
  //   dX = dZ·Wᵀ                      (batch × in), only when wanted: the first layer's is unused
  // Returns dX (empty when not computed).
  const Matrix& backward(const Matrix& dA, bool compute_dX);

  // Inference forward into a caller's buffer; keeps nothing, so it is safe to call concurrently.
  void infer(const Matrix& X, Matrix& A) const;

  Activation activation;
  WeightMatrix W;   // (in × out): column j holds the weights into neuron j
  RowVector b;      // (1 × out)
  WeightMatrix dW;  // ∂loss/∂W (in × out), set by backward
  RowVector db;  // ∂loss/∂b (1 × out), set by backward

 private:
  const Matrix* X_ = nullptr;  // the input of the last forward
  Matrix Z_, A_, dZ_, dX_;     // workspaces, sized once per batch shape and reused
};

}  // namespace digits
