// Our own matrix product (gemm.hpp) against the three loops, within float32 rounding: odd shapes
// (1 × 1, primes, sizes that are not multiples of the tile or the cache blocks), every way round the
// operands are stored, the epilogue (biases, activations, accumulating), an operand packed by a
// function, and one packed A serving several products.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "digits/gemm.hpp"
#include "digits/random.hpp"

using namespace digits;

namespace {

std::vector<float> random_values(long count, Rng& rng) {
  std::vector<float> v(static_cast<std::size_t>(count));
  for (float& x : v) x = rng.normal();
  return v;
}

// An (rows × columns) matrix stored row-major or column-major, as an operand.
struct Stored {
  std::vector<float> values;
  GemmOperand operand;
};
Stored stored(long rows, long columns, bool column_major, Rng& rng) {
  Stored s{random_values(rows * columns, rng), {}};
  s.operand = column_major ? GemmOperand::column_major(s.values.data(), rows) : GemmOperand::row_major(s.values.data(), columns);
  return s;
}

float at(const GemmOperand& X, long i, long j) { return X.data[i * X.row_stride + j * X.column_stride]; }

// Float32 sums of k terms differ from the double ones by at most about k·2⁻²⁴·Σ|a·b|; the bound
// below is four times looser than that and still fails for any wrong term (each is ~1 in size).
float tolerance(const GemmOperand& A, const GemmOperand& B, long i, long j, long k) {
  double magnitude = 0;
  for (long p = 0; p < k; ++p) magnitude += std::abs(static_cast<double>(at(A, i, p)) * at(B, p, j));
  return static_cast<float>(4.0 * (static_cast<double>(k) + 1) * 6e-8 * magnitude + 1e-6);
}

struct GemmShape {
  long m, n, k;
};

void expect_close(const std::vector<float>& got, const std::vector<float>& want, long m, long n, long ld,
                  const GemmOperand& A, const GemmOperand& B, long k, const char* what) {
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < n; ++j) {
      const auto index = static_cast<std::size_t>(i * ld + j);
      ASSERT_NEAR(got[index], want[index], tolerance(A, B, i, j, k) + 1e-5f * std::abs(want[index]))
          << what << " at (" << i << ", " << j << ") of " << m << "×" << n << ", k = " << k;
    }
}

}  // namespace

class Gemm : public ::testing::TestWithParam<GemmShape> {};

// Every combination of A and B row- or column-major (A·B, Aᵀ·B, A·Bᵀ, Aᵀ·Bᵀ as the layers use
// them), C a part of a wider matrix (ldc > n), with and without the epilogue, F beside C or in it.
TEST_P(Gemm, AgreesWithTheThreeLoopsEveryWayRound) {
  const auto [m, n, k] = GetParam();
  Rng rng(static_cast<std::uint64_t>(m * 10007 + n * 101 + k));
  const long ldc = n + 3;
  GemmWorkspace workspace;
  for (int layout = 0; layout < 4; ++layout) {
    const Stored A = stored(m, k, layout & 1, rng), B = stored(k, n, layout & 2, rng);
    const std::vector<float> row_bias = random_values(m, rng), column_bias = random_values(n, rng);
    // 0: no epilogue; 1: both biases and F = relu(C) beside C; 2: the same with F in C's place
    // (what the micro-kernel does itself for whole tiles).
    for (const int kind : {0, 1, 2}) {
      std::vector<float> got(static_cast<std::size_t>(m * ldc), 7.0f), want = got;
      std::vector<float> got_f(got.size(), 0.0f), want_f = got_f;
      GemmEpilogue epilogue;
      if (kind > 0) {
        epilogue = {.row_bias = row_bias.data(), .column_bias = column_bias.data(), .activated = kind == 1 ? got_f.data() : got.data(),
                    .activated_stride = ldc, .activation = Activation::relu};
      }
      gemm(m, n, k, A.operand, B.operand, got.data(), ldc, epilogue, workspace);
      epilogue.activated = kind > 0 ? want_f.data() : nullptr;
      gemm_plain(m, n, k, A.operand, B.operand, want.data(), ldc, epilogue);
      if (kind == 2) {
        expect_close(got, want_f, m, n, ldc, A.operand, B.operand, k, "f(C) in place");
      } else {
        expect_close(got, want, m, n, ldc, A.operand, B.operand, k, "C");
        if (kind == 1) expect_close(got_f, want_f, m, n, ldc, A.operand, B.operand, k, "f(C)");
      }
      for (long i = 0; i < m; ++i)  // the columns beyond n are C's neighbours: untouched
        for (long j = n; j < ldc; ++j) ASSERT_EQ(got[static_cast<std::size_t>(i * ldc + j)], 7.0f);
    }
  }
}

