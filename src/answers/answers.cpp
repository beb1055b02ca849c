#include "answers/answers.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <variant>
#include <vector>

#include "digits/base64.hpp"
#include "digits/classes.hpp"

namespace digits::answers {

using json = nlohmann::json;

namespace {

// What each layer is called, in order: conv1, conv2 … and fc1, fc2 … as the model file names
// their weights (Network::parameter_names), bn1, bn2 … for batch norms, pool1, pool2 … and
// flatten for the layers without.
std::vector<std::string> layer_names(const Network& network) {
  std::vector<std::string> names;
  int convs = 0, pools = 0, denses = 0, norms = 0;
  for (const Layer& layer : network.layers) {
    if (std::holds_alternative<Conv2dLayer>(layer)) names.push_back("conv" + std::to_string(++convs));
    if (std::holds_alternative<MaxPool2Layer>(layer)) names.push_back("pool" + std::to_string(++pools));
    if (std::holds_alternative<FlattenLayer>(layer)) names.push_back("flatten");
    if (std::holds_alternative<DenseLayer>(layer)) names.push_back("fc" + std::to_string(++denses));
    if (std::holds_alternative<BatchNormLayer>(layer)) names.push_back("bn" + std::to_string(++norms));
  }
  return names;
}

const char* kind_name(const Layer& layer) {
  if (std::holds_alternative<Conv2dLayer>(layer)) return "conv2d";
  if (std::holds_alternative<MaxPool2Layer>(layer)) return "maxpool2";
  if (std::holds_alternative<FlattenLayer>(layer)) return "flatten";
  if (std::holds_alternative<BatchNormLayer>(layer)) return "batchnorm";
  return "dense";
}

// What layer i applies to its sum: its activation ("identity" for a layer a batch norm follows,
// which applies the activation), "softmax" for the last, "max" for pooling, "none" for flatten.
std::string function_name(const Network& network, std::size_t i) {
  if (i + 1 == network.layers.size()) return "softmax";
  const Layer& layer = network.layers[i];
  if (const auto* dense = std::get_if<DenseLayer>(&layer)) return std::string(activation_name(dense->activation));
  if (const auto* conv = std::get_if<Conv2dLayer>(&layer)) return std::string(activation_name(conv->activation));
  if (const auto* bn = std::get_if<BatchNormLayer>(&layer)) return std::string(activation_name(bn->activation));
  return std::holds_alternative<MaxPool2Layer>(layer) ? "max" : "none";
}

// Whether layer i outputs C maps of H×W: a conv, a pool, or a batch norm after a conv.
bool is_map(const Network& network, std::size_t i) {
  const Layer& layer = network.layers[i];
  if (std::holds_alternative<BatchNormLayer>(layer)) return i > 0 && is_map(network, i - 1);
  return std::holds_alternative<Conv2dLayer>(layer) || std::holds_alternative<MaxPool2Layer>(layer);
}

bool followed_by_batch_norm(const Network& network, std::size_t i) {
  return i + 1 < network.layers.size() && std::holds_alternative<BatchNormLayer>(network.layers[i + 1]);
}

json shape_array(Shape shape) { return {shape.channels, shape.height, shape.width}; }

// A map layer's output for the page's grey pictures, one byte a value: 0 stands for `low` (the
// smallest value, or 0 when none is negative), 255 for `high` (the largest), linear between.
// Bytes rather than numbers: with the cnn-fast preset's network, the answer for a drawn 7 is 23 KB;
// with its 14,080 map values as JSON numbers it was 140 KB.
// Rounded to the nearest byte by adding ½ and truncating: (v − low)·scale is in [0, 255], so the
// sum is never negative and truncation is ⌊·⌋; unlike std::lround per value (a libm call that was
// 6% of the server's time per request), the loop vectorises.
json map_entry(const Matrix& A) {
  const float low = std::min(0.0f, A.minCoeff()), high = A.maxCoeff();
  const float scale = high > low ? 255.0f / (high - low) : 0.0f;
  std::string bytes(static_cast<std::size_t>(A.size()), '\0');
  // Pointers and a count of our own: a char may alias anything, and through bytes[i] the compiler
  // reloads the values and the size after every byte stored and keeps the loop scalar.
  const float* __restrict values = A.data();
  char* __restrict out = bytes.data();
  const std::size_t count = bytes.size();
  for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<char>(static_cast<int>((values[i] - low) * scale + 0.5f));
  return {{"low", low}, {"high", high}, {"maps", encode_base64(bytes)}};
}

// answer_fields of one image's probabilities, (1 × classes).
json answer_of(const Matrix& probabilities) {
  return answer_fields(std::span<const float>(probabilities.data(), static_cast<std::size_t>(probabilities.size())));
}

// Adds the 28×28 input the network saw, in whole gray levels, and whether it was inverted.
json with_input(json answer, const Preprocessed& input) {
  std::vector<int> seen(input.pixels.size());
  for (std::size_t i = 0; i < seen.size(); ++i) seen[i] = static_cast<int>(std::lround(input.pixels[i]));
  answer["input"] = {{"width", kInputSide}, {"height", kInputSide}, {"pixels", seen}};
  answer["inverted"] = input.inverted;
  return answer;
}

// A string JSON writes as it is, between quotes: no control character, quote or backslash to
// escape, and nothing past ASCII to check as UTF-8. One pass without an early exit, which
// vectorises.
bool plain_ascii(const std::string& text) {
  unsigned special = 0;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    special |= static_cast<unsigned>(byte < 0x20 || byte >= 0x80 || byte == '"' || byte == '\\');
  }
  return special == 0;
}

constexpr auto kReplace = json::error_handler_t::replace;

void write_string(const std::string& string, std::string& out) {
  if (!plain_ascii(string)) {
    out += json(string).dump(-1, ' ', false, kReplace);
    return;
  }
  out += '"';
  out += string;
  out += '"';
}

void write_text(const json& value, std::string& out) {
  switch (value.type()) {
    case json::value_t::object: {
      out += '{';
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (it != value.begin()) out += ',';
        write_string(it.key(), out);
        out += ':';
        write_text(it.value(), out);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      // An array of numbers (a dense layer's values, the input) goes to nlohmann whole.
      if (std::none_of(value.begin(), value.end(), [](const json& item) { return item.is_structured() || item.is_string(); })) {
        out += value.dump(-1, ' ', false, kReplace);
        return;
      }
      out += '[';
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (it != value.begin()) out += ',';
        write_text(*it, out);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      write_string(value.get_ref<const std::string&>(), out);
      return;
    default:
      out += value.dump(-1, ' ', false, kReplace);
      return;
  }
}

}  // namespace

std::string text(const json& answer) {
  std::string out;
  write_text(answer, out);
  return out;
}

json describe_layers(const Network& network) {
  const std::vector<std::string> names = layer_names(network);
  json layers = json::array();
  for (std::size_t i = 0; i < network.layers.size(); ++i) {
    const Layer& layer = network.layers[i];
    const ConstParameters p = parameters(layer);
    layers.push_back({
        {"name", names[i]},
        {"kind", kind_name(layer)},
        {"spec", layer_spec_text(network.specs()[i])},
        {"output", is_map(network, i) ? shape_array(output_shape(layer)) : json::array({layer_outputs(layer)})},
        {"function", function_name(network, i)},
        {"parameters", p.W ? p.W->size() + p.b->size() : 0},
    });
  }
  return layers;
}

// At most kMaxKernelsShown of them, so the answer stays small whatever the model.
json first_layer_kernels(const Network& network) {
  const auto* conv = std::get_if<Conv2dLayer>(&network.layers.front());
  if (!conv) return nullptr;
  const int count = static_cast<int>(conv->W.cols());
  const int shown = std::min(count, kMaxKernelsShown);
  // W is (C·k·k × C′) column-major: column o is filter o in the order [c][ky][kx], so the first
  // `shown` columns are the first `shown` filters, PyTorch's [out, in, kh, kw] order.
  const float* W = conv->W.data();
  return {
      {"layer", "conv1"},
      {"count", count},
      {"shape", {shown, conv->input_shape().channels, conv->kernel(), conv->kernel()}},
      {"values", std::vector<float>(W, W + static_cast<std::ptrdiff_t>(shown) * conv->W.rows())},
  };
}

json answer_fields(std::span<const float> probabilities) {
  const ClassReading classes = read_classes(probabilities);
  const double answered = classes.not_a_digit ? *classes.not_a_digit_probability : classes.probability;
  const std::size_t digits = std::min<std::size_t>(probabilities.size(), kDigitClasses);
  return {
      {"digit", classes.not_a_digit ? json(nullptr) : json(classes.digit)},
      {"probability", answered},
      {"unsure", answered < kUnsureBelow},
      {"probabilities", std::vector<float>(probabilities.begin(), probabilities.begin() + static_cast<std::ptrdiff_t>(digits))},
      {"not_a_digit", classes.not_a_digit},
      {"not_a_digit_probability", classes.not_a_digit_probability ? json(*classes.not_a_digit_probability) : json(nullptr)},
  };
}

json reading(const Network& network, const Preprocessed& input, bool with_activations) {
  const Eigen::Map<const Matrix> X(input.pixels.data(), 1, static_cast<Eigen::Index>(input.pixels.size()));
  if (!with_activations) return with_input(answer_of(network.predict_proba(X)), input);
  const std::vector<Matrix> outputs = network.activations(X);
  json layers = json::array();
  const std::vector<std::string> names = layer_names(network);
  std::size_t map_bytes = 0;  // of kMaxMapBytes
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const bool last = i + 1 == outputs.size();
    const Layer& layer = network.layers[i];
    if (std::holds_alternative<FlattenLayer>(layer)) continue;  // the previous layer's values again
    // A conv or dense layer and the batch norm after it are one entry: the batch norm's output,
    // normalised and activated, as a layer without one shows its activated output (its own sums,
    // before normalising, say little). The batch norm is named in the entry.
    if (std::holds_alternative<BatchNormLayer>(layer)) continue;
    const bool normalised = followed_by_batch_norm(network, i);
    const std::size_t shown = normalised ? i + 1 : i;
    json entry = {{"layer", last ? std::string("output") : "hidden " + std::to_string(i + 1)},
                  {"name", names[i]},
                  {"kind", kind_name(layer)},
                  {"function", function_name(network, shown)}};
    if (normalised) entry["batch_norm"] = names[i + 1];
    if (is_map(network, i)) {  // C maps of H×W: grey pictures, channel by channel, row by row
      entry["shape"] = shape_array(output_shape(layer));
      const auto bytes = static_cast<std::size_t>(outputs[shown].size());
      if (map_bytes + bytes <= kMaxMapBytes) {
        map_bytes += bytes;
        json maps = map_entry(outputs[shown]);
        for (auto it = maps.begin(); it != maps.end(); ++it) entry[it.key()] = std::move(it.value());  // moved: the base64 is 25 KB
      } else {
        entry["maps"] = nullptr;  // past the answer's budget: the page says so
      }
    } else {
      entry["values"] = std::vector<float>(outputs[shown].data(), outputs[shown].data() + outputs[shown].size());
    }
    layers.push_back(std::move(entry));
  }

