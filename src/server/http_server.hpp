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

  // Memory (issue 19, F2): the bodies being received, queued and worked on, each with room for its
  // answer, for the whole server. A body that does not fit is refused (503, Retry-After) before it
  // is read. 256 MiB suits a 2-core machine with 24 GiB: the work queue drains far less than that
  // in the time a body may take to arrive. 0: no bound (tests only).
  std::size_t max_bytes_in_flight = 256u << 20;
  // One client's share, in percent, of max_connections and of max_bytes_in_flight, so that no one
  // client can lock the others out (F8). A client is an IPv4 address or an IPv6 /64, or, through a
  // trusted proxy, the address the proxy names. At least kLeastClientConnections connections
  // whatever the percentage. 0: no per-client share.
  int client_share_percent = 10;
  // The work queue (F3): at most this many requests waiting for a worker, in all and from one
  // client; one that waited longer than max_queue_wait is answered 503 instead of worked on.
  std::size_t max_queued_requests = 256;
  std::size_t max_queued_per_client = 16;
  std::chrono::milliseconds max_queue_wait{3'000};
  // On stop(): requests being worked on may finish within this; then every connection is closed.
  std::chrono::milliseconds stop_grace{2'000};
  // Reverse proxies whose X-Forwarded-For is believed (exact addresses, as text): a request through
  // one counts as the client the proxy names (the field's last address), and the proxy's own
  // connections are not held to one client's share. Without it, everything behind a proxy is one
  // client.
  std::vector<std::string> trusted_proxies;
};

// Whatever the percentage, a client may hold this many connections (a browser opens up to six).
inline constexpr std::size_t kLeastClientConnections = 16;

struct HttpRequest {
  std::string method;  // "GET", "POST", …; a HEAD arrives as "GET" with head = true
  bool head = false;
  std::string path;    // the target without its query, percent-decoded
  std::string body;
  std::string authorization, content_type;
  // The client as the limits count it: its IPv4 address, its IPv6 /64 ("2001:db8:1:2::/64"), or
  // the address a trusted proxy names for it.
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
  // What one client may hold: connections, and bytes of the memory budget.
  std::size_t max_client_connections() const;

 private:
  struct Impl;
  friend class Connection;
  std::unique_ptr<Impl> impl_;
};

}  // namespace digits::server
