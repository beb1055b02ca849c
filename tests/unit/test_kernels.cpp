// The hand-tuned products agree with their plain Eigen versions, on shapes with and without
// remainders (in not a multiple of 16, batch not a multiple of 5, out not a multiple of 5 or 6);
// the sparse-input forward agrees with the dense one, alone and inside a training step.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "digits/dataset.hpp"
#include "digits/kernels.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"
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
  // In shares of columns, as a split layer computes it (dense_layer.cpp): the same within rounding,
  // and the same bits every time for the same bounds (what keeps the weights independent of threads).
  auto in_shares = [&] {
    Matrix Z_shares = Matrix::Constant(batch, out, std::nanf(""));
    for (int share = 0; share < 3; ++share)
      dense_forward_columns(X, W, b, Z_shares, out * share / 3, out * (share + 1) / 3 - out * share / 3);
    return Z_shares;
  };
  const Matrix Z_shares = in_shares(), Z_shares_again = in_shares();
  EXPECT_LT((Z_shares - Z_plain).cwiseAbs().maxCoeff(), 1e-5f * std::sqrt(static_cast<float>(in)) * 4);
  EXPECT_EQ(std::memcmp(Z_shares.data(), Z_shares_again.data(), sizeof(float) * static_cast<std::size_t>(Z_shares.size())), 0);

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
                                           ProductShape{3, 65, 1}, ProductShape{41, 800, 800}, ProductShape{40, 50, 20}, ProductShape{9, 300, 64}, ProductShape{9, 300, 65}, ProductShape{2, 17, 3}),
                         [](const auto& info) {
                           return std::to_string(info.param.batch) + "x" + std::to_string(info.param.in) + "x" + std::to_string(info.param.out);
                         });

// Columns of X that are zero in every row (pixels dark in the whole batch) get dW = 0, written over
// whatever dW held, whether they fill a whole group of 16, a pair of groups, or share a group.
TEST(Kernels, ColumnsZeroInTheWholeBatchGetAZeroWeightGradient) {
  Rng rng(8);
  Matrix X = random<Matrix>(40, 784, rng);
  for (const auto& [first, count] : {std::pair{0, 16}, std::pair{48, 32}, std::pair{100, 1}, std::pair{768, 16}, std::pair{130, 40}})
    X.middleCols(first, count).setZero();
  const Matrix dZ = random<Matrix>(40, 50, rng);
  WeightMatrix dW = WeightMatrix::Constant(784, 50, std::nanf("")), dW_plain;
  dense_weight_gradient(X, dZ, dW);
  dense_weight_gradient_plain(X, dZ, dW_plain);
  for (Eigen::Index k = 0; k < 784; ++k) {
    if (X.col(k).isZero(0)) {
      EXPECT_TRUE((dW.row(k).array() == 0.0f).all()) << "column " << k;
    }
  }
  EXPECT_LT((dW - dW_plain).cwiseAbs().maxCoeff(), 1e-5f * std::sqrt(40.0f) * 4);
  // A share of dW's columns (dense_layer.cpp's split) gives the same numbers as the whole.
  WeightMatrix dW_shares = WeightMatrix::Constant(784, 50, std::nanf(""));
  for (const auto& [first, count] : {std::pair{0, 13}, std::pair{13, 12}, std::pair{25, 25}}) dense_weight_gradient_columns(X, dZ, dW_shares, first, count);
  EXPECT_EQ(std::memcmp(dW.data(), dW_shares.data(), sizeof(float) * static_cast<std::size_t>(dW.size())), 0);
}

TEST(Kernels, ReportWhetherTheTunedVersionIsBuilt) {
#if defined(__AVX512F__)
  EXPECT_TRUE(have_tuned_kernels());
#else
  EXPECT_FALSE(have_tuned_kernels());
#endif
}

// ---------------------------------------------------------------------------------------------
// The sparse-input forward (kernels.hpp): the same sums as the dense product over fewer terms.

