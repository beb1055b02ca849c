// The HTTP/1.1 server: one event loop for every socket, a worker pool for the work.
//
// Why: with a thread per connection (cpp-httplib, until issue 11), 64 clients that sent half a
// header and waited held all 16 threads, and GET /api/health took 28 s. Here no connection ever
// holds a thread while it waits for bytes:
//   - One thread runs an Asio io_context (the caller of run()). It accepts, reads and parses
//     (Boost.Beast), writes, and answers what is cheap (health, the page's files, metadata, every
//     error) itself.
//   - The Router hands the costly work (decoding an image, running the network, storing a
//     judgement) to a pool of worker threads, one per core. A request reaches the pool only once
//     it has been read whole, and its answer is written by the loop, so a slow client never holds
//     a worker either.
//
// A connection goes: [waiting] → reading the header → reading the body → [working] → writing →
// waiting for the next request (keep-alive), or closing. Every phase has a deadline, and every
// limit has a clear refusal, a JSON error from the ErrorWriter followed by Connection: close:
//   - the header block must arrive within header_timeout of its first byte (of the accept, for a
//     connection's first request), whatever the pace: a client trickling a byte a second gets 408
//     and is closed;
//   - the body within body_timeout (408), the response within write_timeout (closed);
//   - an idle keep-alive connection is closed after keep_alive_timeout, silently;
//   - a request line over max_request_line_bytes gets 414, header fields over max_header_bytes
//     431, a body over max_body_bytes 413 (from Content-Length, before reading it), a POST with no
//     length 411, bytes that are not HTTP 400;
//   - beyond max_connections open connections, a new one gets 503 and is closed.
// After a refusal the client may still be sending. Closing a socket with unread bytes makes the
// kernel send a reset, which can destroy our answer before the client reads it, so the server
// first shuts down its side and reads and drops what comes for a short while ("lingering close").
#include "server/http_server.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <limits>
#include <new>
#include <thread>
#include <unordered_set>

#include "digits/error.hpp"

namespace digits::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// Descriptors the process needs besides its connections: the listening socket, the log, the
// model file, the feedback database and its journal, a version being saved.
constexpr std::size_t kDescriptorsForOtherUses = 64;
// Beyond this many, connections cost memory more than descriptors: each may buffer a header
// (16 KiB) and a body (up to 4 MiB) while it is read.
constexpr std::size_t kMostConnectionsByDefault = 10'000;
// Connections over the cap that are still told why (503) before they are closed; beyond these,
// the server closes new ones unanswered rather than spend more descriptors on refusals.
constexpr std::size_t kRefusalsAtOnce = 256;
// How long a closing connection reads and drops what the client still sends (see the top).
constexpr auto kLingerTime = std::chrono::seconds(2);
// What an idle connection may keep of its read buffer.
constexpr std::size_t kIdleBufferBytes = 16u << 10;
// accept() failing for want of descriptors (EMFILE) is retried after this pause, not in a spin.
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);

std::size_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20 : static_cast<std::size_t>(limit.rlim_cur);
}

std::string seconds_text(std::chrono::milliseconds duration) {
  const long ms = static_cast<long>(duration.count());
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ms) / 1000);
  return text;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path of a request target: the query dropped, %XX escapes decoded (a bad escape stays as sent).
std::string path_of(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::string path;
  path.reserve(target.size());
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == '%' && i + 2 < target.size() && hex_value(target[i + 1]) >= 0 && hex_value(target[i + 2]) >= 0) {
      path += static_cast<char>(hex_value(target[i + 1]) * 16 + hex_value(target[i + 2]));
      i += 2;
    } else {
      path += target[i];
    }
  }
  return path;
}

// A socket error (the client left, the server is stopping), as opposed to bytes that are not HTTP.
bool is_transport_error(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message || ec.category() != http::make_error_code(http::error::bad_method).category();
}

}  // namespace

class Connection;

struct HttpServer::Impl {
  HttpLimits limits;
  Router route;
  ErrorWriter error;
  std::FILE* log;
  std::size_t connection_cap = 0;

  // Touched only on the loop's thread.
  std::unordered_set<Connection*> connections;
  std::size_t serving = 0, refusing = 0;
  bool stopping = false;

