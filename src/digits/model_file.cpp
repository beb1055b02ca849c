#include "digits/model_file.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "digits/error.hpp"
#include "digits/file_util.hpp"
#include "digits/json_depth.hpp"
#include "digits/layer.hpp"

namespace digits {

static_assert(std::endian::native == std::endian::little, "the model file's float32 data is little-endian");

namespace {

using json = nlohmann::json;

constexpr std::uint64_t kMaxHeaderBytes = 16 << 20;  // the safetensors reference caps it at 100 MB; ours are tiny
constexpr int kMaxLayers = 64;
constexpr long long kMaxLayerSize = 1 << 16;

std::string format_float(float value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", static_cast<double>(value));  // 9 digits: float32 round-trips exactly
  return text;
}

std::string join_sizes(const std::vector<int>& sizes) {
  std::string text;
  for (std::size_t i = 0; i < sizes.size(); ++i) text += (i ? "," : "") + std::to_string(sizes[i]);
  return text;
}

std::vector<int> parse_sizes(const std::string& text, const std::string& source) {
  std::vector<int> sizes;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) {
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    const bool digits_only = !part.empty() && std::isdigit(static_cast<unsigned char>(part.front()));  // stoll skips spaces
    if (!digits_only || used == 0 || used != part.size() || value <= 0 || value > kMaxLayerSize)
      throw Error(source + ": architecture '" + text + "' is not a list of positive layer sizes");
    sizes.push_back(static_cast<int>(value));
  }
  if (!text.empty() && text.back() == ',')  // getline drops the empty part after a trailing comma
    throw Error(source + ": architecture '" + text + "' is not a list of positive layer sizes");
  if (sizes.size() < 2 || sizes.size() > kMaxLayers + 1)
    throw Error(source + ": architecture '" + text + "' needs between 2 and " + std::to_string(kMaxLayers + 1) + " sizes");
  return sizes;
}

const std::string& required(const Metadata& metadata, const std::string& key, const std::string& source) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) throw Error(source + ": the metadata has no '" + key + "'");
  return it->second;
}

// The header length N from the file's first 8 bytes, checked against the file's size.
std::uint64_t header_length(std::span<const unsigned char> bytes, std::uint64_t file_size, const std::string& source) {
  if (file_size < 8 || bytes.size() < 8) throw Error(source + ": too short to be a model file (" + std::to_string(file_size) + " bytes)");
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size == 0 || header_size > kMaxHeaderBytes || header_size > file_size - 8)
    throw Error(source + ": header length " + std::to_string(header_size) + " does not fit a file of " + std::to_string(file_size) +
                " bytes (not a safetensors file, or truncated)");
  return header_size;
}

