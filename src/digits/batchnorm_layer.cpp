#include "digits/batchnorm_layer.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <string>

#include "digits/error.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

// Calls row(begin) for each sample's stretch of channel c of X (batch × C·P), sample by sample:
// values (n, c, 0 … P − 1) sit at columns c·P … c·P + P − 1 of row n (tensor.hpp), so the stretch
// is X.data()[begin … begin + P − 1]. One fixed order, so a channel's sums come out the same on
// any thread.
template <typename Row>
void for_channel(Eigen::Index batch, Eigen::Index columns, Eigen::Index positions, Eigen::Index c, Row row) {
  for (Eigen::Index n = 0; n < batch; ++n) row(n * columns + c * positions);
}

// Sums in double over a channel: eight running sums each, one for each position mod 8 of a
// sample's stretch, added up at the end in a fixed order. One sum makes every add wait for the one
// before it (4 cycles); eight independent ones fill a vector register, and the result is still the
// same on any thread.
struct Lanes {
  double sum[8] = {};
  double total() const { return ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7])); }
};

// f and its derivative read from the output a = f(y), one value at a time (activation.hpp), as a
// type per activation so that the channel loops below are compiled (and vectorised) once for each.
template <Activation kF>
struct Elementwise {
  static constexpr Activation kind = kF;
  static float forward(float y) { return activate<kF>(y); }
  static float backward(float a, float da) { return activation_gradient<kF>(a, da); }  // dY = dA ⊙ f′(Y)
};

template <typename Body>
void with_activation(Activation activation, Body body) {
  switch (activation) {
    case Activation::relu: return body(Elementwise<Activation::relu>{});
    case Activation::sigmoid: return body(Elementwise<Activation::sigmoid>{});
    case Activation::tanh: return body(Elementwise<Activation::tanh>{});
    case Activation::identity: return body(Elementwise<Activation::identity>{});
  }
}

// The loops over one sample's stretch of a channel (P values), each a function of its own with
// every number passed by value and the arrays marked as not overlapping: that is what lets the
// compiler turn them into vector code (ReLU's choice into a blend, not a branch that a map of
// half zeros mispredicts every other value).

// Σ x and Σ (x − μ)², on their lanes.
void add_values(const float* __restrict x, Eigen::Index positions, Lanes& lanes) {
  double l[8];
  std::copy(lanes.sum, lanes.sum + 8, l);
  Eigen::Index q = 0;
  for (; q + 8 <= positions; q += 8)
    for (int j = 0; j < 8; ++j) l[j] += x[q + j];
  for (; q < positions; ++q) l[q % 8] += x[q];
  std::copy(l, l + 8, lanes.sum);
}
void add_squares(const float* __restrict x, Eigen::Index positions, double mean, Lanes& lanes) {
  double l[8];
  std::copy(lanes.sum, lanes.sum + 8, l);
  Eigen::Index q = 0;
  for (; q + 8 <= positions; q += 8)
    for (int j = 0; j < 8; ++j) l[j] += (x[q + j] - mean) * (x[q + j] - mean);
  for (; q < positions; ++q) l[q % 8] += (x[q] - mean) * (x[q] - mean);
  std::copy(l, l + 8, lanes.sum);
}

// A = f(γ·X̂ + β), X̂ = (X − μ)/σ.
template <typename F>
void normalise(const float* __restrict x, float* __restrict a, Eigen::Index positions, double mean, double inv_sigma, float g, float b) {
  for (Eigen::Index q = 0; q < positions; ++q) {
    const auto x_hat = static_cast<float>((x[q] - mean) * inv_sigma);
    a[q] = F::forward(g * x_hat + b);
  }
}

