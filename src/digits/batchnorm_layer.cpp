#include "digits/batchnorm_layer.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>

#include "digits/error.hpp"

namespace digits {

BatchNormLayer::BatchNormLayer(Shape input, Activation activation) : activation(activation), input_(input) {
  if (input.channels <= 0 || input.height <= 0 || input.width <= 0)
    throw Error("bn: batch normalization needs positive sizes, got " + std::to_string(input.channels) + "×" +
                std::to_string(input.height) + "×" + std::to_string(input.width));
  initialize();
}

void BatchNormLayer::initialize() {
  gamma = WeightMatrix::Ones(1, channels());
  beta = RowVector::Zero(channels());
  running_mean = RowVector::Zero(channels());
  running_var = RowVector::Ones(channels());
  batches_tracked = 0;
}

namespace {

// Calls visit(value) for every value of channel c of X (batch × C·P), sample by sample, position
// by position: value (n, c, q) sits at column c·P + q of row n (tensor.hpp). One fixed order, so
// a channel's sums come out the same on any thread.
template <typename Visit>
void for_channel(Eigen::Index batch, Eigen::Index columns, Eigen::Index positions, Eigen::Index c, Visit visit) {
  for (Eigen::Index n = 0; n < batch; ++n) {
    const Eigen::Index begin = n * columns + c * positions;
    for (Eigen::Index q = 0; q < positions; ++q) visit(begin + q);
  }
}

// Σ term(i) over channel c's values (the order of for_channel), in double: eight running sums, one
// for each position mod 8, added up at the end in a fixed order. One sum makes every add wait for
// the one before it (4 cycles); eight independent ones fill a vector register, and the result is
// still the same on any thread.
template <typename Term>
double channel_sum(Eigen::Index batch, Eigen::Index columns, Eigen::Index positions, Eigen::Index c, Term term) {
  double lanes[8] = {};
  for (Eigen::Index n = 0; n < batch; ++n) {
    const Eigen::Index begin = n * columns + c * positions;
    Eigen::Index q = 0;
    for (; q + 8 <= positions; q += 8)
      for (int l = 0; l < 8; ++l) lanes[l] += term(begin + q + l);
    for (; q < positions; ++q) lanes[q % 8] += term(begin + q);
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

}  // namespace

const Matrix& BatchNormLayer::forward(const Matrix& X, WorkerPool* pool) {
  assert(X.cols() == in());
  const Eigen::Index batch = X.rows(), positions = input_.height * input_.width;
  const Eigen::Index m = batch * positions;  // values per channel
  X_hat_.resize(batch, in());
  Y_.resize(batch, in());
  A_.resize(batch, in());
  inv_sigma_.resize(channels());
  const float* x = X.data();
  float* x_hat = X_hat_.data();
  float* y = Y_.data();
  const int shares = std::min(kShares, channels());
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(channels(), shares, share);
    for (Eigen::Index c = first; c < first + count; ++c) {
      // Two passes, the sums in double: Σ(X − μ)² after μ is known loses nothing to cancellation,
      // unlike Σ X² − m·μ² (a map of values near 100 would keep 3 digits of its variance).
      const double sum = channel_sum(batch, X.cols(), positions, c, [&](Eigen::Index i) { return double{x[i]}; });
      const double mean = sum / static_cast<double>(m);
      const double squares = channel_sum(batch, X.cols(), positions, c, [&](Eigen::Index i) { return (x[i] - mean) * (x[i] - mean); });
      const double var = squares / static_cast<double>(m);  // biased: what normalises this batch
      const double inv_sigma = 1.0 / std::sqrt(var + kEpsilon);
      inv_sigma_(c) = static_cast<float>(inv_sigma);
      const float g = gamma(0, c), b = beta(c);
      for_channel(batch, X.cols(), positions, c, [&](Eigen::Index i) {
        x_hat[i] = static_cast<float>((x[i] - mean) * inv_sigma);  // X̂ = (X − μ)/σ
        y[i] = g * x_hat[i] + b;                                     // Y = γ·X̂ + β
      });
      if (m > 1) {  // the running statistics, the variance unbiased: var·m/(m − 1)
        running_mean(c) = (1.0f - kMomentum) * running_mean(c) + kMomentum * static_cast<float>(mean);
        running_var(c) = (1.0f - kMomentum) * running_var(c) + kMomentum * static_cast<float>(squares / static_cast<double>(m - 1));
      }
    }
  });
  ++batches_tracked;
  const int row_shares = static_cast<int>(std::min<Eigen::Index>(kShares, batch));
  run_tasks(pool, row_shares, [&](int share) {  // A = f(Y), a share of the rows at a time
    const auto [first, count] = share_of(batch, row_shares, share);
    activation_forward_rows(activation, Y_, A_, first, count);
  });
  return A_;
}

const Matrix& BatchNormLayer::backward(const Matrix& dA, bool compute_dX, WorkerPool* pool) {
  const Eigen::Index batch = dA.rows(), positions = input_.height * input_.width;
  const double m = static_cast<double>(batch * positions);
  dY_.resize(batch, in());
  if (compute_dX) dX_.resize(batch, in());
  else dX_.resize(0, 0);
  dgamma.resize(1, channels());
  dbeta.resize(channels());
  const int row_shares = static_cast<int>(std::min<Eigen::Index>(kShares, batch));
  run_tasks(pool, row_shares, [&](int share) {  // dY = dA ⊙ f′(Y)
    const auto [first, count] = share_of(batch, row_shares, share);
    activation_backward_rows(activation, Y_, A_, dA, dY_, first, count);
  });
  const float* dy = dY_.data();
  const float* x_hat = X_hat_.data();
  float* dx = dX_.data();
  const int shares = std::min(kShares, channels());
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(channels(), shares, share);
    for (Eigen::Index c = first; c < first + count; ++c) {
      const double sum_dy = channel_sum(batch, dA.cols(), positions, c, [&](Eigen::Index i) { return double{dy[i]}; });  // dβ = Σ dY
      const double sum_dy_x_hat = channel_sum(batch, dA.cols(), positions, c, [&](Eigen::Index i) {  // dγ = Σ dY ⊙ X̂
        return static_cast<double>(dy[i]) * static_cast<double>(x_hat[i]);
      });
      dbeta(c) = static_cast<float>(sum_dy);
      dgamma(0, c) = static_cast<float>(sum_dy_x_hat);
      if (!compute_dX) continue;
      // dX = (γ/σ)·(dY − mean(dY) − X̂·mean(dY ⊙ X̂))
      const double scale = static_cast<double>(gamma(0, c)) * inv_sigma_(c), mean_dy = sum_dy / m, mean_dy_x_hat = sum_dy_x_hat / m;
      for_channel(batch, dA.cols(), positions, c,
                  [&](Eigen::Index i) { dx[i] = static_cast<float>(scale * (dy[i] - mean_dy - x_hat[i] * mean_dy_x_hat)); });
    }
  });
  return dX_;
}

