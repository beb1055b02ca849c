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

bool DenseLayer::splits(Eigen::Index batch) const {
  return static_cast<long>(batch) * in() * out() >= kSplitWork && batch >= kShares;
}

const Matrix& DenseLayer::forward(const Matrix& X, WorkerPool* pool) {
  X_ = &X;
  const Eigen::Index batch = X.rows();
  if (!splits(batch)) {
    // Z = X·W + b    (batch × in)·(in × out), b broadcast over the batch
    if (skip_zero_inputs) dense_forward_sparse_input(X, W, b, Z_, sparse_);
    else dense_forward(X, W, b, Z_);
    activation_forward(activation, Z_, A_);
    return A_;
  }
  Z_.resize(batch, out());
  A_.resize(batch, out());
  run_tasks(pool, kShares, [&](int share) {  // the same, a share of the neurons (Z's columns) at a time
    const auto [first, count] = share_of(out(), kShares, share);
    dense_forward_columns(X, W, b, Z_, first, count);
  });
  run_tasks(pool, kShares, [&](int share) {  // then f(Z), a share of the rows at a time
    const auto [first, count] = share_of(batch, kShares, share);
    activation_forward_rows(activation, Z_, A_, first, count);
  });
  return A_;
}

const Matrix& DenseLayer::backward(const Matrix& dA, bool compute_dX, WorkerPool* pool) {
  activation_backward(activation, Z_, A_, dA, dZ_);  // dZ = dA ⊙ f′(Z)
  db = dZ_.colwise().sum();                          // db = Σ_rows dZ
  const Eigen::Index batch = dA.rows();
  if (compute_dX) dX_.resize(batch, in());
  else dX_.resize(0, 0);
  if (!splits(batch)) {
    dense_weight_gradient(*X_, dZ_, dW);                // dW = Xᵀ·dZ
    if (compute_dX) dX_.noalias() = dZ_ * W.transpose();  // dX = dZ·Wᵀ
    return dX_;
  }
  // The same in shares, one job: tasks 0…kShares−1 each take a share of dW's columns (which needs
  // every row of X and dZ but nothing from the other shares: no partial sums to add up), the next
  // kShares a share of dX's columns (Eigen's product keeps its speed when cut by columns; by rows
  // it lost a third).
  dW.resize(in(), out());
  run_tasks(pool, compute_dX ? 2 * kShares : kShares, [&](int task) {
    if (task < kShares) {
      const auto [first, count] = share_of(out(), kShares, task);
      dense_weight_gradient_columns(*X_, dZ_, dW, first, count);
    } else {
      const auto [first, count] = share_of(in(), kShares, task - kShares);
      dX_.middleCols(first, count).noalias() = dZ_ * W.middleRows(first, count).transpose();
    }
  });
  return dX_;
}

void DenseLayer::infer(const Matrix& X, Matrix& A) const {
  Matrix Z;
  dense_forward(X, W, b, Z);
  activation_forward(activation, Z, A);
}

}  // namespace digits