// Σ dY and Σ dY ⊙ X̂ on their lanes, dY = dA ⊙ f′ (through A) and X̂ made again as the forward made it.
template <typename F>
void add_gradients(const float* __restrict x, const float* __restrict a, const float* __restrict da, Eigen::Index positions,
                   double mean, double inv_sigma, Lanes& dy_lanes, Lanes& dy_x_hat_lanes) {
  double l0[8], l1[8];
  std::copy(dy_lanes.sum, dy_lanes.sum + 8, l0);
  std::copy(dy_x_hat_lanes.sum, dy_x_hat_lanes.sum + 8, l1);
  Eigen::Index q = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  // The compiler does not vectorise this loop (two sums in double of terms made in float), so it
  // is written out: lane j of each register is l[j], eight positions at a time, the same
  // operations in the same order as the loop below, so the sums are the same bit for bit.
  __m512d sum_dy = _mm512_loadu_pd(l0), sum_dy_x_hat = _mm512_loadu_pd(l1);
  const __m512d mean_v = _mm512_set1_pd(mean), inv_sigma_v = _mm512_set1_pd(inv_sigma);
  for (; q + 8 <= positions; q += 8) {
    __m256 dy;
    if constexpr (F::kind == Activation::relu) {  // [a > 0]·dA
      const __mmask8 positive = _mm256_cmp_ps_mask(_mm256_loadu_ps(a + q), _mm256_setzero_ps(), _CMP_GT_OQ);
      dy = _mm256_mul_ps(_mm256_maskz_mov_ps(positive, _mm256_set1_ps(1.0f)), _mm256_loadu_ps(da + q));
    } else {
      alignas(32) float terms[8];
      for (int j = 0; j < 8; ++j) terms[j] = F::backward(a[q + j], da[q + j]);
      dy = _mm256_load_ps(terms);
    }
    const __m256 x_hat = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + q)), mean_v), inv_sigma_v));
    const __m512d dy_wide = _mm512_cvtps_pd(dy);
    sum_dy = _mm512_add_pd(sum_dy, dy_wide);
    sum_dy_x_hat = _mm512_add_pd(sum_dy_x_hat, _mm512_mul_pd(dy_wide, _mm512_cvtps_pd(x_hat)));
  }
  _mm512_storeu_pd(l0, sum_dy);
  _mm512_storeu_pd(l1, sum_dy_x_hat);
#endif
  for (; q + 8 <= positions; q += 8)
    for (int j = 0; j < 8; ++j) {
      const float dy = F::backward(a[q + j], da[q + j]);
      const auto x_hat = static_cast<float>((x[q + j] - mean) * inv_sigma);
      l0[j] += dy;
      l1[j] += static_cast<double>(dy) * static_cast<double>(x_hat);
    }
  for (; q < positions; ++q) {
    const float dy = F::backward(a[q], da[q]);
    const auto x_hat = static_cast<float>((x[q] - mean) * inv_sigma);
    l0[q % 8] += dy;
    l1[q % 8] += static_cast<double>(dy) * static_cast<double>(x_hat);
  }
  std::copy(l0, l0 + 8, dy_lanes.sum);
  std::copy(l1, l1 + 8, dy_x_hat_lanes.sum);
}

// dX = (γ/σ)·(dY − mean(dY) − X̂·mean(dY ⊙ X̂)).
template <typename F>
void input_gradient(const float* __restrict x, const float* __restrict a, const float* __restrict da, float* __restrict dx,
                    Eigen::Index positions, double mean, double inv_sigma, double scale, double mean_dy, double mean_dy_x_hat) {
  for (Eigen::Index q = 0; q < positions; ++q) {
    const float dy = F::backward(a[q], da[q]);
    const auto x_hat = static_cast<float>((x[q] - mean) * inv_sigma);
    dx[q] = static_cast<float>(scale * (dy - mean_dy - x_hat * mean_dy_x_hat));
  }
}

}  // namespace

