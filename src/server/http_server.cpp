// The HTTP/1.1 server: one event loop for every socket, a fair queue and worker threads for the work.
//
// Why: with a thread per connection (cpp-httplib, until issue 11), 64 clients that sent half a
// header and waited held all 16 threads, and GET /api/health took 28 s. Here no connection ever
// holds a thread while it waits for bytes:
//   - One thread runs an Asio io_context (the caller of run()). It accepts, reads, writes, and
//     answers what is cheap (health, the page's files, metadata, every error) itself. What the
//     bytes mean, under which limits, is decided by RequestReader (request_reader.hpp), which
//     knows no sockets and is fuzzed.
//   - The Router hands the costly work (decoding an image, running the network, storing a
//     judgement) to the WorkQueue (work_queue.hpp): bounded, round-robin between clients,
//     dropping work whose client hung up, worked by one thread per core. A request reaches it only
//     once it has been read whole, and its answer is written by the loop, so a slow client never
//     holds a worker either.
//
// Every resource a stranger can spend has a bound of its own and one for the whole server
// (issue 19; docs/security.md lists them with their measured cost):
//   - time: every phase of a connection has a deadline, whatever the pace of its bytes;
//   - bytes: the request line, header fields, body and chunked framing (RequestReader);
//   - memory: every body being received, queued or worked on, plus room for its answer, is taken
//     from a MemoryBudget before it is read (503 when full), and one client holds at most its share;
//   - connections: max_connections in all, and one client's share of them;
//   - work: the queue's bounds and its wait limit, fair between clients.
//
// A connection goes: [waiting] → reading the header → reading the body → [working] → writing →
// waiting for the next request (keep-alive), or closing. Every phase has a deadline, and every
// limit has a clear refusal, a JSON error from the ErrorWriter followed by Connection: close:
//   - the header block must arrive within header_timeout of its first byte (of the accept, for a
//     connection's first request), whatever the pace: a client trickling a byte a second gets 408
//     and is closed;
//   - the body within body_timeout (408), the response within write_timeout (closed);
//   - an idle keep-alive connection is closed after keep_alive_timeout, silently;
//   - RequestReader's refusals: 414, 431, 413, 411, 400, 501;
//   - beyond max_connections open connections, or the client's share of them, a new one gets 503
//     and is closed; a body beyond the memory budget, or a request beyond the queue's bounds, 503
//     with Retry-After.
// While a request is worked on, the loop watches its socket: a client that hangs up has its queued
// work dropped before it is decoded (F3).
// After a refusal the client may still be sending. Closing a socket with unread bytes makes the
// kernel send a reset, which can destroy our answer before the client reads it, so the server
// first shuts down its side and reads and drops what comes for a short while ("lingering close").
#include "server/http_server.hpp"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <exception>
#include <limits>
#include <new>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "digits/error.hpp"
#include "server/memory_budget.hpp"
#include "server/request_reader.hpp"
#include "server/work_queue.hpp"

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
// (17 KiB) while it is read.
constexpr std::size_t kMostConnectionsByDefault = 10'000;
// Connections over the cap that are still told why (503) before they are closed; beyond these,
// the server closes new ones unanswered rather than spend more descriptors on refusals.
constexpr std::size_t kRefusalsAtOnce = 256;
// How long a closing connection reads and drops what the client still sends (see the top), and how
// much: twice the body limit, so that a client whose body was refused (413, or 503 before it was
// read) can send it whole and read why. A client still sending after that is not reading our
// answer: it gets a reset.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBodies = 2;
// accept() failing for want of descriptors (EMFILE) is retried after this pause, not in a spin.
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);
// What a request with a body takes from the memory budget besides the body: its answer. The
// largest, /api/predict's for a CNN with every layer's maps, is about 120 KB.
constexpr std::size_t kAnswerAllowance = 256u << 10;

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

