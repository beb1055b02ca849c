#include "digits/dense_layer.hpp"

#include <cmath>

#include "digits/error.hpp"
#include "digits/kernels.hpp"

namespace digits {

std::string_view init_name(Init init) {
  switch (init) {
    case Init::ancestor: return "ancestor";
    case Init::he: return "he";
    case Init::xavier: return "xavier";
  }
  return "unknown";
}

Init parse_init(std::string_view name) {
  for (Init i : {Init::ancestor, Init::he, Init::xavier}) {
    if (name == init_name(i)) return i;
  }
  throw Error("unknown initialisation '" + std::string(name) + "' (expected ancestor, he or xavier)");
}

DenseLayer::DenseLayer(int in, int out, Activation activation)
    : activation(activation), W(WeightMatrix::Zero(in, out)), b(RowVector::Zero(out)) {
  if (in <= 0 || out <= 0) throw Error("a dense layer needs positive sizes, got " + std::to_string(in) + "×" + std::to_string(out));
}

void DenseLayer::initialize(Init init, Rng& rng) {
  float scale = 0.01f;
  if (init == Init::he) scale = std::sqrt(2.0f / static_cast<float>(in()));
  if (init == Init::xavier) scale = std::sqrt(2.0f / static_cast<float>(in() + out()));
  // Row by row, so the draw order (and so the weights for a seed) does not depend on storage order.
  for (Eigen::Index i = 0; i < W.rows(); ++i)
    for (Eigen::Index j = 0; j < W.cols(); ++j) W(i, j) = rng.normal() * scale;
  b.setZero();
}

const Matrix& DenseLayer::forward(const Matrix& X) {
  X_ = &X;
  dense_forward(X, W, b, Z_);  // Z = X·W + b    (batch × in)·(in × out), b broadcast over the batch
  activation_forward(activation, Z_, A_);
  return A_;
}

const Matrix& DenseLayer::backward(const Matrix& dA, bool compute_dX) {
  activation_backward(activation, Z_, A_, dA, dZ_);  // dZ = dA ⊙ f′(Z)
  dense_weight_gradient(*X_, dZ_, dW);               // dW = Xᵀ·dZ
  db = dZ_.colwise().sum();                          // db = Σ_rows dZ
  if (compute_dX) {
    dX_.resize(dZ_.rows(), in());
    dX_.noalias() = dZ_ * W.transpose();             // dX = dZ·Wᵀ
  } else {
    dX_.resize(0, 0);
  }
  return dX_;
}

void DenseLayer::infer(const Matrix& X, Matrix& A) const {
  Matrix Z;
  dense_forward(X, W, b, Z);
  activation_forward(activation, Z, A);
}

}  // namespace digits
