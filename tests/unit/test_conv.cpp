// The layers beyond dense (issue 12): conv2d, 2×2 max pooling and flatten, and networks made of
// them. Known values by hand, the fast path against the plain loops, finite-difference gradient
// checks of every layer, shape errors, the layer syntax, and a save/load round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "digits/checkpoint.hpp"
#include "digits/error.hpp"
#include "digits/layer.hpp"
#include "digits/model_file.hpp"
#include "digits/network.hpp"
#include "../support/same_weights.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"

using namespace digits;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text) << "\nexpected to contain: " << (part)

Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  Rng rng(seed);
  Matrix M(rows, cols);
  for (Eigen::Index i = 0; i < M.size(); ++i) M.data()[i] = rng.normal();
  return M;
}

Conv2dLayer random_conv(Shape input, int out, int kernel, int stride, Padding padding, Activation activation, std::uint64_t seed) {
  Conv2dLayer conv(input, out, kernel, stride, padding, activation);
  Rng rng(seed);
  conv.initialize(Init::xavier, rng);
  for (Eigen::Index o = 0; o < conv.b.size(); ++o) conv.b(o) = 0.1f * rng.normal();
  return conv;
}

double max_abs_difference(const Matrix& a, const Matrix& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  return (a - b).cwiseAbs().maxCoeff();
}

