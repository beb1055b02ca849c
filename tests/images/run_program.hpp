// What the image-folder tests share: running one of the real binaries as a process, with stdin
// empty and its output captured in files (no pipe can fill up), and reading a file's bytes.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace images_testing {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

struct Outcome {
  int status = -1;  // the exit code; -1 if the process did not exit normally
  std::string out, err;
};

inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `command` (its first word a path), its output going to files in `scratch`.
inline Outcome run_program(const std::vector<std::string>& command, const std::filesystem::path& scratch) {
  const std::filesystem::path out = scratch / ".stdout", err = scratch / ".stderr";
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&files, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  Outcome outcome;
  const int spawned = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (spawned != 0) {
    ADD_FAILURE() << "cannot run " << command[0];
    return outcome;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  outcome.out = read_bytes(out);
  outcome.err = read_bytes(err);
  return outcome;
}

// MNIST, as scripts/fetch-mnist leaves it: $DIGITS_DATA, else the source tree's data/mnist.
inline std::filesystem::path mnist_dir() {
  const char* env = std::getenv("DIGITS_DATA");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
}
inline bool have_mnist() {
  std::error_code ec;
  return std::filesystem::exists(mnist_dir() / "t10k-images-idx3-ubyte", ec) || std::filesystem::exists(mnist_dir() / "t10k-images-idx3-ubyte.gz", ec);
}

}  // namespace images_testing
