// The two products that are almost all of a training step's work, each with a plain Eigen version
// and, where the CPU has AVX-512, a hand-tuned one beside it. tests/unit/test_kernels.cpp checks
// that they agree. With the seed recipe (784-50-20-10, batch 40) the first layer's forward
// Z = X·W and its weight gradient dW = Xᵀ·dZ are 94% of the arithmetic.
#pragma once

#include "digits/tensor.hpp"

namespace digits {

// Z = X·W + b.             X: (batch × in), W: (in × out), b: (1 × out), Z: (batch × out)
void dense_forward(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z);
// dW = Xᵀ·dZ.              X: (batch × in), dZ: (batch × out), dW: (in × out)
void dense_weight_gradient(const Matrix& X, const Matrix& dZ, WeightMatrix& dW);

// The plain versions: the math as Eigen expressions. Always available; the reference.
void dense_forward_plain(const Matrix& X, const WeightMatrix& W, const RowVector& b, Matrix& Z);
void dense_weight_gradient_plain(const Matrix& X, const Matrix& dZ, WeightMatrix& dW);

// Whether this build has the AVX-512 kernels (compiled with -march=native on a CPU that has them).
bool have_tuned_kernels();

}  // namespace digits
