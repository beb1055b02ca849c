// What the API tests share: drawings as the page sends them (PNG data URLs or raw pixels), the
// built-in model, temporary folders, and a `digits` process started with pipes on its output.
#pragma once

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../support/strokes.hpp"
#include "digits/base64.hpp"
#include "digits/builtin_model.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "server/api.hpp"

extern char** environ;

namespace digits::api_testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

// Two probabilities of one drawing from two paths through the same model (the server's, which
// runs each layer to show it, and predict_proba's, with batch norm folded into the layer before
// it): equal within float rounding, 10⁻⁶ absolute, never told apart by what they answer.
#define EXPECT_SAME_PROBABILITY(a, b) EXPECT_NEAR((a), (b), 1e-6)

inline GrayImage drawing(int digit, testing::Placement placement = {}) { return testing::draw(testing::digit_strokes(digit), placement); }

inline std::string png_data_url(const GrayImage& image) { return "data:image/png;base64," + encode_base64(encode_png(image)); }

inline json pixels_request(const GrayImage& image) {
  std::vector<int> pixels;
  for (float v : image.pixels) pixels.push_back(static_cast<int>(std::lround(v)));
  return {{"width", image.width}, {"height", image.height}, {"pixels", pixels}};
}

// A dense network 784-64-32-10 with He's random weights, untrained: for what the server says of a
// dense model (the built-in one is a CNN). Each call the same weights.
inline server::ServedModel dense_model() {
  Network network({784, 64, 32, 10}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 1);
  return {Model{std::move(network), {}, {}}, "a test dense model"};
}

inline const Model& builtin() {
  static const Model model = parse_model(builtin_model_bytes(), "built-in model");
  return model;
}

// A fresh folder under the system's temporary directory, removed with everything in it at the end.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() / ("digits-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// $XDG_DATA_HOME for every process a test starts, so that `digits serve` without --state-dir
// keeps its state here and not in the user's home.
inline const std::filesystem::path& scratch_data_home() {
  static const TempDir dir("xdg-data");
  return dir.path;
}

struct Process {
  pid_t pid = -1;
  int out = -1, err = -1;

  static Process start(const std::vector<std::string>& args, const std::vector<std::string>& env_overrides = {}) {
    int out_pipe[2], err_pipe[2];
    if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_adddup2(&files, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&files, err_pipe[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&files, out_pipe[0]);
    posix_spawn_file_actions_addclose(&files, err_pipe[0]);
    std::vector<std::string> all = {DIGITS_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The environment, minus any display or browser, plus the overrides.
    std::vector<std::string> environment;
    for (char** e = environ; *e; ++e) {
      const std::string entry = *e;
      if (!entry.starts_with("DISPLAY=") && !entry.starts_with("WAYLAND_DISPLAY=") && !entry.starts_with("BROWSER=") && !entry.starts_with("XDG_DATA_HOME="))
        environment.push_back(entry);
    }
    // A server keeps its state in $XDG_DATA_HOME/digits by default: never the real one from a test.
    environment.push_back("XDG_DATA_HOME=" + scratch_data_home().string());
    environment.insert(environment.end(), env_overrides.begin(), env_overrides.end());
    std::vector<char*> envp;
    for (std::string& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);
    Process p;
    if (posix_spawn(&p.pid, DIGITS_BINARY, &files, nullptr, argv.data(), envp.data()) != 0) throw std::runtime_error("cannot start digits");
    posix_spawn_file_actions_destroy(&files);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    p.out = out_pipe[0];
    p.err = err_pipe[0];
    return p;
  }

  // Reads from fd until `pattern` matches what was read, or the timeout passes.
  static std::string read_until(int fd, const std::regex& pattern, std::chrono::milliseconds timeout, std::string& buffer) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::smatch match;
    while (!std::regex_search(buffer, match, pattern)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return "";
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[512];
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    return match[match.size() > 1 ? 1 : 0];
  }

  // Waits for the exit status; -1 if it has not exited by the timeout.
  int wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  ~Process() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
  }
};

}  // namespace digits::api_testing
