// The one shape convention of digits: samples are rows.
// A batch X is a row-major float32 matrix of shape (batch × features), so a dense layer reads
// Z = X·W + b exactly as the NumPy ancestor wrote it.
//
// Images and feature maps stay rows too: a sample of C channels of H×W values is one row of C·H·W
// numbers, channel-major inside the row: value (c, y, x) sits at column c·H·W + y·W + x. That is
// PyTorch's NCHW order, so a batch (batch × C·H·W) has exactly the bytes of a torch tensor
// [batch, C, H, W], and flattening a map for a dense layer changes nothing in memory.
#pragma once

// GCC 12 reports its own AVX-512 intrinsics, as Eigen inlines them, as reading an uninitialised
// variable (GCC bug 105593, fixed in GCC 13); the sanitizer build shows it in every file. The
// intrinsics' headers are first included here, so their lines are exempt; nothing of ours is.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace digits {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic, Eigen::RowMajor>;

// A layer's weights W, shape (in × out), stored column by column: neuron j's weights W(·, j) are
// contiguous. That is byte for byte PyTorch's nn.Linear weight [out, in], which the model file
// stores, and the layout the products in kernels.cpp read fastest.
using WeightMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

// The shape of one sample as a layer sees it: channels × height × width. A dense layer's vector of
// n features is n × 1 × 1.
struct Shape {
  int channels = 0, height = 0, width = 0;
  int size() const { return channels * height * width; }
  bool operator==(const Shape&) const = default;
};

}  // namespace digits
