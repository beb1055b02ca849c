#include "digits/activation.hpp"

#include "digits/error.hpp"

namespace digits {

std::string_view activation_name(Activation activation) {
  switch (activation) {
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::identity: return "identity";
  }
  return "unknown";
}

Activation parse_activation(std::string_view name) {
  for (Activation a : {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::identity}) {
    if (name == activation_name(a)) return a;
  }
  throw Error("unknown activation '" + std::string(name) + "' (expected relu, sigmoid, tanh or identity)");
}

void activation_forward(Activation activation, const Matrix& Z, Matrix& A) {
  A.resize(Z.rows(), Z.cols());
  switch (activation) {
    case Activation::relu: A = Z.cwiseMax(0.0f); break;
    // σ(z) = 1 / (1 + e^−z); for very negative z, e^−z overflows to +inf and σ correctly becomes 0.
    case Activation::sigmoid: A = (1.0f + (-Z.array()).exp()).inverse().matrix(); break;
    case Activation::tanh: A = Z.array().tanh().matrix(); break;
    case Activation::identity: A = Z; break;
  }
}

void activation_backward(Activation activation, const Matrix& Z, const Matrix& A, const Matrix& dA,
                         Matrix& dZ) {
  dZ.resize(dA.rows(), dA.cols());
  switch (activation) {
    case Activation::relu: dZ = (Z.array() > 0.0f).select(dA, 0.0f); break;
    case Activation::sigmoid: dZ = (dA.array() * A.array() * (1.0f - A.array())).matrix(); break;
    case Activation::tanh: dZ = (dA.array() * (1.0f - A.array().square())).matrix(); break;
    case Activation::identity: dZ = dA; break;
  }
}

}  // namespace digits
