// Our own matrix product (gemm.hpp), written the way flame/how-to-optimize-gemm builds it up and
// BLIS organises it (Goto & van de Geijn 2008, "Anatomy of high-performance matrix
// multiplication"; Van Zee & van de Geijn 2015, "BLIS"). The steps, from the triple loop:
//
// 1. The triple loop, C(i, j) += A(i, p)·B(p, j): each multiply-add loads two numbers, and a core
//    that can do 32 multiply-adds per cycle (two 16-lane FMAs) loads at most two vectors. Memory
//    sets the speed, not arithmetic. That is gemm_plain, the oracle.
// 2. Register blocking: make a tile of MR × NR entries of C at once, kept in registers for the whole
//    sum. Each step p loads MR numbers of A's column p and NR of B's row p, and does MR·NR
//    multiply-adds: an outer product. With AVX-512, MR = 8, NR = 32 (two vectors) gives 16 vector
//    accumulators, enough independent FMAs to cover their 4-cycle latency on two FMA pipes, and 10
//    loads for 16 FMAs. That is micro_kernel below, the only place with vector instructions.
// 3. Packing: the micro-kernel wants A's MR numbers of step p, then of step p + 1, … one after
//    another, and B's NR numbers likewise; in a row-major matrix they are a row apart. So A is
//    copied into panels of MR rows, column after column, and B into panels of NR columns, row
//    after row (PackBlock in gemm.hpp), padded with zeros to whole panels. The kernel then reads
//    both in order, every cache line whole, and never tests for an edge. Packing costs one pass over
//    each operand, paid back by the MR or NR times each packed number is used.
// 4. Cache blocking, each packed block sized for the level it is reused from:
//      kc: the slice of the sum a tile makes in one go. A micro-panel of B (kc × NR) is reused by
//          every micro-panel of A (mc/MR of them): it must stay in L1 (32 KB here), so
//          kc·NR·4 bytes ≤ half of L1: kc = 128 with NR = 32 (16 KB).
//      mc: the rows of A's block (mc × kc), reused by every micro-panel of B: it must stay in L2
//          (1 MB a core here): mc = 256 (128 KB), leaving room for B's block passing through.
//      nc: the columns of B's block (kc × nc), reused by every block of A: it lives in L3 (32 MB
//          shared): nc = 4096 (2 MB).
//    The five loops around the micro-kernel, outermost first: jc over n by nc, pc over k by kc
//    (pack B's block), ic over m by mc, jr over nc by NR, ir over mc by MR (the micro-kernel).
//    A is packed once, whole, before the loops (pack_a): a layer multiplies one A, its weights, by
//    many B's, and A's block for (ic, pc) is then a contiguous stretch of the packed A.
// 5. The epilogue: once a tile's last slice of the sum is in C, add the biases and apply f while
//    the tile is still in L1, instead of another pass over C from memory. The common cases (the
//    biases, ReLU in place) happen in the micro-kernel's registers before its one store: done as
//    a second pass over the tile they cost a quarter of the cnn network's first convolution (its
//    sum is only 25 long, so each tile is stored almost as often as it is multiplied).
#include "digits/gemm.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <new>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace digits {

