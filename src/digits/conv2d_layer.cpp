#include "digits/conv2d_layer.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>

#include "digits/error.hpp"
#include "digits/gemm.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace digits {

int conv_output_side(int side, int kernel, int stride, int pad) {
  const int span = side + 2 * pad - kernel;
  return span < 0 ? 0 : span / stride + 1;
}

Conv2dLayer::Conv2dLayer(Shape input, int out_channels, int kernel, int stride, Padding padding, Activation activation)
    : activation(activation), input_(input), kernel_(kernel), stride_(stride), pad_(0), padding_(padding) {
  const std::string name = "conv" + std::to_string(kernel) + "x" + std::to_string(kernel) + "x" + std::to_string(out_channels);
  if (input.channels <= 0 || input.height <= 0 || input.width <= 0 || out_channels <= 0 || kernel <= 0)
    throw Error(name + ": a convolution needs positive sizes");
  if (stride != 1 && stride != 2) throw Error(name + ": the stride must be 1 or 2, not " + std::to_string(stride));
  if (padding == Padding::same) {
    if (kernel % 2 == 0) throw Error(name + ": \"same\" padding needs an odd kernel, to pad every side alike");
    pad_ = (kernel - 1) / 2;
  }
  output_ = {out_channels, conv_output_side(input.height, kernel, stride, pad_), conv_output_side(input.width, kernel, stride, pad_)};
  if (kernel > input.height + 2 * pad_ || kernel > input.width + 2 * pad_)
    throw Error(name + ": a " + std::to_string(kernel) + "×" + std::to_string(kernel) + " kernel is larger than its " +
                std::to_string(input.channels) + "×" + std::to_string(input.height) + "×" + std::to_string(input.width) + " input");
  W = WeightMatrix::Zero(input.channels * kernel * kernel, out_channels);
  b = RowVector::Zero(out_channels);
  make_window_tables();
}

void Conv2dLayer::initialize(Init init, Rng& rng) {
  const auto fan_in = static_cast<float>(W.rows()), fan_out = static_cast<float>(W.cols() * kernel_ * kernel_);
  float scale = 0.01f;
  if (init == Init::he) scale = std::sqrt(2.0f / fan_in);
  if (init == Init::xavier) scale = std::sqrt(2.0f / (fan_in + fan_out));
  // Filter by filter, in the file's order [o][c][ky][kx].
  for (Eigen::Index o = 0; o < W.cols(); ++o)
    for (Eigen::Index k = 0; k < W.rows(); ++k) W(k, o) = rng.normal() * scale;
  b.setZero();
}

// ---------------------------------------------------------------------------------------------
// The plain reference: the definition as nested loops. Slow, and easy to check by hand.

void conv2d_forward_plain(const Conv2dLayer& layer, const Matrix& X, Matrix& Z) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  assert(X.cols() == in.size());
  Z.resize(X.rows(), out.size());
  for (Eigen::Index n = 0; n < X.rows(); ++n)
    for (int o = 0; o < out.channels; ++o)
      for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
          float z = layer.b(o);
          for (int c = 0; c < in.channels; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = y * s + ky - p, ix = x * s + kx - p;
                if (iy < 0 || iy >= in.height || ix < 0 || ix >= in.width) continue;  // zero padding
                z += layer.W((c * k + ky) * k + kx, o) * X(n, (c * in.height + iy) * in.width + ix);
              }
          Z(n, (o * out.height + y) * out.width + x) = z;
        }
}