// Sizes around the tile (MR up to 8, NR up to 32) and the blocks (kc 128, mc 256), primes, and the
// shapes of the conv and dense layers of the cnn preset.
INSTANTIATE_TEST_SUITE_P(Shapes, Gemm,
                         ::testing::Values(GemmShape{1, 1, 1}, GemmShape{1, 1, 7}, GemmShape{2, 3, 5}, GemmShape{7, 13, 11},
                                           GemmShape{8, 32, 1}, GemmShape{9, 33, 129}, GemmShape{17, 31, 127},
                                           GemmShape{31, 67, 257}, GemmShape{257, 5, 3}, GemmShape{3, 4099, 2},
                                           GemmShape{64, 64, 800}, GemmShape{32, 576, 25}, GemmShape{61, 101, 263}));

TEST(GemmEpilogue, AccumulatesAndAppliesEachActivation) {
  Rng rng(5);
  const long m = 13, n = 37, k = 19;
  const Stored A = stored(m, k, false, rng), B = stored(k, n, true, rng);
  const std::vector<float> start = random_values(m * n, rng), row_bias = random_values(m, rng);
  GemmWorkspace workspace;
  for (Activation f : {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::identity}) {
    std::vector<float> got = start, want = start, got_f(static_cast<std::size_t>(m * n)), want_f = got_f;
    GemmEpilogue epilogue{.accumulate = true, .row_bias = row_bias.data(), .activated = got_f.data(), .activated_stride = n, .activation = f};
    gemm(m, n, k, A.operand, B.operand, got.data(), n, epilogue, workspace);
    epilogue.activated = want_f.data();
    gemm_plain(m, n, k, A.operand, B.operand, want.data(), n, epilogue);
    expect_close(got, want, m, n, n, A.operand, B.operand, k, activation_name(f).data());
    expect_close(got_f, want_f, m, n, n, A.operand, B.operand, k, activation_name(f).data());
  }
  // C += A·B really adds: starting from C = 0 would differ from starting at `start`.
  std::vector<float> from_zero(static_cast<std::size_t>(m * n), 0.0f);
  gemm(m, n, k, A.operand, B.operand, from_zero.data(), n, {.accumulate = true}, workspace);
  std::vector<float> from_start = start;
  gemm(m, n, k, A.operand, B.operand, from_start.data(), n, {.accumulate = true}, workspace);
  for (std::size_t i = 0; i < start.size(); ++i) ASSERT_NEAR(from_start[i], from_zero[i] + start[i], 1e-4f);
}

// F may be C itself: C = f(A·B + bias) in place, bit for bit what F beside C holds (the conv
// layer writes its maps so). With several slices of the sum (k > kc), f must come after the last.
TEST(GemmEpilogue, ActivatesInPlaceWhenFIsC) {
  Rng rng(6);
  const long m = 19, n = 45, k = 300;
  const Stored A = stored(m, k, false, rng), B = stored(k, n, false, rng);
  const std::vector<float> row_bias = random_values(m, rng);
  GemmWorkspace workspace;
  for (Activation f : {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::identity}) {
    std::vector<float> C(static_cast<std::size_t>(m * n)), F = C, in_place = C;
    gemm(m, n, k, A.operand, B.operand, C.data(), n, {.row_bias = row_bias.data(), .activated = F.data(), .activated_stride = n, .activation = f},
         workspace);
    gemm(m, n, k, A.operand, B.operand, in_place.data(), n,
         {.row_bias = row_bias.data(), .activated = in_place.data(), .activated_stride = n, .activation = f}, workspace);
    EXPECT_EQ(in_place, F) << activation_name(f);
    if (f == Activation::relu) {
      EXPECT_NE(in_place, C) << "some sums are negative: relu must change them";
    }
  }
}

