// The two products that are almost all of a training step's work, each with a plain Eigen version
// and, where the CPU has AVX-512, a hand-tuned one beside it. tests/unit/test_kernels.cpp checks
// that they agree. With the seed recipe (784-50-20-10, batch 40) the first layer's forward
// Z = X·W and its weight gradient dW = Xᵀ·dZ are 94% of the arithmetic.
#pragma once

#include <cstdint>
#include <vector>

#include "digits/tensor.hpp"

namespace digits {

// Z = X·W + b.             X: (batch × in), W: (in × out), b: (1 × out), Z: (batch × out)
void dense_forward(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z);
// dW = Xᵀ·dZ.              X: (batch × in), dZ: (batch × out), dW: (in × out)
void dense_weight_gradient(const Matrix& X, const Matrix& dZ, WeightMatrix& dW);

// The tuned forward is a hand-written kernel for layers of at most kFewNeurons neurons (the seed
// recipe's 50) and Eigen's product above that.
inline constexpr long kFewNeurons = 64;

// The same products over one share of the work, for threads to split them (dense_layer.cpp):
//   columns first…first+count−1 of Z = X·W + b        Z already (batch × out), Eigen's product
//   columns first…first+count−1 of dW = Xᵀ·dZ         dW already (in × out)
// A share's entries depend on the share's bounds alone, so fixed bounds give the same bits
// whichever thread computes them.
void dense_forward_columns(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z, Eigen::Index first,
                           Eigen::Index count);
void dense_weight_gradient_columns(const Matrix& X, const Matrix& dZ, WeightMatrix& dW, Eigen::Index first,
                                   Eigen::Index count);

// The plain versions: the math as Eigen expressions. Always available; the reference.
void dense_forward_plain(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z);
void dense_weight_gradient_plain(const Matrix& X, const Matrix& dZ, WeightMatrix& dW);

// The first layer's inputs are mostly zeros: 80.9% of MNIST's pixels are 0, and a product term
// X(i, k)·W(k, ·) with X(i, k) = 0 adds nothing. Written as the sum over the non-zero inputs:
//   Z(i, ·) = b + Σ_{k : X(i, k) ≠ 0} X(i, k)·W(k, ·)           (docs/how-it-works.md, "Making it fast")
// The tuned version lists, for each block of kSparseRows rows, the columns that are non-zero in
// some row of the block, copies W transposed (pixel k's `out` weights side by side) and sums only
// over the listed columns. Blocks share the copy and each listed W row serves every row of the block.
// It pays only when the lists are short and `out` is small: it needs out ≤ 64 and falls back to
// dense_forward when the lists hold more than half of the columns, or there are fewer than 16 rows.
// The results equal dense_forward's within float32 rounding (the terms are added in another order).
struct SparseInputWorkspace {
  std::vector<float> W_rows;            // (in × 64) row-major: row k is W(k, ·), zeros beyond `out`
  std::vector<std::int32_t> columns;    // the listed columns of every block, one list after another
  std::vector<std::int32_t> starts;     // block r's list is columns[starts[r] … starts[r + 1])
  std::vector<std::uint8_t> used;       // per group of 16 columns of X: listed in some block
};
inline constexpr int kSparseRows = 6;
// Z = X·W + b as above.   X: (batch × in), W: (in × out), b: (1 × out), Z: (batch × out)
// Returns whether it summed over the lists (false: it called dense_forward).
bool dense_forward_sparse_input(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z,
                                SparseInputWorkspace& workspace);
// The plain version: the sum over each row's non-zero inputs, one row at a time.
void dense_forward_sparse_input_plain(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z);

// Whether this build has the AVX-512 kernels (compiled with -march=native on a CPU that has them).
bool have_tuned_kernels();

}  // namespace digits