void conv2d_backward_plain(const Conv2dLayer& layer, const Matrix& X, const Matrix& dZ, WeightMatrix& dW, RowVector& db,
                           Matrix& dX) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  dW = WeightMatrix::Zero(layer.W.rows(), layer.W.cols());
  db = RowVector::Zero(out.channels);
  dX = Matrix::Zero(X.rows(), in.size());
  for (Eigen::Index n = 0; n < X.rows(); ++n)
    for (int o = 0; o < out.channels; ++o)
      for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
          const float g = dZ(n, (o * out.height + y) * out.width + x);
          db(o) += g;
          for (int c = 0; c < in.channels; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = y * s + ky - p, ix = x * s + kx - p;
                if (iy < 0 || iy >= in.height || ix < 0 || ix >= in.width) continue;
                const Eigen::Index pixel = (c * in.height + iy) * in.width + ix, weight = (c * k + ky) * k + kx;
                dW(weight, o) += g * X(n, pixel);
                dX(n, pixel) += g * layer.W(weight, o);
              }
        }
}

// ---------------------------------------------------------------------------------------------
// The fast path: im2col turns the convolution into one matrix product (and its backward into two).

namespace {

// Output columns x whose input column x·s + kx − p falls inside the image: [begin, end).
struct Span {
  int begin, end;
};

// The rows im2col copies are short (8 to 28 values for MNIST's maps) and there are many of them:
// a call to memcpy for each would cost more than the copy. These copy or add `count` values in
// registers, 16 at a time where the CPU has AVX-512.
inline void copy_short(const float* from, float* to, int count) {
#if defined(__AVX512F__)
  for (; count >= 16; count -= 16, from += 16, to += 16) _mm512_storeu_ps(to, _mm512_loadu_ps(from));
  const __mmask16 lanes = static_cast<__mmask16>((1u << count) - 1);
  _mm512_mask_storeu_ps(to, lanes, _mm512_maskz_loadu_ps(lanes, from));
#else
  for (int i = 0; i < count; ++i) to[i] = from[i];
#endif
}
inline void add_short(const float* from, float* to, int count) {
#if defined(__AVX512F__)
  for (; count >= 16; count -= 16, from += 16, to += 16) _mm512_storeu_ps(to, _mm512_add_ps(_mm512_loadu_ps(to), _mm512_loadu_ps(from)));
  const __mmask16 lanes = static_cast<__mmask16>((1u << count) - 1);
  _mm512_mask_storeu_ps(to, lanes, _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, to), _mm512_maskz_loadu_ps(lanes, from)));
#else
  for (int i = 0; i < count; ++i) to[i] += from[i];
#endif
}
inline void zero_short(float* to, int count) {
  for (int i = 0; i < count; ++i) to[i] = 0.0f;
}
Span inside_columns(int kx, int stride, int pad, int in_width, int out_width) {
  int begin = 0, end = out_width;
  while (begin < end && begin * stride + kx - pad < 0) ++begin;
  while (end > begin && (end - 1) * stride + kx - pad >= in_width) --end;
  return {begin, end};
}

}  // namespace

void im2col(const Conv2dLayer& layer, const Matrix& X, Eigen::Index first, Eigen::Index count, Matrix& columns) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  const Eigen::Index positions = out.height * out.width;
  assert(columns.rows() == in.channels * k * k && columns.cols() == count * positions);
  if (s == 1 && p == 0) {  // the common case, without edges: each row is a window of the image
    for (Eigen::Index n = first; n < first + count; ++n)
      for (int c = 0; c < in.channels; ++c)
        for (int ky = 0; ky < k; ++ky)
          for (int kx = 0; kx < k; ++kx) {
            float* __restrict row = columns.data() + ((c * k + ky) * k + kx) * columns.cols() + (n - first) * positions;
            const float* __restrict source = X.data() + n * X.cols() + (c * in.height + ky) * in.width + kx;
            for (int y = 0; y < out.height; ++y) copy_short(source + y * in.width, row + y * out.width, out.width);
          }
    return;
  }
  for (Eigen::Index n = first; n < first + count; ++n) {
    const float* image = X.data() + n * X.cols();
    for (int c = 0; c < in.channels; ++c)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          // Row (c, ky, kx): what each output position sees through this one weight.
          float* row = columns.data() + ((c * k + ky) * k + kx) * columns.cols() + (n - first) * positions;
          const Span inside = inside_columns(kx, s, p, in.width, out.width);
          for (int y = 0; y < out.height; ++y, row += out.width) {
            const int iy = y * s + ky - p;
            if (iy < 0 || iy >= in.height) {  // the kernel row hangs over the top or bottom edge
              zero_short(row, out.width);
              continue;
            }
            const float* source = image + (c * in.height + iy) * in.width + kx - p;  // source[x·s] is what x sees
            zero_short(row, inside.begin);
            if (s == 1)
              copy_short(source + inside.begin, row + inside.begin, inside.end - inside.begin);
            else
              for (int x = inside.begin; x < inside.end; ++x) row[x] = source[x * s];
            zero_short(row + inside.end, out.width - inside.end);
          }
        }
  }
}