// One client as the limits count it: an IPv4 address, or the /64 network of an IPv6 address (one
// subscriber's usual allocation: whoever has one address of it has 2⁶⁴).
std::string client_key(const asio::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

// The last address of X-Forwarded-For, the one our proxy appended; nothing when it is missing or
// not an address.
std::optional<asio::ip::address> forwarded_for(const http::request<http::string_body>& request) {
  std::string_view value;
  const auto [first, last] = request.equal_range("X-Forwarded-For");
  for (auto field = first; field != last; ++field) value = field->value();  // the last field
  value = value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  error_code ec;
  const asio::ip::address address = asio::ip::make_address(std::string(value), ec);
  if (ec) return std::nullopt;
  return address;
}

}  // namespace

class Connection;

struct HttpServer::Impl {
  HttpLimits limits;
  Router route;
  ErrorWriter error;
  std::FILE* log;
  std::size_t connection_cap = 0, client_connection_cap = 0;
  std::vector<asio::ip::address> trusted_proxies;
  MemoryBudget budget;

  // Touched only on the loop's thread.
  std::unordered_set<Connection*> connections;
  std::unordered_map<std::string, std::size_t> connections_by_client;
  std::size_t serving = 0, refusing = 0;
  bool stopping = false;

  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  asio::steady_timer stop_deadline{io};
  WorkQueue queue;

