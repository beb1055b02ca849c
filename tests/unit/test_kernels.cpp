// The hand-tuned products agree with their plain Eigen versions, on shapes with and without
// remainders (in not a multiple of 16, batch not a multiple of 5, out not a multiple of 5 or 6).
#include <gtest/gtest.h>

#include "digits/kernels.hpp"
#include "digits/random.hpp"

using namespace digits;

namespace {

template <typename M>
M random(int rows, int cols, Rng& rng) {
  M m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.normal();
  return m;
}

struct ProductShape {
  int batch, in, out;
};

}  // namespace

class Kernels : public ::testing::TestWithParam<ProductShape> {};

TEST_P(Kernels, AgreeWithThePlainVersions) {
  const auto [batch, in, out] = GetParam();
  Rng rng(static_cast<std::uint64_t>(batch * 1000 + in + out));
  const Matrix X = random<Matrix>(batch, in, rng);
  const WeightMatrix W = random<WeightMatrix>(in, out, rng);
  const RowVector b = random<RowVector>(1, out, rng);
  const Matrix dZ = random<Matrix>(batch, out, rng);

  Matrix Z_tuned, Z_plain;
  dense_forward(X, W, b, Z_tuned);
  dense_forward_plain(X, W, b, Z_plain);
  ASSERT_EQ(Z_tuned.rows(), batch);
  ASSERT_EQ(Z_tuned.cols(), out);
  // Sums of `in` products of unit normals: summation order differs, so compare relative to √in.
  EXPECT_LT((Z_tuned - Z_plain).cwiseAbs().maxCoeff(), 1e-5f * std::sqrt(static_cast<float>(in)) * 4);

  WeightMatrix dW_tuned, dW_plain;
  dense_weight_gradient(X, dZ, dW_tuned);
  dense_weight_gradient_plain(X, dZ, dW_plain);
  ASSERT_EQ(dW_tuned.rows(), in);
  ASSERT_EQ(dW_tuned.cols(), out);
  EXPECT_LT((dW_tuned - dW_plain).cwiseAbs().maxCoeff(), 1e-5f * std::sqrt(static_cast<float>(batch)) * 4);
  EXPECT_GT(dW_plain.cwiseAbs().maxCoeff(), 1.0f);  // not comparing zeros
}

INSTANTIATE_TEST_SUITE_P(Shapes, Kernels,
                         ::testing::Values(ProductShape{40, 784, 50}, ProductShape{1, 784, 10}, ProductShape{7, 100, 13}, ProductShape{128, 784, 256},
                                           ProductShape{3, 65, 1}, ProductShape{41, 800, 800}, ProductShape{40, 50, 20}, ProductShape{2, 17, 3}),
                         [](const auto& info) {
                           return std::to_string(info.param.batch) + "x" + std::to_string(info.param.in) + "x" + std::to_string(info.param.out);
                         });

TEST(Kernels, ReportWhetherTheTunedVersionIsBuilt) {
#if defined(__AVX512F__)
  EXPECT_TRUE(have_tuned_kernels());
#else
  EXPECT_FALSE(have_tuned_kernels());
#endif
}
