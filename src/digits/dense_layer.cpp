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
  // The same with our product (gemm.hpp), which beats Eigen's on these shapes (bench/README.md,
  // "Our own matrix product"): X packed once, then a share of the neurons (Z's columns) per task,
  // each share's tiles finished with + b and f in the product's epilogue.
  Z_.resize(batch, out());
  A_.resize(batch, out());
  pack_a(batch, in(), GemmOperand::row_major(X.data(), in()), X_packed_);
  run_tasks(pool, kShares, [&](int share) {
    const auto [first, count] = share_of(out(), kShares, share);
    gemm(X_packed_, count, GemmOperand::column_major(W.data() + first * in(), in()), Z_.data() + first, out(),
         {.column_bias = b.data() + first, .activated = A_.data() + first, .activated_stride = out(), .activation = activation},
         panels_[share]);
  });
  return A_;
}

const Matrix& DenseLayer::backward(const Matrix& dA, bool compute_dX, WorkerPool* pool) {
  const Eigen::Index batch = dA.rows();
  if (!splits(batch)) {
    activation_backward(activation, Z_, A_, dA, dZ_);  // dZ = dA ⊙ f′(Z)
  } else {
    dZ_.resize(batch, out());
    run_tasks(pool, kShares, [&](int share) {  // the same, a share of the rows each
      const auto [first, count] = share_of(batch, kShares, share);
      activation_backward_rows(activation, Z_, A_, dA, dZ_, first, count);
    });
  }
  db = dZ_.colwise().sum();  // db = Σ_rows dZ
  if (compute_dX) dX_.resize(batch, in());
  else dX_.resize(0, 0);
  if (!splits(batch)) {
    dense_weight_gradient(*X_, dZ_, dW);                // dW = Xᵀ·dZ
    if (compute_dX) dX_.noalias() = dZ_ * W.transpose();  // dX = dZ·Wᵀ
    return dX_;
  }
  // The same in shares with our product, one job: tasks 0…kShares−1 each take a share of dW's
  // rows (inputs), the next kShares a share of dX's columns (inputs again). A share needs the
  // whole of the product's A and a slice of its B, so A is packed once, before the job:
  //   dWᵀ (out × in) = dZᵀ·X: A = dZᵀ (out × batch), B = X's columns of the share
  //   dX (batch × in) = dZ·Wᵀ: A = dZ (batch × out), B = Wᵀ's columns of the share
  // dW is column-major, so its bytes are dWᵀ row-major. No share adds to another: no partial
  // sums, and every entry comes out the same whichever share computes it.
  dW.resize(in(), out());
  pack_a(out(), batch, GemmOperand::column_major(dZ_.data(), out()), dZt_packed_);
  if (compute_dX) pack_a(batch, out(), GemmOperand::row_major(dZ_.data(), out()), dZ_packed_);
  run_tasks(pool, compute_dX ? 2 * kShares : kShares, [&](int task) {
    const auto [first, count] = share_of(in(), kShares, task % kShares);
    if (task < kShares)
      gemm(dZt_packed_, count, GemmOperand::row_major(X_->data() + first, in()), dW.data() + first, in(), {}, panels_[task]);
    else
      gemm(dZ_packed_, count, GemmOperand::row_major(W.data() + first, in()), dX_.data() + first, in(), {}, panels_[task]);
  });
  return dX_;
}

void DenseLayer::infer(const Matrix& X, Matrix& A) const {
  // A few rows at most: beyond that the blocked product reads each weight once for many rows.
  // And many neurons: a row of a few (the 11 outputs) is too short for the sum by input to pay.
  constexpr Eigen::Index kRowsSummedByInput = 2;
  Matrix Z;
  if (inference_rows_ && X.rows() <= kRowsSummedByInput && out() > kFewNeurons) {
    const Matrix& W_rows = *inference_rows_;
    Z.resize(X.rows(), out());
    for (Eigen::Index i = 0; i < X.rows(); ++i) {
      Z.row(i) = b;
      for (Eigen::Index k = 0; k < in(); ++k)
        if (X(i, k) != 0) Z.row(i) += X(i, k) * W_rows.row(k);  // Z(i, ·) += X(i, k)·W(k, ·)
    }
  } else {
    dense_forward(X, W, b, Z);
  }
  activation_forward(activation, Z, A);
}

void DenseLayer::pack_for_inference() { inference_rows_ = std::make_shared<const Matrix>(W); }

}  // namespace digits
