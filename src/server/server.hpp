// The HTTP server behind `digits serve` and `digits app`: the embedded drawing page, the JSON API
// and the Open Inference Protocol (KServe v2), all thin over the library (see api.hpp for what
// each endpoint answers and docs/api.md for the reference).
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "server/api.hpp"
#include "server/http_server.hpp"
#include "server/learner.hpp"

namespace digits::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: let the system pick a free port (bind() returns it)
  // The HTTP layer's limits against slow and abusive clients (http_server.hpp): timeouts for the
  // header, the body, the response and an idle keep-alive; sizes of the request line, the header
  // and the body; open connections (sized to the file-descriptor limit); the worker pool.
  HttpLimits http;
  std::FILE* log = stderr;  // one line per request; nullptr for none

  // Learning from corrections: the state directory and the learner's settings (learner.hpp).
  // Without them, POST /api/feedback and the admin endpoints answer 503 feedback_unavailable.
  std::optional<LearnerOptions> learning;
  // What one request may cost: the image pixel and byte caps (api.hpp, RequestLimits).
  RequestLimits request_limits;
  // Judgements per minute from one client_id, and from one remote address whatever its client_ids
  // (a classroom behind one NAT shares an address); both must allow. 0: unlimited.
  int feedback_per_minute = 30;
  int feedback_per_minute_per_address = 120;
  // Bearer token for the endpoints that change the model; empty: they answer 403 admin_disabled.
  std::string admin_token;
};

class Server {
 public:
  // With options.learning, opens the state directory and starts on its current version (see
  // Learner); throws Error when that fails.
  Server(ServedModel model, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port, the chosen one when options.port is 0.
  // Throws digits::Error when the address cannot be bound.
  int bind();
  // Serves until stop() is called; returns after the requests in flight are answered.
  void run();
  // From any thread, before, during or after run() (a signal's watcher calls it).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace digits::server
