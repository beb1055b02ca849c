#include "digits/loss.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace digits {

void softmax(const Matrix& Z, Matrix& P) {
  P.resize(Z.rows(), Z.cols());
  for (Eigen::Index i = 0; i < Z.rows(); ++i) {
    const float row_max = Z.row(i).maxCoeff();
    P.row(i) = (Z.row(i).array() - row_max).exp().matrix();
    P.row(i) /= P.row(i).sum();
  }
}

float softmax_cross_entropy(const Matrix& Z, std::span<const std::uint8_t> labels, Matrix& P, Matrix& dZ,
                            float label_smoothing) {
  assert(static_cast<Eigen::Index>(labels.size()) == Z.rows());
  softmax(Z, P);
  const auto batch = static_cast<float>(Z.rows());
  double loss = 0.0;
  dZ = P;
  if (label_smoothing > 0) {
    const float spread = label_smoothing / static_cast<float>(Z.cols());  // ε/K to every class
    for (Eigen::Index i = 0; i < Z.rows(); ++i) {
      const int y = labels[static_cast<std::size_t>(i)];
      // log P_ik = Z_ik − max − log Σ_j exp(Z_ij − max): exact where P_ik itself underflows.
      const float row_max = Z.row(i).maxCoeff();
      const float log_sum = std::log((Z.row(i).array() - row_max).exp().sum());
      for (Eigen::Index k = 0; k < Z.cols(); ++k) {
        const float target = spread + (k == y ? 1.0f - label_smoothing : 0.0f);  // Y_ik
        loss -= static_cast<double>(target) * (Z(i, k) - row_max - log_sum);
        dZ(i, k) -= target;  // P − Y
      }
    }
    dZ /= batch;
    return static_cast<float>(loss / batch);
  }
  for (Eigen::Index i = 0; i < Z.rows(); ++i) {
    const int y = labels[static_cast<std::size_t>(i)];
    // log P can reach −inf when a probability underflows to 0; clamp to float's smallest normal.
    loss -= std::log(std::max(P(i, y), 1.17549435e-38f));
    dZ(i, y) -= 1.0f;  // P − Y
  }
  dZ /= batch;         // the mean's 1/batch
  return static_cast<float>(loss / batch);
}

}  // namespace digits