void col2im(const Conv2dLayer& layer, const Matrix& dcolumns, Eigen::Index first, Eigen::Index count, Matrix& dX) {
  const Shape in = layer.input_shape(), out = layer.output_shape();
  const int k = layer.kernel(), s = layer.stride(), p = layer.pad();
  const Eigen::Index positions = out.height * out.width;
  assert(dX.cols() == in.size() && dcolumns.cols() == count * positions);
#if defined(__AVX512F__)
  if (s == 1 && p == 0 && in.width <= 32) {
    // No edges, and an image row fits two registers. Each row of dX gathers from every (ky, kx)
    // whose window covers it; adding into dX in memory, one shifted window after the other, makes
    // each load wait for the store just before it (they overlap). So the sums for one row of dX
    // are made in registers, each window read at its shift with a masked load, and stored once.
    for (Eigen::Index n = first; n < first + count; ++n) {
      float* image = dX.data() + n * dX.cols();
      for (int c = 0; c < in.channels; ++c)
        for (int iy = 0; iy < in.height; ++iy) {
          __m512 low = _mm512_setzero_ps(), high = _mm512_setzero_ps();  // columns 0–15 and 16–31
          for (int ky = std::max(0, iy - out.height + 1); ky <= std::min(k - 1, iy); ++ky) {
            const int y = iy - ky;
            const float* rows = dcolumns.data() + ((c * k + ky) * k) * dcolumns.cols() + (n - first) * positions + y * out.width;
            for (int kx = 0; kx < k; ++kx) {
              // Window (ky, kx) adds row y of its columns to dX columns kx … kx + W′ − 1.
              const float* window = rows + kx * dcolumns.cols() - kx;  // window[ix] lands on column ix
              const auto lanes = [&](int from) {
                const int lo = std::max(kx - from, 0), hi = std::min(kx + out.width - from, 16);
                return hi <= lo ? __mmask16(0) : static_cast<__mmask16>(((1u << (hi - lo)) - 1) << lo);
              };
              low = _mm512_add_ps(low, _mm512_maskz_loadu_ps(lanes(0), window));
              if (in.width > 16) high = _mm512_add_ps(high, _mm512_maskz_loadu_ps(lanes(16), window + 16));
            }
          }
          float* target = image + (c * in.height + iy) * in.width;
          _mm512_mask_storeu_ps(target, static_cast<__mmask16>((1u << std::min(in.width, 16)) - 1), low);
          if (in.width > 16) _mm512_mask_storeu_ps(target + 16, static_cast<__mmask16>((1u << (in.width - 16)) - 1), high);
        }
    }
    return;
  }
#endif
  for (Eigen::Index n = first; n < first + count; ++n) {
    float* image = dX.data() + n * dX.cols();
    std::fill(image, image + dX.cols(), 0.0f);
    for (int c = 0; c < in.channels; ++c)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          const float* row = dcolumns.data() + ((c * k + ky) * k + kx) * dcolumns.cols() + (n - first) * positions;
          const Span inside = inside_columns(kx, s, p, in.width, out.width);
          for (int y = 0; y < out.height; ++y, row += out.width) {
            const int iy = y * s + ky - p;
            if (iy < 0 || iy >= in.height) continue;  // gradients of padding go nowhere
            float* target = image + (c * in.height + iy) * in.width + kx - p;
            if (s == 1)
              add_short(row + inside.begin, target + inside.begin, inside.end - inside.begin);
            else
              for (int x = inside.begin; x < inside.end; ++x) target[x * s] += row[x];
          }
        }
  }
}


