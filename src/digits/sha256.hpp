// SHA-256 of files, for recording exactly which data a model was trained on.
#pragma once

#include <filesystem>
#include <string>

namespace digits {

// Lower-case hex digest of the file's bytes (as stored, before any gunzipping).
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace digits
