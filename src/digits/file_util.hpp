// Writing files that matter: all or nothing.
#pragma once

#include <filesystem>
#include <string_view>

namespace digits {

// Writes bytes to a temporary file beside path, flushes it to disk (fsync), then renames it over
// path, so a reader sees the old file or the new one, never half of one, even after a crash.
// Throws Error if path names something other than a regular file (a folder, /dev/null, a pipe):
// the rename would replace it.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace digits
