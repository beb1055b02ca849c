// by_hand: numbers small enough to check with a pencil, computed by the library's own layers.
//
//   1. A 2-2-2 network (2 inputs, 2 hidden ReLU units, 2 classes), one image: the forward pass,
//      the loss, every gradient of the backward pass and one step of gradient descent, each value
//      printed; then a central-difference check of every weight's gradient.
//   2. A 2×2 kernel over a 3×3 image (tests/unit/test_conv.cpp's hand-checked case): im2col, the
//      forward product, and the backward, with dX computed a second time as a "full" convolution
//      of dZ with the flipped kernel.
//
// docs/how-it-works.md quotes this program's output in two blocks (§4 and §8), and the ctest
// doc_matches_the_code (tests/python/check_doc.py) runs it and compares: the doc is the test.
// Every claim it prints is also checked here: one that fails makes it exit with status 1.
//
// Run:  by_hand          (no data needed)

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include "digits/conv2d_layer.hpp"
#include "digits/dense_layer.hpp"
#include "digits/error.hpp"
#include "digits/loss.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"

namespace {

using digits::Matrix;

int claims = 0, failures = 0;

void claim(bool holds, const std::string& text) {
  ++claims;
  if (!holds) ++failures;
  std::printf("  [%s] %s\n", holds ? "ok" : "FAILED", text.c_str());
}

// One row of numbers, "[ 0.1000 -0.2000 ]", four decimals: enough to check by hand, few enough
// that float32's rounding never shows.
template <typename Row>
std::string row_text(const Row& row, const char* format = "%8.4f") {
  std::string text = "[";
  char number[32];
  for (Eigen::Index j = 0; j < row.size(); ++j) {
    std::snprintf(number, sizeof number, format, static_cast<double>(row(j)) + 0.0);  // + 0.0: −0 prints as 0
    text += number;
  }
  return text + " ]";
}

// `text` padded with spaces to 22 columns (printf's %-22s counts bytes, and ᵀ, ⊙, η take several).
std::string padded(const std::string& text) {
  std::size_t characters = 0;
  for (const char byte : text) {
    const auto b = static_cast<unsigned char>(byte);
    // A character's first byte counts; continuation bytes (10xxxxxx) and the combining accent of
    // X̂ (U+0302, first byte 0xCC) take no column of their own.
    characters += (b & 0xC0) != 0x80 && b != 0xCC;
  }
  return text + std::string(characters < 22 ? 22 - characters : 0, ' ');
}

// A matrix, one row per line, the first line after `label`, the others indented to match.
template <typename M>
void print_matrix(const std::string& label, const M& m, const char* format = "%8.4f") {
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    std::printf("  %s %s\n", padded(i == 0 ? label : "").c_str(), row_text(m.row(i), format).c_str());
}

// ---- 1. A 2-2-2 network, one step -------------------------------------------------------------

int dense_step() {
  // Samples are rows: one image of two "pixels". W is (in × out): row j holds input j's weights,
  // column k neuron k's.
  digits::Network network({2, 2, 2}, digits::Activation::relu, /*input_scale=*/1.0f);
  auto& layer1 = std::get<digits::DenseLayer>(network.layers[0]);
  auto& layer2 = std::get<digits::DenseLayer>(network.layers[1]);
  layer1.W << 0.1f, 0.3f,
              -0.2f, 0.4f;
  layer1.b << 0.0f, 0.1f;
  layer2.W << 0.5f, -0.5f,
              0.2f, 0.6f;
  layer2.b << 0.1f, 0.0f;
  Matrix X(1, 2);
  X << 1.0f, 2.0f;
  const std::vector<std::uint8_t> label{0};
  const float learning_rate = 0.1f;
  const digits::Network before = network;

  std::printf("1. A 2-2-2 network, one image x = [1, 2] of class 0, one step of gradient descent (η = %.1f)\n",
              static_cast<double>(learning_rate));
  print_matrix("W1 =", layer1.W);
  print_matrix("b1 =", layer1.b);
  print_matrix("W2 =", layer2.W);
  print_matrix("b2 =", layer2.b);

  std::printf(" forward\n");
  // The layers' own forward; each keeps its X, Z and A for backward, as in Network::train_step.
  const Matrix A1 = layer1.forward(X);
  const Matrix Z2 = layer2.forward(A1);  // the last layer's activation is the identity: A2 = Z2
  Matrix Z1 = X * layer1.W;              // recomputed only to print it: the layer keeps its Z private
  Z1.rowwise() += layer1.b;
  print_matrix("Z1 = x·W1 + b1", Z1);
  print_matrix("A1 = relu(Z1)", A1);
  print_matrix("Z2 = A1·W2 + b2", Z2);
  Matrix P, dZ2;
  const float loss = digits::softmax_cross_entropy(Z2, label, P, dZ2);
  print_matrix("P = softmax(Z2)", P);
  std::printf("  %s %.4f\n", padded("loss = −ln P[0]").c_str(), static_cast<double>(loss));

  std::printf(" backward\n");
  print_matrix("dZ2 = P − Y", dZ2);
  const Matrix dA1 = layer2.backward(dZ2, /*compute_dX=*/true);
  print_matrix("dW2 = A1ᵀ·dZ2", layer2.dW);
  print_matrix("db2 = dZ2", layer2.db);
  print_matrix("dA1 = dZ2·W2ᵀ", dA1);
  layer1.backward(dA1, /*compute_dX=*/false);  // the first layer's dX, the pixels' gradient, is unused
  Matrix dZ1 = dA1;
  for (Eigen::Index k = 0; k < dZ1.cols(); ++k) dZ1(0, k) = Z1(0, k) > 0 ? dA1(0, k) : 0.0f;  // to print it
  print_matrix("dZ1 = dA1 ⊙ [Z1 > 0]", dZ1);
  print_matrix("dW1 = xᵀ·dZ1", layer1.dW);
  print_matrix("db1 = dZ1", layer1.db);

  // The gradients, kept before the step changes the weights.
  const digits::WeightMatrix dW1 = layer1.dW, dW2 = layer2.dW;
  std::printf(" the step, θ ← θ − η·dθ\n");
  digits::Optimizer sgd({.kind = digits::OptimizerKind::sgd, .learning_rate = learning_rate});
  sgd.step(network.layers);
  print_matrix("W1 =", layer1.W);
  print_matrix("b1 =", layer1.b);
  print_matrix("W2 =", layer2.W);
  print_matrix("b2 =", layer2.b);
  const Matrix P_after = network.predict_proba(X);
  std::printf("  %s %.4f (was %.4f)\n", padded("loss = −ln P[0]").c_str(), -std::log(static_cast<double>(P_after(0, 0))), static_cast<double>(loss));
  claim(-std::log(P_after(0, 0)) < loss, "the step lowered the loss");

  // The same step through Network::train_step, which runs exactly these calls in this order.
  digits::Network again = before;
  digits::Optimizer sgd_again({.kind = digits::OptimizerKind::sgd, .learning_rate = learning_rate});
  again.train_step(X, label, sgd_again);
  bool same = true;
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& a = std::get<digits::DenseLayer>(again.layers[i]);
    const auto& b = std::get<digits::DenseLayer>(network.layers[i]);
    same = same && a.W == b.W && a.b == b.b;
  }
  claim(same, "Network::train_step makes the same step, bit for bit");