// ---------------------------------------------------------------------------------------------
// Training's path: im2col fused into the packing of our matrix product (gemm.hpp), an implicit
// GEMM. The product packs B in blocks of kc × nc anyway; packing them straight from the image
// skips the column matrix X̂ altogether (26 MB for the cnn preset's second layer at batch 128).
//
// Entry (w, q) of X̂, weight w = (c, ky, kx) at output position q = (y, x), is the pixel
//   image[(c·H + y·s + ky − p)·W + x·s + kx − p] = image[window(q) + weight(w)]
// with window(q) = (y·s)·Wp + x·s where the window starts in the padded image, and
// weight(w) = (c·Hp + ky)·Wp + kx its place inside any window: a sum of two offsets, one per
// index (Hp = H + 2p, Wp = W + 2p; a layer that pads copies each image into a zero frame first,
// so that every window lies inside). The two tables are made once, in the constructor.

namespace {

// A block of X̂ (the forward: across the positions, along the weights) or of X̂ᵀ (the weight
// gradient: across the weights, along the positions of sample after sample) packed from the
// images: entry (a, kk) of the block is image_j[across[a] + along[kk − j·period]] where
// j = ⌊kk / period⌋, the sum running through the images one after another (period = C·k² in the
// forward, which has one image; H′·W′ in the weight gradient).
struct Windows {
  const float* const* images;
  const int* across;
  const int* across_run;  // across_run[a]: how many entries from a on are neighbours (across[a] + 0, 1, 2, …)
  const int* along;
  const int* along_run;   // the same for `along`
  long period;
};

// to[r] = from[index[r]] for r < count, 0 up to width. With stride 1, neighbouring output
// positions see neighbouring pixels (eight of them in a row of the cnn preset's second layer), and
// so do the k weights of a kernel row: a stretch of 8 or more neighbours is copied with one masked
// load and store, anything else gathered 16 at a time (a gather costs about a load per lane).
inline void gather(const float* from, const int* index, const int* run, long count, long width, float* to) {
#if defined(__AVX512F__)
  long r = 0;
  while (r < count) {
    const long left = std::min(count - r, 16L);
    if (left >= 8 && run[r] >= 8) {  // whole runs of 8 with plain moves: a masked store costs more
      _mm256_storeu_ps(to + r, _mm256_loadu_ps(from + index[r]));
      r += 8;
    } else if (run[r] >= 8 || run[r] >= left) {
      const long n = std::min<long>(run[r], left);
      const __mmask16 lanes = static_cast<__mmask16>((1u << n) - 1);
      _mm512_mask_storeu_ps(to + r, lanes, _mm512_maskz_loadu_ps(lanes, from + index[r]));
      r += n;
    } else {
      const __mmask16 lanes = static_cast<__mmask16>((1u << left) - 1);
      const __m512i at = _mm512_maskz_loadu_epi32(lanes, index + r);
      _mm512_mask_storeu_ps(to + r, lanes, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, at, from, 4));
      r += left;
    }
  }
  for (; r < width; r += 16) {
    const long left = std::min(width - r, 16L);
    _mm512_mask_storeu_ps(to + r, static_cast<__mmask16>((1u << left) - 1), _mm512_setzero_ps());
  }
#else
  (void)run;
  for (long r = 0; r < count; ++r) to[r] = from[index[r]];
  for (long r = count; r < width; ++r) to[r] = 0.0f;
#endif
}

