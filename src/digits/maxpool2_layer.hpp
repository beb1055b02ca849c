// 2×2 max pooling with stride 2: each output value is the largest of a 2×2 block of its channel,
// A[n, c, y, x] = max(X[n, c, 2y + i, 2x + j]), i, j ∈ {0, 1}. An odd last row or column is dropped
// (⌊H/2⌋ × ⌊W/2⌋, as torch.nn.MaxPool2d(2)). No weights. Forward and backward: maxpool2_layer.cpp.
#pragma once

#include <vector>

#include "digits/tensor.hpp"
#include "digits/worker_pool.hpp"

namespace digits {

class MaxPool2Layer {
 public:
  // Throws Error when the map is smaller than 2×2, naming the sizes.
  explicit MaxPool2Layer(Shape input);

  Shape input_shape() const { return input_; }
  Shape output_shape() const { return output_; }
  int in() const { return input_.size(); }
  int out() const { return output_.size(); }

  // X: (batch × C·H·W) → A: (batch × C·⌊H/2⌋·⌊W/2⌋). Remembers where each maximum came from.
  // Samples are shared out over `pool`'s threads when given one.
  const Matrix& forward(const Matrix& X, WorkerPool* pool = nullptr);

  // Backward: the maximum alone moved the output, with slope 1, so
  //   dX[n, c, 2y + i, 2x + j] = dA[n, c, y, x] where (i, j) was the block's maximum, 0 elsewhere.
  // A tie goes to the first maximum in reading order (as PyTorch does): the others get 0.
  // dA: (batch × C·H′·W′) → dX: (batch × C·H·W); nothing when compute_dX is false.
  const Matrix& backward(const Matrix& dA, bool compute_dX, WorkerPool* pool = nullptr);

  void infer(const Matrix& X, Matrix& A) const;

  static constexpr int kShares = 4;  // as many as a conv layer's

 private:
  Shape input_, output_;
  Matrix A_, dX_;
  std::vector<int> argmax_;  // (batch × C·H′·W′): the column of X each output was taken from
};

}  // namespace digits
