#include "digits/layer.hpp"

#include <charconv>

#include "digits/error.hpp"

namespace digits {

// std::visit calls the lambda with whichever kind the layer holds; each kind has these functions.
const Matrix& forward(Layer& layer, const Matrix& X, WorkerPool* pool) {
  return std::visit([&](auto& kind) -> const Matrix& {
    if constexpr (requires { kind.forward(X, pool); }) return kind.forward(X, pool);
    else return kind.forward(X);
  }, layer);
}
const Matrix& backward(Layer& layer, const Matrix& dA, bool compute_dX, WorkerPool* pool) {
  return std::visit([&](auto& kind) -> const Matrix& {
    if constexpr (requires { kind.backward(dA, compute_dX, pool); }) return kind.backward(dA, compute_dX, pool);
    else return kind.backward(dA, compute_dX);
  }, layer);
}
void infer(const Layer& layer, const Matrix& X, Matrix& A, WorkerPool* pool) {
  std::visit([&](const auto& kind) {
    if constexpr (requires { kind.infer(X, A, pool); }) kind.infer(X, A, pool);
    else kind.infer(X, A);
  }, layer);
}
Shape output_shape(const Layer& layer) {
  return std::visit([](const auto& kind) { return kind.output_shape(); }, layer);
}
int layer_outputs(const Layer& layer) { return output_shape(layer).size(); }

Parameters parameters(Layer& layer) {
  if (auto* dense = std::get_if<DenseLayer>(&layer)) return {&dense->W, &dense->b, &dense->dW, &dense->db};
  if (auto* conv = std::get_if<Conv2dLayer>(&layer)) return {&conv->W, &conv->b, &conv->dW, &conv->db};
  if (auto* bn = std::get_if<BatchNormLayer>(&layer)) return {&bn->gamma, &bn->beta, &bn->dgamma, &bn->dbeta, /*decay=*/false};
  return {};
}
ConstParameters parameters(const Layer& layer) {
  if (const auto* dense = std::get_if<DenseLayer>(&layer)) return {&dense->W, &dense->b};
  if (const auto* conv = std::get_if<Conv2dLayer>(&layer)) return {&conv->W, &conv->b};
  if (const auto* bn = std::get_if<BatchNormLayer>(&layer)) return {&bn->gamma, &bn->beta};
  return {};
}

std::string shape_text(Shape shape) {
  return std::to_string(shape.channels) + "×" + std::to_string(shape.height) + "×" + std::to_string(shape.width);
}

namespace {

constexpr int kMaxSize = 1 << 16;  // neurons or channels of one layer
constexpr int kMaxKernel = 64;
constexpr long long kMaxValues = 1 << 26;  // one layer's output per image

// Reads a positive number at the front of `text` (at most `limit`) and drops it from `text`.
bool take_number(std::string_view& text, int limit, int& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data() || value <= 0 || value > limit) return false;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return true;
}

bool take(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

LayerSpec parse_one(std::string_view word, std::size_t index) {
  const auto bad = [&](const std::string& why) {
    return Error("cannot read '" + std::string(word) + "' (word " + std::to_string(index + 1) + "): " + why);
  };
  std::string_view rest = word;
  LayerSpec spec;
  if (rest == "pool2") return {.kind = LayerSpec::Kind::maxpool2};
  if (rest == "flatten") return {.kind = LayerSpec::Kind::flatten};
  if (rest == "bn") return {.kind = LayerSpec::Kind::batchnorm};
  if (take(rest, "conv")) {
    spec.kind = LayerSpec::Kind::conv2d;
    int height = 0;
    if (!take_number(rest, kMaxKernel, height) || !take(rest, "x") || !take_number(rest, kMaxKernel, spec.kernel) ||
        !take(rest, "x") || !take_number(rest, kMaxSize, spec.size))
      throw bad("expected conv<k>x<k>x<channels>, like conv5x5x32");
    if (height != spec.kernel) throw bad("kernels are square: " + std::to_string(height) + "×" + std::to_string(spec.kernel));
    if (rest.starts_with("s") && !rest.starts_with("same")) {  // a stride: s1 or s2
      rest.remove_prefix(1);
      if (!take_number(rest, 2, spec.stride)) throw bad("the stride must be 1 or 2, as in conv3x3x32s2");
    }
    if (take(rest, "same")) spec.padding = Padding::same;
    if (!rest.empty()) throw bad("unexpected '" + std::string(rest) + "' (a conv ends with s2, same, or s2same)");
    if (spec.padding == Padding::same && spec.kernel % 2 == 0) throw bad("\"same\" padding needs an odd kernel");
    return spec;
  }
  take(rest, "fc");
  if (!take_number(rest, kMaxSize, spec.size) || !rest.empty())
    throw bad("expected convKxKxN[s2][same], pool2, flatten, bn, fcN or N");
  return spec;
}

}  // namespace

std::vector<LayerSpec> parse_layer_specs(std::string_view text) {
  std::vector<LayerSpec> specs;
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    specs.push_back(parse_one(rest.substr(0, comma), specs.size()));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return specs;
}

std::string layer_spec_text(const LayerSpec& spec) {
  switch (spec.kind) {
    case LayerSpec::Kind::dense: return "fc" + std::to_string(spec.size);
    case LayerSpec::Kind::maxpool2: return "pool2";
    case LayerSpec::Kind::flatten: return "flatten";
    case LayerSpec::Kind::batchnorm: return "bn";
    case LayerSpec::Kind::conv2d: {
      const std::string k = std::to_string(spec.kernel);
      return "conv" + k + "x" + k + "x" + std::to_string(spec.size) + (spec.stride == 2 ? "s2" : "") +
             (spec.padding == Padding::same ? "same" : "");
    }
  }
  return "?";
}

std::string layer_specs_text(const std::vector<LayerSpec>& specs) {
  std::string text;
  for (const LayerSpec& spec : specs) text += (text.empty() ? "" : ",") + layer_spec_text(spec);
  return text;
}

std::vector<Shape> plan_shapes(std::vector<LayerSpec>& specs, Shape input) {
  using Kind = LayerSpec::Kind;
  if (specs.empty() || specs.back().kind != Kind::dense)
    throw Error("the last layer must be dense, like fc10 or 10: its outputs are the classes");
  // A dense layer right after a conv or a pool (or a conv's bn) reads its map flattened: the list
  // says so, as a torch model does (the first layer may be dense on the image itself: no flatten needed).
  for (std::size_t i = 1; i < specs.size(); ++i) {
    const Kind before = specs[i - 1].kind;
    const bool after_map = before == Kind::conv2d || before == Kind::maxpool2 ||
                           (before == Kind::batchnorm && i >= 2 && specs[i - 2].kind == Kind::conv2d);
    if (specs[i].kind == Kind::dense && after_map) specs.insert(specs.begin() + static_cast<std::ptrdiff_t>(i), LayerSpec{.kind = Kind::flatten});
  }
  std::vector<Shape> shapes;
  Shape shape = input;
  bool map = true;  // the input and what conv and pool make are maps; flatten and dense make vectors
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const LayerSpec& spec = specs[i];
    const std::string layer = "layer " + std::to_string(i + 1) + " (" + layer_spec_text(spec) + "): ";
    switch (spec.kind) {
      case Kind::dense:
        shape = {spec.size, 1, 1};
        map = false;
        break;
      case Kind::batchnorm:
        // Only right after a conv or dense layer: it is folded into that layer for prediction.
        if (i == 0 || (specs[i - 1].kind != Kind::conv2d && specs[i - 1].kind != Kind::dense))
          throw Error(layer + "batch normalization must follow a conv or dense layer, like conv3x3x32,bn or fc128,bn");
        break;  // the shape is unchanged
      case Kind::flatten:
        if (!map) throw Error(layer + "its input is already a vector of " + std::to_string(shape.size()) + " features");
        shape = {shape.size(), 1, 1};
        map = false;
        break;
      case Kind::maxpool2:
        if (!map) throw Error(layer + "pooling needs a map, its input is a vector of " + std::to_string(shape.size()) + " features");
        if (shape.height < 2 || shape.width < 2)
          throw Error(layer + "2×2 pooling needs a map of at least 2×2, its input is " + shape_text(shape));
        shape = {shape.channels, shape.height / 2, shape.width / 2};
        break;
      case Kind::conv2d: {
        if (!map) throw Error(layer + "a convolution needs a map, its input is a vector of " + std::to_string(shape.size()) + " features");
        const int pad = spec.padding == Padding::same ? (spec.kernel - 1) / 2 : 0;
        if (spec.kernel > shape.height + 2 * pad || spec.kernel > shape.width + 2 * pad)
          throw Error(layer + "a " + std::to_string(spec.kernel) + "×" + std::to_string(spec.kernel) + " kernel is larger than its " +
                      shape_text(shape) + " input");
        shape = {spec.size, conv_output_side(shape.height, spec.kernel, spec.stride, pad),
                 conv_output_side(shape.width, spec.kernel, spec.stride, pad)};
        break;
      }
    }
    if (static_cast<long long>(shape.channels) * shape.height * shape.width > kMaxValues)
      throw Error(layer + "its output of " + shape_text(shape) + " values per image is too large");
    shapes.push_back(shape);
  }
  return shapes;
}

}  // namespace digits
