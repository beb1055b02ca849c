#include "digits/file_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "digits/error.hpp"

namespace digits {

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  // The rename below replaces whatever has the name: run as root with /dev/null as the path, it
  // would put a regular file in place of the device. Only a regular file is ever replaced.
  std::error_code ec;
  const std::filesystem::file_status existing = std::filesystem::status(path, ec);
  if (std::filesystem::exists(existing) && !std::filesystem::is_regular_file(existing))
    throw Error(path.string() + ": exists and is not a regular file (a folder, a device, a pipe…); refusing to replace it");
  const std::filesystem::path directory = path.has_parent_path() ? path.parent_path() : ".";
  std::string temporary = (directory / ("." + path.filename().string() + ".XXXXXX")).string();
  const int fd = mkstemp(temporary.data());
  if (fd < 0) {
    const int error_number = errno;
    throw FileWriteError(path.string() + ": cannot create a temporary file in " + directory.string() + ": " + std::strerror(error_number), error_number);
  }
  auto fail = [&](const char* what) {
    const int error_number = errno;
    ::close(fd);
    ::unlink(temporary.c_str());
    throw FileWriteError(path.string() + ": " + what + ": " + std::strerror(error_number), error_number);
  };
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) fail("chmod failed");
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int error_number = errno;
    ::unlink(temporary.c_str());
    throw FileWriteError(path.string() + ": close failed: " + std::strerror(error_number), error_number);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error_number = errno;
    ::unlink(temporary.c_str());
    throw FileWriteError(path.string() + ": cannot rename the temporary file into place: " + std::strerror(error_number), error_number);
  }
  // Make the rename itself durable.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace digits
