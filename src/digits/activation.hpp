// Hidden-layer activations, each forward next to its backward.
// The output layer's softmax is not here: it is fused with cross-entropy in loss.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>

#include "digits/tensor.hpp"

namespace digits {

enum class Activation { relu, sigmoid, tanh, identity };

std::string_view activation_name(Activation activation);
// Parses "relu", "sigmoid", "tanh" or "identity"; throws Error naming the bad word otherwise.
Activation parse_activation(std::string_view name);

// A = f(Z), element-wise.                                     Z, A: (batch × out)
void activation_forward(Activation activation, const Matrix& Z, Matrix& A);

// dZ = dA ⊙ f′(Z), element-wise, with f′ written through Z or A, whichever is cheaper:
//   relu:     f′ = [Z > 0]          (the kink at 0 takes the derivative 0)
//   sigmoid:  f′ = A ⊙ (1 − A)
//   tanh:     f′ = 1 − A²
//   identity: f′ = 1
// dA may alias dZ.                                            all: (batch × out)
void activation_backward(Activation activation, const Matrix& Z, const Matrix& A, const Matrix& dA,
                         Matrix& dZ);

// The same for rows first…first+count−1 only, into outputs already sized: a batch's shares
// (conv2d_layer.cpp) apply them on their own threads.
void activation_forward_rows(Activation activation, const Matrix& Z, Matrix& A, Eigen::Index first, Eigen::Index count);
void activation_backward_rows(Activation activation, const Matrix& Z, const Matrix& A, const Matrix& dA, Matrix& dZ,
                              Eigen::Index first, Eigen::Index count);

// The same for one value at a time, for loops that fuse f into other work (gemm.cpp's epilogue,
// batchnorm_layer.cpp): a template per activation, so that such a loop is compiled, and
// vectorised, once for each.
//   activate<f>(z)               = f(z)
//   activation_gradient<f>(a, d) = d · f′, with f′ through a = f(z) (for ReLU, z > 0 is a > 0)
template <Activation kF>
inline float activate(float z) {
  if constexpr (kF == Activation::relu) return std::max(z, 0.0f);
  if constexpr (kF == Activation::sigmoid) return 1.0f / (1.0f + std::exp(-z));
  if constexpr (kF == Activation::tanh) return std::tanh(z);
  return z;
}
template <Activation kF>
inline float activation_gradient(float a, float da) {
  // [a > 0]·dA rather than a choice, which the compiler keeps as a branch (da·0 may be −0: the same in every sum)
  if constexpr (kF == Activation::relu) return static_cast<float>(a > 0.0f) * da;
  if constexpr (kF == Activation::sigmoid) return da * a * (1.0f - a);
  if constexpr (kF == Activation::tanh) return da * (1.0f - a * a);
  return da;
}
inline float activate(Activation activation, float z) {
  switch (activation) {
    case Activation::relu: return activate<Activation::relu>(z);
    case Activation::sigmoid: return activate<Activation::sigmoid>(z);
    case Activation::tanh: return activate<Activation::tanh>(z);
    case Activation::identity: break;
  }
  return z;
}

}  // namespace digits
