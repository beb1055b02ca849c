// Hidden-layer activations, each forward next to its backward.
// The output layer's softmax is not here: it is fused with cross-entropy in loss.hpp.
#pragma once

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

}  // namespace digits