// The convolutions the tests run: stride 1 and 2, valid and same, one and several channels in and
// out, odd and even kernels, maps that are not square.
struct ConvCase {
  Shape input;
  int out, kernel, stride;
  Padding padding;
};
const ConvCase kConvCases[] = {
    {{1, 6, 6}, 2, 3, 1, Padding::valid},
    {{3, 7, 6}, 4, 3, 2, Padding::same},
    {{2, 8, 8}, 3, 5, 1, Padding::same},
    {{2, 9, 7}, 2, 4, 2, Padding::valid},
    {{4, 5, 5}, 3, 1, 1, Padding::valid},
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Known values, by hand.

TEST(Conv2d, OutputSidesOfValidAndSamePadding) {
  EXPECT_EQ(conv_output_side(28, 5, 1, 0), 24);  // valid: 28 − 5 + 1
  EXPECT_EQ(conv_output_side(28, 3, 2, 0), 13);  // ⌊(28 − 3)/2⌋ + 1
  EXPECT_EQ(conv_output_side(28, 3, 1, 1), 28);  // same at stride 1 keeps the side
  EXPECT_EQ(conv_output_side(28, 3, 2, 1), 14);  // same at stride 2 halves it, rounding up
  EXPECT_EQ(conv_output_side(7, 3, 2, 1), 4);
  EXPECT_EQ(conv_output_side(2, 3, 1, 0), 0);    // does not fit
}

TEST(Conv2d, KnownValuesOfATwoByTwoKernel) {
  // One 3×3 image 1…9, the kernel [[1, 0], [0, −1]] and bias 0.5, valid: each output is
  // top-left − bottom-right + 0.5 of its 2×2 block, which is 1 − 5 + 0.5 = −3.5 everywhere.
  Conv2dLayer conv({1, 3, 3}, 1, 2, 1, Padding::valid, Activation::identity);
  conv.W << 1, 0, 0, -1;  // [ky][kx]
  conv.b << 0.5f;
  Matrix X(1, 9);
  X << 1, 2, 3, 4, 5, 6, 7, 8, 9;
  Matrix plain, fast;
  conv2d_forward_plain(conv, X, plain);
  fast = conv.forward(X);
  ASSERT_EQ(plain.cols(), 4);
  for (int j = 0; j < 4; ++j) {
    EXPECT_FLOAT_EQ(plain(0, j), -3.5f) << j;
    EXPECT_FLOAT_EQ(fast(0, j), -3.5f) << j;
  }
}

TEST(Conv2d, SamePaddingSeesZerosBeyondTheEdge) {
  // A 3×3 kernel of ones over a 3×3 image of ones, padded: each output counts the pixels the
  // kernel covers, 4 in a corner, 6 on an edge, 9 in the middle.
  Conv2dLayer conv({1, 3, 3}, 1, 3, 1, Padding::same, Activation::identity);
  conv.W.setOnes();
  const Matrix A = conv.forward(Matrix::Ones(1, 9));
  const float expected[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
  for (int j = 0; j < 9; ++j) EXPECT_FLOAT_EQ(A(0, j), expected[j]) << j;
}

TEST(Conv2d, ChannelsAreMajorInARow) {
  // Two channels in, a 1×1 kernel: output channel o is W[o,0]·channel 0 + W[o,1]·channel 1, and
  // sits at columns o·H·W … of the row (NCHW).
  Conv2dLayer conv({2, 1, 2}, 2, 1, 1, Padding::valid, Activation::identity);
  conv.W << 1, 10,   // W(c, o): row c = input channel, column o = filter
      100, 1000;
  Matrix X(1, 4);
  X << 1, 2,  // channel 0
      3, 4;   // channel 1
  const Matrix A = conv.forward(X);
  ASSERT_EQ(A.cols(), 4);
  EXPECT_FLOAT_EQ(A(0, 0), 1 * 1 + 100 * 3);
  EXPECT_FLOAT_EQ(A(0, 1), 1 * 2 + 100 * 4);
  EXPECT_FLOAT_EQ(A(0, 2), 10 * 1 + 1000 * 3);
  EXPECT_FLOAT_EQ(A(0, 3), 10 * 2 + 1000 * 4);
}

TEST(MaxPool2, KnownValuesAndWhereTheGradientGoes) {
  // A 4×5 map: the last column is dropped, each 2×2 block gives its largest value.
  MaxPool2Layer pool({1, 4, 5});
  ASSERT_EQ(pool.output_shape(), (Shape{1, 2, 2}));
  Matrix X(1, 20);
  X << 1, 5, 2, 0, 99,
       3, 4, 8, 1, 99,
       0, 0, 7, 7, 99,
       9, 0, 7, 7, 99;
  const Matrix A = pool.forward(X);
  EXPECT_FLOAT_EQ(A(0, 0), 5);
  EXPECT_FLOAT_EQ(A(0, 1), 8);
  EXPECT_FLOAT_EQ(A(0, 2), 9);
  EXPECT_FLOAT_EQ(A(0, 3), 7);
  Matrix dA(1, 4);
  dA << 1, 2, 3, 4;
  const Matrix dX = pool.backward(dA, true);
  Matrix expected = Matrix::Zero(1, 20);
  expected(0, 1) = 1;   // the 5
  expected(0, 7) = 2;   // the 8
  expected(0, 15) = 3;  // the 9
  expected(0, 12) = 4;  // a tie of four 7s: the first in reading order takes it all
  EXPECT_EQ(dX, expected);
}

// The training forward (16 outputs at a time where the CPU has AVX-512) against infer's block_max,
// one block at a time: maps wider than one register of outputs, odd sides, and values from a set
// of three so that ties are everywhere. Each gradient must land on the first largest of its block.
TEST(MaxPool2, TheVectorPathAgreesWithTheBlockByBlockOneOnWideMapsAndTies) {
  for (const Shape input : {Shape{2, 6, 35}, Shape{3, 24, 24}, Shape{1, 5, 67}}) {
    MaxPool2Layer pool(input);
    Rng rng(8);
    Matrix X(3, input.size());
    for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = static_cast<float>(rng.below(3));
    const Matrix A = pool.forward(X);
    Matrix expected;
    pool.infer(X, expected);
    EXPECT_EQ(A, expected) << shape_text(input);
    const Matrix dX = pool.backward(Matrix::Ones(3, pool.out()), true);
    const Shape out = pool.output_shape();
    for (Eigen::Index n = 0; n < 3; ++n)
      for (int c = 0; c < out.channels; ++c)
        for (int y = 0; y < out.height; ++y)
          for (int x = 0; x < out.width; ++x) {
            int first = -1;  // the first largest in reading order
            for (int i = 0; i < 2; ++i)
              for (int j = 0; j < 2; ++j) {
                const int column = (c * input.height + 2 * y + i) * input.width + 2 * x + j;
                if (first < 0 || X(n, column) > X(n, first)) first = column;
              }
            ASSERT_EQ(dX(n, first), 1.0f) << shape_text(input) << " sample " << n << " at " << c << "," << y << "," << x;
          }
    EXPECT_EQ(dX.sum(), static_cast<float>(3 * pool.out()));  // and nowhere else
  }
}

TEST(Flatten, PassesValuesAndGradientsThroughUnchanged) {
  FlattenLayer flatten({3, 2, 2});
  const Matrix X = random_matrix(2, 12, 1);
  EXPECT_EQ(&flatten.forward(X), &X);  // no copy: NCHW rows are already flat
  EXPECT_EQ(flatten.output_shape(), (Shape{12, 1, 1}));
  const Matrix dA = random_matrix(2, 12, 2);
  EXPECT_EQ(&flatten.backward(dA, true), &dA);
}

// ---------------------------------------------------------------------------------------------
// The fast path (im2col + products) against the plain loops.

TEST(Conv2d, FastPathMatchesThePlainLoops) {
  int checked = 0;
  // 3 samples: a share each; 11: shares of 2 or 3 samples, whose weight gradient is one product
  // with a sum that runs from one sample's positions into the next one's.
  for (const int batch : {3, 11})
  for (const ConvCase& c : kConvCases) {
    SCOPED_TRACE(shape_text(c.input) + " k" + std::to_string(c.kernel) + " s" + std::to_string(c.stride) +
                 (c.padding == Padding::same ? " same" : " valid") + ", batch " + std::to_string(batch));
    Conv2dLayer conv = random_conv(c.input, c.out, c.kernel, c.stride, c.padding, Activation::identity, 3);
    const Matrix X = random_matrix(batch, c.input.size(), 4);
    Matrix Z;
    conv2d_forward_plain(conv, X, Z);
    const Matrix A = conv.forward(X);
    EXPECT_LT(max_abs_difference(A, Z), 1e-5);
    const Matrix dZ = random_matrix(batch, conv.out(), 5);
    WeightMatrix dW;
    RowVector db;
    Matrix dX;
    conv2d_backward_plain(conv, X, dZ, dW, db, dX);
    const Matrix fast_dX = conv.backward(dZ, true);
    EXPECT_LT(max_abs_difference(fast_dX, dX), 1e-4);
    EXPECT_LT((conv.dW - dW).cwiseAbs().maxCoeff(), 1e-4);
    EXPECT_LT((conv.db - db).cwiseAbs().maxCoeff(), 1e-4);
    EXPECT_GT(dW.norm(), 0.1);  // the comparison is of real numbers, not zeros
    EXPECT_GT(dX.norm(), 0.1);
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

// The explicit column matrix that the implicit GEMM never writes: im2col's X̂ times Wᵀ, an Eigen
// product, is the layer's Z, sample by sample (Z[n, o·P + q] = (Wᵀ·X̂)[o, n·P + q] + b[o]). So the
// columns pack_windows makes from the images are im2col's, on every case of padding and stride.
TEST(Conv2d, TheImplicitColumnsAreIm2colsColumns) {
  for (const ConvCase& c : kConvCases) {
    SCOPED_TRACE(shape_text(c.input) + " k" + std::to_string(c.kernel) + " s" + std::to_string(c.stride));
    Conv2dLayer conv = random_conv(c.input, c.out, c.kernel, c.stride, c.padding, Activation::identity, 9);
    const Matrix X = random_matrix(5, c.input.size(), 10);
    const Matrix Z = conv.forward(X);
    const Eigen::Index positions = conv.output_shape().height * conv.output_shape().width;
    Matrix columns(conv.W.rows(), 5 * positions);
    im2col(conv, X, 0, 5, columns);
    const Matrix Zt = conv.W.transpose() * columns;
    for (Eigen::Index n = 0; n < 5; ++n)
      for (Eigen::Index o = 0; o < conv.W.cols(); ++o)
        for (Eigen::Index q = 0; q < positions; ++q)
          ASSERT_NEAR(Z(n, o * positions + q), Zt(o, n * positions + q) + conv.b(o), 1e-5) << n << " " << o << " " << q;
  }
}

TEST(Conv2d, InferIsTheTrainingForward) {
  Conv2dLayer conv = random_conv({2, 8, 8}, 3, 3, 2, Padding::same, Activation::relu, 6);
  const Matrix X = random_matrix(4, conv.in(), 7);
  Matrix A;
  conv.infer(X, A);
  EXPECT_EQ(A, conv.forward(X));
}

TEST(Conv2d, InferOnAPoolIsTheSameBitsForOneDrawingOrMany) {
  // One drawing: its output positions cut between the threads in whole panels of the product;
  // several: the samples. 24 × 24 outputs (576 positions, 18 panels of 32 with AVX-512), 10 × 10
  // (100: three whole panels and a part) and 7 × 7 (49), valid and same padding, stride 1 and 2.
  WorkerPool pool(2);
  int compared = 0;
  for (const auto& [side, kernel, stride, padding] : {std::tuple{28, 5, 1, Padding::valid}, std::tuple{12, 3, 1, Padding::valid},
                                                      std::tuple{13, 3, 2, Padding::same}}) {
    Conv2dLayer conv = random_conv({3, side, side}, 5, kernel, stride, padding, Activation::relu, 8);
    for (const int batch : {1, 2, 3}) {
      const Matrix X = random_matrix(batch, conv.in(), 9 + batch);
      Matrix alone, shared;
      conv.infer(X, alone);
      conv.infer(X, shared, &pool);
      EXPECT_EQ(shared, alone) << side << "², k " << kernel << ", stride " << stride << ", batch " << batch;
      EXPECT_GT((alone.array() > 0).count(), 0);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 9);
  // And a whole prediction of one drawing with the built-in model's architecture, folded and
  // laid out for inference as a loaded model is (pooling and dense layers run on the caller's thread).
  Network network(parse_layer_specs("conv5x5x32,bn,pool2,conv5x5x64,bn,pool2,fc256,11"), {1, 28, 28}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 13);
  network.fold_for_prediction();
  const Matrix pixels = random_matrix(1, 784, 12).cwiseAbs() * 255.0f;
  EXPECT_EQ(network.predict_proba(pixels, &pool), network.predict_proba(pixels));
}

// ---------------------------------------------------------------------------------------------
// Finite differences. Each layer's output A is scored with a fixed random R, L = Σ R ⊙ A, so
// dA = R; every analytic gradient is compared with (L(θ + ε) − L(θ − ε)) / 2ε.

namespace {

double score(const Matrix& A, const Matrix& R) { return (A.cast<double>().array() * R.cast<double>().array()).sum(); }

struct Agreement {
  int compared = 0, skipped = 0;
  double largest_error = 0, analytic_norm = 0;
};

// Checks gradient[k] against finite differences of f in the value at parameter[k], for every k.
// kink(k, sign) says whether moving value k by ±ε crosses a ReLU kink or changes a max-pool's
// winner; such entries have no two-sided derivative and are skipped.
template <typename Evaluate, typename Crosses>
Agreement finite_differences(float* parameter, const float* gradient, Eigen::Index count, float epsilon, Evaluate f,
                             Crosses crosses) {
  Agreement a;
  for (Eigen::Index k = 0; k < count; ++k) {
    const float saved = parameter[k];
    parameter[k] = saved + epsilon;
    const double up = f();
    const bool kink_up = crosses();
    parameter[k] = saved - epsilon;
    const double down = f();
    const bool kink_down = crosses();
    parameter[k] = saved;
    if (kink_up || kink_down) {
      ++a.skipped;
      continue;
    }
    const double numeric = (up - down) / (2.0 * epsilon);
    a.largest_error = std::max(a.largest_error, std::abs(numeric - gradient[k]) / std::max(1.0, std::abs(numeric)));
    a.analytic_norm += static_cast<double>(gradient[k]) * gradient[k];
    ++a.compared;
  }
  a.analytic_norm = std::sqrt(a.analytic_norm);
  return a;
}

void expect_agreement(const Agreement& a, const std::string& what) {
  EXPECT_GT(a.compared, 0) << what;
  EXPECT_LE(a.skipped, a.compared / 10) << what << ": too many entries sat on a kink to check";
  EXPECT_LT(a.largest_error, 2e-3) << what;
  EXPECT_GT(a.analytic_norm, 1e-2) << what << ": an all-zero gradient would agree with anything";
}

}  // namespace

TEST(GradientCheck, Conv2dEveryCaseWithReluAndTanh) {
  for (const ConvCase& c : kConvCases) {
    for (Activation activation : {Activation::relu, Activation::tanh}) {
      const std::string what = shape_text(c.input) + " k" + std::to_string(c.kernel) + " s" + std::to_string(c.stride) +
                               (c.padding == Padding::same ? " same " : " valid ") + std::string(activation_name(activation));
      Conv2dLayer conv = random_conv(c.input, c.out, c.kernel, c.stride, c.padding, activation, 11);
      Matrix X = random_matrix(3, c.input.size(), 12);  // batch 3
      const Matrix R = random_matrix(3, conv.out(), 13);
      conv.forward(X);
      const Matrix dX = conv.backward(R, true);
      const WeightMatrix dW = conv.dW;
      const RowVector db = conv.db;
      // ReLU's kink: ±ε can move a pre-activation across 0, where the difference quotient means
      // nothing, and with hundreds of outputs some always sit that close. So for ReLU the loss is
      // taken through the mask of the point of the check, A = [Z₀ > 0] ⊙ Z — exactly the
      // derivative relu's backward uses — which is smooth; tanh goes through the layer's forward.
      Matrix Z0;
      conv2d_forward_plain(conv, X, Z0);
      const Matrix mask = (Z0.array() > 0).cast<float>().matrix();
      EXPECT_GT(mask.sum(), 0.2 * mask.size()) << what << ": most units dead, the check would see little";
      auto f = [&] {
        Matrix A;
        if (activation == Activation::relu) {
          conv2d_forward_plain(conv, X, A);
          A = A.cwiseProduct(mask);
        } else {
          conv.infer(X, A);
        }
        return score(A, R);
      };
      auto crosses = [] { return false; };
      const float epsilon = 1e-2f;
      expect_agreement(finite_differences(X.data(), dX.data(), X.size(), epsilon, f, crosses), what + " dX");
      expect_agreement(finite_differences(conv.W.data(), dW.data(), conv.W.size(), epsilon, f, crosses), what + " dW");
      expect_agreement(finite_differences(conv.b.data(), db.data(), conv.b.size(), epsilon, f, crosses), what + " db");
    }
  }
}

TEST(GradientCheck, MaxPool2SeveralChannelsBatchOfThree) {
  MaxPool2Layer pool({3, 6, 5});
  // Distinct values 0.05 apart, shuffled: no ties, and ε = 0.01 never changes a block's winner.
  const int count = 3 * pool.in();
  std::vector<std::size_t> order(static_cast<std::size_t>(count));
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng(21).shuffle(order);
  Matrix X(3, pool.in());
  for (int i = 0; i < count; ++i) X.data()[i] = 0.05f * static_cast<float>(order[static_cast<std::size_t>(i)]) - 10.0f;
  const Matrix R = random_matrix(3, pool.out(), 22);
  pool.forward(X);
  const Matrix dX = pool.backward(R, true);
  Matrix A0;
  pool.infer(X, A0);
  auto f = [&] {
    Matrix A;
    pool.infer(X, A);
    return score(A, R);
  };
  auto crosses = [] { return false; };  // no ties by construction
  const Agreement a = finite_differences(X.data(), dX.data(), X.size(), 1e-2f, f, crosses);
  expect_agreement(a, "pool2");
  EXPECT_EQ(a.compared, count);
  // Three of every four inputs (and the dropped odd column) lose their block: zero gradient.
  EXPECT_EQ((dX.array() != 0).count(), 3 * pool.out());
}

TEST(GradientCheck, ASmallCnnThroughSoftmaxCrossEntropy) {
  // The whole chain, flatten included: conv (stride 2, same) → pool → conv → flatten → dense →
  // dense, tanh (no kinks), batch 4; train_step with a learning rate of 0 leaves the gradients.
  Network network(parse_layer_specs("conv3x3x4s2same,pool2,conv3x3x5same,fc7,3"), {2, 10, 10}, Activation::tanh, 1.0f);
  network.initialize(Init::xavier, 3);
  ASSERT_EQ(network.architecture(), "conv3x3x4s2same,pool2,conv3x3x5same,flatten,fc7,fc3");
  Matrix X = random_matrix(4, network.inputs(), 31);
  const std::vector<std::uint8_t> labels{0, 2, 1, 2};
  Optimizer frozen({.kind = OptimizerKind::sgd, .learning_rate = 0});
  network.train_step(X, labels, frozen);
  auto loss = [&] {
    const Matrix P = network.predict_proba(X);
    double total = 0;
    for (int i = 0; i < 4; ++i) total -= std::log(static_cast<double>(P(i, labels[static_cast<std::size_t>(i)])));
    return total / 4;
  };
  // Moving a weight can change which value wins a pooling block: no derivative there, skip it.
  auto winners = [&] {
    const Matrix A = network.activations(X).front();  // the first conv's output, 4×5×5, into the pool
    std::vector<int> best;
    for (Eigen::Index n = 0; n < A.rows(); ++n)
      for (int c = 0; c < 4; ++c)
        for (int y = 0; y < 2; ++y)
          for (int x = 0; x < 2; ++x) {
            int winner = 0;
            for (int k = 1; k < 4; ++k)
              if (A(n, (c * 5 + 2 * y + k / 2) * 5 + 2 * x + k % 2) > A(n, (c * 5 + 2 * y + winner / 2) * 5 + 2 * x + winner % 2)) winner = k;
            best.push_back(winner);
          }
    return best;
  };
  const std::vector<int> start = winners();
  auto no_kinks = [&] { return winners() != start; };
  int layers_checked = 0;
  for (Layer& layer : network.layers) {
    const Parameters p = parameters(layer);
    if (!p.W) continue;
    const WeightMatrix dW = *p.dW;
    const RowVector db = *p.db;
    expect_agreement(finite_differences(p.W->data(), dW.data(), p.W->size(), 1e-2f, loss, no_kinks), "W of layer " + std::to_string(layers_checked));
    expect_agreement(finite_differences(p.b->data(), db.data(), p.b->size(), 1e-2f, loss, no_kinks), "b of layer " + std::to_string(layers_checked));
    ++layers_checked;
  }
  EXPECT_EQ(layers_checked, 4);
}

// ---------------------------------------------------------------------------------------------
// The layer syntax and shapes that cannot work.

TEST(LayerSyntax, ReadsEveryKindAndWritesItBack) {
  const std::vector<LayerSpec> specs = parse_layer_specs("conv5x5x32,pool2,conv3x3x64s2same,conv3x3x8s2,conv1x1x4same,flatten,fc256,10");
  ASSERT_EQ(specs.size(), 8u);
  EXPECT_EQ(specs[0], (LayerSpec{.kind = LayerSpec::Kind::conv2d, .size = 32, .kernel = 5}));
  EXPECT_EQ(specs[2], (LayerSpec{.kind = LayerSpec::Kind::conv2d, .size = 64, .kernel = 3, .stride = 2, .padding = Padding::same}));
  EXPECT_EQ(specs[3].stride, 2);
  EXPECT_EQ(specs[3].padding, Padding::valid);
  EXPECT_EQ(specs[1].kind, LayerSpec::Kind::maxpool2);
  EXPECT_EQ(specs[5].kind, LayerSpec::Kind::flatten);
  EXPECT_EQ(specs[7], (LayerSpec{.kind = LayerSpec::Kind::dense, .size = 10}));
  EXPECT_EQ(layer_specs_text(specs), "conv5x5x32,pool2,conv3x3x64s2same,conv3x3x8s2,conv1x1x4same,flatten,fc256,fc10");
  EXPECT_EQ(parse_layer_specs(layer_specs_text(specs)), specs);
}

TEST(LayerSyntax, RefusesWhatItCannotRead) {
  for (const char* bad : {"conv5x5", "conv5x3x8", "conv5x5x8s3", "conv4x4x8same", "conv5x5x0", "pool3", "fc", "fc-3", "relu", "",
                          "conv5x5x8,", "conv5x5x8same2", "10,,10"}) {
    try {
      parse_layer_specs(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_CONTAINS(e.what(), "cannot read");
    }
  }
}

TEST(LayerShapes, ADenseLayerAfterAMapGetsAFlatten) {
  const Network network(parse_layer_specs("conv5x5x32,pool2,conv5x5x64,pool2,fc256,10"), {1, 28, 28}, Activation::relu, 1.0f / 255);
  EXPECT_EQ(network.architecture(), "conv5x5x32,pool2,conv5x5x64,pool2,flatten,fc256,fc10");
  EXPECT_EQ(network.sizes(), (std::vector<int>{784, 32 * 24 * 24, 32 * 12 * 12, 64 * 8 * 8, 64 * 4 * 4, 1024, 256, 10}));
  EXPECT_EQ(network.parameter_names(), (std::vector<std::string>{"conv1", "conv2", "fc1", "fc2"}));
  EXPECT_EQ(network.parameter_count(), std::size_t{32 * 25 + 32 + 64 * 32 * 25 + 64 + 1024 * 256 + 256 + 256 * 10 + 10});
  EXPECT_FALSE(network.dense_only());
  EXPECT_TRUE(Network(parse_layer_specs("fc50,fc20,10"), {1, 28, 28}, Activation::relu, 1).dense_only());
}

TEST(LayerShapes, ShapesThatCannotWorkNameTheLayerAndTheSizes) {
  auto error = [](const char* layers) {
    try {
      Network(parse_layer_specs(layers), {1, 28, 28}, Activation::relu, 1);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // 28 → 24 → 12 → 6 → 3 → 1: the fifth pool meets a 1×1 map.
  EXPECT_CONTAINS(error("conv5x5x8,pool2,pool2,pool2,pool2,pool2,10"), "layer 6 (pool2): 2×2 pooling needs a map of at least 2×2, its input is 8×1×1");
  EXPECT_CONTAINS(error("conv5x5x8,pool2,pool2,conv7x7x8,10"), "layer 4 (conv7x7x8): a 7×7 kernel is larger than its 8×6×6 input");
  EXPECT_CONTAINS(error("conv29x29x8,10"), "layer 1 (conv29x29x8): a 29×29 kernel is larger than its 1×28×28 input");
  EXPECT_CONTAINS(error("fc20,conv3x3x8,10"), "layer 2 (conv3x3x8): a convolution needs a map, its input is a vector of 20 features");
  EXPECT_CONTAINS(error("fc20,pool2,10"), "layer 2 (pool2): pooling needs a map");
  EXPECT_CONTAINS(error("conv3x3x8,pool2"), "the last layer must be dense");
  // "same" keeps a kernel larger than the map possible only as far as the padding reaches.
  EXPECT_EQ(error("conv5x5x8,pool2,pool2,pool2,conv3x3x4same,10"), "no error");  // a 3×3 map, padded to 5×5
}

// ---------------------------------------------------------------------------------------------
// The model file: conv weights as torch.nn.Conv2d's [out, in, kh, kw], the layer list in the
// metadata, a bit-exact round trip; and a dense network still written as version 1.

TEST(ConvModelFile, RoundTripIsBitExactWithTorchNamesAndShapes) {
  Network network(parse_layer_specs("conv5x5x6,pool2,conv3x3x8s2same,fc12,10"), {1, 28, 28}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 4);
  const std::string bytes = serialize_model(network, {{"note", "conv"}});
  const Model loaded = parse_model(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), "conv.safetensors");
  EXPECT_EQ(loaded.metadata.at("format_version"), "2");
  EXPECT_EQ(loaded.metadata.at("architecture"), "conv5x5x6,pool2,conv3x3x8s2same,flatten,fc12,fc10");
  EXPECT_EQ(loaded.metadata.at("input_shape"), "1,28,28");
  EXPECT_EQ(loaded.network.architecture(), network.architecture());
  EXPECT_EQ(serialize_model(loaded.network, loaded.metadata), bytes);  // every byte, weights included
  // conv2.weight [8, 6, 3, 3]: W(c·9 + ky·3 + kx, o) is element [o][c][ky][kx].
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  EXPECT_EQ(header.at("conv1.weight").at("shape"), nlohmann::json({6, 1, 5, 5}));
  EXPECT_EQ(header.at("conv2.weight").at("shape"), nlohmann::json({8, 6, 3, 3}));
  EXPECT_EQ(header.at("conv2.bias").at("shape"), nlohmann::json({8}));
  EXPECT_EQ(header.at("fc1.weight").at("shape"), nlohmann::json({12, 8 * 6 * 6}));
  const Conv2dLayer& conv2 = std::get<Conv2dLayer>(network.layers[2]);
  const std::size_t begin = header.at("conv2.weight").at("data_offsets")[0];
  float element = 0;  // [o=5][c=4][ky=2][kx=1]
  std::memcpy(&element, bytes.data() + 8 + header_size + begin + sizeof(float) * (((5 * 6 + 4) * 3 + 2) * 3 + 1), sizeof(float));
  EXPECT_EQ(element, conv2.W((4 * 3 + 2) * 3 + 1, 5));
}

TEST(ConvModelFile, ADenseNetworkIsStillVersionOne) {
  const Network network(parse_layer_specs("fc20,10"), {1, 28, 28}, Activation::relu, 1.0f / 255);
  const std::string bytes = serialize_model(network, {{"input_shape", "stale"}});
  const Model loaded = parse_model(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), "dense");
  EXPECT_EQ(loaded.metadata.at("format_version"), "1");
  EXPECT_EQ(loaded.metadata.at("architecture"), "784,20,10");
  EXPECT_FALSE(loaded.metadata.contains("input_shape"));
}

TEST(ConvModelFile, RefusesAnArchitectureThatCannotWork) {
  Network network(parse_layer_specs("conv5x5x2,pool2,10"), {1, 28, 28}, Activation::relu, 1.0f / 255);
  const std::string bytes = serialize_model(network, {});
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  auto with_metadata = [&](const std::string& key, const std::string& value) {
    nlohmann::json edited = header;
    edited["__metadata__"][key] = value;
    const std::string text = edited.dump();
    std::string file(8, '\0');
    const std::uint64_t size = text.size();
    std::memcpy(file.data(), &size, 8);
    file += text + bytes.substr(8 + header_size);
    try {
      parse_model(std::span(reinterpret_cast<const unsigned char*>(file.data()), file.size()), "edited");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(with_metadata("note", "unchanged"), "accepted");  // the editing itself is sound
  // 28 → 24 → 12 → 6 → 3 → 1, and a fifth pool.
  EXPECT_CONTAINS(with_metadata("architecture", "conv5x5x2,pool2,pool2,pool2,pool2,pool2,fc10"),
                  "edited: architecture 'conv5x5x2,pool2,pool2,pool2,pool2,pool2,fc10' on input 1,28,28: layer 6 (pool2): 2×2 pooling "
                  "needs a map of at least 2×2, its input is 2×1×1");
  EXPECT_CONTAINS(with_metadata("architecture", "conv5x5x2,pool9,fc10"), "edited: architecture 'conv5x5x2,pool9,fc10': cannot read 'pool9'");
  EXPECT_CONTAINS(with_metadata("input_shape", "1,28"), "edited: input_shape '1,28' is not three sizes like 1,28,28");
  EXPECT_CONTAINS(with_metadata("input_shape", "1,30,30"), "fc1.weight has shape [10,288] but the architecture needs [10,338]");
  EXPECT_CONTAINS(with_metadata("architecture", "conv3x3x2,pool2,fc10"), "conv1.weight has shape [2,1,5,5] but the architecture needs [2,1,3,3]");
}

TEST(ConvCheckpoint, OptimizerMomentsRoundTripUnderTorchNames) {
  Network network(parse_layer_specs("conv3x3x4,pool2,10"), {1, 8, 8}, Activation::relu, 1);
  network.initialize(Init::he, 1);
  TrainingState state{Optimizer({.kind = OptimizerKind::adam, .learning_rate = 0.01f}), 3};
  const Matrix X = random_matrix(5, network.inputs(), 2);
  const std::vector<std::uint8_t> labels{1, 2, 3, 4, 5};
  network.train_step(X, labels, state.optimizer);
  const std::filesystem::path path = testing::TempDir() + "conv_checkpoint.safetensors";
  save_checkpoint(path, network, state, {});
  const Model model = load_model(path);
  const TrainingState restored = restore_training_state(model, state.optimizer.settings);
  ASSERT_EQ(restored.optimizer.state.size(), 2u);  // conv1 and fc1
  EXPECT_EQ(restored.optimizer.state[0].W2, state.optimizer.state[0].W2);
  EXPECT_EQ(restored.optimizer.state[1].b1, state.optimizer.state[1].b1);
  bool named = false;
  for (const NamedTensor& t : model.extra) named |= t.name == "optimizer.conv1.weight.m";
  EXPECT_TRUE(named);
}

// ---------------------------------------------------------------------------------------------
// Learning: a small CNN lowers its loss on a fixed batch, with dropout on its hidden dense layer.

TEST(ConvTraining, LossFallsOnAFixedBatch) {
  Network network(parse_layer_specs("conv3x3x6same,pool2,conv3x3x8s2,fc16,10"), {1, 12, 12}, Activation::relu, 1);
  network.initialize(Init::he, 2);
  const Matrix X = random_matrix(10, network.inputs(), 3);
  std::vector<std::uint8_t> labels(10);
  std::iota(labels.begin(), labels.end(), std::uint8_t{0});
  Optimizer optimizer({.kind = OptimizerKind::nesterov, .learning_rate = 0.05f});
  const float first = network.train_step(X, labels, optimizer, 0.2f, 1);
  float last = first;
  for (int step = 0; step < 60; ++step) last = network.train_step(X, labels, optimizer, 0.2f, static_cast<std::uint64_t>(step));
  EXPECT_LT(last, 0.5f * first);
}

// The shares of a batch and the order their gradients are added in depend on the batch alone, so
// one thread or several train the same weights, bit for bit. Batch 10 is cut into 4 uneven shares.
TEST(ConvTraining, WeightsDoNotDependOnTheNumberOfThreads) {
  auto train = [](int threads) {
    Network network(parse_layer_specs("conv3x3x6same,pool2,conv3x3x8,fc16,10"), {1, 12, 12}, Activation::relu, 1);
    network.initialize(Init::he, 2);
    network.set_threads(threads);
    Optimizer optimizer({.kind = OptimizerKind::nesterov, .learning_rate = 0.05f, .momentum = 0.9f});
    std::vector<std::uint8_t> labels(10);
    std::iota(labels.begin(), labels.end(), std::uint8_t{0});
    for (int step = 0; step < 5; ++step)
      network.train_step(random_matrix(10, network.inputs(), 40 + static_cast<std::uint64_t>(step)), labels, optimizer);
    return network;
  };
  support::expect_same_weights_whatever_the_threads(train);
}