void pack_windows(const void* context, const PackBlock& block, float* to) {
  const Windows& windows = *static_cast<const Windows*>(context);
  const long width = block.width;
  for (long first = 0; first < block.across_count; first += width) {
    const long count = std::min(width, block.across_count - first);
    const int* across = windows.across + block.across_first + first;
    const int* run = windows.across_run + block.across_first + first;
    long image = block.along_first / windows.period, offset = block.along_first % windows.period;
    for (long p = 0; p < block.along_count;) {
      const float* at = windows.images[image] + windows.along[offset];
      // The weight gradient's stretch of neighbouring positions (a row of the output, with stride
      // 1): each of the panel's lines is a row of pixels, packed by transposing (pack_lines).
      const long stretch = std::min<long>(windows.along_run[offset], block.along_count - p);
      if (stretch >= 8) {
        const float* lines[64];
        assert(count <= 64);
        for (long r = 0; r < count; ++r) lines[r] = at + across[r];
        pack_lines(lines, count, width, stretch, to);
      } else {
        gather(at, across, run, count, width, to);
      }
      const long done = stretch >= 8 ? stretch : 1;
      p += done, to += done * width, offset += done;
      if (offset == windows.period) offset = 0, ++image;
    }
  }
}

// The weight gradient's A, dZ of several samples side by side: (C′ × samples·H′·W′), entry
// (o, j·P + q) = dZ[j·row_stride + o·P + q], sample j's row of dZ read as (C′ × P) (NCHW).
struct SampleMaps {
  const float* dZ;
  long row_stride, positions;
};

void pack_sample_maps(const void* context, const PackBlock& block, float* to) {
  const SampleMaps& maps = *static_cast<const SampleMaps*>(context);
  const long width = block.width, end = block.along_first + block.along_count;
  for (long first = 0; first < block.across_count; first += width) {
    const long count = std::min(width, block.across_count - first);
    // One sample's stretch of the filters' rows at a time, each row read along its length
    // (reading every P-th float instead would touch a cache line per number): a transpose.
    for (long kk = block.along_first; kk < end;) {
      const long sample = kk / maps.positions, q = kk % maps.positions;
      const long stretch = std::min(maps.positions - q, end - kk);
      const float* lines[64];
      assert(count <= 64);
      for (long r = 0; r < count; ++r)
        lines[r] = maps.dZ + sample * maps.row_stride + (block.across_first + first + r) * maps.positions + q;
      pack_lines(lines, count, width, stretch, to);
      to += stretch * width;
      kk += stretch;
    }
  }
}

}  // namespace

void Conv2dLayer::make_window_tables() {
  const int padded_height = input_.height + 2 * pad_, padded_width = input_.width + 2 * pad_;
  window_start_.clear();
  for (int y = 0; y < output_.height; ++y)
    for (int x = 0; x < output_.width; ++x) window_start_.push_back(y * stride_ * padded_width + x * stride_);
  weight_offset_.clear();
  for (int c = 0; c < input_.channels; ++c)
    for (int ky = 0; ky < kernel_; ++ky)
      for (int kx = 0; kx < kernel_; ++kx) weight_offset_.push_back((c * padded_height + ky) * padded_width + kx);
  const auto runs = [](const std::vector<int>& offsets) {  // the neighbours from each entry on
    std::vector<int> run(offsets.size(), 1);
    for (std::size_t a = offsets.size(); a-- > 1;)
      if (offsets[a] == offsets[a - 1] + 1) run[a - 1] = run[a] + 1;
    return run;
  };
  window_run_ = runs(window_start_);
  weight_run_ = runs(weight_offset_);
}

