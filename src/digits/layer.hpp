// The closed set of layer kinds a network is made of, and the one contract they all keep
// (ConvNetJS's): forward from the previous layer's output, backward into the gradient of its
// input, and its parameters with their gradients. Each kind is a plain class in its own file:
//   dense_layer.hpp     Z = X·W + b, A = f(Z)
//   conv2d_layer.hpp    Z = W ⋆ X + b, A = f(Z)
//   maxpool2_layer.hpp  the largest of each 2×2 block
//   flatten_layer.hpp   a C×H×W map read as C·H·W features
//   batchnorm_layer.hpp Y = γ·(X − μ)/σ + β per channel, A = f(Y)
// Every batch is (batch × values per sample), samples as rows in NCHW order (tensor.hpp).
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "digits/batchnorm_layer.hpp"
#include "digits/conv2d_layer.hpp"
#include "digits/dense_layer.hpp"
#include "digits/flatten_layer.hpp"
#include "digits/maxpool2_layer.hpp"

namespace digits {

using Layer = std::variant<DenseLayer, Conv2dLayer, MaxPool2Layer, FlattenLayer, BatchNormLayer>;

// Each one switches on the kind and calls that class's function of the same name. The kinds that
// cut a batch into shares (conv2d, dense, pooling, batch norm) run them on `pool`'s threads.
const Matrix& forward(Layer& layer, const Matrix& X, WorkerPool* pool = nullptr);                      // training forward
const Matrix& backward(Layer& layer, const Matrix& dA, bool compute_dX, WorkerPool* pool = nullptr);  // returns dX
void infer(const Layer& layer, const Matrix& X, Matrix& A, WorkerPool* pool = nullptr);  // inference, const (a conv's on `pool`)
Shape output_shape(const Layer& layer);
int layer_outputs(const Layer& layer);  // values per sample out: output_shape().size()

// A layer's trainable tensors and their gradients, as an optimizer sees them: W and b of a dense
// or conv layer, γ (as W) and β (as b) of a batch normalization. All null for pooling and flatten,
// which learn nothing. decay: whether weight decay applies to W (never to b). Not to γ: decaying
// γ shrinks the layer's output toward 0, a constraint the network did not ask for, and the common
// practice is to leave normalization's γ and β undecayed (Goyal et al. 2017, "Accurate, large
// minibatch SGD", §2; He et al. 2019, "Bag of tricks", "no bias decay"). PyTorch's plain
// weight_decay would decay them too.
struct Parameters {
  WeightMatrix* W = nullptr;
  RowVector* b = nullptr;
  WeightMatrix* dW = nullptr;
  RowVector* db = nullptr;
  bool decay = true;
};
struct ConstParameters {
  const WeightMatrix* W = nullptr;
  const RowVector* b = nullptr;
};
Parameters parameters(Layer& layer);
ConstParameters parameters(const Layer& layer);

// One layer as written on the command line and in the model file (docs/model-format.md):
//   conv5x5x32        32 filters of 5×5, stride 1, "valid" (no padding)
//   conv3x3x32s2      … stride 2
//   conv3x3x32same    … "same" padding: (k − 1)/2 zeros around (odd k only)
//   conv3x3x32s2same  both
//   pool2             2×2 max pooling, stride 2
//   flatten           a map becomes a vector (inserted by itself before a dense layer after a map)
//   bn                batch normalization of the conv or dense layer just before it, which then
//                     gives its sum to bn unactivated; bn applies the hidden activation
//   fc256 or 256      a dense layer of 256 neurons; the last layer must be dense: its outputs are
//                     the logits for softmax
// Every conv and dense layer but the last applies the network's hidden activation.
struct LayerSpec {
  enum class Kind { dense, conv2d, maxpool2, flatten, batchnorm };
  Kind kind = Kind::dense;
  int size = 0;    // dense: neurons; conv2d: output channels
  int kernel = 0;  // conv2d
  int stride = 1;  // conv2d
  Padding padding = Padding::valid;
  bool operator==(const LayerSpec&) const = default;
};

// Parses "conv5x5x32,pool2,conv5x5x64,pool2,fc256,10". Throws Error naming the word it cannot
// read; the caller adds where the text came from.
std::vector<LayerSpec> parse_layer_specs(std::string_view text);
std::string layer_spec_text(const LayerSpec& spec);            // "conv3x3x32s2same", "pool2", "fc256", "bn"
std::string layer_specs_text(const std::vector<LayerSpec>& specs);  // joined by commas
std::string shape_text(Shape shape);                           // "32×12×12"

// The shape each layer outputs, from the input's, with every flatten a dense layer after a map needs
// inserted into `specs`. Allocates no weights. Throws Error for a shape that cannot work, naming the
// layer and the sizes: "layer 3 (pool2): 2×2 pooling needs a map of at least 2×2, its input is 64×1×1"
// (layers count from 1, flattens included).
std::vector<Shape> plan_shapes(std::vector<LayerSpec>& specs, Shape input);

}  // namespace digits
