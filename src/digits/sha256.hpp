// SHA-256 of files and bytes, for recording exactly which data a model was trained on, and which
// model a fine-tuned version started from.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace digits {

// Lower-case hex digest of the file's bytes (as stored, before any gunzipping).
std::string sha256_file_hex(const std::filesystem::path& path);
// Lower-case hex digest of bytes.
std::string sha256_hex(std::string_view bytes);

}  // namespace digits