namespace {

// Entries of X are 0 with probability `zeros`, else uniform in 1…255 like a pixel.
Matrix pixels_with_zeros(int batch, int in, float zeros, Rng& rng) {
  Matrix X(batch, in);
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.uniform() < zeros ? 0.0f : 1.0f + static_cast<float>(rng.below(255));
  return X;
}

// The largest |a − b| relative to the largest |b|: float32 sums in another order differ by a few
// units in the last place of their largest terms, so compare against the scale of the result.
float largest_relative_difference(const auto& a, const auto& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

}  // namespace

TEST(SparseInput, AgreesWithTheDenseProductsOnSparseAndDenseInputs) {
  struct Case {
    int batch, in, out;
    float zeros;
    bool sparse_path;  // whether the lists are short enough for the sparse sums
  };
  for (const Case c : {Case{40, 784, 50, 0.92f, true}, Case{17, 100, 13, 0.95f, true}, Case{64, 70, 64, 0.95f, true},
                       Case{40, 784, 50, 0.0f, false}, Case{40, 784, 50, 0.5f, false}, Case{40, 784, 80, 0.92f, false}, Case{8, 784, 50, 0.92f, false}}) {
    Rng rng(static_cast<std::uint64_t>(c.batch * 1000 + c.in + c.out));
    const Matrix X = pixels_with_zeros(c.batch, c.in, c.zeros, rng);
    const WeightMatrix W = random<WeightMatrix>(c.in, c.out, rng) * 0.01f;
    const RowVector b = random<RowVector>(1, c.out, rng);
    Matrix Z_sparse, Z_plain, Z_dense;
    SparseInputWorkspace workspace;
    EXPECT_EQ(dense_forward_sparse_input(X, W, b, Z_sparse, workspace), c.sparse_path && have_tuned_kernels())
        << c.batch << "×" << c.in << "×" << c.out;
    dense_forward_sparse_input_plain(X, W, b, Z_plain);
    dense_forward_plain(X, W, b, Z_dense);
    ASSERT_EQ(Z_sparse.rows(), c.batch);
    ASSERT_EQ(Z_sparse.cols(), c.out);
    EXPECT_LT(largest_relative_difference(Z_sparse, Z_dense), 1e-5f) << c.batch << "×" << c.in << "×" << c.out;
    EXPECT_LT(largest_relative_difference(Z_plain, Z_dense), 1e-5f) << c.batch << "×" << c.in << "×" << c.out;
  }
}

TEST(SparseInput, AWorkspaceServesBatchesOfOtherShapesAndZeros) {
  // Groups of W's rows copied for one batch must not leak into the next, which lists others.
  Rng rng(5);
  const WeightMatrix W = random<WeightMatrix>(784, 50, rng);
  const RowVector b = random<RowVector>(1, 50, rng);
  SparseInputWorkspace workspace;
  for (const int batch : {40, 23, 40, 128}) {
    Matrix X = pixels_with_zeros(batch, 784, 0.92f, rng);
    X.leftCols(392 * (batch % 2)).setZero();  // some batches dark on the left half
    Matrix Z_sparse, Z_dense;
    EXPECT_TRUE(dense_forward_sparse_input(X, W, b, Z_sparse, workspace) || !have_tuned_kernels());
    dense_forward_plain(X, W, b, Z_dense);
    EXPECT_LT(largest_relative_difference(Z_sparse, Z_dense), 1e-5f) << batch;
  }
}

TEST(SparseInput, ALayerLaidOutForInferenceSumsADrawingOverItsNonZeroInputs) {
  // pack_for_inference's copy of W row by row: one or two drawings are summed over their non-zero
  // inputs only; three or more, and a layer of few neurons, go through the product as before.
  Rng rng(9);
  for (const int out : {256, 11}) {
    DenseLayer layer(1024, out, Activation::relu);
    layer.initialize(Init::he, rng);
    layer.b = random<RowVector>(1, out, rng);
    for (const int batch : {1, 2, 3}) {
      const Matrix X = pixels_with_zeros(batch, 1024, 0.6f, rng) / 255.0f;
      Matrix before, after;
      layer.infer(X, before);
      DenseLayer packed = layer;
      packed.pack_for_inference();
      packed.infer(X, after);
      EXPECT_LT(largest_relative_difference(after, before), 1e-5f) << out << " neurons, " << batch << " rows";
      EXPECT_GT((after.array() > 0).count(), 0);
    }
  }
}

namespace {

// One seed-recipe step on `X` with the first layer summing over non-zero pixels or not; returns the network.
Network one_seed_step(const Matrix& X, const std::vector<std::uint8_t>& labels, bool skip_zero_inputs) {
  Network network({784, 50, 20, 10}, Activation::relu, 1.0f);
  network.initialize(Init::ancestor, 1);
  std::get<DenseLayer>(network.layers[0]).skip_zero_inputs = skip_zero_inputs;
  Optimizer optimizer({.kind = OptimizerKind::sgd, .learning_rate = 0.005f});
  network.train_step(X, labels, optimizer);
  return network;
}

// The largest difference between the two networks' weight updates, relative to the largest update.
float largest_relative_update_difference(const Network& a, const Network& b, const Network& start) {
  float difference = 0, largest = 0;
  for (std::size_t i = 0; i < start.layers.size(); ++i) {
    const ConstParameters p = parameters(a.layers[i]), q = parameters(b.layers[i]), s = parameters(start.layers[i]);
    difference = std::max(difference, (*p.W - *q.W).cwiseAbs().maxCoeff());
    largest = std::max(largest, (*q.W - *s.W).cwiseAbs().maxCoeff());
  }
  EXPECT_GT(largest, 0.0f);  // the step moved the weights
  return difference / largest;
}

}  // namespace

TEST(SparseInput, OneTrainingStepMatchesTheDenseOneOnMnistAndOnRandomBatches) {
  std::vector<Matrix> batches;
  const std::filesystem::path mnist = std::filesystem::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
  if (std::filesystem::exists(mnist / "t10k-images-idx3-ubyte")) {
    const Dataset test = read_idx(mnist / "t10k-images-idx3-ubyte", mnist / "t10k-labels-idx1-ubyte", "t10k");
    std::vector<std::size_t> order(test.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    Rng(3).shuffle(order);
    Matrix X;
    std::vector<std::uint8_t> labels;
    for (std::size_t first = 0; first < 400; first += 40) {
      gather_batch(test, std::span(order).subspan(first, 40), 1.0f, X, labels);
      batches.push_back(X);
    }
  } else {
    ADD_FAILURE() << "no MNIST in " << mnist << ": run scripts/fetch-mnist";
  }
  Rng rng(4);
  batches.push_back(pixels_with_zeros(40, 784, 0.0f, rng));   // dense: the dense product runs
  batches.push_back(pixels_with_zeros(40, 784, 0.92f, rng));  // zeros at random places, few enough lists
  std::vector<std::uint8_t> labels(40);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::uint8_t>(i % 10);

  Network start({784, 50, 20, 10}, Activation::relu, 1.0f);
  start.initialize(Init::ancestor, 1);
  for (std::size_t n = 0; n < batches.size(); ++n) {
    const Network sparse = one_seed_step(batches[n], labels, true), dense = one_seed_step(batches[n], labels, false);
    EXPECT_LT(largest_relative_update_difference(sparse, dense, start), 1e-4f) << "batch " << n;
  }
}
