#include "digits/conv2d_layer.hpp"

#include <cassert>
#include <cmath>
#include <string>

#include "digits/error.hpp"
#include "digits/kernels.hpp"

namespace digits {

int conv_output_side(int side, int kernel, int stride, int pad) {
  const int span = side + 2 * pad - kernel;
  return span < 0 ? 0 : span / stride + 1;
}

Conv2dLayer::Conv2dLayer(Shape input, int out_channels, int kernel, int stride, Padding padding, Activation activation)
    : activation(activation), input_(input), kernel_(kernel), stride_(stride), pad_(0), padding_(padding) {
  const std::string name = "conv" + std::to_string(kernel) + "x" + std::to_string(kernel) + "x" + std::to_string(out_channels);
  if (input.channels <= 0 || input.height <= 0 || input.width <= 0 || out_channels <= 0 || kernel <= 0)
    throw Error(name + ": a convolution needs positive sizes");
  if (stride != 1 && stride != 2) throw Error(name + ": the stride must be 1 or 2, not " + std::to_string(stride));
  if (padding == Padding::same) {
    if (kernel % 2 == 0) throw Error(name + ": \"same\" padding needs an odd kernel, to pad every side alike");
    pad_ = (kernel - 1) / 2;
  }
  output_ = {out_channels, conv_output_side(input.height, kernel, stride, pad_), conv_output_side(input.width, kernel, stride, pad_)};
  if (kernel > input.height + 2 * pad_ || kernel > input.width + 2 * pad_)
    throw Error(name + ": a " + std::to_string(kernel) + "×" + std::to_string(kernel) + " kernel is larger than its " +
                std::to_string(input.channels) + "×" + std::to_string(input.height) + "×" + std::to_string(input.width) + " input");
  W = WeightMatrix::Zero(input.channels * kernel * kernel, out_channels);
  b = RowVector::Zero(out_channels);
}

void Conv2dLayer::initialize(Init init, Rng& rng) {
  const auto fan_in = static_cast<float>(W.rows()), fan_out = static_cast<float>(W.cols() * kernel_ * kernel_);
  float scale = 0.01f;
  if (init == Init::he) scale = std::sqrt(2.0f / fan_in);
  if (init == Init::xavier) scale = std::sqrt(2.0f / (fan_in + fan_out));
  // Filter by filter, in the file's order [o][c][ky][kx].
  for (Eigen::Index o = 0; o < W.cols(); ++o)
    for (Eigen::Index k = 0; k < W.rows(); ++k) W(k, o) = rng.normal() * scale;
  b.setZero();
}

// ---------------------------------------------------------------------------------------------
// The plain reference: the definition as nested loops. Slow, and easy to check by hand.

void conv2d_forward_plain(const Conv2dLayer& layer, const Matrix& X, Matrix& Z) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  assert(X.cols() == in.size());
  Z.resize(X.rows(), out.size());
  for (Eigen::Index n = 0; n < X.rows(); ++n)
    for (int o = 0; o < out.channels; ++o)
      for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
          float z = layer.b(o);
          for (int c = 0; c < in.channels; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = y * s + ky - p, ix = x * s + kx - p;
                if (iy < 0 || iy >= in.height || ix < 0 || ix >= in.width) continue;  // zero padding
                z += layer.W((c * k + ky) * k + kx, o) * X(n, (c * in.height + iy) * in.width + ix);
              }
          Z(n, (o * out.height + y) * out.width + x) = z;
        }
}

void conv2d_backward_plain(const Conv2dLayer& layer, const Matrix& X, const Matrix& dZ, WeightMatrix& dW, RowVector& db,
                           Matrix& dX) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  dW = WeightMatrix::Zero(layer.W.rows(), layer.W.cols());
  db = RowVector::Zero(out.channels);
  dX = Matrix::Zero(X.rows(), in.size());
  for (Eigen::Index n = 0; n < X.rows(); ++n)
    for (int o = 0; o < out.channels; ++o)
      for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
          const float g = dZ(n, (o * out.height + y) * out.width + x);
          db(o) += g;
          for (int c = 0; c < in.channels; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = y * s + ky - p, ix = x * s + kx - p;
                if (iy < 0 || iy >= in.height || ix < 0 || ix >= in.width) continue;
                const Eigen::Index pixel = (c * in.height + iy) * in.width + ix, weight = (c * k + ky) * k + kx;
                dW(weight, o) += g * X(n, pixel);
                dX(n, pixel) += g * layer.W(weight, o);
              }
        }
}

// ---------------------------------------------------------------------------------------------
// The fast path: im2col turns the convolution into one matrix product (and its backward into two).