  asio::thread_pool workers;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};

  Impl(HttpLimits limits, Router route, ErrorWriter error, std::FILE* log)
      : limits(limits),
        route(std::move(route)),
        error(std::move(error)),
        log(log),
        workers(static_cast<std::size_t>(limits.workers > 0 ? limits.workers : std::max(1u, std::thread::hardware_concurrency()))) {
    const std::size_t descriptors = raise_open_file_limit();
    connection_cap = limits.max_connections > 0
                         ? limits.max_connections
                         : std::clamp(descriptors > kDescriptorsForOtherUses + kRefusalsAtOnce ? descriptors - kDescriptorsForOtherUses - kRefusalsAtOnce : 16,
                                      std::size_t{16}, kMostConnectionsByDefault);
  }

  void accept_next();
  void shut_down();
  void write_log(std::string_view method, std::string_view path, int status, std::optional<Clock::time_point> started) const {
    if (!log) return;
    const std::string shown_method = loggable(method), shown_path = loggable(path);
    if (started) {
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - *started).count();
      std::fprintf(log, "%s %s %d %.2f ms\n", shown_method.c_str(), shown_path.c_str(), status, ms);
    } else {
      std::fprintf(log, "%s %s %d - ms\n", shown_method.c_str(), shown_path.c_str(), status);
    }
  }

  // What a client sent, fit for one line of the log: "-" for nothing, control bytes (a decoded
  // %0A could forge a line) as '?', and at most 200 bytes of it.
  static std::string loggable(std::string_view text) {
    if (text.empty()) return "-";
    constexpr std::size_t kMostShown = 200;
    std::string shown(text.substr(0, kMostShown));
    for (char& c : shown)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    if (text.size() > kMostShown) shown += "...";
    return shown;
  }
};

