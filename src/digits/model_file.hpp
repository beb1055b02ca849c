// The model file: safetensors (https://huggingface.co/docs/safetensors), documented for users in
// docs/model-format.md.
//
//   [8 bytes: N, little-endian u64] [N bytes: JSON header] [raw little-endian float32 data]
//
// The network's tensors may instead be stored as float16 (safetensors' F16), half the bytes, for
// a page that downloads its model (docs/app.md, "Without a server"); they are read back as float32.
//
// Tensors are named like PyTorch's nn.Linear layers, fc1.weight (out × in), fc1.bias (out), fc2…,
// its nn.Conv2d layers, conv1.weight [out_channels, in_channels, kh, kw], conv1.bias, conv2…, and
// its nn.BatchNorm1d/2d, bn1.weight (γ), bn1.bias (β), bn1.running_mean, bn1.running_var (all [C],
// the statistics always F32) and bn1.num_batches_tracked (I64, shape []), so a Python user can load them straight into torch. In memory our W is (in × out), the ancestor's
// X·W convention, so it is transposed on the way out and back. Everything else a program needs to
// rebuild and use the network travels in the header's __metadata__ (string → string).
#pragma once

#include <cstdint>
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

// How the network's weights are stored: F32 (float32, every program's default) or F16 (IEEE 754
// half precision: 11 significant bits, so about 3 decimal digits, and at most 65504). The
// optimizer's tensors of a checkpoint are always F32.
enum class Storage { f32, f16 };

// float32 → float16, rounding to nearest (ties to even), as numpy's astype(float16) does. Throws
// Error for a value beyond F16's range (|x| ≥ 65520 rounds to infinity) or not finite.
std::uint16_t float_to_f16(float value);
// float16 → float32, exactly (every F16 value is a float32 value).
float f16_to_float(std::uint16_t half);

struct Model {
  Network network;
  Metadata metadata;
  std::vector<NamedTensor> extra;  // the "optimizer.…" tensors of a checkpoint; empty for a plain model
};

// The file's bytes. The metadata keys that describe the network (format, format_version,
// architecture, input_shape (version 2), hidden_activation, output, input_scale) are written from the network itself and
// override any of the same name in `metadata`. Extra tensors must be named "optimizer.…".
// Storage::f16 stores the network's tensors as F16: each weight rounded to the nearest F16 value,
// an Error for a weight beyond its range.
std::string serialize_model(const Network& network, const Metadata& metadata, const std::vector<NamedTensor>& extra = {},
                            Storage storage = Storage::f32);

// Writes the model atomically: temporary file, fsync, rename.
void save_model(const std::filesystem::path& path, const Network& network, const Metadata& metadata,
                const std::vector<NamedTensor>& extra = {}, Storage storage = Storage::f32);

// Parses and validates a model: header length, JSON, format and version, dtypes (F32, or F16 for
// the network's tensors), each tensor's shape against the architecture, offsets against the data
// size, and finite values. Any defect throws Error naming `source` and what was wrong. A round
// trip is bit-exact (an F16 file read and written again as F16 gives the same bytes).
Model parse_model(std::span<const unsigned char> bytes, const std::string& source);
Model load_model(const std::filesystem::path& path);

// Only the metadata, from the header alone (the weights are neither read nor checked): for listing
// many model files cheaply. Checks the header length, the JSON, and the format and its version.
Metadata load_model_metadata(const std::filesystem::path& path);

// Now, as the `created` entry of the metadata holds it: ISO 8601 in UTC, to the second
// ("2026-12-02T07:44:36Z").
std::string utc_timestamp();

}  // namespace digits