  json answer = with_input(answer_of(outputs.back()), input);
  answer["activations"] = std::move(layers);
  return answer;
}

json number_answer(const NumberReading& reading, bool with_ink) {
  const auto box = [](const Box& b) { return json::array({b.x, b.y, b.width, b.height}); };
  json digits = json::array(), not_digits = json::array();
  for (const DigitCandidate& d : reading.digits) {
    digits.push_back({{"digit", d.digit},
                      {"probability", d.probability},
                      {"unsure", d.probability < kUnsureBelow},
                      {"probabilities", d.probabilities},
                      {"not_a_digit_probability", d.not_a_digit_probability ? json(*d.not_a_digit_probability) : json(nullptr)},
                      {"box", box(d.box)}});
    if (!with_ink) continue;
    // One byte a pixel: exact for an 8-bit drawing on black paper, as the page sends (segment.hpp).
    std::string bytes(d.ink.pixels.size(), '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(static_cast<unsigned char>(std::lround(std::clamp(d.ink.pixels[i], 0.0f, 255.0f))));
    digits.back()["ink"] = {{"x", d.ink_x}, {"y", d.ink_y}, {"width", d.ink.width}, {"height", d.ink.height}, {"pixels", encode_base64(bytes)}};
  }
  for (const Box& b : reading.not_digits) not_digits.push_back({{"box", box(b)}});
  return {{"text", reading.text()}, {"digits", digits}, {"not_digits", not_digits}, {"inverted", reading.inverted}};
}

}  // namespace digits::answers
