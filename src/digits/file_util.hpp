// Writing files that matter: all or nothing.
#pragma once

#include <filesystem>
#include <string_view>

#include "digits/error.hpp"

namespace digits {

// What write_file_atomically throws when the system refuses a step: the errno says why, so that a
// caller can tell a full disk (ENOSPC) from a read-only one (EROFS) from anything else.
class FileWriteError : public Error {
 public:
  FileWriteError(const std::string& message, int error_number) : Error(message), error_number(error_number) {}
  int error_number;
};

// Writes bytes to a temporary file beside path, flushes it to disk (fsync), then renames it over
// path, so a reader sees the old file or the new one, never half of one, even after a crash.
// Throws Error if path names something other than a regular file (a folder, /dev/null, a pipe):
// the rename would replace it; FileWriteError when a write, fsync or rename fails, after removing
// the temporary file: a failed write (a full disk) leaves no partial file behind.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace digits
