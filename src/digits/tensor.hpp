// The one shape convention of digits: samples are rows.
// A batch X is a row-major float32 matrix of shape (batch × features), so a dense layer reads
// Z = X·W + b exactly as the NumPy ancestor wrote it.
#pragma once

#include <Eigen/Core>

namespace digits {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace digits
