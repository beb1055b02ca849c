// What the fuzz targets share: a scratch directory for the parsers that read files, and a small
// network for the targets that predict. Each target is one LLVMFuzzerTestOneInput (fuzz/README.md).
//
// A target lets only digits::Error (and the server's RequestError) through quietly: that is a
// parser refusing its input, as it should. Any other exception escapes, and libFuzzer reports it
// as a crash, together with ASan's and UBSan's findings.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>

#include "digits/network.hpp"

namespace digits::fuzzing {

// A directory of this process's own, in memory (/dev/shm) when there is one, removed at exit.
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      std::error_code ec;
      const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : std::filesystem::temp_directory_path();
      path = base / ("digits-fuzz-" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

inline void write_bytes(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// 784 → 16 → 10 with fixed weights: the server's code paths at a fraction of the built-in model's cost.
inline Network small_network() {
  Network network({784, 16, 10}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 1);
  return network;
}

}  // namespace digits::fuzzing
