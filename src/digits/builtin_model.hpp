// The pretrained model compiled into the binary (models/default.safetensors at build time), so
// `digits evaluate`, `predict` and the app work from any directory with no files beside them.
#pragma once

#include <span>

namespace digits {

std::span<const unsigned char> builtin_model_bytes();

}  // namespace digits
