// The HTTP/1.1 plumbing under server.cpp: sockets, parsing, keep-alive and the limits that keep
// abusive clients from holding the server, on Boost.Beast over Asio. It knows nothing of digits:
// server.cpp gives it a Router that says, for each request, what to answer (see http_server.cpp
// for how connections move through the event loop, and docs/http-server.md for the measurements).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace digits::server {

struct HttpLimits {
  // Slow clients: each phase of a request has a deadline, whatever pace the bytes come at.
  std::chrono::milliseconds header_timeout{10'000};     // the whole header block, from its first byte
  std::chrono::milliseconds body_timeout{30'000};       // the whole body, once the header is in
  std::chrono::milliseconds write_timeout{5'000};       // the whole response
  std::chrono::milliseconds keep_alive_timeout{2'000};  // between requests on one connection
  // Sizes, refused with 414, 431 and 413 before anything bigger is read.
  std::size_t max_request_line_bytes = 8u << 10;
  std::size_t max_header_bytes = 16u << 10;  // the header fields, after the request line
  // A 280×280 drawing is about 10 KB as PNG and 300 KB as JSON pixels; 4 MiB leaves room for a v2
  // batch of a few thousand images.
  std::size_t max_body_bytes = 4u << 20;
  // Open connections; beyond it a new one gets 503 and is closed. 0: sized to the file-descriptor limit.
  std::size_t max_connections = 0;
  // Threads for the work a Router hands off (inference, decoding); 0: one per core.
  int workers = 0;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", …; a HEAD arrives as "GET" with head = true
  bool head = false;
  std::string path;    // the target without its query, percent-decoded
  std::string body;
  std::string authorization, content_type;
  std::string remote_address;
};

struct HttpResponse {
  int status = 200;
  std::string content_type, body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond Content-Type and Content-Length
};

// What the application does with a request. route() runs on the event loop, so it must be quick:
// it answers at once (health, the page's files, errors) or hands back `work`, which a worker
// thread runs while the loop goes on serving everyone else.
struct Routed {
  std::optional<HttpResponse> answer;
  std::function<HttpResponse()> work;
};
using Router = std::function<Routed(HttpRequest& request)>;
// The application's JSON error for a refusal the HTTP layer makes itself (400, 408, 411, 413,
// 414, 431, 503), so that every error has the same shape. `path` is empty when none was read.
using ErrorWriter = std::function<HttpResponse(const std::string& path, int status, const std::string& code, const std::string& message)>;

class HttpServer {
 public:
  // Raises the soft limit on open files to the hard one, so a thousand and more clients fit.
  HttpServer(HttpLimits limits, Router route, ErrorWriter error, std::FILE* log);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on host:port (SO_REUSEADDR, never SO_REUSEPORT); returns the port, the chosen one for 0.
  // Throws digits::Error when the address cannot be bound.
  int bind(const std::string& host, int port);
  // Runs the event loop on the calling thread until stop(); returns once the requests in flight
  // are answered. A stop() that came before run() makes run() return at once.
  void run();
  // From any thread, any time: before, during or after run().
  void stop();
  // The connection cap in force (limits.max_connections, or the one sized to the fd limit).
  std::size_t max_connections() const;

 private:
  struct Impl;
  friend class Connection;
  std::unique_ptr<Impl> impl_;
};

}  // namespace digits::server