// The JSON header (bytes 8 to 8 + N) and its __metadata__, whose format and version must be ours.
std::pair<json, Metadata> parse_header(std::span<const unsigned char> header_bytes, const std::string& source) {
  const char* header_begin = reinterpret_cast<const char*>(header_bytes.data());
  json header;
  try {
    header = parse_json_bounded(std::string_view(header_begin, header_bytes.size()));
  } catch (const JsonTooDeep& e) {
    throw Error(source + ": the header is " + e.what() + "; a model file's header nests 3 deep");
  } catch (const json::exception& e) {
    throw Error(source + ": the header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw Error(source + ": the header is not a JSON object");
  Metadata metadata;
  if (!header.contains("__metadata__") || !header["__metadata__"].is_object())
    throw Error(source + ": no __metadata__ object in the header; not a digits model");
  for (const auto& [key, value] : header["__metadata__"].items()) {
    if (!value.is_string()) throw Error(source + ": metadata '" + key + "' is not a string");
    metadata[key] = value.get<std::string>();
  }
  if (required(metadata, "format", source) != kModelFormat)
    throw Error(source + ": format '" + metadata["format"] + "', expected '" + kModelFormat + "'");
  const std::string& version = required(metadata, "format_version", source);
  if (version != std::to_string(kModelFormatVersion) && version != std::to_string(kModelFormatVersionLayers))
    throw Error(source + ": format version " + version + ", this program reads versions " + std::to_string(kModelFormatVersion) +
                " and " + std::to_string(kModelFormatVersionLayers));
  return {std::move(header), std::move(metadata)};
}

// A weight tensor's shape in the file: [out, in] for a dense layer, [out, in, kh, kw] for a conv,
// [C] for a batch norm's γ.
std::vector<long long> weight_shape(const Layer& layer) {
  if (const auto* bn = std::get_if<BatchNormLayer>(&layer)) return {bn->channels()};
  if (const auto* conv = std::get_if<Conv2dLayer>(&layer))
    return {conv->output_shape().channels, conv->input_shape().channels, conv->kernel(), conv->kernel()};
  const auto& dense = std::get<DenseLayer>(layer);
  return {dense.out(), dense.in()};
}

// Version 2's input_shape, "1,28,28": three positive sizes.
Shape parse_input_shape(const std::string& text, const std::string& source) {
  int values[3] = {0, 0, 0};
  std::size_t at = 0;
  for (int i = 0; i < 3; ++i) {
    const std::size_t end = i < 2 ? text.find(',', at) : text.size();
    const std::string part = end == std::string::npos ? "" : text.substr(at, end - at);
    const bool digits_only = !part.empty() && part.size() <= 5 &&
                             std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (!digits_only || std::stoi(part) <= 0 || std::stoi(part) > 4096)
      throw Error(source + ": input_shape '" + text + "' is not three sizes like 1,28,28");
    values[i] = std::stoi(part);
    at = end + 1;
  }
  if (static_cast<long long>(values[0]) * values[1] * values[2] > (1 << 24))
    throw Error(source + ": input_shape '" + text + "' is larger than any image this program reads");
  return {values[0], values[1], values[2]};
}

// Appends a tensor's values as the file stores them: float32 as they are, or each rounded to F16.
void append_values(std::string& data, const float* values, std::size_t count, Storage storage, const std::string& name) {
  if (storage == Storage::f32) {
    data.append(reinterpret_cast<const char*>(values), sizeof(float) * count);
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    std::uint16_t half = 0;
    try {
      half = float_to_f16(values[i]);
    } catch (const Error& e) {
      throw Error("tensor " + name + " cannot be stored as F16: " + e.what());
    }
    data.append(reinterpret_cast<const char*>(&half), sizeof half);
  }
}

}  // namespace

namespace {

// A float's bits and back (std::bit_cast, which emscripten 3.1.6's libc++ lacks).
std::uint32_t bits_of(float value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
float float_of(std::uint32_t bits) {
  float value = 0;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

}  // namespace

// IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits; binary32 has 8
// exponent bits (bias 127) and 23 mantissa bits. A normal float32 keeps its sign, rebiases its
// exponent (127 − 15 = 112) and rounds its mantissa to 10 bits; below 2^−14, F16's smallest normal
// number, values are multiples of 2^−24 (subnormal).
std::uint16_t float_to_f16(float value) {
  if (!std::isfinite(value)) throw Error("a value that is not finite");
  const std::uint32_t bits = bits_of(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x477ff000u)  // 65520 and up round to infinity; 65504 is F16's largest
    throw Error(format_float(value) + " is beyond F16's largest value, 65504");
  if (magnitude < 0x38800000u) {  // below 2^−14: a count of 2^−24, rounded to nearest even
    const float scaled = float_of(magnitude) * 16777216.0f;  // × 2^24, exact
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)));
  }
  // Rebias the exponent and drop the mantissa's low 13 bits, rounding to nearest, ties to even.
  // A carry out of the mantissa correctly moves to the next exponent.
  std::uint32_t half = (magnitude - (112u << 23)) >> 13;
  const std::uint32_t dropped = magnitude & 0x1fffu;
  if (dropped > 0x1000u || (dropped == 0x1000u && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

float f16_to_float(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu, mantissa = half & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa × 2^−24
    const float magnitude = static_cast<float>(mantissa) / 16777216.0f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return float_of(sign | 0x7f800000u | (mantissa << 13));  // infinity or NaN
  return float_of(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

std::string serialize_model(const Network& network, const Metadata& given, const std::vector<NamedTensor>& extra, Storage storage) {
  Metadata metadata = given;
  metadata["format"] = kModelFormat;
  if (network.dense_only()) {
    metadata["format_version"] = std::to_string(kModelFormatVersion);
    metadata["architecture"] = join_sizes(network.sizes());
    metadata.erase("input_shape");
  } else {
    const Shape input = network.input_shape();
    metadata["format_version"] = std::to_string(kModelFormatVersionLayers);
    metadata["architecture"] = network.architecture();
    metadata["input_shape"] = std::to_string(input.channels) + "," + std::to_string(input.height) + "," + std::to_string(input.width);
  }
  metadata["hidden_activation"] = std::string(activation_name(network.hidden_activation()));
  metadata["output"] = "softmax";
  metadata["input_scale"] = format_float(network.input_scale);

  json header = json::object();
  header["__metadata__"] = metadata;
  std::string data;
  const char* dtype = storage == Storage::f16 ? "F16" : "F32";
  const std::vector<std::string> names = network.parameter_names();
  std::size_t named = 0;
  for (const Layer& layer : network.layers) {
    const ConstParameters p = parameters(layer);
    if (!p.W) continue;
    const std::string& prefix = names[named++];
    // Stored as [out, in] like torch.nn.Linear, or [out, in, kh, kw] like torch.nn.Conv2d: row-major,
    // that is exactly the column-major layout in which W lives in memory (tensor.hpp,
    // conv2d_layer.hpp), so its bytes go out as they are.
    std::size_t begin = data.size();
    append_values(data, p.W->data(), static_cast<std::size_t>(p.W->size()), storage, prefix + ".weight");
    header[prefix + ".weight"] = {{"dtype", dtype}, {"shape", weight_shape(layer)}, {"data_offsets", {begin, data.size()}}};
    begin = data.size();
    append_values(data, p.b->data(), static_cast<std::size_t>(p.b->size()), storage, prefix + ".bias");
    header[prefix + ".bias"] = {{"dtype", dtype}, {"shape", {p.b->size()}}, {"data_offsets", {begin, data.size()}}};
    if (const auto* bn = std::get_if<BatchNormLayer>(&layer)) {
      // torch.nn.BatchNorm's buffers, under its names. The statistics stay F32 in an F16 file: they
      // are 2·C numbers, and a small variance rounded to F16 would move σ.
      for (const auto& [name, values] : {std::pair{".running_mean", &bn->running_mean}, std::pair{".running_var", &bn->running_var}}) {
        begin = data.size();
        append_values(data, values->data(), static_cast<std::size_t>(values->size()), Storage::f32, prefix + name);
        header[prefix + name] = {{"dtype", "F32"}, {"shape", {values->size()}}, {"data_offsets", {begin, data.size()}}};
      }
      begin = data.size();  // an int64 scalar, shape [], as torch keeps it
      data.append(reinterpret_cast<const char*>(&bn->batches_tracked), sizeof bn->batches_tracked);
      header[prefix + ".num_batches_tracked"] = {{"dtype", "I64"}, {"shape", json::array()}, {"data_offsets", {begin, data.size()}}};
    }
  }
  for (const NamedTensor& tensor : extra) {
    if (!tensor.name.starts_with("optimizer.")) throw Error("extra tensor '" + tensor.name + "' must be named optimizer.…");
    const std::size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(tensor.values.data()), sizeof(float) * tensor.values.size());
    header[tensor.name] = {{"dtype", "F32"}, {"shape", tensor.shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const std::uint64_t header_size = header_text.size();
  std::memcpy(bytes.data(), &header_size, 8);
  return bytes + header_text + data;
}

void save_model(const std::filesystem::path& path, const Network& network, const Metadata& metadata,
                const std::vector<NamedTensor>& extra, Storage storage) {
  write_file_atomically(path, serialize_model(network, metadata, extra, storage));
}

Model parse_model(std::span<const unsigned char> bytes, const std::string& source) {
  const std::uint64_t header_size = header_length(bytes, bytes.size(), source);
  json header;
  Metadata metadata;
  std::tie(header, metadata) = parse_header(bytes.subspan(8, header_size), source);
  const std::span<const unsigned char> data = bytes.subspan(8 + header_size);
  const bool layered = metadata.at("format_version") == std::to_string(kModelFormatVersionLayers);
  std::vector<int> sizes;
  std::vector<LayerSpec> specs;
  Shape input;
  if (layered) {
    input = parse_input_shape(required(metadata, "input_shape", source), source);
    try {
      specs = parse_layer_specs(required(metadata, "architecture", source));
    } catch (const Error& e) {
      throw Error(source + ": architecture '" + metadata["architecture"] + "': " + e.what());
    }
    if (specs.size() > kMaxLayers) throw Error(source + ": architecture '" + metadata["architecture"] + "' has more than " + std::to_string(kMaxLayers) + " layers");
  } else {
    sizes = parse_sizes(required(metadata, "architecture", source), source);
  }
  Activation hidden;
  try {
    hidden = parse_activation(required(metadata, "hidden_activation", source));
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  if (required(metadata, "output", source) != "softmax") throw Error(source + ": output '" + metadata["output"] + "', expected softmax");
  float input_scale = 0;
  try {
    input_scale = std::stof(required(metadata, "input_scale", source));
  } catch (const std::logic_error&) {
  }
  if (!(input_scale > 0.0f) || !std::isfinite(input_scale)) throw Error(source + ": input_scale '" + metadata["input_scale"] + "' is not a positive number");

  // The architecture must fit the bytes actually present before any weights are allocated: a
  // tiny file claiming huge layers is refused, not a multi-gigabyte allocation.
  std::uint64_t parameter_count = 0;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) parameter_count += std::uint64_t(sizes[i]) * std::uint64_t(sizes[i + 1]) + std::uint64_t(sizes[i + 1]);
  if (layered) {
    std::vector<Shape> shapes;
    try {
      shapes = plan_shapes(specs, input);  // no weights yet: only the sizes, checked
    } catch (const Error& e) {
      throw Error(source + ": architecture '" + metadata["architecture"] + "' on input " + metadata["input_shape"] + ": " + e.what());
    }
    Shape previous = input;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const std::uint64_t in = static_cast<std::uint64_t>(previous.size()), out = static_cast<std::uint64_t>(specs[i].size);
      if (specs[i].kind == LayerSpec::Kind::dense) parameter_count += in * out + out;
      if (specs[i].kind == LayerSpec::Kind::batchnorm) parameter_count += 4 * static_cast<std::uint64_t>(previous.channels);
      if (specs[i].kind == LayerSpec::Kind::conv2d)
        parameter_count += static_cast<std::uint64_t>(previous.channels) * std::uint64_t(specs[i].kernel * specs[i].kernel) * out + out;
      previous = shapes[i];
    }
  }
  // (Small mismatches are left to the per-tensor checks below, whose messages name the tensor.)
  // Every weight takes at least 2 bytes (F16).
  constexpr std::uint64_t kAllocationWorthChecking = 64 << 20;
  if (parameter_count * 2 > data.size() && parameter_count * sizeof(float) > kAllocationWorthChecking)
    throw Error(source + ": architecture " + metadata["architecture"] + " needs at least " + std::to_string(parameter_count * 2) +
                " bytes of weights but the data section has " + std::to_string(data.size()) + " (truncated?)");

  Network network = layered ? Network(specs, input, hidden, input_scale) : Network(sizes, hidden, input_scale);
  std::size_t tensors_expected = 1;  // __metadata__
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> spans;  // every tensor's [begin, end), to check they tile the data
  std::uint64_t data_used = 0;
  // Reads tensor `name` of the given shape into destination (shape's product floats): F32, or F16
  // where f16_allowed (the network's tensors; a checkpoint's optimizer state is always F32).
  auto read_tensor = [&](const std::string& name, std::vector<long long> shape, float* destination, bool f16_allowed) {
    if (!header.contains(name)) throw Error(source + ": tensor " + name + " is missing");
    const json& entry = header[name];
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw Error(source + ": tensor " + name + " lacks dtype, shape or data_offsets");
    const bool f16 = f16_allowed && entry["dtype"] == "F16";
    if (entry["dtype"] != "F32" && !f16)
      throw Error(source + ": tensor " + name + " has dtype " + entry["dtype"].dump() + ", expected \"F32\"" + (f16_allowed ? " or \"F16\"" : ""));
    const std::uint64_t element_bytes = f16 ? 2 : 4;
    if (entry["shape"] != json(shape))
      throw Error(source + ": tensor " + name + " has shape " + entry["shape"].dump() + " but the architecture needs " + json(shape).dump());
    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw Error(source + ": tensor " + name + " has malformed data_offsets " + offsets.dump());
    const std::uint64_t begin = offsets[0], end = offsets[1];
    std::uint64_t count = 1;
    for (long long s : shape) {
      if (s < 0 || (s > 0 && count > (std::uint64_t{1} << 60) / static_cast<std::uint64_t>(s)))
        throw Error(source + ": tensor " + name + " has a shape too large to be real");
      count *= static_cast<std::uint64_t>(s);
    }
    if (begin > end || end > data.size())
      throw Error(source + ": tensor " + name + " lies at bytes " + std::to_string(begin) + "–" + std::to_string(end) +
                  " but the data section has " + std::to_string(data.size()) + " bytes (truncated?)");
    if (end - begin != count * element_bytes)
      throw Error(source + ": tensor " + name + " spans " + std::to_string(end - begin) + " bytes, its shape needs " + std::to_string(count * element_bytes));
    if (f16) {
      for (std::uint64_t i = 0; i < count; ++i) {
        std::uint16_t half = 0;
        std::memcpy(&half, data.data() + begin + 2 * i, 2);
        destination[i] = f16_to_float(half);
      }
    } else if (end > begin) {
      std::memcpy(destination, data.data() + begin, end - begin);
    }
    spans.emplace_back(begin, end, name);
    for (std::uint64_t i = 0; i < count; ++i) {
      if (!std::isfinite(destination[i])) throw Error(source + ": tensor " + name + " holds a NaN or infinite value");
    }
    data_used += end - begin;
    ++tensors_expected;
  };
  // An int64 scalar (dtype I64, shape []), as torch keeps a batch norm's num_batches_tracked: at least 0.
  auto read_count = [&](const std::string& name) {
    if (!header.contains(name)) throw Error(source + ": tensor " + name + " is missing");
    const json& entry = header[name];
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw Error(source + ": tensor " + name + " lacks dtype, shape or data_offsets");
    if (entry["dtype"] != "I64") throw Error(source + ": tensor " + name + " has dtype " + entry["dtype"].dump() + ", expected \"I64\"");
    if (entry["shape"] != json::array()) throw Error(source + ": tensor " + name + " has shape " + entry["shape"].dump() + ", expected [] (one number)");
    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw Error(source + ": tensor " + name + " has malformed data_offsets " + offsets.dump());
    const std::uint64_t begin = offsets[0], end = offsets[1];
    if (begin > end || end > data.size())
      throw Error(source + ": tensor " + name + " lies at bytes " + std::to_string(begin) + "–" + std::to_string(end) +
                  " but the data section has " + std::to_string(data.size()) + " bytes (truncated?)");
    if (end - begin != sizeof(std::int64_t)) throw Error(source + ": tensor " + name + " spans " + std::to_string(end - begin) + " bytes, an I64 needs 8");
    std::int64_t value = 0;
    std::memcpy(&value, data.data() + begin, sizeof value);
    if (value < 0) throw Error(source + ": tensor " + name + " is negative (" + std::to_string(value) + ")");
    spans.emplace_back(begin, end, name);
    data_used += end - begin;
    ++tensors_expected;
    return value;
  };
  const std::vector<std::string> names = network.parameter_names();
  std::size_t named = 0;
  for (Layer& layer : network.layers) {
    const Parameters p = parameters(layer);
    if (!p.W) continue;
    const std::string& prefix = names[named++];
    read_tensor(prefix + ".weight", weight_shape(layer), p.W->data(), true);  // [out, in(, kh, kw)] = W column-major
    read_tensor(prefix + ".bias", {p.b->size()}, p.b->data(), true);
    if (auto* bn = std::get_if<BatchNormLayer>(&layer)) {
      read_tensor(prefix + ".running_mean", {bn->channels()}, bn->running_mean.data(), true);
      read_tensor(prefix + ".running_var", {bn->channels()}, bn->running_var.data(), true);
      if ((bn->running_var.array() < 0).any()) throw Error(source + ": tensor " + prefix + ".running_var holds a negative variance");
      bn->batches_tracked = read_count(prefix + ".num_batches_tracked");
    }
  }
  // A checkpoint's optimizer state: any shape of at most 2 dimensions, validated like the rest.
  std::vector<NamedTensor> extra;
  for (const auto& [key, value] : header.items()) {
    if (!key.starts_with("optimizer.")) continue;
    if (!value.is_object() || !value.contains("shape") || !value["shape"].is_array() || value["shape"].size() > 2)
      throw Error(source + ": tensor " + key + " lacks a shape of at most 2 dimensions");
    NamedTensor tensor{key, {}, {}};
    std::size_t count = 1;
    for (const json& d : value["shape"]) {
      if (!d.is_number_unsigned() || d.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxLayerSize) * kMaxLayerSize)
        throw Error(source + ": tensor " + key + " has a malformed shape " + value["shape"].dump());
      tensor.shape.push_back(d.get<long long>());
      if (d.get<std::size_t>() > 0 && count > data.size() / d.get<std::size_t>())
        throw Error(source + ": tensor " + key + " has a shape larger than the file");
      count *= d.get<std::size_t>();
    }
    if (count * sizeof(float) > data.size()) throw Error(source + ": tensor " + key + " is larger than the file's data");
    tensor.values.resize(count);
    read_tensor(key, tensor.shape, tensor.values.data(), false);
    extra.push_back(std::move(tensor));
  }
  if (header.size() != tensors_expected) {
    for (const auto& [key, value] : header.items()) {
      const bool layer_tensor = (key.starts_with("fc") || key.starts_with("conv")) && (key.ends_with(".weight") || key.ends_with(".bias"));
      const bool bn_tensor = key.starts_with("bn") && (key.ends_with(".weight") || key.ends_with(".bias") || key.ends_with(".running_mean") ||
                                                       key.ends_with(".running_var") || key.ends_with(".num_batches_tracked"));
      if (key != "__metadata__" && !layer_tensor && !bn_tensor)
        throw Error(source + ": unexpected tensor '" + key + "' for architecture " + metadata["architecture"]);
    }
    throw Error(source + ": more tensors than the architecture " + metadata["architecture"] + " has layers");
  }
  // safetensors requires the tensors to tile the data section: sorted by offset, each starts where
  // the previous one ended. Two tensors sharing bytes, or a gap, is a corrupt file.
  std::sort(spans.begin(), spans.end());
  std::uint64_t expected_begin = 0;
  for (const auto& [begin, end, name] : spans) {
    if (begin != expected_begin)
      throw Error(source + ": tensor " + name + " starts at byte " + std::to_string(begin) + " of the data section, expected " +
                  std::to_string(expected_begin) + " (tensors overlap or leave a gap)");
    expected_begin = end;
  }
  if (data_used != data.size())
    throw Error(source + ": the data section has " + std::to_string(data.size()) + " bytes but the tensors use " + std::to_string(data_used));
  network.fold_for_prediction();  // batch norm folded once, for every predict_proba to come
  return {std::move(network), std::move(metadata), std::move(extra)};
}

Metadata load_model_metadata(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path.string() + ": no such model file");
  const std::uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path.string() + ": cannot read its size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::vector<unsigned char> bytes(8);
  in.read(reinterpret_cast<char*>(bytes.data()), 8);
  const std::uint64_t header_size = header_length({bytes.data(), static_cast<std::size_t>(in.gcount())}, file_size, path.string());
  bytes.resize(header_size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(header_size));
  if (static_cast<std::uint64_t>(in.gcount()) != header_size) throw Error(path.string() + ": read error in the header");
  return parse_header(bytes, path.string()).second;
}

Model load_model(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path.string() + ": no such model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path.string() + ": read error");
  return parse_model(bytes, path.string());
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);  // gmtime's static buffer is not thread-safe; the server stamps from two threads
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace digits