  // Central differences: nudge one weight by ±ε and watch the loss (how-it-works §4). The quotient
  // differs from dL/dw by about ε²/6·L‴(w), 2e-5 here, plus float32's rounding of the loss (about
  // 1e-7) divided by 2ε: 5e-6. A smaller ε trades the first for more of the second.
  std::printf(" checked by central differences, (L(w + ε) − L(w − ε)) / 2ε with ε = 0.01\n");
  digits::Network probe = before;
  auto loss_at = [&] { return -std::log(static_cast<double>(probe.predict_proba(X)(0, 0))); };
  const double eps = 1e-2;
  double worst = 0;
  for (std::size_t layer = 0; layer < 2; ++layer) {
    auto& W = std::get<digits::DenseLayer>(probe.layers[layer]).W;
    const digits::WeightMatrix& dW = layer == 0 ? dW1 : dW2;
    Matrix numeric(2, 2);
    for (Eigen::Index j = 0; j < 2; ++j)
      for (Eigen::Index k = 0; k < 2; ++k) {
        const float saved = W(j, k);
        W(j, k) = static_cast<float>(saved + eps);
        const double up = loss_at();
        W(j, k) = static_cast<float>(saved - eps);
        const double down = loss_at();
        W(j, k) = saved;
        // The step actually taken, in float32: w ± eps is rounded, so divide by what it moved.
        const double moved = static_cast<double>(static_cast<float>(saved + eps)) - static_cast<double>(static_cast<float>(saved - eps));
        numeric(j, k) = static_cast<float>((up - down) / moved);
        worst = std::max(worst, static_cast<double>(std::abs(numeric(j, k) - dW(j, k))));
      }
    print_matrix(layer == 0 ? "numeric dW1" : "numeric dW2", numeric);
  }
  claim(worst < 1e-3, "every weight's gradient agrees with its central difference to within 0.001");
  return 0;
}

