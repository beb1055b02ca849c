// A 2-D convolution layer: Z = W ⋆ X + b, A = f(Z), over a batch of C×H×W maps (NCHW rows, see
// tensor.hpp). Its forward and backward sit side by side in conv2d_layer.cpp, each twice: a plain
// nested loop to check by hand, and the fast path that training uses: matrix products (gemm.hpp,
// our own; one per sample, and one per share of the batch for the weight gradient) that pack
// im2col's columns straight from the images (an implicit GEMM: the column matrix is never
// written), the batch's shares spread over a WorkerPool's threads.
// docs/how-it-works.md derives them.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "digits/activation.hpp"
#include "digits/dense_layer.hpp"
#include "digits/gemm.hpp"
#include "digits/random.hpp"
#include "digits/tensor.hpp"
#include "digits/worker_pool.hpp"

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

  // Training forward, the fast path; keeps X and A for backward (not Z: f′(Z) is read from A,
  // which the product writes Z into and applies f to in place). With X̂_n = im2col(X_n), the
  // (C·k·k × H′·W′) columns of sample n (im2col below), and Z_n its row of Z read as (C′ × H′·W′),
  // one filter per row (NCHW), sample by sample:
  //   Z_n = Wᵀ·X̂_n + b                         (C′ × H′·W′), b added to each filter's row
  //   A_n = f(Z_n)
  // the bias and f in the product's epilogue, X̂_n packed from the image as the product needs it.
  // X: (batch × C·H·W), must outlive backward; returns A. The batch is cut into shares (kShares
  // of them at most, fixed by the batch size alone) that run on `pool`'s threads when given one.
  const Matrix& forward(const Matrix& X, WorkerPool* pool = nullptr);

  // Backward, given dA = ∂loss/∂A (batch × C′·H′·W′):
  //   dZ   = dA ⊙ f′(Z)                       (batch × C′·H′·W′), dZ_n sample n's row as (C′ × H′·W′)
  //   dWᵀ  = Σ_n dZ_n·X̂_nᵀ                     (C′ × C·k·k), one product per share (its sum runs
  //                                             over the share's samples' positions), then
  //                                             the shares' sums in share order
  //   db   = Σ_n Σ_positions dZ_n               (1 × C′)
  //   dX̂_n = W·dZ_n                             (C·k·k × H′·W′), one sample's columns, in L2
  //   dX_n = col2im(dX̂_n): each entry added back onto the pixel it was copied from (1 × C·H·W)
  // dX only when wanted. Returns dX (empty when not computed).
  const Matrix& backward(const Matrix& dA, bool compute_dX, WorkerPool* pool = nullptr);

  // Inference forward into a caller's buffer; keeps nothing, so it is safe to call concurrently.
  // With a `pool`, its threads share the work: the samples, or for a single drawing its output
  // positions, cut into shares of whole panels of the product (each position's sums are the same
  // whichever thread makes them, so the output is bit for bit the one without a pool).
  void infer(const Matrix& X, Matrix& A, WorkerPool* pool = nullptr) const;
  // Packs Wᵀ once, for every infer to come, instead of at each call (6% of a single drawing's
  // prediction). Only for a layer whose W and b will not change again: fold_for_prediction's
  // layers, which are const. A later change to W would not be seen by infer.
  void pack_for_inference();

  // The most shares a training batch is cut into: enough for the cores we have, few enough that
  // each share's product stays large. Changing it changes the order dW's shares are added in.
  static constexpr int kShares = 4;

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
  Matrix A_, dZ_, dX_;      // the batch's, sized once per batch size and reused
  struct Workspace {        // one share's, reused sample after sample
    PackedA W_packed;       // Wᵀ (forward) or W (backward's dX̂), packed once per call
    PackBuffer panels;      // B's packed block
    GemmWorkspace gemm;     // the weight gradient's product
    std::vector<const float*> images;  // the share's images, each inside its zero frame when the layer pads
    std::vector<float> frames;         // those frames
    Matrix dcolumns;        // dX̂ of one sample (C·k² × H′·W′), 200 KB for the cnn preset's second layer
    WeightMatrix dW;        // the share's part of dW and db
    RowVector db;
  };
  Workspace workspaces_[kShares];
  std::shared_ptr<const PackedA> inference_weights_;  // Wᵀ packed by pack_for_inference, or null
  // Where im2col's entries come from (conv2d_layer.cpp): X̂(w, q) = image[weight_offset_[w] + window_start_[q]].
  std::vector<int> window_start_;   // H′·W′: where output position q's window starts in the (padded) image
  std::vector<int> weight_offset_;  // C·k²: where weight w's pixel lies inside a window
  std::vector<int> window_run_, weight_run_;  // how many entries from each on are neighbours (+0, +1, …)
  void make_window_tables();
  // w.images = samples first…first+count−1 of X, or copies inside zero frames of `pad` pixels (in w.frames).
  void padded_images(const Matrix& X, Eigen::Index first, Eigen::Index count, Workspace& w) const;
  // Wᵀ (C′ × C·k²) packed as the forward product's left operand (gemm.hpp).
  void pack_transposed_weights(PackedA& packed) const;
  void forward_samples(const Matrix& X, Eigen::Index first, Eigen::Index count, const PackedA& weights, Matrix& A,
                       Workspace& w) const;
  // Sample n's output positions first…first+count−1, every filter: columns of its product.
  void forward_positions(const Matrix& X, Eigen::Index n, long first, long count, const PackedA& weights, Matrix& A,
                         Workspace& w) const;
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

// The fast path's two reshapes (Chellapilla et al. 2006; Caffe's im2col_cpu and col2im_cpu).
// im2col: column n·H′·W′ + y·W′ + x of `columns` holds the C·k·k input values that output
// position (y, x) of sample n sees, in W's order [c][ky][kx], zeros where the kernel hangs over
// the edge. Then the whole convolution is one product, Zᵗ = Wᵀ·columns. Training never writes
// these columns (it packs them from the images as the product needs them: conv2d_layer.cpp);
// im2col stays as their definition, which Conv2d.TheImplicitColumnsAreIm2colsColumns holds it to. Row (c, ky, kx) of
// `columns` is the input channel c shifted by (ky, kx) and cut to H′×W′, so it is built from H′ runs
// of W′ pixels, one from each image row y·s + ky − p (every s-th pixel), zeros over a padded edge.
//   samples first…first+count−1 of X: (batch × C·H·W) → their columns of `columns`,
//   which must already be (C·k·k × batch·H′·W′)
void im2col(const Conv2dLayer& layer, const Matrix& X, Eigen::Index first, Eigen::Index count, Matrix& columns);
// col2im, im2col's adjoint: adds each entry of dcolumns back onto the input value it was copied
// from (a pixel seen by several positions gathers all their gradients; padding's are dropped).
//   the samples' columns of dcolumns: (C·k·k × batch·H′·W′) → their rows of dX: (batch × C·H·W)
void col2im(const Conv2dLayer& layer, const Matrix& dcolumns, Eigen::Index first, Eigen::Index count, Matrix& dX);

}  // namespace digits