void Conv2dLayer::padded_images(const Matrix& X, Eigen::Index first, Eigen::Index count, Workspace& w) const {
  w.images.resize(static_cast<std::size_t>(count));  // sized once per share size: no allocation after
  if (pad_ == 0) {
    for (Eigen::Index n = 0; n < count; ++n) w.images[n] = X.data() + (first + n) * X.cols();
    return;
  }
  const int padded_height = input_.height + 2 * pad_, padded_width = input_.width + 2 * pad_;
  const long padded_size = static_cast<long>(input_.channels) * padded_height * padded_width;
  w.frames.assign(static_cast<std::size_t>(count * padded_size), 0.0f);
  for (Eigen::Index n = 0; n < count; ++n) {
    const float* image = X.data() + (first + n) * X.cols();
    float* frame = w.frames.data() + n * padded_size;
    for (int c = 0; c < input_.channels; ++c)
      for (int y = 0; y < input_.height; ++y)
        std::copy_n(image + (c * input_.height + y) * input_.width, input_.width,
                    frame + (c * padded_height + y + pad_) * padded_width + pad_);
    w.images[n] = frame;
  }
}

// A_n = f(Wᵀ·X̂_n + b) for samples first…first+count−1, one product per sample: Z_n,
// (C′ × H′·W′) row-major, is exactly the sample's row of Z in NCHW order, so the product writes it
// in place, into A, and its epilogue adds the bias per filter (a row) and applies f there, while
// the tile is in L1: Z itself is never kept (backward reads f′ from A).
// `weights` is Wᵀ (C′ × C·k²) packed.
void Conv2dLayer::forward_samples(const Matrix& X, Eigen::Index first, Eigen::Index count, const PackedA& weights,
                                  Matrix& A, Workspace& w) const {
  for (Eigen::Index n = first; n < first + count; ++n) forward_positions(X, n, 0, output_.height * output_.width, weights, A, w);
}

void Conv2dLayer::forward_positions(const Matrix& X, Eigen::Index n, long first, long count, const PackedA& weights,
                                    Matrix& A, Workspace& w) const {
  const long positions = output_.height * output_.width;
  padded_images(X, n, 1, w);
  // X̂_n's columns first…first+count−1 (C·k² × count), never stored.
  const Windows windows{w.images.data(), window_start_.data() + first, window_run_.data() + first, weight_offset_.data(), weight_run_.data(), W.rows()};
  const GemmOperand columns{.pack = pack_windows, .context = &windows};
  float* Z = A.data() + n * A.cols() + first;  // row o of the block is filter o's map from position `first` on
  gemm(weights, count, columns, Z, positions,
       {.row_bias = b.data(), .activated = Z, .activated_stride = positions, .activation = activation}, w.panels);
}

const Matrix& Conv2dLayer::forward(const Matrix& X, WorkerPool* pool) {
  assert(X.cols() == in());
  X_ = &X;
  const Eigen::Index batch = X.rows();
  const int shares = static_cast<int>(std::min<Eigen::Index>(kShares, batch));
  A_.resize(batch, out());
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(batch, shares, share);
    Workspace& w = workspaces_[share];
    pack_transposed_weights(w.W_packed);  // once per share
    forward_samples(X, first, count, w.W_packed, A_, w);
  });
  return A_;
}