// One client's socket, from accept to close. Lives as long as an operation of the loop holds it
// (a shared_ptr in each pending handler); only the loop's thread touches it.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer::Impl& server, tcp::socket socket, bool refused)
      : server_(server), socket_(std::move(socket)), deadline_(server.io), refused_(refused) {
    error_code ignored;
    remote_address_ = socket_.remote_endpoint(ignored).address().to_string();
    server_.connections.insert(this);
    ++(refused_ ? server_.refusing : server_.serving);
  }
  ~Connection() {
    server_.connections.erase(this);
    --(refused_ ? server_.refusing : server_.serving);
  }

  // Reads and answers requests until the client leaves, a limit is hit or the server stops.
  void serve() { read_header(); }

  // Answers 503 without reading anything, and closes.
  void refuse_over_cap() {
    refuse(503, "too_many_connections",
           "the server has " + std::to_string(server_.connection_cap) + " connections open, its limit; try again in a moment",
           {{"Retry-After", "1"}});
  }

  // The server is stopping: a connection that has no request to answer closes now; one whose
  // request is being worked on or answered closes after the answer.
  void server_stopping() {
    if (phase_ == Phase::waiting || phase_ == Phase::reading || phase_ == Phase::lingering) close();
  }

 private:
  enum class Phase { waiting, reading, working, writing, lingering, closed };

  // The deadline of the phase at hand: when it passes, the socket's pending operations are
  // cancelled and their handlers see timed_out_.
  void set_deadline(std::chrono::milliseconds limit) {
    timed_out_ = false;
    deadline_.expires_after(limit);
    deadline_.async_wait([self = shared_from_this()](error_code ec) {
      // Re-armed or cancelled; or it expired just as the phase ended, with this handler already
      // queued, and a later phase has moved the deadline since: not ours to act on.
      if (ec || self->deadline_.expiry() > asio::steady_timer::clock_type::now()) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }

  void no_deadline() { deadline_.expires_at(asio::steady_timer::time_point::max()); }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    error_code ignored;
    no_deadline();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // Keep-alive: wait for the next request's first byte, at most keep_alive_timeout.
  void wait_for_next_request() {
    if (buffer_.size() > 0) return read_header();  // pipelined: it is already here
    // A large body passed through the buffer: give its memory back while the connection idles.
    if (buffer_.capacity() > kIdleBufferBytes) buffer_.shrink_to_fit();
    phase_ = Phase::waiting;
    set_deadline(server_.limits.keep_alive_timeout);
    socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec || self->server_.stopping) return self->close();
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    phase_ = Phase::reading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits.max_header_bytes));
    // The body's size is checked against Content-Length below, with our own message. (Not with
    // boost::none: Beast 1.74 compares `length > none`, which is true, and refuses every body.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    set_deadline(server_.limits.header_timeout);
    http::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    const HttpLimits& limits = server_.limits;
    const auto& header = parser_->get();
    // Beast parses the request line as soon as it is complete: an empty target means it is not.
    const std::string path = header.target().empty() ? "" : path_of(header.target());
    if (timed_out_) {
      if (buffer_.size() == 0 && !parser_->got_some()) return close();  // never sent a byte
      return refuse(408, "request_timeout", "the request's header did not arrive within " + seconds_text(limits.header_timeout), {}, path);
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      if (path.empty())
        return refuse(414, "uri_too_long", "the request line is longer than the limit of " + std::to_string(limits.max_request_line_bytes) + " bytes");
      return refuse(431, "header_too_large", "the request's header fields are larger than the limit of " + std::to_string(limits.max_header_bytes) + " bytes", {}, path);
    }
    if (ec) {
      if (is_transport_error(ec) || server_.stopping) return close();
      return refuse(400, "bad_request", "the request is not valid HTTP", {}, path);
    }
    if (header.method_string().size() + header.target().size() + 10 > limits.max_request_line_bytes)
      return refuse(414, "uri_too_long", "the request line is longer than the limit of " + std::to_string(limits.max_request_line_bytes) + " bytes", {}, path);

    const boost::optional<std::uint64_t> length = parser_->content_length();
    // A POST with neither Content-Length nor chunked encoding has no body (RFC 9112 §6.3): say so
    // at once rather than let the client wonder why its data was ignored.
    if (header.method() == http::verb::post && !length && !parser_->chunked()) {
      started_ = Clock::now();
      return answer_now(http_response(server_.error(path, 411, "length_required", "a POST needs a body with a Content-Length (send {} for an empty one)")), header);
    }
    if (length && *length > limits.max_body_bytes)
      return refuse(413, "payload_too_large", "the request body is larger than the limit of " + std::to_string(limits.max_body_bytes) + " bytes", {}, path);
    if (parser_->is_done()) return dispatch();
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      set_deadline(limits.write_timeout);
      return asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()), [self = shared_from_this()](error_code ec, std::size_t) {
        if (ec) return self->close();
        self->read_body();
      });
    }
    read_body();
  }

  void read_body() {
    parser_->body_limit(server_.limits.max_body_bytes);  // chunked bodies, whose size comes as they do
    set_deadline(server_.limits.body_timeout);
    http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(error_code ec) {
    const HttpLimits& limits = server_.limits;
    const std::string path = path_of(parser_->get().target());
    if (timed_out_) return refuse(408, "request_timeout", "the request's body did not arrive within " + seconds_text(limits.body_timeout), {}, path);
    if (ec == http::error::body_limit)
      return refuse(413, "payload_too_large", "the request body is larger than the limit of " + std::to_string(limits.max_body_bytes) + " bytes", {}, path);
    if (ec) {
      if (is_transport_error(ec) || server_.stopping) return close();
      return refuse(400, "bad_request", "the request is not valid HTTP", {}, path);
    }
    dispatch();
  }

  // The request is in, whole: the Router answers it here or on a worker.
  void dispatch() {
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    HttpRequest request;
    request.head = message.method() == http::verb::head;
    request.method = request.head ? "GET" : std::string(message.method_string());
    request.path = path_of(message.target());
    request.body = std::move(message.body());
    request.authorization = std::string(message[http::field::authorization]);
    request.content_type = std::string(message[http::field::content_type]);
    request.remote_address = remote_address_;
    log_method_ = std::string(message.method_string());
    log_path_ = request.path;
    keep_alive_ = message.keep_alive();
    head_ = request.head;
    started_ = Clock::now();
    phase_ = Phase::working;
    no_deadline();  // the time a request takes to work is the worker's, not the client's

    const std::string path = request.path;
    Routed routed;
    try {
      routed = server_.route(request);
    } catch (...) {
      routed.answer = failure(path, std::current_exception());
    }
    if (routed.answer) return respond(std::move(*routed.answer));

    asio::io_context& io = server_.io;
    asio::post(server_.workers, [self = shared_from_this(), work = std::move(routed.work), path, &io,
                                 busy = asio::make_work_guard(io)]() mutable {
      HttpResponse response;
      try {
        response = work();
      } catch (...) {
        response = self->failure(path, std::current_exception());
      }
      // Back to the loop, which alone writes to the socket; the handler holds the last reference.
      asio::post(io, [self = std::move(self), response = std::move(response)]() mutable { self->respond(std::move(response)); });
    });
  }

  HttpResponse failure(const std::string& path, std::exception_ptr exception) const {
    try {
      std::rethrow_exception(exception);
    } catch (const std::bad_alloc&) {
      return server_.error(path, 503, "out_of_memory", "the server ran out of memory answering this request");
    } catch (...) {
      return server_.error(path, 500, "internal_error", "the server failed while answering this request");
    }
  }

  static http::response<http::string_body> http_response(HttpResponse answer) {
    http::response<http::string_body> response;
    response.version(11);
    response.result(static_cast<unsigned>(answer.status));
    if (!answer.content_type.empty()) response.set(http::field::content_type, answer.content_type);
    for (auto& [name, value] : answer.headers) response.set(name, value);
    response.body() = std::move(answer.body);
    return response;
  }

  // A refusal: the error, Connection: close, then a lingering close. `path` picks the error's shape.
  void refuse(int status, const std::string& code, const std::string& message, std::vector<std::pair<std::string, std::string>> headers = {},
              const std::string& path = "") {
    HttpResponse answer = server_.error(path, status, code, message);
    for (auto& header : headers) answer.headers.push_back(std::move(header));
    keep_alive_ = false;
    head_ = false;
    log_method_ = parser_ && !parser_->get().target().empty() ? std::string(parser_->get().method_string()) : "";
    log_path_ = path;
    started_.reset();
    response_ = http_response(std::move(answer));
    write_response();
  }

  void answer_now(http::response<http::string_body> response, const http::request<http::string_body>& request) {
    log_method_ = std::string(request.method_string());
    log_path_ = path_of(request.target());
    keep_alive_ = request.keep_alive();
    head_ = false;
    parser_.reset();
    response_ = std::move(response);
    write_response();
  }

  void respond(HttpResponse answer) {
    if (phase_ == Phase::closed) return;
    response_ = http_response(std::move(answer));
    write_response();
  }

  // Writes response_, then waits for the next request or closes.
  void write_response() {
    phase_ = Phase::writing;
    if (server_.stopping) keep_alive_ = false;
    response_.keep_alive(keep_alive_);
    if (head_) {
      // HEAD: GET's headers, Content-Length included, without the body.
      response_.content_length(response_.body().size());
      response_.body().clear();
    } else {
      response_.prepare_payload();
    }
    server_.write_log(log_method_, log_path_, static_cast<int>(response_.result_int()), started_);
    set_deadline(server_.limits.write_timeout);
    http::async_write(socket_, response_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->close();
      self->response_ = {};  // do not keep a large answer while the connection idles
      if (!self->keep_alive_) return self->linger_then_close();
      self->wait_for_next_request();
    });
  }

  void linger_then_close() {
    phase_ = Phase::lingering;
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    if (server_.stopping) return close();
    set_deadline(std::chrono::duration_cast<std::chrono::milliseconds>(kLingerTime));
    drop_what_arrives();
  }

  void drop_what_arrives() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(8192), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->close();  // the client closed (EOF), or the linger time is up
      self->drop_what_arrives();
    });
  }

  HttpServer::Impl& server_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  bool refused_;
  bool timed_out_ = false;
  Phase phase_ = Phase::reading;
  std::string remote_address_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool keep_alive_ = false, head_ = false;
  std::string log_method_, log_path_;
  std::optional<Clock::time_point> started_;
};

