#include "digits/kernels.hpp"

#include <algorithm>

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

void dense_forward_columns(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z, Eigen::Index first,
                           Eigen::Index count) {
  Z.middleCols(first, count).noalias() = X * W.middleCols(first, count);
  Z.middleCols(first, count).rowwise() += b.segment(first, count);
}

void dense_forward_sparse_input_plain(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z) {
  Z.resize(X.rows(), W.cols());
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    Z.row(i) = b;
    for (Eigen::Index k = 0; k < X.cols(); ++k)
      if (X(i, k) != 0) Z.row(i) += X(i, k) * W.row(k);  // Z(i, ·) += X(i, k)·W(k, ·)
  }
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

// Columns j_first…j_end−1 of dW, entries k0… of each.
template <int K, bool Partial = false>
void gradient_columns(const float* X, const float* dZ, float* dW, long batch, long in, long out, long k0, long j_first,
                      long j_end) {
  long j = j_first;
  for (; j + 6 <= j_end; j += 6) gradient_block<6, K, Partial>(X, dZ, dW, batch, in, out, j, k0);
  for (; j < j_end; ++j) gradient_block<1, K, Partial>(X, dZ, dW, batch, in, out, j, k0);
}


// --- The sparse-input forward (kernels.hpp). Three steps: list each block's non-zero columns,
// copy the listed groups of W's rows transposed, then sum over the lists.

// Transposes a 16×16 block held in 16 registers (row r becomes column r), in four rounds of
// shuffles that exchange ever larger pieces: single floats, pairs, groups of four, groups of eight.
void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  auto pairs = [](__m512 a, __m512 b, bool high) {
    const __m512d x = _mm512_castps_pd(a), y = _mm512_castps_pd(b);
    return _mm512_castpd_ps(high ? _mm512_unpackhi_pd(x, y) : _mm512_unpacklo_pd(x, y));
  };
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = pairs(t[4 * i], t[4 * i + 2], false);
    r[4 * i + 1] = pairs(t[4 * i], t[4 * i + 2], true);
    r[4 * i + 2] = pairs(t[4 * i + 1], t[4 * i + 3], false);
    r[4 * i + 3] = pairs(t[4 * i + 1], t[4 * i + 3], true);
  }
  for (int i = 0; i < 2; ++i)
    for (int q = 0; q < 4; ++q) {
      t[8 * i + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0x88);
      t[8 * i + 4 + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0xdd);
    }
  for (int q = 0; q < 8; ++q) {
    r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);
    r[8 + q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xdd);
  }
}

// Lists, for rows i0…i0+R−1, the columns with a non-zero value in some of them; marks their groups
// of 16 in `used`. Returns how many it listed.
template <int R>
int list_nonzero_columns(const float* X, long in, long i0, std::int32_t* columns, std::uint8_t* used) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int count = 0;
  for (long k = 0; k < in; k += 16) {
    const __mmask16 lanes = first_lanes(in - k);
    __m512i any = _mm512_setzero_si512();
    for (int r = 0; r < R; ++r) any = _mm512_or_si512(any, _mm512_maskz_loadu_epi32(lanes, X + (i0 + r) * in + k));
    // Bit patterns, so −0.0f counts as non-zero: harmless, it only lists a column that adds 0.
    const __mmask16 nonzero = _mm512_test_epi32_mask(any, any);
    _mm512_storeu_si512(columns + count, _mm512_maskz_compress_epi32(nonzero, _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(k)))));
    count += __builtin_popcount(nonzero);
    used[k / 16] |= nonzero != 0;
  }
  return count;
}

// One block of R rows: Z(i, ·) = b + Σ over the block's listed k of X(i, k)·W(k, ·), the 64 outputs
// of each row in four registers, each listed W row loaded once for all R rows.
template <int R>
void sparse_input_block(const float* X, const float* W_rows, const float* b, float* Z, long in, long out, long i0,
                        const std::int32_t* columns, int count) {
  __m512 sum[R][4];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4; ++q) sum[r][q] = _mm512_setzero_ps();
  for (int t = 0; t < count; ++t) {
    const long k = columns[t];
    __m512 w[4];
    for (int q = 0; q < 4; ++q) w[q] = _mm512_loadu_ps(W_rows + k * 64 + 16 * q);
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(X[(i0 + r) * in + k]);
      for (int q = 0; q < 4; ++q) sum[r][q] = _mm512_fmadd_ps(x, w[q], sum[r][q]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < 4 && 16 * q < out; ++q) {
      const __mmask16 lanes = first_lanes(out - 16 * q);
      const __m512 z = _mm512_add_ps(sum[r][q], _mm512_maskz_loadu_ps(lanes, b + 16 * q));
      _mm512_mask_storeu_ps(Z + (i0 + r) * out + 16 * q, lanes, z);
    }
}

