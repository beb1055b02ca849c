#include "digits/maxpool2_layer.hpp"

#include <algorithm>
#include <cassert>
#include <string>

#include "digits/error.hpp"

namespace digits {

MaxPool2Layer::MaxPool2Layer(Shape input) : input_(input), output_{input.channels, input.height / 2, input.width / 2} {
  if (input.height < 2 || input.width < 2)
    throw Error("pool2: 2×2 pooling needs a map of at least 2×2, its input is " + std::to_string(input.channels) + "×" +
                std::to_string(input.height) + "×" + std::to_string(input.width));
}

namespace {

// The maximum of the 2×2 block under output (y, x) of channel c of one sample, and its column.
std::pair<float, int> block_max(const float* image, Shape in, int c, int y, int x) {
  int best = (c * in.height + 2 * y) * in.width + 2 * x;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      const int column = (c * in.height + 2 * y + i) * in.width + 2 * x + j;
      if (image[column] > image[best]) best = column;  // strictly greater: a tie keeps the first
    }
  return {image[best], best};
}

}  // namespace

const Matrix& MaxPool2Layer::forward(const Matrix& X, WorkerPool* pool) {
  assert(X.cols() == in());
  A_.resize(X.rows(), out());
  argmax_.resize(static_cast<std::size_t>(X.rows() * out()));
  // Row by row of the output: the two input rows under it, four candidates per output value, read
  // in the order block_max reads them (so ties go the same way). Samples are independent: each
  // thread takes a share of them.
  const int shares = static_cast<int>(std::min<Eigen::Index>(kShares, X.rows()));
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(X.rows(), shares, share);
    for (Eigen::Index n = first; n < first + count; ++n) {
      const float* image = X.data() + n * X.cols();
      float* pooled = A_.data() + n * A_.cols();
      int* from = argmax_.data() + n * out();
      for (int c = 0; c < output_.channels; ++c)
        for (int y = 0; y < output_.height; ++y) {
          const int top = (c * input_.height + 2 * y) * input_.width, bottom = top + input_.width;
          for (int x = 0; x < output_.width; ++x, ++pooled, ++from) {
            int best = top + 2 * x;
            for (const int column : {top + 2 * x + 1, bottom + 2 * x, bottom + 2 * x + 1})
              if (image[column] > image[best]) best = column;  // strictly greater: a tie keeps the first
            *pooled = image[best];
            *from = best;
          }
        }
    }
  });
  return A_;
}

const Matrix& MaxPool2Layer::backward(const Matrix& dA, bool compute_dX, WorkerPool* pool) {
  if (!compute_dX) {
    dX_.resize(0, 0);
    return dX_;
  }
  dX_.resize(dA.rows(), in());
  const int shares = static_cast<int>(std::min<Eigen::Index>(kShares, dA.rows()));
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(dA.rows(), shares, share);
    dX_.middleRows(first, count).setZero();
    for (Eigen::Index n = first; n < first + count; ++n)
      for (Eigen::Index j = 0; j < dA.cols(); ++j) dX_(n, argmax_[static_cast<std::size_t>(n * out() + j)]) += dA(n, j);
  });
  return dX_;
}

void MaxPool2Layer::infer(const Matrix& X, Matrix& A) const {
  A.resize(X.rows(), out());
  for (Eigen::Index n = 0; n < X.rows(); ++n)
    for (int c = 0; c < output_.channels; ++c)
      for (int y = 0; y < output_.height; ++y)
        for (int x = 0; x < output_.width; ++x)
          A(n, (c * output_.height + y) * output_.width + x) = block_max(X.data() + n * X.cols(), input_, c, y, x).first;
}

}  // namespace digits
