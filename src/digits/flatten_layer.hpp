// Flatten: a C×H×W map becomes a vector of C·H·W features for a dense layer. Samples are already
// rows in NCHW order (tensor.hpp), so the values and their order do not change, only how the next
// layer reads them: forward passes X through and backward passes dA back, both without a copy.
// It is torch.nn.Flatten(), so a dense layer after it has PyTorch's weights.
#pragma once

#include "digits/tensor.hpp"

namespace digits {

class FlattenLayer {
 public:
  explicit FlattenLayer(Shape input) : input_(input) {}

  Shape input_shape() const { return input_; }
  Shape output_shape() const { return {input_.size(), 1, 1}; }
  int in() const { return input_.size(); }
  int out() const { return input_.size(); }

  // A = X               X, A: (batch × C·H·W)
  const Matrix& forward(const Matrix& X) { return X; }
  // dX = dA             dA, dX: (batch × C·H·W)
  const Matrix& backward(const Matrix& dA, bool /*compute_dX*/) { return dA; }
  void infer(const Matrix& X, Matrix& A) const { A = X; }

 private:
  Shape input_;
};

}  // namespace digits