TEST(GemmEpilogue, AnEmptySumGivesTheBiasAlone) {
  const std::vector<float> column_bias{1.0f, -2.0f, 3.0f};
  std::vector<float> C(6, 9.0f), F(6, 9.0f);
  GemmWorkspace workspace;
  gemm(2, 3, 0, GemmOperand::row_major(nullptr, 0), GemmOperand::row_major(nullptr, 3), C.data(), 3,
       {.column_bias = column_bias.data(), .activated = F.data(), .activated_stride = 3, .activation = Activation::relu}, workspace);
  EXPECT_EQ(C, (std::vector<float>{1, -2, 3, 1, -2, 3}));
  EXPECT_EQ(F, (std::vector<float>{1, 0, 3, 1, 0, 3}));
}

// An operand packed by a function (as conv2d_layer.cpp packs im2col's columns) gives the same
// product as the stored matrix it describes, bit for bit: the same numbers in the same panels.
TEST(GemmOperands, APackingFunctionMatchesTheStoredMatrix) {
  Rng rng(11);
  const long m = 19, n = 45, k = 140;
  const Stored A = stored(m, k, false, rng), B = stored(k, n, false, rng);
  const auto pack_b = [](const void* context, const PackBlock& block, float* to) {
    const auto* B = static_cast<const GemmOperand*>(context);
    for (long first = 0; first < block.across_count; first += block.width)
      for (long p = 0; p < block.along_count; ++p)
        for (long r = 0; r < block.width; ++r, ++to) {
          const long j = block.across_first + first + r;
          *to = first + r < block.across_count ? at(*B, block.along_first + p, j) : 0.0f;
        }
  };
  const GemmOperand made{.pack = pack_b, .context = &B.operand};
  std::vector<float> from_stored(static_cast<std::size_t>(m * n)), from_function = from_stored;
  GemmWorkspace workspace;
  gemm(m, n, k, A.operand, B.operand, from_stored.data(), n, {}, workspace);
  gemm(m, n, k, A.operand, made, from_function.data(), n, {}, workspace);
  EXPECT_EQ(from_stored, from_function);
}

// One packed A, several B's: each product as if A had been packed for it alone.
TEST(GemmOperands, OnePackedAServesSeveralProducts) {
  Rng rng(13);
  const long m = 24, k = 300;
  const Stored A = stored(m, k, true, rng);
  PackedA packed;
  pack_a(m, k, A.operand, packed);
  PackBuffer panels;
  GemmWorkspace workspace;
  for (long n : {1L, 40L, 97L}) {
    const Stored B = stored(k, n, false, rng);
    std::vector<float> reused(static_cast<std::size_t>(m * n)), fresh = reused;
    gemm(packed, n, B.operand, reused.data(), n, {}, panels);
    gemm(m, n, k, A.operand, B.operand, fresh.data(), n, {}, workspace);
    EXPECT_EQ(reused, fresh) << "n = " << n;
  }
}

TEST(GemmBlocking, TilesAndBlocksFitTogether) {
  const GemmBlocking b = gemm_blocking();
  EXPECT_GT(b.mr, 0);
  EXPECT_GT(b.nr, 0);
  EXPECT_EQ(b.mc % b.mr, 0);
  EXPECT_EQ(b.nc % b.nr, 0);
#if defined(__AVX512F__)
  EXPECT_STREQ(b.kernel, "AVX-512");
#endif
}