void HttpServer::Impl::accept_next() {
  if (stopping || !acceptor.is_open()) return;
  acceptor.async_accept(io, [this](error_code ec, tcp::socket socket) {
    if (stopping || ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE) or a connection that died in the queue: pause, then go on.
      accept_retry.expires_after(kAcceptRetry);
      accept_retry.async_wait([this](error_code ec) {
        if (!ec && !stopping) accept_next();
      });
      return;
    }
    error_code ignored;
    // The answer goes out as headers then body: without this, Nagle's algorithm holds the body
    // back until the client's delayed ACK, 40 ms later on Linux.
    socket.set_option(tcp::no_delay(true), ignored);
    if (serving < connection_cap) {
      std::make_shared<Connection>(*this, std::move(socket), false)->serve();
    } else if (refusing < kRefusalsAtOnce) {
      std::make_shared<Connection>(*this, std::move(socket), true)->refuse_over_cap();
    } else {
      socket.close(ignored);
    }
    accept_next();
  });
}

void HttpServer::Impl::shut_down() {
  stopping = true;
  error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  for (Connection* connection : connections) connection->server_stopping();
}

HttpServer::HttpServer(HttpLimits limits, Router route, ErrorWriter error, std::FILE* log)
    : impl_(std::make_unique<Impl>(limits, std::move(route), std::move(error), log)) {}

HttpServer::~HttpServer() {
  // Whatever run() left (it may never have run): workers first, then the loop's handlers.
  impl_->workers.join();
}

int HttpServer::bind(const std::string& host, int port) {
  error_code ec;
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(port));
  } else {
    tcp::resolver resolver(impl_->io);
    const auto found = resolver.resolve(host, std::to_string(port), ec);
    if (!ec && !found.empty()) endpoint = *found.begin();
    else if (!ec) ec = asio::error::host_not_found;
  }
  tcp::acceptor& acceptor = impl_->acceptor;
  if (!ec) acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR only allows a quick restart; SO_REUSEPORT (never set) would let a second server
  // bind a port that is in use and silently take half its connections.
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
    throw Error("cannot listen on " + host + ":" + std::to_string(port) +
                ": the address is in use or not this machine's (try another --port, or --port 0 for any free one)");
  }
  return acceptor.local_endpoint().port();
}

// stop() posts shut_down() to the loop, which runs it in order with everything else: a stop that
// comes before run() waits in the queue and is the first thing run() does, so no signal is lost.
void HttpServer::run() {
  impl_->accept_next();
  impl_->io.run();
}

void HttpServer::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->shut_down(); });
}

std::size_t HttpServer::max_connections() const { return impl_->connection_cap; }

}  // namespace digits::server