const Matrix& BatchNormLayer::forward_frozen(const Matrix& X) {
  assert(X.cols() == in());
  const Eigen::Index batch = X.rows(), positions = input_.height * input_.width;
  X_hat_.resize(batch, in());
  Y_.resize(batch, in());
  A_.resize(batch, in());
  inv_sigma_.resize(channels());
  for (int c = 0; c < channels(); ++c) inv_sigma_(c) = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var(c)) + kEpsilon));
  for (Eigen::Index n = 0; n < batch; ++n) {
    for (int c = 0; c < channels(); ++c) {
      auto x_hat = X_hat_.row(n).segment(c * positions, positions).array();
      x_hat = (X.row(n).segment(c * positions, positions).array() - running_mean(c)) * inv_sigma_(c);  // X̂ = (X − μ)/σ
      Y_.row(n).segment(c * positions, positions).array() = gamma(0, c) * x_hat + beta(c);                   // Y = γ·X̂ + β
    }
  }
  activation_forward(activation, Y_, A_);  // A = f(Y)
  return A_;
}

const Matrix& BatchNormLayer::backward_frozen(const Matrix& dA, bool compute_dX) {
  const Eigen::Index batch = dA.rows(), positions = input_.height * input_.width;
  dY_.resize(batch, in());
  activation_backward_rows(activation, Y_, A_, dA, dY_, 0, batch);  // dY = dA ⊙ f′(Y)
  dgamma.setZero(1, channels());
  dbeta.setZero(channels());
  if (compute_dX) dX_.resize(batch, in());
  else dX_.resize(0, 0);
  for (Eigen::Index n = 0; n < batch; ++n) {
    for (int c = 0; c < channels(); ++c) {
      const auto dy = dY_.row(n).segment(c * positions, positions).array();
      dbeta(c) += dy.sum();                                                               // dβ = Σ dY
      dgamma(0, c) += (dy * X_hat_.row(n).segment(c * positions, positions).array()).sum();  // dγ = Σ dY ⊙ X̂
      if (compute_dX) dX_.row(n).segment(c * positions, positions).array() = gamma(0, c) * inv_sigma_(c) * dy;  // dX = (γ/σ)·dY
    }
  }
  return dX_;
}