template <int R>
void sparse_input_rows(const float* X, const float* W_rows, const float* b, float* Z, long in, long out, long i0, int rows,
                       const std::int32_t* columns, int count) {
  if constexpr (R > 1) {
    if (rows < R) return sparse_input_rows<R - 1>(X, W_rows, b, Z, in, out, i0, rows, columns, count);
  }
  sparse_input_block<R>(X, W_rows, b, Z, in, out, i0, columns, count);
}

template <int R>
int list_rows(const float* X, long in, long i0, int rows, std::int32_t* columns, std::uint8_t* used) {
  if constexpr (R > 1) {
    if (rows < R) return list_rows<R - 1>(X, in, i0, rows, columns, used);
  }
  return list_nonzero_columns<R>(X, in, i0, columns, used);
}

}  // namespace

void dense_forward(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z) {
  // Too short a sum to pay for the reductions, or so many neurons that Eigen's blocked product is
  // faster: it keeps a panel of W in cache for all the rows, where this kernel streams the whole
  // of W again for every 5 rows (best's 2.4 MB W: 2.3× slower on 128×784 by 784×768; about even
  // at the seed recipe's 40×784 by 784×50, where this kernel is also the sparse path's fallback).
  if (X.cols() < 64 || W.cols() > kFewNeurons) return dense_forward_plain(X, W, b, Z);
  Z.resize(X.rows(), W.cols());
  const long in = X.cols(), out = W.cols(), batch = X.rows();
  long i = 0;
  for (; i + 5 <= batch; i += 5) forward_rows<5, 5>(X.data(), W.data(), b.data(), Z.data(), in, out, i);
  for (; i < batch; ++i) forward_rows<1, 5>(X.data(), W.data(), b.data(), Z.data(), in, out, i);
}

void dense_weight_gradient(const Matrix& X, const Matrix& dZ, WeightMatrix& dW) {
  if (X.cols() < 64) return dense_weight_gradient_plain(X, dZ, dW);
  dW.resize(X.cols(), dZ.cols());
  dense_weight_gradient_columns(X, dZ, dW, 0, dZ.cols());
}

void dense_weight_gradient_columns(const Matrix& X, const Matrix& dZ, WeightMatrix& dW, Eigen::Index first,
                                   Eigen::Index count) {
  const long batch = X.rows(), in = X.cols(), out = dZ.cols(), end = first + count;
  if (in < 64) {
    dW.middleCols(first, count).noalias() = X.transpose() * dZ.middleCols(first, count);
    return;
  }
  // An aligned group of 16 columns of X that is zero in every row (16 pixels dark in the whole
  // batch: 12% of the groups in the seed recipe's batches of 40, though 40% of single pixels are)
  // has dW = 0 there: written as such, without the sums. The sums would give exactly +0 too, so
  // skipping them changes no bit.
  auto lit = [&](long k) {
    __m512i any = _mm512_setzero_si512();
    for (long i = 0; i < batch; ++i) any = _mm512_or_si512(any, _mm512_loadu_si512(X.data() + i * in + k));
    return _mm512_test_epi32_mask(any, any) != 0;
  };
  long k = 0;
  bool lit_here = in >= 16 && lit(0);
  while (k + 16 <= in) {
    const bool lit_next = k + 32 <= in && lit(k + 16);
    if (!lit_here) {
      for (long j = first; j < end; ++j) _mm512_storeu_ps(dW.data() + j * in + k, _mm512_setzero_ps());
      k += 16;
      lit_here = lit_next;
    } else if (lit_next) {
      gradient_columns<2>(X.data(), dZ.data(), dW.data(), batch, in, out, k, first, end);
      k += 32;
      lit_here = k + 16 <= in && lit(k);
    } else {
      gradient_columns<1>(X.data(), dZ.data(), dW.data(), batch, in, out, k, first, end);
      k += 16;
      lit_here = lit_next;
    }
  }
  if (k < in) gradient_columns<1, true>(X.data(), dZ.data(), dW.data(), batch, in, out, k, first, end);
}