  Impl(HttpLimits limits_given, Router route, ErrorWriter error, std::FILE* log)
      : limits(std::move(limits_given)),
        route(std::move(route)),
        error(std::move(error)),
        log(log),
        budget(limits.max_bytes_in_flight, limits.max_bytes_in_flight / 100 * static_cast<std::size_t>(std::max(0, limits.client_share_percent))),
        queue(WorkQueueLimits{limits.max_queued_requests, limits.max_queued_per_client, limits.max_queue_wait,
                              limits.workers > 0 ? limits.workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))}) {
    const std::size_t descriptors = raise_open_file_limit();
    connection_cap = limits.max_connections > 0 ? limits.max_connections : default_connection_cap(descriptors);
    client_connection_cap = limits.client_share_percent > 0
                                ? std::max(kLeastClientConnections, connection_cap * static_cast<std::size_t>(limits.client_share_percent) / 100)
                                : connection_cap;
    for (const std::string& proxy : limits.trusted_proxies) {
      error_code ec;
      const asio::ip::address address = asio::ip::make_address(proxy, ec);
      if (ec) throw Error("--trusted-proxy " + proxy + ": not an IP address (give the proxy's address as it connects, such as 127.0.0.1)");
      trusted_proxies.push_back(address);
    }
  }

  // Every descriptor not kept for other uses or for refusals, within [16, kMostConnectionsByDefault].
  static std::size_t default_connection_cap(std::size_t descriptors) {
    const std::size_t reserved = kDescriptorsForOtherUses + kRefusalsAtOnce;
    return std::clamp(descriptors > reserved ? descriptors - reserved : 0, std::size_t{16}, kMostConnectionsByDefault);
  }

  bool is_trusted_proxy(const asio::ip::address& address) const {
    return std::find(trusted_proxies.begin(), trusted_proxies.end(), address) != trusted_proxies.end();
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
// (a shared_ptr in each pending handler, and in its queued job); only the loop's thread touches
// it, and the last reference is always dropped there.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `client`: the key its connection counts under ("" for a trusted proxy, whose connections carry
  // many clients).
  Connection(HttpServer::Impl& server, tcp::socket socket, bool refused, std::string client)
      : server_(server), socket_(std::move(socket)), deadline_(server.io), refused_(refused), client_(std::move(client)), reader_(server.limits) {
    error_code ignored;
    peer_ = socket_.remote_endpoint(ignored).address();
    server_.connections.insert(this);
    ++(refused_ ? server_.refusing : server_.serving);
    if (!refused_ && !client_.empty()) ++server_.connections_by_client[client_];
  }
  ~Connection() {
    server_.connections.erase(this);
    // Stopping, and the last connection is gone: the grace timer need not hold the loop.
    if (server_.stopping && server_.connections.empty()) server_.stop_deadline.cancel();
    --(refused_ ? server_.refusing : server_.serving);
    if (!refused_ && !client_.empty()) {
      const auto it = server_.connections_by_client.find(client_);
      if (--it->second == 0) server_.connections_by_client.erase(it);
    }
  }

  // Reads and answers requests until the client leaves, a limit is hit or the server stops.
  void serve() {
    set_deadline(server_.limits.header_timeout);
    read_request();
  }

  // Answers 503 without reading anything, and closes.
  void refuse_over_cap(bool client_share) {
    if (client_share)
      refuse({503, "too_many_connections",
              "this client has " + std::to_string(server_.client_connection_cap) + " connections open, its share of the server's; close some, or try again in a moment",
              {{"Retry-After", "1"}}});
    else
      refuse({503, "too_many_connections", "the server has " + std::to_string(server_.connection_cap) + " connections open, its limit; try again in a moment",
              {{"Retry-After", "1"}}});
  }

  // The server is stopping: a connection that has no request to answer closes now; one whose
  // request is being worked on or answered closes after the answer (or when the grace runs out).
  void server_stopping() {
    if (phase_ == Phase::waiting || phase_ == Phase::reading || phase_ == Phase::lingering) close();
  }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    if (gone_) gone_->store(true);
    error_code ignored;
    no_deadline();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    hold_.release();
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

  // Keep-alive: wait for the next request's first byte, at most keep_alive_timeout.
  void wait_for_next_request() {
    if (reader_.buffered() > 0) {  // pipelined: it is already here
      set_deadline(server_.limits.header_timeout);
      phase_ = Phase::reading;
      return on_progress(reader_.parse());
    }
    reader_.shrink();  // a large read passed through the buffer: give its memory back while idle
    phase_ = Phase::waiting;
    set_deadline(server_.limits.keep_alive_timeout);
    socket_.async_read_some(reader_.prepare(4096), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec || self->server_.stopping) return self->close();
      self->phase_ = Phase::reading;
      self->set_deadline(self->server_.limits.header_timeout);
      self->reader_.commit(n);
      self->on_progress(self->reader_.parse());
    });
  }

  void read_request() {
    phase_ = Phase::reading;
    socket_.async_read_some(reader_.prepare(), [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(error_code ec, std::size_t n) {
    const HttpLimits& limits = server_.limits;
    if (timed_out_) {
      if (reading_body_) return refuse({408, "request_timeout", "the request's body did not arrive within " + seconds_text(limits.body_timeout)});
      if (!reader_.got_some()) return close();  // never sent a byte
      return refuse({408, "request_timeout", "the request's header did not arrive within " + seconds_text(limits.header_timeout)});
    }
    if (ec || server_.stopping) return close();  // the client left, or the server is stopping
    reader_.commit(n);
    on_progress(reader_.parse());
  }

  void on_progress(RequestReader::Progress progress) {
    switch (progress) {
      case RequestReader::Progress::need_more:
        return read_request();
      case RequestReader::Progress::refused:
        return refuse(reader_.refusal());
      case RequestReader::Progress::complete:
        return dispatch();
      case RequestReader::Progress::header_done:
        return start_body();
    }
  }

  // The client this request counts as: the address a trusted proxy names, else the connection's.
  std::string request_client(const RequestReader::Request& header) const {
    if (server_.is_trusted_proxy(peer_))
      if (const auto forwarded = forwarded_for(header)) return client_key(*forwarded);
    return client_key(peer_);
  }

  // The header is in and the body is announced: its memory is taken from the budget before a
  // byte of it is read (F2), then it is read within body_timeout.
  void start_body() {
    const RequestReader::Request& header = reader_.header();
    request_client_ = request_client(header);
    BudgetHold hold(&server_.budget, request_client_);
    // A chunked body takes its chunks' memory as they are announced (RequestReader).
    const std::size_t announced = static_cast<std::size_t>(std::min<std::uint64_t>(reader_.content_length().value_or(0), server_.limits.max_body_bytes));
    if (!hold.take(announced + kAnswerAllowance))
      return refuse({503, "server_busy",
                     "the server is receiving or working on as much as its memory allows" +
                         std::string(server_.budget.per_client() > 0 ? " (or as much as one client may)" : "") + "; send this again in a moment",
                     {{"Retry-After", "1"}}});
    reader_.hold(std::move(hold));
    reading_body_ = true;
    set_deadline(server_.limits.body_timeout);
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()), [self = shared_from_this()](error_code ec, std::size_t) {
        if (ec || self->timed_out_) return self->close();
        self->on_progress(self->reader_.parse());
      });
    }
    on_progress(reader_.parse());
  }

  // The request is in, whole: the Router answers it here, or it is queued for a worker.
  void dispatch() {
    auto [message, hold] = reader_.take();
    hold_ = std::move(hold);
    reading_body_ = false;
    HttpRequest request;
    request.head = message.method() == http::verb::head;
    request.method = request.head ? "GET" : std::string(message.method_string());
    request.path = path_of(message.target());
    request.body = std::move(message.body());
    request.authorization = std::string(message[http::field::authorization]);
    request.content_type = std::string(message[http::field::content_type]);
    request.remote_address = request_client_.empty() ? request_client(message) : request_client_;
    request_client_.clear();
    log_method_ = std::string(message.method_string());
    log_path_ = request.path;
    keep_alive_ = message.keep_alive();
    head_ = request.head;
    started_ = Clock::now();
    phase_ = Phase::working;
    no_deadline();  // the time a request takes to work is the worker's, not the client's

    const std::string path = request.path, client = request.remote_address;
    Routed routed;
    try {
      routed = server_.route(request);
    } catch (...) {
      routed.answer = failure(path, std::current_exception());
    }
    if (routed.answer) return respond(std::move(*routed.answer));

    gone_ = std::make_shared<std::atomic<bool>>(false);
    WorkQueue::Job job;
    job.client = client;
    job.gone = gone_;
    // Told its turn once, on a worker: works, or answers 503 after too long a wait, or (the client
    // gone, the server stopping) closes. The connection moves back to the loop in every case.
    job.take_turn = [self = shared_from_this(), work = std::move(routed.work), path, &io = server_.io,
                     busy = asio::make_work_guard(server_.io)](WorkQueue::Turn turn) mutable {
      std::optional<HttpResponse> response;
      if (turn == WorkQueue::Turn::run) {
        try {
          response = work();
        } catch (...) {
          response = self->failure(path, std::current_exception());
        }
      } else if (turn == WorkQueue::Turn::expired) {
        response = self->server_.error(path, 503, "server_busy",
                                       "the server had too much work to start on this request within " +
                                           seconds_text(self->server_.limits.max_queue_wait) + "; send it again in a moment");
        response->headers.emplace_back("Retry-After", "1");
      }
      work = {};  // the request, its body with it, is freed here, before the answer is written
      asio::post(io, [self = std::move(self), response = std::move(response)]() mutable {
        if (response)
          self->respond(std::move(*response));
        else
          self->close();
      });
    };
    switch (server_.queue.push(job)) {
      case WorkQueue::Admission::queued:
        return watch_for_hang_up();
      case WorkQueue::Admission::stopped:
        return close();
      case WorkQueue::Admission::full:
      case WorkQueue::Admission::client_full: {
        HttpResponse busy = server_.error(path, 503, "server_busy", "the server has as much work waiting as it takes" +
                                                                        std::string(server_.queue.queued() < server_.limits.max_queued_requests ? " from one client" : "") +
                                                                        "; send this again in a moment");
        busy.headers.emplace_back("Retry-After", "1");
        keep_alive_ = false;
        return respond(std::move(busy));
      }
    }
  }

  // While its request waits or is worked on, a connection is watched: a client that hangs up
  // (end of stream, or a reset) is gone, and its queued work is dropped unrun (F3). Bytes that
  // arrive are a pipelined request: the client is there, and they wait for their turn.
  void watch_for_hang_up() {
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
      if (ec || self->phase_ != Phase::working) return;
      char byte = 0;
      const ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->watch_for_hang_up();
      self->close();  // marks the job gone, and frees the descriptor now
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

  // A refusal: the error, then (unless it says the connection may stay) Connection: close and a
  // lingering close. The request's path, when its line was read, picks the error's shape.
  void refuse(const Refusal& refusal) {
    const std::string path = reader_.target().empty() ? "" : path_of(reader_.target());
    HttpResponse answer = server_.error(path, refusal.status, refusal.code, refusal.message);
    for (const auto& header : refusal.headers) answer.headers.push_back(header);
    log_method_ = reader_.target().empty() ? "" : std::string(reader_.header().method_string());
    log_path_ = path;
    head_ = false;
    if (refusal.close) {
      keep_alive_ = false;
      started_.reset();
    } else {
      keep_alive_ = reader_.header().keep_alive();
      started_ = Clock::now();
      reader_.take();  // nothing to keep: the next bytes are the next request
    }
    reading_body_ = false;
    response_ = http_response(std::move(answer));
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
      self->hold_.release();
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
    // One buffer for every lingering connection: what is read into it is never looked at.
    static std::array<char, 65536> dropped;
    socket_.async_read_some(asio::buffer(dropped), [self = shared_from_this()](error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerBodies * self->server_.limits.max_body_bytes) return self->close();  // the client closed (EOF), the linger time is up, or it will not stop
      self->drop_what_arrives();
    });
  }

  HttpServer::Impl& server_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  bool refused_;
  const std::string client_;  // what its connection counts under
  asio::ip::address peer_;
  RequestReader reader_;
  bool timed_out_ = false, reading_body_ = false;
  Phase phase_ = Phase::reading;
  std::string request_client_;  // of the request being read, once its header is in
  BudgetHold hold_;             // the memory of the request being answered
  std::shared_ptr<std::atomic<bool>> gone_;  // of the job queued for it
  http::response<http::string_body> response_;
  bool keep_alive_ = false, head_ = false;
  std::string log_method_, log_path_;
  std::optional<Clock::time_point> started_;
  std::size_t lingered_ = 0;  // bytes dropped while closing
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
    const asio::ip::address peer = socket.remote_endpoint(ignored).address();
    const std::string client = is_trusted_proxy(peer) ? "" : client_key(peer);
    const auto held = connections_by_client.find(client);
    const bool over_share = !client.empty() && held != connections_by_client.end() && held->second >= client_connection_cap;
    if (serving < connection_cap && !over_share) {
      std::make_shared<Connection>(*this, std::move(socket), false, client)->serve();
    } else if (refusing < kRefusalsAtOnce) {
      std::make_shared<Connection>(*this, std::move(socket), true, client)->refuse_over_cap(over_share);
    } else {
      socket.close(ignored);
    }
    accept_next();
  });
}

// Stops accepting, closes every connection with no request to answer, drops the queued work (its
// connections close), and lets the requests being worked on be answered for stop_grace; then
// closes what is left, so the loop ends whatever the clients do.
void HttpServer::Impl::shut_down() {
  stopping = true;
  error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  for (Connection* connection : connections) connection->server_stopping();
  queue.stop();
  if (connections.empty()) return;
  stop_deadline.expires_after(limits.stop_grace);
  stop_deadline.async_wait([this](error_code ec) {
    if (ec) return;
    std::vector<std::shared_ptr<Connection>> left;
    for (Connection* connection : connections) left.push_back(connection->shared_from_this());
    for (const auto& connection : left) connection->close();
  });
}

HttpServer::HttpServer(HttpLimits limits, Router route, ErrorWriter error, std::FILE* log)
    : impl_(std::make_unique<Impl>(limits, std::move(route), std::move(error), log)) {}

HttpServer::~HttpServer() {
  // Whatever run() left (it may never have run): workers first, then the loop's handlers.
  impl_->queue.stop();
  impl_->queue.join();
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
std::size_t HttpServer::max_client_connections() const { return impl_->client_connection_cap; }

}  // namespace digits::server