void im2col(const Conv2dLayer& layer, const Matrix& X, Matrix& columns) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  const Eigen::Index positions = out.height * out.width;
  columns.resize(X.rows() * positions, in.channels * k * k);
  for (Eigen::Index n = 0; n < X.rows(); ++n) {
    const float* image = X.data() + n * X.cols();
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x) {
        float* row = columns.data() + (n * positions + y * out.width + x) * columns.cols();
        for (int c = 0; c < in.channels; ++c)
          for (int ky = 0; ky < k; ++ky) {
            const int iy = y * s + ky - p;
            if (iy < 0 || iy >= in.height) {  // the kernel row hangs over the top or bottom edge
              for (int kx = 0; kx < k; ++kx) *row++ = 0.0f;
              continue;
            }
            const float* source = image + (c * in.height + iy) * in.width;
            for (int kx = 0; kx < k; ++kx) {
              const int ix = x * s + kx - p;
              *row++ = ix >= 0 && ix < in.width ? source[ix] : 0.0f;
            }
          }
      }
  }
}

void col2im(const Conv2dLayer& layer, const Matrix& dcolumns, Matrix& dX) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  const Eigen::Index positions = out.height * out.width, batch = dcolumns.rows() / positions;
  dX.resize(batch, in.size());
  dX.setZero();
  for (Eigen::Index n = 0; n < batch; ++n) {
    float* image = dX.data() + n * dX.cols();
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x) {
        const float* row = dcolumns.data() + (n * positions + y * out.width + x) * dcolumns.cols();
        for (int c = 0; c < in.channels; ++c)
          for (int ky = 0; ky < k; ++ky) {
            const int iy = y * s + ky - p;
            if (iy < 0 || iy >= in.height) {  // gradients of padding go nowhere
              row += k;
              continue;
            }
            float* target = image + (c * in.height + iy) * in.width;
            for (int kx = 0; kx < k; ++kx, ++row) {
              const int ix = x * s + kx - p;
              if (ix >= 0 && ix < in.width) target[ix] += *row;
            }
          }
      }
  }
}

namespace {

// The product gives one row per output position, (batch·H′·W′ × C′); a sample's row in NCHW order
// is channel-major. These two copies move between them:  Z[n, o·P + q] = Zr[n·P + q, o].
void positions_to_maps(const Matrix& Zr, Eigen::Index batch, Matrix& Z) {
  const Eigen::Index channels = Zr.cols(), positions = Zr.rows() / batch;
  Z.resize(batch, channels * positions);
  for (Eigen::Index n = 0; n < batch; ++n)
    for (Eigen::Index q = 0; q < positions; ++q)
      for (Eigen::Index o = 0; o < channels; ++o) Z(n, o * positions + q) = Zr(n * positions + q, o);
}

void maps_to_positions(const Matrix& Z, Eigen::Index channels, Matrix& Zr) {
  const Eigen::Index batch = Z.rows(), positions = Z.cols() / channels;
  Zr.resize(batch * positions, channels);
  for (Eigen::Index n = 0; n < batch; ++n)
    for (Eigen::Index o = 0; o < channels; ++o)
      for (Eigen::Index q = 0; q < positions; ++q) Zr(n * positions + q, o) = Z(n, o * positions + q);
}

}  // namespace

const Matrix& Conv2dLayer::forward(const Matrix& X) {
  assert(X.cols() == in());
  X_ = &X;
  im2col(*this, X, columns_);             // X̂                (batch·H′·W′ × C·k·k)
  dense_forward(columns_, W, b, Zr_);     // Zr = X̂·W + b      (batch·H′·W′ × C′)
  positions_to_maps(Zr_, X.rows(), Z_);   // Z                 (batch × C′·H′·W′)
  activation_forward(activation, Z_, A_); // A = f(Z)
  return A_;
}

const Matrix& Conv2dLayer::backward(const Matrix& dA, bool compute_dX) {
  activation_backward(activation, Z_, A_, dA, dZ_);       // dZ = dA ⊙ f′(Z)
  maps_to_positions(dZ_, output_.channels, dZr_);         // dZr                (batch·H′·W′ × C′)
  // dW = X̂ᵀ·dZr (C·k·k × C′), a sum over batch·H′·W′ rows: so many that Eigen's cache-blocked
  // product beats dense_weight_gradient, which streams all of X̂ once per six filters (the cnn
  // preset's step: 117 → 78 ms; bench_micro's BM_TrainStepConvPreset). It allocates nothing at the
  // presets' sizes (test_allocations.cpp).
  dW.resize(W.rows(), W.cols());
  dW.noalias() = columns_.transpose() * dZr_;
  db = dZr_.colwise().sum();                              // db = Σ_rows dZr
  if (compute_dX) {
    dcolumns_.resize(dZr_.rows(), W.rows());
    dcolumns_.noalias() = dZr_ * W.transpose();           // dX̂ = dZr·Wᵀ         (batch·H′·W′ × C·k·k)
    col2im(*this, dcolumns_, dX_);                        // dX = col2im(dX̂)    (batch × C·H·W)
  } else {
    dX_.resize(0, 0);
  }
  return dX_;
}

void Conv2dLayer::infer(const Matrix& X, Matrix& A) const {
  Matrix columns, Zr, Z;
  im2col(*this, X, columns);
  dense_forward(columns, W, b, Zr);
  positions_to_maps(Zr, X.rows(), Z);
  activation_forward(activation, Z, A);
}

}  // namespace digits
