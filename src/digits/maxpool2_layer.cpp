#include "digits/maxpool2_layer.hpp"

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

const Matrix& MaxPool2Layer::forward(const Matrix& X) {
  assert(X.cols() == in());
  A_.resize(X.rows(), out());
  argmax_.resize(static_cast<std::size_t>(X.rows() * out()));
  for (Eigen::Index n = 0; n < X.rows(); ++n)
    for (int c = 0; c < output_.channels; ++c)
      for (int y = 0; y < output_.height; ++y)
        for (int x = 0; x < output_.width; ++x) {
          const int j = (c * output_.height + y) * output_.width + x;
          const auto [value, column] = block_max(X.data() + n * X.cols(), input_, c, y, x);
          A_(n, j) = value;
          argmax_[static_cast<std::size_t>(n * out() + j)] = column;
        }
  return A_;
}

const Matrix& MaxPool2Layer::backward(const Matrix& dA, bool compute_dX) {
  if (!compute_dX) {
    dX_.resize(0, 0);
    return dX_;
  }
  dX_.resize(dA.rows(), in());
  dX_.setZero();
  for (Eigen::Index n = 0; n < dA.rows(); ++n)
    for (Eigen::Index j = 0; j < dA.cols(); ++j) dX_(n, argmax_[static_cast<std::size_t>(n * out() + j)]) += dA(n, j);
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
