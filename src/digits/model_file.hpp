// The model file: safetensors (https://huggingface.co/docs/safetensors), documented for users in
// docs/model-format.md.
//
//   [8 bytes: N, little-endian u64] [N bytes: JSON header] [raw little-endian float32 data]
//
// Tensors are named like PyTorch's nn.Linear layers, fc1.weight (out × in), fc1.bias (out), fc2…,
// and its nn.Conv2d layers, conv1.weight [out_channels, in_channels, kh, kw], conv1.bias, conv2…,
// so a Python user can load them straight into torch. In memory our W is (in × out), the ancestor's
// X·W convention, so it is transposed on the way out and back. Everything else a program needs to
// rebuild and use the network travels in the header's __metadata__ (string → string).
#pragma once

#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "digits/network.hpp"

namespace digits {

using Metadata = std::map<std::string, std::string>;

inline constexpr const char* kModelFormat = "digits-mlp";
// Version 1: dense layers only, `architecture` the sizes "784,50,20,10". Version 2: layers of any
// kind, `architecture` the layer list "conv5x5x32,pool2,flatten,fc10" (layer.hpp) and `input_shape`
// "1,28,28". A network of dense layers alone is still written as version 1, so that programs from
// before version 2 read it; both versions are read.
inline constexpr int kModelFormatVersion = 1;
inline constexpr int kModelFormatVersionLayers = 2;

// A tensor beyond the network's own: checkpoints carry the optimizer's state as tensors named
// "optimizer.…" (checkpoint.hpp). Values are row-major in `shape`.
struct NamedTensor {
  std::string name;
  std::vector<long long> shape;
  std::vector<float> values;
};

struct Model {
  Network network;
  Metadata metadata;
  std::vector<NamedTensor> extra;  // the "optimizer.…" tensors of a checkpoint; empty for a plain model
};

// The file's bytes. The metadata keys that describe the network (format, format_version,
// architecture, input_shape (version 2), hidden_activation, output, input_scale) are written from the network itself and
// override any of the same name in `metadata`. Extra tensors must be named "optimizer.…".
std::string serialize_model(const Network& network, const Metadata& metadata, const std::vector<NamedTensor>& extra = {});

// Writes the model atomically: temporary file, fsync, rename.
void save_model(const std::filesystem::path& path, const Network& network, const Metadata& metadata,
                const std::vector<NamedTensor>& extra = {});

// Parses and validates a model: header length, JSON, format and version, dtypes, each tensor's
// shape against the architecture, offsets against the data size, and finite values. Any defect
// throws Error naming `source` and what was wrong. A round trip is bit-exact.
Model parse_model(std::span<const unsigned char> bytes, const std::string& source);
Model load_model(const std::filesystem::path& path);

// Only the metadata, from the header alone (the weights are neither read nor checked): for listing
// many model files cheaply. Checks the header length, the JSON, and the format and its version.
Metadata load_model_metadata(const std::filesystem::path& path);

// Now, as the `created` entry of the metadata holds it: ISO 8601 in UTC, to the second
// ("2026-12-02T07:44:36Z").
std::string utc_timestamp();

}  // namespace digits
