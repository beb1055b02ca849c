// Our own matrix product, C = A·B (+ C), in the manner of BLIS (Van Zee & van de Geijn 2015) and
// flame/how-to-optimize-gemm: both operands copied ("packed") into panels that the innermost loop
// reads in order, C made MR × NR at a time in registers by one small micro-kernel, and the loops
// around it cut so that each packed block stays in the cache level it is reused from. gemm.cpp
// tells the story next to the code; docs/how-it-works.md, "Our own matrix product", draws it.
//
// Shapes: A (m × k), B (k × n), C (m × n) row-major with row stride ldc. The operands may be stored
// any way round (a transposed matrix is the same matrix with its strides swapped), or made on the
// fly by a packing function: that is how conv2d_layer.cpp multiplies by im2col's columns without
// ever writing the column matrix (an implicit GEMM).
//
// The epilogue runs on each tile of C right after its last multiply-adds, while it is in L1:
//   C = A·B + row_bias (per row) + column_bias (per column), and F = f(C) beside it when asked.
// gemm_plain is the definition as three loops, the tests' oracle.
#pragma once

#include <cstddef>
#include <memory>

#include "digits/activation.hpp"

namespace digits {

// A block of an operand to pack, in the terms both operands share: `across` is the direction the
// panels are cut in (A's rows, B's columns), `along` the sum's index k (A's columns, B's rows).
// The packed form: panel p holds `along_count` groups of `width` values, group kk being
//   to[(p·along_count + kk)·width + r] = value(across_first + p·width + r, along_first + kk),
// zeros for r beyond across_count in the last panel (so the micro-kernel never tests an edge).
struct PackBlock {
  long across_first, across_count;
  long along_first, along_count;
  int width;
};

// Packs `count` lines that lie along the sum's index, each `length` floats in a row in memory, into
// groups of `width`: to[p·width + r] = lines[r][p], zeros for r from count up to width. Reading a
// line along its length and writing it across the groups is a transpose; with AVX2 it is made
// 8 × 8 numbers at a time in registers (gemm.cpp). A packing function may call it for any stretch
// of its block whose lines are contiguous: conv2d_layer.cpp does for a row of output positions.
void pack_lines(const float* const* lines, long count, long width, long length, float* to);

// One operand of a product. Stored: element (i, j) at data[i·row_stride + j·column_stride].
// Made on the fly: pack(context, block, to) writes `block` in the packed form above.
struct GemmOperand {
  const float* data = nullptr;
  long row_stride = 0, column_stride = 0;
  void (*pack)(const void* context, const PackBlock& block, float* to) = nullptr;
  const void* context = nullptr;

  static GemmOperand row_major(const float* data, long stride) { return {data, stride, 1}; }
  static GemmOperand column_major(const float* data, long stride) { return {data, 1, stride}; }
};

// What happens to each tile of C after its sums: see the top of the file.
struct GemmEpilogue {
  bool accumulate = false;             // C += A·B (the bias and f then apply to the whole)
  const float* row_bias = nullptr;     // m values: C(i, j) += row_bias[i]
  const float* column_bias = nullptr;  // n values: C(i, j) += column_bias[j]
  float* activated = nullptr;          // F(i, j) = f(C(i, j)), row stride activated_stride; F may be
                                       // C itself (the same pointer and stride): C = f(C) in place
  long activated_stride = 0;
  Activation activation = Activation::identity;
};

// A 64-byte aligned float buffer that only grows: sized once, reused, so training allocates nothing.
// A copy starts empty: it holds scratch space, never state (layers that own one stay copyable).
class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) {}
  PackBuffer& operator=(const PackBuffer&) { return *this; }
  PackBuffer(PackBuffer&&) = default;
  PackBuffer& operator=(PackBuffer&&) = default;
  float* reserve(std::size_t floats);  // at least `floats`, the old contents lost when it grows
  const float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
  std::size_t size_ = 0;
};

// A whole A (m × k) packed once, for several products with the same A: a layer's weights,
// multiplied by every sample of a share in turn.
struct PackedA {
  long m = 0, k = 0;
  PackBuffer buffer;
};
void pack_a(long m, long k, const GemmOperand& A, PackedA& packed);

// C = A·B with A already packed; `b_panels` holds one kc × nc block of B at a time.
void gemm(const PackedA& A, long n, const GemmOperand& B, float* C, long ldc, const GemmEpilogue& epilogue,
          PackBuffer& b_panels);

// The same, packing A first. A, B and C must not overlap.
struct GemmWorkspace {
  PackedA a;
  PackBuffer b;
};
void gemm(long m, long n, long k, const GemmOperand& A, const GemmOperand& B, float* C, long ldc,
          const GemmEpilogue& epilogue, GemmWorkspace& workspace);

// The definition, three loops, each sum in double: C(i, j) = Σ_p A(i, p)·B(p, j), then the epilogue.
// For stored operands only.
void gemm_plain(long m, long n, long k, const GemmOperand& A, const GemmOperand& B, float* C, long ldc,
                const GemmEpilogue& epilogue);

// The micro-kernel's tile and the blocking this build uses (gemm.cpp says why).
struct GemmBlocking {
  int mr, nr;          // a tile of C in registers
  long kc, mc, nc;     // the sum's slice, A's block in L2, B's block in L3
  const char* kernel;  // "AVX-512", "AVX2" or "portable"
};
GemmBlocking gemm_blocking();

}  // namespace digits