// The passes over the maps are what batch norm costs (9.4 MB of them after the cnn network's first
// convolution, at batch 128): the forward reads X three times (Σ X, Σ (X − μ)², then X̂, Y and A
// made in one go and only A written); the backward reads dA, A and X twice (both sums in one pass,
// then dX), X̂ and dY made again on the fly instead of being stored and read back.
const Matrix& BatchNormLayer::forward(const Matrix& X, WorkerPool* pool) {
  assert(X.cols() == in());
  X_ = &X;
  const Eigen::Index batch = X.rows(), positions = input_.height * input_.width;
  const Eigen::Index m = batch * positions;  // values per channel
  A_.resize(batch, in());
  inv_sigma_.resize(channels());
  mean_.resize(channels());
  exact_inv_sigma_.resize(channels());
  const float* x = X.data();
  float* a = A_.data();
  const int shares = std::min(kShares, channels());
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(channels(), shares, share);
    for (Eigen::Index c = first; c < first + count; ++c) {
      // Two passes, the sums in double: Σ(X − μ)² after μ is known loses nothing to cancellation,
      // unlike Σ X² − m·μ² (a map of values near 100 would keep 3 digits of its variance).
      Lanes sum, squares;
      for_channel(batch, X.cols(), positions, c, [&](Eigen::Index begin) { add_values(x + begin, positions, sum); });
      const double mean = sum.total() / static_cast<double>(m);
      for_channel(batch, X.cols(), positions, c, [&](Eigen::Index begin) { add_squares(x + begin, positions, mean, squares); });
      const double var = squares.total() / static_cast<double>(m);  // biased: what normalises this batch
      const double inv_sigma = 1.0 / std::sqrt(var + kEpsilon);
      mean_[c] = mean;
      exact_inv_sigma_[c] = inv_sigma;
      inv_sigma_(c) = static_cast<float>(inv_sigma);
      const float g = gamma(0, c), b = beta(c);
      with_activation(activation, [&](auto f) {
        using F = decltype(f);
        for_channel(batch, X.cols(), positions, c, [&](Eigen::Index begin) { normalise<F>(x + begin, a + begin, positions, mean, inv_sigma, g, b); });
      });
      if (m > 1) {  // the running statistics, the variance unbiased: var·m/(m − 1)
        running_mean(c) = (1.0f - kMomentum) * running_mean(c) + kMomentum * static_cast<float>(mean);
        running_var(c) = (1.0f - kMomentum) * running_var(c) + kMomentum * static_cast<float>(squares.total() / static_cast<double>(m - 1));
      }
    }
  });
  ++batches_tracked;
  return A_;
}

const Matrix& BatchNormLayer::backward(const Matrix& dA, bool compute_dX, WorkerPool* pool) {
  assert(X_ && X_->rows() == dA.rows());
  const Eigen::Index batch = dA.rows(), positions = input_.height * input_.width;
  const double m = static_cast<double>(batch * positions);
  if (compute_dX) dX_.resize(batch, in());
  else dX_.resize(0, 0);
  dgamma.resize(1, channels());
  dbeta.resize(channels());
  const float* x = X_->data();
  const float* a = A_.data();
  const float* da = dA.data();
  float* dx = dX_.data();
  const int shares = std::min(kShares, channels());
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(channels(), shares, share);
    for (Eigen::Index c = first; c < first + count; ++c) {
      const double mean = mean_[c], inv_sigma = exact_inv_sigma_[c];
      with_activation(activation, [&](auto f) {
        using F = decltype(f);
        Lanes dy, dy_x_hat;  // Σ dY, Σ dY ⊙ X̂
        for_channel(batch, dA.cols(), positions, c, [&](Eigen::Index begin) {
          add_gradients<F>(x + begin, a + begin, da + begin, positions, mean, inv_sigma, dy, dy_x_hat);
        });
        const double sum_dy = dy.total(), sum_dy_x_hat = dy_x_hat.total();
        dbeta(c) = static_cast<float>(sum_dy);            // dβ = Σ dY
        dgamma(0, c) = static_cast<float>(sum_dy_x_hat);  // dγ = Σ dY ⊙ X̂
        if (!compute_dX) return;
        const double scale = static_cast<double>(gamma(0, c)) * inv_sigma_(c), mean_dy = sum_dy / m, mean_dy_x_hat = sum_dy_x_hat / m;
        for_channel(batch, dA.cols(), positions, c, [&](Eigen::Index begin) {
          input_gradient<F>(x + begin, a + begin, da + begin, dx + begin, positions, mean, inv_sigma, scale, mean_dy, mean_dy_x_hat);
        });
      });
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
