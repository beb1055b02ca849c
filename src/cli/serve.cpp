#include "serve.hpp"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "digits/builtin_model.hpp"
#include "digits/error.hpp"
#include "digits/fine_tune.hpp"
#include "digits/model_file.hpp"
#include "feedback/store.hpp"
#include "server/server.hpp"

extern char** environ;

namespace digits::cli {

namespace {

namespace fs = std::filesystem;

// The state directory, and MNIST for the learner when it can be had. Without MNIST the server
// still runs and stores judgements, with learning off and the reason shown; a --data that was
// given and cannot be read is an error.
server::LearnerOptions learner_options(const ServeOptions& options) {
  server::LearnerOptions learning;
  learning.store = store_connection(options.store, options.state_dir);
  learning.store_connections = static_cast<std::size_t>(options.store_connections);
  if (learning.store.empty()) learning.state_dir = options.state_dir.empty() ? feedback::default_state_dir() : fs::path(options.state_dir);
  if (options.no_learning) {
    learning.disabled_reason = "the server was started with --no-learning";
    return learning;
  }
  fs::path data_dir;
  try {
    data_dir = resolve_data_dir(options.data);
  } catch (const Error& e) {
    learning.disabled_reason = e.what();
    return learning;
  }
  try {
    auto [replay, validation] = guard_split(load_training_set(data_dir));
    learning.data = std::make_shared<const server::LearningData>(server::LearningData{std::move(replay), std::move(validation)});
  } catch (const Error& e) {
    if (!options.data.empty()) throw;
    learning.disabled_reason = std::string("cannot read MNIST: ") + e.what();
  }
  return learning;
}

// --admin-token, or the first line of --admin-token-file (its trailing newline and spaces trimmed).
std::string admin_token(const ServeOptions& options) {
  if (options.admin_token_file.empty()) return options.admin_token;
  std::ifstream in(options.admin_token_file);
  if (!in) throw Error(options.admin_token_file + ": cannot read the admin token file");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t')) token.pop_back();
  if (token.empty()) throw Error(options.admin_token_file + ": the admin token file's first line is empty");
  struct stat status{};
  if (::stat(options.admin_token_file.c_str(), &status) == 0 && (status.st_mode & (S_IRWXG | S_IRWXO)))
    std::fprintf(stderr, "digits: %s can be read by other users; chmod 600 it\n", options.admin_token_file.c_str());
  return token;
}

// The model's source as clients see it (/api/health, /api/model, a version's metadata): the
// file's name, never the folders above it, which would tell anyone who asks about this machine.
server::ServedModel load_served_model(const std::string& path) {
  if (!path.empty()) return {load_model(path), std::filesystem::path(path).filename().string()};
  return {parse_model(builtin_model_bytes(), "built-in model"), "built-in model"};
}

// The address a browser on this machine uses: a wildcard host means "every interface", which
// includes loopback; an IPv6 literal goes in brackets.
std::string page_url(const std::string& host, int port) {
  std::string shown = host;
  if (host.empty() || host == "0.0.0.0") shown = "127.0.0.1";
  if (host == "::") shown = "::1";
  if (shown.find(':') != std::string::npos) shown = "[" + shown + "]";
  return "http://" + shown + ":" + std::to_string(port) + "/";
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string directories = path;
  std::size_t start = 0;
  while (start <= directories.size()) {
    const std::size_t end = std::min(directories.find(':', start), directories.size());
    const std::filesystem::path candidate = std::filesystem::path(directories.substr(start, end - start)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Starts the user's browser on url: $BROWSER if set, else the desktop's opener when there is a
// desktop to open it on. Returns false when there is no browser to start (a server, an SSH
// session): the caller then prints the address instead.
bool open_in_browser(const std::string& url) {
  std::string opener;
  if (const char* browser = std::getenv("BROWSER"); browser && *browser) {
    opener = browser;
  } else {
#ifdef __APPLE__
    opener = "open";
#else
    const bool desktop = std::getenv("DISPLAY") || std::getenv("WAYLAND_DISPLAY");
    if (desktop && on_path("xdg-open")) opener = "xdg-open";
#endif
  }
  if (opener.empty()) return false;

  // The child must not inherit our blocked SIGINT/SIGTERM, nor print over our log.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&files, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<char*> argv = {opener.data(), const_cast<char*>(url.c_str()), nullptr};
  pid_t child = 0;
  const int failed = posix_spawnp(&child, opener.c_str(), &files, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attributes);
  if (failed) return false;
  std::thread([child] { ::waitpid(child, nullptr, 0); }).detach();  // reap it whenever it exits
  return true;
}

// Each request decodes a drawing into a few buffers of about 300 KB. glibc serves blocks that
// large with mmap and hands them back to the system on free, so every request paid for fresh
// zeroed pages: page faults were 80% of a prediction's time (2 ms of 2.5 ms on a virtual
// machine). Keeping such blocks in the heap and not trimming it makes them reusable.
void keep_request_buffers_in_the_heap() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

int serve(const ServeOptions& options, bool open_browser) {
  keep_request_buffers_in_the_heap();
  server::ServedModel served = load_served_model(options.model);
  const std::string source = options.model.empty() ? served.source : options.model;  // this terminal may see the path

  // SIGINT and SIGTERM are blocked in every thread (the server's threads inherit the mask) and
  // taken by one thread with sigwait, which stops the server in order: no handler runs in the
  // middle of some request, and requests in flight are answered before the process exits.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  server::ServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.learning = learner_options(options);
  server_options.feedback_per_minute = options.feedback_rate;
  server_options.request_limits.max_image_pixels = options.max_image_pixels;
  server_options.request_limits.max_image_bytes = options.max_image_bytes;
  server_options.feedback_per_minute_per_address = options.feedback_rate_address;
  server_options.learning->quotas = {options.quota_client, options.quota_address, options.quota_mib * (std::int64_t{1} << 20)};
  server_options.admin_token = admin_token(options);
  server_options.http.max_bytes_in_flight = static_cast<std::size_t>(options.memory_budget_mib) << 20;
  server_options.http.client_share_percent = options.client_share_percent;
  server_options.http.trusted_proxies = options.trusted_proxies;
  server::Server server(std::move(served), server_options);
  const int port = server.bind();
  const std::string url = page_url(options.host, port);
  std::printf("digits: serving %s at %s (Ctrl+C stops)\n", source.c_str(), url.c_str());
  if (open_browser && !open_in_browser(url)) std::printf("digits: no browser to open here; open %s in one\n", url.c_str());
  std::fflush(stdout);

  std::thread signal_watcher([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.stop();
  });
  server.run();
  // run() can also end on its own (the socket failed): wake the watcher so it can be joined.
  pthread_kill(signal_watcher.native_handle(), SIGTERM);
  signal_watcher.join();
  std::printf("digits: stopped\n");
  return kSuccess;
}

}  // namespace

int run_serve(const ServeOptions& options) { return serve(options, false); }
int run_app(const ServeOptions& options) { return serve(options, true); }

}  // namespace digits::cli
