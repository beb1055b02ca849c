// A 2-D convolution layer: Z = W ⋆ X + b, A = f(Z), over a batch of C×H×W maps (NCHW rows, see
// tensor.hpp). Its forward and backward sit side by side in conv2d_layer.cpp, each twice: a plain
// nested loop to check by hand, and the fast path (im2col, then matrix products: kernels.hpp's
// forward, Eigen's for the gradients) that training uses. docs/how-it-works.md derives them.
#pragma once

#include <string_view>

#include "digits/activation.hpp"
#include "digits/dense_layer.hpp"
#include "digits/random.hpp"
#include "digits/tensor.hpp"

namespace digits {

// "valid": the kernel only sits where it fits, out = ⌊(H − k)/stride⌋ + 1.
// "same":  p = (k − 1)/2 zeros around every side (k odd), out = ⌊(H − 1)/stride⌋ + 1, which is H at
//          stride 1. It is torch.nn.Conv2d(padding=p), so the weights load there unchanged.
enum class Padding { valid, same };

class Conv2dLayer {
 public:
  // out_channels filters of kernel×kernel over `input` channels, moved by `stride` (1 or 2).
  // Throws Error when the kernel does not fit the input, naming the sizes.
  Conv2dLayer(Shape input, int out_channels, int kernel, int stride, Padding padding, Activation activation);

  Shape input_shape() const { return input_; }
  Shape output_shape() const { return output_; }
  int in() const { return input_.size(); }    // values per sample in:  C·H·W
  int out() const { return output_.size(); }  // values per sample out: C′·H′·W′
  int kernel() const { return kernel_; }
  int stride() const { return stride_; }
  int pad() const { return pad_; }
  Padding padding() const { return padding_; }

  // He/Xavier count a filter's inputs, C·k·k, as a dense layer counts `in`.
  void initialize(Init init, Rng& rng);

  // Training forward, the fast path; keeps X, the columns, Z and A for backward.
  // X: (batch × C·H·W), must outlive backward; returns A: (batch × C′·H′·W′).
  const Matrix& forward(const Matrix& X);

  // Backward, given dA = ∂loss/∂A (batch × C′·H′·W′), with Zr, dZr the pre-activations and their
  // gradients with one row per output position (batch·H′·W′ × C′) and X̂ = im2col(X):
  //   dZ  = dA ⊙ f′(Z)                         (batch × C′·H′·W′)
  //   dW  = X̂ᵀ·dZr                             (C·k·k × C′)
  //   db  = Σ_rows dZr                          (1 × C′)
  //   dX̂  = dZr·Wᵀ                              (batch·H′·W′ × C·k·k)
  //   dX  = col2im(dX̂): each column entry added back to the pixel it was copied from (batch × C·H·W)
  // dX only when wanted. Returns dX (empty when not computed).
  const Matrix& backward(const Matrix& dA, bool compute_dX);

  // Inference forward into a caller's buffer; keeps nothing, so it is safe to call concurrently.
  void infer(const Matrix& X, Matrix& A) const;

  Activation activation;
  // (C·k·k × C′): column o is filter o, its weights in the order [c][ky][kx]. Column-major, that is
  // byte for byte PyTorch's Conv2d weight [out_channels, in_channels, kh, kw], which the model file
  // stores, and the layout dense_forward reads fastest (the same as a dense layer's W).
  WeightMatrix W;
  RowVector b;      // (1 × C′): one bias per output channel
  WeightMatrix dW;  // ∂loss/∂W (C·k·k × C′), set by backward
  RowVector db;     // ∂loss/∂b (1 × C′), set by backward

 private:
  Shape input_, output_;
  int kernel_, stride_, pad_;
  Padding padding_;
  const Matrix* X_ = nullptr;
  Matrix columns_, Zr_, Z_, A_, dZ_, dZr_, dcolumns_, dX_;  // workspaces, sized once per batch and reused
};

// The output side of a kernel moved over `side` input values: ⌊(side + 2·pad − kernel)/stride⌋ + 1,
// or 0 when the kernel does not fit.
int conv_output_side(int side, int kernel, int stride, int pad);

// The plain reference, written as the definition reads, one multiply-add at a time:
//   Z[n, o, y, x] = b[o] + Σ_c Σ_ky Σ_kx W[o, c, ky, kx] · X[n, c, y·s + ky − p, x·s + kx − p]
// with X taken as 0 outside the map. Z: (batch × C′·H′·W′), before the activation.
void conv2d_forward_plain(const Conv2dLayer& layer, const Matrix& X, Matrix& Z);
// Its gradients, each the same sum read backward: for every term W·X of Z[n, o, y, x],
//   dW[o, c, ky, kx] += dZ[n, o, y, x] · X[n, c, iy, ix]
//   dX[n, c, iy, ix] += dZ[n, o, y, x] · W[o, c, ky, kx]
//   db[o]            += dZ[n, o, y, x]
// dZ: (batch × C′·H′·W′), the gradient of the pre-activations.
void conv2d_backward_plain(const Conv2dLayer& layer, const Matrix& X, const Matrix& dZ, WeightMatrix& dW, RowVector& db,
                           Matrix& dX);

// The fast path's two reshapes (Chellapilla et al. 2006; Darknet's im2col_cpu and col2im_cpu).
// im2col: row n·H′·W′ + y·W′ + x of `columns` holds the C·k·k input values that output position
// (y, x) of sample n sees, in W's order [c][ky][kx], zeros where the kernel hangs over the edge.
// Then the whole convolution is one product, Zr = columns·W + b.
//   X: (batch × C·H·W) → columns: (batch·H′·W′ × C·k·k)
void im2col(const Conv2dLayer& layer, const Matrix& X, Matrix& columns);
// col2im, im2col's adjoint: adds each entry of dcolumns back onto the input value it was copied
// from (a pixel seen by several positions gathers all their gradients; padding's are dropped).
//   dcolumns: (batch·H′·W′ × C·k·k) → dX: (batch × C·H·W)
void col2im(const Conv2dLayer& layer, const Matrix& dcolumns, Matrix& dX);

}  // namespace digits