void BatchNormLayer::inference_affine(RowVector& s, RowVector& t) const {
  s.resize(channels());
  t.resize(channels());
  for (int c = 0; c < channels(); ++c) {
    const double scale = static_cast<double>(gamma(0, c)) / std::sqrt(static_cast<double>(running_var(c)) + kEpsilon);
    s(c) = static_cast<float>(scale);                                           // s = γ/√(var + ε)
    t(c) = static_cast<float>(beta(c) - static_cast<double>(running_mean(c)) * scale);  // t = β − μ·s
  }
}

void BatchNormLayer::infer(const Matrix& X, Matrix& A) const {
  assert(X.cols() == in());
  RowVector s, t;
  inference_affine(s, t);
  const Eigen::Index positions = input_.height * input_.width;
  Matrix Y(X.rows(), X.cols());
  for (Eigen::Index n = 0; n < X.rows(); ++n)
    for (int c = 0; c < channels(); ++c)
      Y.row(n).segment(c * positions, positions) = (X.row(n).segment(c * positions, positions).array() * s(c) + t(c)).matrix();
  activation_forward(activation, Y, A);
}

namespace {

// W′(·, o) = W(·, o)·s_o and b′_o = (b_o − μ_o)·s_o + β_o, for W of either layout (column o is
// output channel o of a conv, neuron o of a dense layer).
void fold_into(const WeightMatrix& W, const RowVector& b, const BatchNormLayer& bn, WeightMatrix& folded_W, RowVector& folded_b) {
  if (W.cols() != bn.channels())
    throw Error("fold_batch_norm: the layer has " + std::to_string(W.cols()) + " outputs, the batch normalization " +
                std::to_string(bn.channels()) + " channels");
  RowVector s, t;
  bn.inference_affine(s, t);
  folded_W = W * s.asDiagonal();
  folded_b.resize(b.size());
  for (Eigen::Index o = 0; o < b.size(); ++o)
    folded_b(o) = static_cast<float>((static_cast<double>(b(o)) - bn.running_mean(o)) * s(o) + bn.beta(o));
}

}  // namespace

Conv2dLayer fold_batch_norm(const Conv2dLayer& layer, const BatchNormLayer& bn) {
  Conv2dLayer folded(layer.input_shape(), layer.output_shape().channels, layer.kernel(), layer.stride(), layer.padding(), bn.activation);
  fold_into(layer.W, layer.b, bn, folded.W, folded.b);
  return folded;
}

DenseLayer fold_batch_norm(const DenseLayer& layer, const BatchNormLayer& bn) {
  DenseLayer folded(layer.in(), layer.out(), bn.activation);
  fold_into(layer.W, layer.b, bn, folded.W, folded.b);
  folded.skip_zero_inputs = layer.skip_zero_inputs;
  return folded;
}

}  // namespace digits
