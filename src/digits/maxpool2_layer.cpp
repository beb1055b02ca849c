#include "digits/maxpool2_layer.hpp"

#include <algorithm>
#include <cassert>
#include <string>
#include <vector>

#include "digits/error.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace digits {

MaxPool2Layer::MaxPool2Layer(Shape input) : input_(input), output_{input.channels, input.height / 2, input.width / 2} {
  if (input.height < 2 || input.width < 2)
    throw Error("pool2: 2×2 pooling needs a map of at least 2×2, its input is " + std::to_string(input.channels) + "×" +
                std::to_string(input.height) + "×" + std::to_string(input.width));
}

namespace {

// One row of a channel's output: pooled[x] = the largest of top[2x], top[2x + 1], bottom[2x] and
// bottom[2x + 1] (in that order, strictly greater wins: a tie keeps the first), and
// from[x] its column in the sample's row, `top` and `bottom` being the columns of those rows.
void pool_row(const float* image, int top, int bottom, int width, float* pooled, int* from) {
  int x = 0;
#if defined(__AVX512F__)
  // 16 outputs at a time: 32 numbers of each input row, split into the even and odd columns.
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const auto load_pairs = [&](const float* row, int count, __m512& left, __m512& right) {
    const __m512 low = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << std::min(2 * count, 16)) - 1), row);
    const __m512 high = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << std::max(2 * count - 16, 0)) - 1), row + 16);
    left = _mm512_permutex2var_ps(low, even, high);
    right = _mm512_permutex2var_ps(low, odd, high);
  };
  for (; x < width; x += 16) {
    const int count = std::min(width - x, 16);
    __m512 top_left, top_right, bottom_left, bottom_right;
    load_pairs(image + top + 2 * x, count, top_left, top_right);
    load_pairs(image + bottom + 2 * x, count, bottom_left, bottom_right);
    __m512 best = top_left;
    __m512i where = _mm512_add_epi32(_mm512_set1_epi32(top + 2 * x), even);
    const auto consider = [&](__m512 candidate, __m512i column) {
      const __mmask16 greater = _mm512_cmp_ps_mask(candidate, best, _CMP_GT_OQ);
      best = _mm512_mask_blend_ps(greater, best, candidate);
      where = _mm512_mask_blend_epi32(greater, where, column);
    };
    consider(top_right, _mm512_add_epi32(_mm512_set1_epi32(top + 2 * x), odd));
    consider(bottom_left, _mm512_add_epi32(_mm512_set1_epi32(bottom + 2 * x), even));
    consider(bottom_right, _mm512_add_epi32(_mm512_set1_epi32(bottom + 2 * x), odd));
    const auto lanes = static_cast<__mmask16>((1u << count) - 1);
    _mm512_mask_storeu_ps(pooled + x, lanes, best);
    _mm512_mask_storeu_epi32(from + x, lanes, where);
  }
#endif
  for (; x < width; ++x) {
    int best = top + 2 * x;
    for (const int column : {top + 2 * x + 1, bottom + 2 * x, bottom + 2 * x + 1})
      if (image[column] > image[best]) best = column;  // strictly greater: a tie keeps the first
    pooled[x] = image[best];
    from[x] = best;
  }
}

}  // namespace

const Matrix& MaxPool2Layer::forward(const Matrix& X, WorkerPool* pool) {
  assert(X.cols() == in());
  A_.resize(X.rows(), out());
  argmax_.resize(static_cast<std::size_t>(X.rows() * out()));
  // Row by row of the output: the two input rows under it, four candidates per output value, read
  // in pool_row's order (so ties go the same way). Samples are independent: each
  // thread takes a share of them.
  const int shares = static_cast<int>(std::min<Eigen::Index>(kShares, X.rows()));
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(X.rows(), shares, share);
    for (Eigen::Index n = first; n < first + count; ++n) {
      const float* image = X.data() + n * X.cols();
      float* pooled = A_.data() + n * A_.cols();
      int* from = argmax_.data() + n * out();
      for (int c = 0; c < output_.channels; ++c)
        for (int y = 0; y < output_.height; ++y, pooled += output_.width, from += output_.width) {
          const int top = (c * input_.height + 2 * y) * input_.width, bottom = top + input_.width;
          pool_row(image, top, bottom, output_.width, pooled, from);
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
  // forward's row by row pool_row (the same candidates in the same order, so the same values), its
  // columns thrown away: the value-by-value scalar loop it replaces took 6% of a single
  // drawing's prediction.
  A.resize(X.rows(), out());
  std::vector<int> from(static_cast<std::size_t>(output_.width));
  for (Eigen::Index n = 0; n < X.rows(); ++n) {
    const float* image = X.data() + n * X.cols();
    float* pooled = A.data() + n * A.cols();
    for (int c = 0; c < output_.channels; ++c)
      for (int y = 0; y < output_.height; ++y, pooled += output_.width) {
        const int top = (c * input_.height + 2 * y) * input_.width, bottom = top + input_.width;
        pool_row(image, top, bottom, output_.width, pooled, from.data());
      }
  }
}

}  // namespace digits
