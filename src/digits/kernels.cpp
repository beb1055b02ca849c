#include "digits/kernels.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
// GCC 12's _mm512_reduce_add_ps starts from _mm512_undefined_ps and then warns that it is
// uninitialized (GCC bug 105593); the lanes it warns about are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace digits {

void dense_forward_plain(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z) {
  Z.resize(X.rows(), W.cols());
  Z.noalias() = X * W;
  Z.rowwise() += b;
}

void dense_weight_gradient_plain(const Matrix& X, const Matrix& dZ, WeightMatrix& dW) {
  dW.resize(X.cols(), dZ.cols());
  dW.noalias() = X.transpose() * dZ;
}

#if defined(__AVX512F__)

bool have_tuned_kernels() { return true; }

namespace {

// How the kernels see memory. X and dZ are row-major, so a sample's row is contiguous; W and dW
// are column-major, so neuron j's weights W(·, j) are contiguous. Both products then run along
// contiguous memory in the `in` direction, 16 floats (one 512-bit register) at a time; a
// mask covers the last, partial group when `in` is not a multiple of 16 (784 = 49 × 16 is).

__mmask16 first_lanes(long count) { return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1); }

// One block of the forward product: rows i0…i0+R−1 of Z, columns j0…j0+C−1, each entry the dot
// product of a row of X with a column of W. R·C accumulators stay in registers through the whole
// sum over `in`, and each pair of loaded vectors feeds R·C fused multiply-adds.
template <int R, int C>
void forward_block(const float* X, const float* W, const float* b, float* Z, long in, long out, long i0, long j0) {
  __m512 sum[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) sum[r][c] = _mm512_setzero_ps();
  // Full groups of 16 with plain loads (a masked load costs about twice as much here), then the
  // partial group, if any, with masked ones that read zeros beyond the end.
  auto accumulate = [&](__m512 (&x)[R], __m512 (&w)[C]) {
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) sum[r][c] = _mm512_fmadd_ps(x[r], w[c], sum[r][c]);
  };
  long k = 0;
  for (; k + 16 <= in; k += 16) {
    __m512 x[R], w[C];
    for (int r = 0; r < R; ++r) x[r] = _mm512_loadu_ps(X + (i0 + r) * in + k);
    for (int c = 0; c < C; ++c) w[c] = _mm512_loadu_ps(W + (j0 + c) * in + k);
    accumulate(x, w);
  }
  if (k < in) {
    const __mmask16 lanes = first_lanes(in - k);
    __m512 x[R], w[C];
    for (int r = 0; r < R; ++r) x[r] = _mm512_maskz_loadu_ps(lanes, X + (i0 + r) * in + k);
    for (int c = 0; c < C; ++c) w[c] = _mm512_maskz_loadu_ps(lanes, W + (j0 + c) * in + k);
    accumulate(x, w);
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) Z[(i0 + r) * out + j0 + c] = _mm512_reduce_add_ps(sum[r][c]) + b[j0 + c];
}

// Covers columns j0… of rows i0…i0+R−1 with blocks C wide, then single columns.
template <int R, int C>
void forward_rows(const float* X, const float* W, const float* b, float* Z, long in, long out, long i0) {
  long j = 0;
  for (; j + C <= out; j += C) forward_block<R, C>(X, W, b, Z, in, out, i0, j);
  for (; j < out; ++j) forward_block<R, 1>(X, W, b, Z, in, out, i0, j);
}

// One block of the weight gradient: columns j0…j0+C−1 of dW, entries k0…k0+16·K−1 of each, as
// Σ_i dZ(i, j)·X(i, k): every sample's row of X is loaded once and scaled by C broadcast dZ values.
// Partial is true only for the last group of 16 when `in` is not a multiple of 16: masked loads
// cost about twice as much as plain ones, so the full groups do without.
template <int C, int K, bool Partial = false>
void gradient_block(const float* X, const float* dZ, float* dW, long batch, long in, long out, long j0, long k0) {
  static_assert(!Partial || K == 1, "only a single group can be partial");
  const __mmask16 lanes = first_lanes(in - k0);
  __m512 sum[C][K];
  for (int c = 0; c < C; ++c)
    for (int q = 0; q < K; ++q) sum[c][q] = _mm512_setzero_ps();
  for (long i = 0; i < batch; ++i) {
    __m512 x[K];
    for (int q = 0; q < K; ++q)
      x[q] = Partial ? _mm512_maskz_loadu_ps(lanes, X + i * in + k0) : _mm512_loadu_ps(X + i * in + k0 + 16 * q);
    for (int c = 0; c < C; ++c) {
      const __m512 dz = _mm512_set1_ps(dZ[i * out + j0 + c]);
      for (int q = 0; q < K; ++q) sum[c][q] = _mm512_fmadd_ps(dz, x[q], sum[c][q]);
    }
  }
  for (int c = 0; c < C; ++c)
    for (int q = 0; q < K; ++q) {
      float* to = dW + (j0 + c) * in + k0 + 16 * q;
      if (Partial) _mm512_mask_storeu_ps(to, lanes, sum[c][q]);
      else _mm512_storeu_ps(to, sum[c][q]);
    }
}

template <int K, bool Partial = false>
void gradient_columns(const float* X, const float* dZ, float* dW, long batch, long in, long out, long k0) {
  long j = 0;
  for (; j + 6 <= out; j += 6) gradient_block<6, K, Partial>(X, dZ, dW, batch, in, out, j, k0);
  for (; j < out; ++j) gradient_block<1, K, Partial>(X, dZ, dW, batch, in, out, j, k0);
}

}  // namespace

void dense_forward(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z) {
  const long batch = X.rows(), in = X.cols(), out = W.cols();
  if (in < 64) return dense_forward_plain(X, W, b, Z);  // too short a sum to pay for the reductions
  Z.resize(batch, out);
  long i = 0;
  for (; i + 5 <= batch; i += 5) forward_rows<5, 5>(X.data(), W.data(), b.data(), Z.data(), in, out, i);
  for (; i < batch; ++i) forward_rows<1, 5>(X.data(), W.data(), b.data(), Z.data(), in, out, i);
}

void dense_weight_gradient(const Matrix& X, const Matrix& dZ, WeightMatrix& dW) {
  const long batch = X.rows(), in = X.cols(), out = dZ.cols();
  if (in < 64) return dense_weight_gradient_plain(X, dZ, dW);
  dW.resize(in, out);
  long k = 0;
  for (; k + 32 <= in; k += 32) gradient_columns<2>(X.data(), dZ.data(), dW.data(), batch, in, out, k);
  for (; k + 16 <= in; k += 16) gradient_columns<1>(X.data(), dZ.data(), dW.data(), batch, in, out, k);
  if (k < in) gradient_columns<1, true>(X.data(), dZ.data(), dW.data(), batch, in, out, k);
}

#else

bool have_tuned_kernels() { return false; }
void dense_forward(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z) { dense_forward_plain(X, W, b, Z); }
void dense_weight_gradient(const Matrix& X, const Matrix& dZ, WeightMatrix& dW) { dense_weight_gradient_plain(X, dZ, dW); }

#endif

}  // namespace digits
