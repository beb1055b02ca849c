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
  activation_forward_rows(activation, Z, A, 0, Z.rows());
}

void activation_forward_rows(Activation activation, const Matrix& Z, Matrix& A, Eigen::Index first, Eigen::Index count) {
  const auto z = Z.middleRows(first, count);
  auto a = A.middleRows(first, count);
  switch (activation) {
    case Activation::relu: a = z.cwiseMax(0.0f); break;
    // σ(z) = 1 / (1 + e^−z); for very negative z, e^−z overflows to +inf and σ correctly becomes 0.
    case Activation::sigmoid: a = (1.0f + (-z.array()).exp()).inverse().matrix(); break;
    case Activation::tanh: a = z.array().tanh().matrix(); break;
    case Activation::identity: a = z; break;
  }
}

void activation_backward(Activation activation, const Matrix& Z, const Matrix& A, const Matrix& dA,
                         Matrix& dZ) {
  dZ.resize(dA.rows(), dA.cols());
  activation_backward_rows(activation, Z, A, dA, dZ, 0, dA.rows());
}

void activation_backward_rows(Activation activation, const Matrix& Z, const Matrix& A, const Matrix& dA, Matrix& dZ,
                              Eigen::Index first, Eigen::Index count) {
  const auto z = Z.middleRows(first, count), a = A.middleRows(first, count), da = dA.middleRows(first, count);
  auto dz = dZ.middleRows(first, count);
  switch (activation) {
    case Activation::relu: dz = (z.array() > 0.0f).select(da, 0.0f); break;
    case Activation::sigmoid: dz = (da.array() * a.array() * (1.0f - a.array())).matrix(); break;
    case Activation::tanh: dz = (da.array() * (1.0f - a.array().square())).matrix(); break;
    case Activation::identity: dz = da; break;
  }
}

}  // namespace digits