// ---- 2. A 2×2 kernel over a 3×3 image ----------------------------------------------------------

void conv_by_hand() {
  // tests/unit/test_conv.cpp's KnownValuesOfATwoByTwoKernel: the image 1…9, the kernel
  // [[1, 0], [0, −1]] (top-left minus bottom-right), bias 0.5, stride 1, no padding.
  digits::Conv2dLayer conv({1, 3, 3}, 1, 2, 1, digits::Padding::valid, digits::Activation::identity);
  conv.W << 1, 0, 0, -1;  // one column per filter, rows in the order [c][ky][kx]
  conv.b << 0.5f;
  Matrix X(1, 9);
  X << 1, 2, 3, 4, 5, 6, 7, 8, 9;
  const char* integer = "%5g";

  std::printf("2. A 2×2 kernel over a 3×3 image, stride 1, no padding: a 2×2 output\n");
  print_matrix("X =", Eigen::Map<const Matrix>(X.data(), 3, 3), integer);
  print_matrix("kernel =", Eigen::Map<const Matrix>(conv.W.data(), 2, 2), integer);
  std::printf("  %s %g\n", padded("b =").c_str(), static_cast<double>(conv.b(0)));
  // One column per output position (y, x), holding the 4 values the kernel sees there.
  Matrix columns(4, 4);
  digits::im2col(conv, X, 0, 1, columns);
  std::printf(" forward: im2col, then one product\n");
  print_matrix("X̂ = im2col(X)", columns, integer);
  const Matrix Z = conv.forward(X);
  print_matrix("Z = Wᵀ·X̂ + b", Z, integer);
  print_matrix("as a map", Eigen::Map<const Matrix>(Z.data(), 2, 2), integer);

  std::printf(" backward, given dZ\n");
  Matrix dZ(1, 4);
  dZ << 1, 2, 3, 4;
  print_matrix("dZ =", Eigen::Map<const Matrix>(dZ.data(), 2, 2), integer);
  const Matrix dX = conv.backward(dZ, /*compute_dX=*/true);
  print_matrix("dW = X̂·dZᵀ", Eigen::Map<const Matrix>(conv.dW.data(), 2, 2), integer);
  std::printf("  %s %g\n", padded("db = Σ dZ").c_str(), static_cast<double>(conv.db(0)));
  const Matrix dcolumns = conv.W * dZ;  // dX̂ = W·dZ: each column's 4 gradients, one per pixel seen
  print_matrix("dX̂ = W·dZ", dcolumns, integer);
  print_matrix("dX = col2im(dX̂)", Eigen::Map<const Matrix>(dX.data(), 3, 3), integer);

  // The same dX as a "full" convolution: pad dZ with k − 1 = 1 zero all round and slide the kernel
  // turned by 180°, dX[i, j] = Σ_ky Σ_kx dZ[i − ky, j − kx] · W[ky, kx].
  Matrix full = Matrix::Zero(3, 3);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int ky = 0; ky < 2; ++ky)
        for (int kx = 0; kx < 2; ++kx) {
          const int y = i - ky, x = j - kx;
          if (y >= 0 && y < 2 && x >= 0 && x < 2) full(i, j) += dZ(0, y * 2 + x) * conv.W(ky * 2 + kx, 0);
        }
  claim(full == Eigen::Map<const Matrix>(dX.data(), 3, 3), "col2im's dX is the full convolution of dZ with the flipped kernel");
  Matrix plain_Z, plain_dX;
  digits::WeightMatrix plain_dW;
  digits::RowVector plain_db;
  digits::conv2d_forward_plain(conv, X, plain_Z);
  digits::conv2d_backward_plain(conv, X, dZ, plain_dW, plain_db, plain_dX);
  claim(plain_Z == Z && plain_dW == conv.dW && plain_db == conv.db && plain_dX == dX,
        "the plain loops give the same Z, dW, db and dX");
}

}  // namespace

int main() {
  try {
    dense_step();
    conv_by_hand();
  } catch (const digits::Error& error) {
    std::fprintf(stderr, "by_hand: %s\n", error.what());
    return 1;
  }
  if (failures > 0) {
    std::printf("by_hand: %d of %d claims FAILED\n", failures, claims);
    return 1;
  }
  std::printf("by_hand: all %d claims hold\n", claims);
  return 0;
}