bool dense_forward_sparse_input(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z,
                                SparseInputWorkspace& workspace) {
  const long batch = X.rows(), in = X.cols(), out = W.cols();
  if (out > 64 || batch < 16 || in < 64) {
    dense_forward(X, W, b, Z);
    return false;
  }
  const long groups = (in + 15) / 16, blocks = (batch + kSparseRows - 1) / kSparseRows;
  // Sized once for a shape; resize keeps the memory afterwards, so training allocates nothing.
  workspace.columns.resize(static_cast<std::size_t>(blocks * groups * 16 + 16));
  workspace.starts.resize(static_cast<std::size_t>(blocks + 1));
  workspace.used.assign(static_cast<std::size_t>(groups), 0);
  workspace.W_rows.resize(static_cast<std::size_t>(groups * 16 * 64));
  // 1. Each block's list of columns.
  long listed = 0;
  for (long block = 0; block < blocks; ++block) {
    const long i0 = block * kSparseRows;
    const int rows = static_cast<int>(std::min<long>(kSparseRows, batch - i0));
    workspace.starts[static_cast<std::size_t>(block)] = static_cast<std::int32_t>(listed);
    listed += list_rows<kSparseRows>(X.data(), in, i0, rows, workspace.columns.data() + listed, workspace.used.data());
  }
  workspace.starts[static_cast<std::size_t>(blocks)] = static_cast<std::int32_t>(listed);
  // Lists longer than half the columns: the dense product is faster (bench_micro's
  // BM_FirstLayerForwardSeed: the `fast` preset's distorted digits were slower sparse; raw MNIST
  // batches of 40 list 43% of the pixels on average, at most 47%).
  if (2 * listed > blocks * in) {
    dense_forward(X, W, b, Z);
    return false;
  }
  // 2. W's rows that some list names, transposed 16×16 at a time, zeros beyond `out`.
  float* W_rows = workspace.W_rows.data();
  for (long g = 0; g < groups; ++g) {
    if (!workspace.used[static_cast<std::size_t>(g)]) continue;
    const long k0 = 16 * g;
    const __mmask16 lanes = first_lanes(in - k0);
    for (long j0 = 0; j0 < 64; j0 += 16) {
      __m512 block[16];
      for (int c = 0; c < 16; ++c)
        block[c] = j0 + c < out ? _mm512_maskz_loadu_ps(lanes, W.data() + (j0 + c) * in + k0) : _mm512_setzero_ps();
      transpose16(block);
      for (int q = 0; q < 16 && k0 + q < in; ++q) _mm512_storeu_ps(W_rows + (k0 + q) * 64 + j0, block[q]);
    }
  }
  // 3. The sums over the lists.
  Z.resize(batch, out);
  for (long block = 0; block < blocks; ++block) {
    const long i0 = block * kSparseRows;
    const int rows = static_cast<int>(std::min<long>(kSparseRows, batch - i0));
    const std::int32_t first = workspace.starts[static_cast<std::size_t>(block)];
    sparse_input_rows<kSparseRows>(X.data(), W_rows, b.data(), Z.data(), in, out, i0, rows, workspace.columns.data() + first,
                                   workspace.starts[static_cast<std::size_t>(block + 1)] - first);
  }
  return true;
}

#else

bool have_tuned_kernels() { return false; }
void dense_weight_gradient_columns(const Matrix& X, const Matrix& dZ, WeightMatrix& dW, Eigen::Index first,
                                   Eigen::Index count) {
  dW.middleCols(first, count).noalias() = X.transpose() * dZ.middleCols(first, count);
}
bool dense_forward_sparse_input(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z, SparseInputWorkspace&) {
  dense_forward_plain(X, W, b, Z);
  return false;
}
void dense_forward(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z) { dense_forward_plain(X, W, b, Z); }
void dense_weight_gradient(const Matrix& X, const Matrix& dZ, WeightMatrix& dW) { dense_weight_gradient_plain(X, dZ, dW); }

#endif

}  // namespace digits