const Matrix& Conv2dLayer::backward(const Matrix& dA, bool compute_dX, WorkerPool* pool) {
  const Eigen::Index batch = dA.rows();
  const long positions = output_.height * output_.width, weights = W.rows(), filters = W.cols();
  const int shares = static_cast<int>(std::min<Eigen::Index>(kShares, batch));
  dZ_.resize(batch, out());
  if (compute_dX) dX_.resize(batch, in());
  else dX_.resize(0, 0);
  run_tasks(pool, shares, [&](int share) {
    const auto [first, count] = share_of(batch, shares, share);
    Workspace& w = workspaces_[share];
    // dZ = dA ⊙ f′(Z), f′ read from A = f(Z): ReLU's z > 0 is a > 0, and σ′ and tanh′ are
    // functions of their outputs anyway.
    activation_backward_rows(activation, A_, A_, dA, dZ_, first, count);
    // dWᵀ (C′ × C·k²) = Σ_n dZ_n·X̂_nᵀ, the share's samples in one product whose sum runs over
    // count·H′·W′ (sample after sample): A = [dZ_first … dZ_last], B = [X̂_first … X̂_last]ᵀ, packed
    // from the images as the forward packs X̂_n, the two tables swapped. dW is column-major, so
    // its bytes are dWᵀ row-major.
    w.dW.resize(weights, filters);
    padded_images(*X_, first, count, w);
    const SampleMaps maps{dZ_.data() + first * dZ_.cols(), dZ_.cols(), positions};
    const Windows windows{w.images.data(), weight_offset_.data(), weight_run_.data(), window_start_.data(), window_run_.data(), positions};
    gemm(filters, weights, count * positions, {.pack = pack_sample_maps, .context = &maps},
         {.pack = pack_windows, .context = &windows}, w.dW.data(), weights, {}, w.gemm);
    w.db.setZero(filters);
    for (Eigen::Index n = first; n < first + count; ++n)  // db = Σ_n Σ_positions dZ_n
      w.db += Eigen::Map<const Matrix>(dZ_.data() + n * dZ_.cols(), filters, positions).rowwise().sum().transpose();
    if (!compute_dX) return;
    pack_a(weights, filters, GemmOperand::column_major(W.data(), weights), w.W_packed);  // W (C·k² × C′), once
    w.dcolumns.resize(weights, positions);
    for (Eigen::Index n = first; n < first + count; ++n) {
      const GemmOperand dZn = GemmOperand::row_major(dZ_.data() + n * dZ_.cols(), positions);  // dZ_n (C′ × H′·W′)
      gemm(w.W_packed, positions, dZn, w.dcolumns.data(), positions, {}, w.panels);  // dX̂_n = W·dZ_n (C·k² × H′·W′)
      col2im(*this, w.dcolumns, n, 1, dX_);                                           // dX_n = col2im(dX̂_n)
    }
  });
  // The shares' parts, added in share order whatever thread computed them.
  dW = workspaces_[0].dW;
  db = workspaces_[0].db;
  for (int share = 1; share < shares; ++share) dW += workspaces_[share].dW, db += workspaces_[share].db;
  return dX_;
}

void Conv2dLayer::infer(const Matrix& X, Matrix& A, WorkerPool* pool) const {
  A.resize(X.rows(), out());
  Workspace w[kShares];
  const PackedA* weights = inference_weights_.get();
  if (!weights) {
    pack_transposed_weights(w[0].W_packed);
    weights = &w[0].W_packed;
  }
  const int shares = pool ? std::min(pool->threads(), kShares) : 1;
  if (shares == 1) return forward_samples(X, 0, X.rows(), *weights, A, w[0]);
  if (X.rows() >= shares) {
    return run_tasks(pool, shares, [&](int share) {
      const auto [first, count] = share_of(X.rows(), shares, share);
      forward_samples(X, first, count, *weights, A, w[share]);
    });
  }
  // A drawing or two: each sample's positions, in whole panels of the product's tile (kNR), so
  // that no panel is cut in two and padded twice.
  const long positions = output_.height * output_.width, nr = gemm_blocking().nr;
  const long panels = (positions + nr - 1) / nr;
  for (Eigen::Index n = 0; n < X.rows(); ++n) {
    run_tasks(pool, shares, [&](int share) {
      const auto [first, count] = share_of(panels, shares, share);
      const long from = first * nr, to = std::min(positions, (first + count) * nr);
      if (to > from) forward_positions(X, n, from, to - from, *weights, A, w[share]);
    });
  }
}

void Conv2dLayer::pack_transposed_weights(PackedA& packed) const {
  pack_a(W.cols(), W.rows(), GemmOperand::row_major(W.data(), W.rows()), packed);  // W is C·k² × C′, stored column-major
}

void Conv2dLayer::pack_for_inference() {
  auto packed = std::make_shared<PackedA>();
  pack_transposed_weights(*packed);
  inference_weights_ = std::move(packed);
}

}  // namespace digits