namespace {

// ---- The vector instructions the micro-kernel needs, for the widest set this build may use
// (chosen at compile time from -march, as kernels.cpp is). Six operations; nothing else in this
// file depends on the instruction set.
#if defined(__AVX512F__)
constexpr const char* kKernel = "AVX-512";
using Vec = __m512;
constexpr int kLanes = 16;
constexpr int kMR = 8, kNR = 32;
inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec broadcast(float x) { return _mm512_set1_ps(x); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }  // a·b + c, one rounding
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec relu(Vec z) { return _mm512_max_ps(_mm512_setzero_ps(), z); }  // 0 > z ? 0 : z, as std::max(z, 0)
#elif defined(__AVX2__) && defined(__FMA__)
// 16 registers of 8 floats: a 6 × 16 tile takes 12 accumulators, 2 for B's row and 1 for A's
// number (the kernel of "how to optimize GEMM" for AVX2).
constexpr const char* kKernel = "AVX2";
using Vec = __m256;
constexpr int kLanes = 8;
constexpr int kMR = 6, kNR = 16;
inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec broadcast(float x) { return _mm256_set1_ps(x); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec relu(Vec z) { return _mm256_max_ps(_mm256_setzero_ps(), z); }
#else
// Any CPU: four floats as a plain struct; the compiler vectorises what it can. a·b + c rounds
// twice here, so this build's products differ from the others' in the last bits.
constexpr const char* kKernel = "portable";
struct Vec {
  float v[4];
};
constexpr int kLanes = 4;
constexpr int kMR = 4, kNR = 8;
inline Vec load(const float* p) { return {{p[0], p[1], p[2], p[3]}}; }
inline void store(float* p, Vec x) { std::copy(x.v, x.v + 4, p); }
inline Vec broadcast(float x) { return {{x, x, x, x}}; }
inline Vec fma(Vec a, Vec b, Vec c) { return {{a.v[0] * b.v[0] + c.v[0], a.v[1] * b.v[1] + c.v[1], a.v[2] * b.v[2] + c.v[2], a.v[3] * b.v[3] + c.v[3]}}; }
inline Vec add(Vec a, Vec b) { return {{a.v[0] + b.v[0], a.v[1] + b.v[1], a.v[2] + b.v[2], a.v[3] + b.v[3]}}; }
inline Vec relu(Vec z) { return {{std::max(z.v[0], 0.0f), std::max(z.v[1], 0.0f), std::max(z.v[2], 0.0f), std::max(z.v[3], 0.0f)}}; }
#endif

constexpr long kKC = 128, kMC = 256 / kMR * kMR, kNC = 4096;  // mc: whole panels of MR rows (252 for AVX2's 6)
static_assert(kMC % kMR == 0 && kNC % kNR == 0 && kNR % kLanes == 0);
constexpr int kMaxWidth = kMR > kNR ? kMR : kNR;  // the widest panel

long round_up(long x, long to) { return (x + to - 1) / to * to; }

// ---- Step 2: the micro-kernel. C's MR × NR tile at c (row stride ldc) = (add ? C : 0) + the sum
// over kc steps of an outer product: A's packed column (MR numbers at a) times B's packed row (NR
// numbers at b). The loops over r and v have constant bounds: the compiler unrolls them and keeps
// all MR·NR/kLanes sums in registers.
// After the last slice of the sum, the common cases of step 5's epilogue (the biases, and ReLU
// when F is C itself) are done here too, in registers before the one store, so the tile is not
// read again; the others go through finish_tile.
struct TileFinish {
  const float* row_bias = nullptr;     // the tile's MR row biases, or none
  const float* column_bias = nullptr;  // its NR column biases, or none
  bool relu = false;
};

void micro_kernel(long kc, const float* __restrict a, const float* __restrict b, float* c, long ldc, bool add_to_c,
                  const TileFinish* finish = nullptr) {
  constexpr int V = kNR / kLanes;
  Vec sum[kMR][V];
  for (int r = 0; r < kMR; ++r)
    for (int v = 0; v < V; ++v) sum[r][v] = broadcast(0.0f);
  for (long p = 0; p < kc; ++p, a += kMR, b += kNR) {
    Vec row[V];
    for (int v = 0; v < V; ++v) row[v] = load(b + v * kLanes);
    for (int r = 0; r < kMR; ++r) {
      const Vec x = broadcast(a[r]);
      for (int v = 0; v < V; ++v) sum[r][v] = fma(x, row[v], sum[r][v]);
    }
  }
  for (int r = 0; r < kMR; ++r)
    for (int v = 0; v < V; ++v) {
      float* to = c + r * ldc + v * kLanes;
      Vec z = add_to_c ? add(load(to), sum[r][v]) : sum[r][v];
      if (finish) {  // in finish_tile's order: the row's bias, the column's, then f
        if (finish->row_bias) z = add(z, broadcast(finish->row_bias[r]));
        if (finish->column_bias) z = add(z, load(finish->column_bias + v * kLanes));
        if (finish->relu) z = relu(z);
      }
      store(to, z);
    }
}

// ---- Step 3: packing. The 8 × 8 transpose behind pack_lines: row i of the block in register i
// becomes column i (the usual three rounds: interleave pairs of rows, then pairs of pairs, then
// swap the 128-bit halves).
#if defined(__AVX2__)
inline void transpose8(__m256 (&r)[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20), r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
}
#endif

}  // namespace

void pack_lines(const float* const* lines, long count, long width, long length, float* to) {
  long r = 0;
#if defined(__AVX2__)
  // Eight lines at a time; the last few lines of a panel (25 of 32: the 5 × 5 weights of the cnn
  // network's first layer) go with zero lines in the registers for the rest, which writes the
  // panel's padding in the same stores.
  for (; r < count && r + 8 <= width; r += 8) {
    const long here = std::min(8L, count - r);  // lines r … r + here − 1, then zeros
    long p = 0;
    for (; p + 8 <= length; p += 8) {
      __m256 block[8];
      for (int i = 0; i < 8; ++i) block[i] = i < here ? _mm256_loadu_ps(lines[r + i] + p) : _mm256_setzero_ps();
      transpose8(block);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(to + (p + i) * width + r, block[i]);
    }
    for (; p < length; ++p)
      for (int i = 0; i < 8; ++i) to[p * width + r + i] = i < here ? lines[r + i][p] : 0.0f;
  }
#endif
  for (; r < count; ++r)
    for (long p = 0; p < length; ++p) to[p * width + r] = lines[r][p];
  for (; r < width; ++r)
    for (long p = 0; p < length; ++p) to[p * width + r] = 0.0f;
}

namespace {

// A stored operand, `across` and `along` strides as in PackBlock.
void pack_stored(const float* data, long across_stride, long along_stride, const PackBlock& block, float* to) {
  const long w = block.width, kc = block.along_count;
  for (long first = 0; first < block.across_count; first += w, to += w * kc) {
    const long width = std::min(w, block.across_count - first);
    const float* from = data + (block.across_first + first) * across_stride + block.along_first * along_stride;
    if (across_stride == 1) {  // a group's values are neighbours in memory: copy each group
      for (long p = 0; p < kc; ++p) {
        const float* source = from + p * along_stride;
        float* group = to + p * w;
        for (long r = 0; r < width; ++r) group[r] = source[r];
        for (long r = width; r < w; ++r) group[r] = 0.0f;
      }
    } else if (along_stride == 1) {  // each line of the panel is in a row: a transpose
      const float* lines[kMaxWidth];
      for (long r = 0; r < width; ++r) lines[r] = from + r * across_stride;
      pack_lines(lines, width, w, kc, to);
    } else {  // read each line along its length, write it every w floats
      for (long r = 0; r < width; ++r) {
        const float* source = from + r * across_stride;
        for (long p = 0; p < kc; ++p) to[p * w + r] = source[p * along_stride];
      }
      for (long r = width; r < w; ++r)
        for (long p = 0; p < kc; ++p) to[p * w + r] = 0.0f;
    }
  }
}

// A's block (rows across, columns along) or B's (columns across, rows along).
void pack_operand(const GemmOperand& X, bool is_a, const PackBlock& block, float* to) {
  if (X.pack) return X.pack(X.context, block, to);
  if (is_a) pack_stored(X.data, X.row_stride, X.column_stride, block, to);
  else pack_stored(X.data, X.column_stride, X.row_stride, block, to);
}

// ---- Step 5: the epilogue on the rows × columns tile of C whose top left is (i0, j0).
void finish_tile(const GemmEpilogue& e, float* C, long ldc, long i0, long j0, long rows, long columns) {
  const float* column_bias = e.column_bias ? e.column_bias + j0 : nullptr;
  for (long i = i0; i < i0 + rows; ++i) {
    float* __restrict z = C + i * ldc + j0;
    // One simple loop per case, so that the compiler vectorises each.
    if (e.row_bias) {
      const float row = e.row_bias[i];
      for (long j = 0; j < columns; ++j) z[j] += row;
    }
    if (column_bias)
      for (long j = 0; j < columns; ++j) z[j] += column_bias[j];
    if (!e.activated) continue;
    if (e.activated == C && e.activated_stride == ldc) {  // F is C itself: f in place
      switch (e.activation) {
        case Activation::relu:
          for (long j = 0; j < columns; ++j) z[j] = std::max(z[j], 0.0f);
          break;
        case Activation::identity:
          break;
        default:
          for (long j = 0; j < columns; ++j) z[j] = activate(e.activation, z[j]);
      }
      continue;
    }
    float* __restrict f = e.activated + i * e.activated_stride + j0;
    switch (e.activation) {
      case Activation::relu:
        for (long j = 0; j < columns; ++j) f[j] = std::max(z[j], 0.0f);
        break;
      case Activation::identity:
        std::copy(z, z + columns, f);
        break;
      default:
        for (long j = 0; j < columns; ++j) f[j] = activate(e.activation, z[j]);
    }
  }
}

}  // namespace

float* PackBuffer::reserve(std::size_t floats) {
  if (floats > size_) {
    data_.reset(static_cast<float*>(::operator new(floats * sizeof(float), std::align_val_t(64))));
    size_ = floats;
  }
  return data_.get();
}

void PackBuffer::Free::operator()(float* p) const { ::operator delete(p, std::align_val_t(64)); }

GemmBlocking gemm_blocking() { return {kMR, kNR, kKC, kMC, kNC, kKernel}; }

// The packed A: for each slice pc of the sum (kKC columns; the last may be shorter), the panels of
// MR rows one after another. The slice starts at pc·m_padded, and panel q in it at q·MR·kc.
void pack_a(long m, long k, const GemmOperand& A, PackedA& packed) {
  packed.m = m;
  packed.k = k;
  const long m_padded = round_up(std::max(m, 1L), kMR);
  float* to = packed.buffer.reserve(static_cast<std::size_t>(m_padded * std::max(k, 1L)));
  for (long pc = 0; pc < k; pc += kKC) {
    const long kc = std::min(kKC, k - pc);
    pack_operand(A, /*is_a=*/true, {0, m, pc, kc, kMR}, to + pc * m_padded);
  }
}

void gemm(const PackedA& A, long n, const GemmOperand& B, float* C, long ldc, const GemmEpilogue& epilogue,
          PackBuffer& b_panels) {
  const long m = A.m, k = A.k, m_padded = round_up(std::max(m, 1L), kMR);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = 0 (or unchanged), then the epilogue
    for (long i = 0; i < m; ++i)
      if (!epilogue.accumulate) std::fill(C + i * ldc, C + i * ldc + n, 0.0f);
    finish_tile(epilogue, C, ldc, 0, 0, m, n);
    return;
  }
  float* Bp = b_panels.reserve(static_cast<std::size_t>(std::min(kKC, k) * round_up(std::min(kNC, n), kNR)));
  alignas(64) float tile[kMR * kNR];  // an edge tile, made whole here and copied in part
  for (long jc = 0; jc < n; jc += kNC) {
    const long nc = std::min(kNC, n - jc);
    for (long pc = 0; pc < k; pc += kKC) {
      const long kc = std::min(kKC, k - pc);
      pack_operand(B, /*is_a=*/false, {jc, nc, pc, kc, kNR}, Bp);  // B's block: kc × nc, to L3
      const bool add_to_c = pc > 0 || epilogue.accumulate, last = pc + kc == k;
      // Whole tiles finish inside the micro-kernel when the epilogue is one it does (TileFinish).
      const bool in_place = epilogue.activated == C && epilogue.activated_stride == ldc;
      const bool kernel_finishes =
          last && (!epilogue.activated || (in_place && (epilogue.activation == Activation::relu || epilogue.activation == Activation::identity)));
      const float* A_slice = A.buffer.data() + pc * m_padded;
      for (long ic = 0; ic < m; ic += kMC) {
        const long mc = std::min(kMC, m - ic);  // A's block: mc × kc, from L2
        for (long jr = 0; jr < nc; jr += kNR) {
          const float* b = Bp + jr * kc;        // B's micro-panel: kc × NR, from L1
          const long j0 = jc + jr, columns = std::min<long>(kNR, n - j0);
          for (long ir = 0; ir < mc; ir += kMR) {
            const long i0 = ic + ir, rows = std::min<long>(kMR, m - i0);
            const float* a = A_slice + i0 * kc;  // A's micro-panel: MR × kc
            float* c = C + i0 * ldc + j0;
            if (rows == kMR && columns == kNR) {
              if (kernel_finishes) {
                const TileFinish finish{epilogue.row_bias ? epilogue.row_bias + i0 : nullptr,
                                        epilogue.column_bias ? epilogue.column_bias + j0 : nullptr,
                                        epilogue.activated && epilogue.activation == Activation::relu};
                micro_kernel(kc, a, b, c, ldc, add_to_c, &finish);
                continue;
              }
              micro_kernel(kc, a, b, c, ldc, add_to_c);
            } else {
              micro_kernel(kc, a, b, tile, kNR, false);
              for (long r = 0; r < rows; ++r)
                for (long j = 0; j < columns; ++j) c[r * ldc + j] = (add_to_c ? c[r * ldc + j] : 0.0f) + tile[r * kNR + j];
            }
            if (last) finish_tile(epilogue, C, ldc, i0, j0, rows, columns);
          }
        }
      }
    }
  }
}

void gemm(long m, long n, long k, const GemmOperand& A, const GemmOperand& B, float* C, long ldc,
          const GemmEpilogue& epilogue, GemmWorkspace& workspace) {
  pack_a(m, k, A, workspace.a);
  gemm(workspace.a, n, B, C, ldc, epilogue, workspace.b);
}

void gemm_plain(long m, long n, long k, const GemmOperand& A, const GemmOperand& B, float* C, long ldc,
                const GemmEpilogue& epilogue) {
  assert(!A.pack && !B.pack);
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < n; ++j) {
      double sum = epilogue.accumulate ? C[i * ldc + j] : 0.0;
      for (long p = 0; p < k; ++p)
        sum += static_cast<double>(A.data[i * A.row_stride + p * A.column_stride]) * B.data[p * B.row_stride + j * B.column_stride];
      C[i * ldc + j] = static_cast<float>(sum);
    }
  finish_tile(epilogue, C, ldc, 0, 0, m, n);
}

}  // namespace digits
