// Reading one HTTP/1.1 request from a connection's bytes, under the server's limits: no sockets,
// no timers, only bytes in and a verdict out, so that every framing case can be unit-tested and
// the whole reader fuzzed (fuzz/fuzz_http.cpp). http_server.cpp moves the bytes and keeps the
// deadlines; this decides what they mean.
//
// Every byte a client sends counts against a limit, whatever the framing (issue 19, F1 and F6):
//   - the request line and header fields: max_request_line_bytes (414), max_header_bytes (431);
//   - the body: Content-Length over max_body_bytes is refused before a byte of it is read (413);
//     a chunked body's data is counted as it comes, against the same limit (413);
//   - chunked framing: each chunk-size line, with its extensions, and the trailer must fit in the
//     read buffer, whose limit is max_header_bytes; all chunk extensions together too; and
//     everything read after the header (data, size lines, extensions, trailer) in max_body_bytes +
//     max_header_bytes (413, or 431 for framing). Before, a chunk-size line that never ended was
//     buffered without bound: 5.35 GB from one connection in 9 s;
//   - a Transfer-Encoding whose last coding is not chunked leaves the body's length unknown: 400,
//     and the connection is closed (RFC 9112 §6.3), never read on as a next request (a desync);
//     another coding before chunked (gzip, chunked) is one we do not implement: 501;
//   - the body's memory is taken from the server's MemoryBudget before it is read (503 when full).
// A refusal says whether the connection must close: all do except 411, after which the next
// request's bytes are unambiguous (no length and no chunking means no body).
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/http_server.hpp"
#include "server/memory_budget.hpp"

namespace digits::server {

// Why a request is refused, for the ErrorWriter: status, stable code, message for people.
struct Refusal {
  Refusal() = default;
  Refusal(int status, std::string code, std::string message, std::vector<std::pair<std::string, std::string>> headers = {}, bool close = true)
      : status(status), code(std::move(code)), message(std::move(message)), headers(std::move(headers)), close(close) {}
  int status = 400;
  std::string code, message;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Retry-After
  bool close = true;
};

class RequestReader {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  explicit RequestReader(const HttpLimits& limits);

  enum class Progress {
    need_more,    // read more bytes into prepare(), then commit() and parse() again
    header_done,  // the header is in and passed every check: see header(); hold() the budget, then parse() on
    complete,     // the request is in, whole: take() it
    refused,      // see refusal(); the connection answers it (and closes if it says so)
  };

  // Where the next bytes from the socket go: at most `most` bytes, fewer when the read buffer is
  // nearly full (it never grows past its limit).
  boost::beast::flat_buffer::mutable_buffers_type prepare(std::size_t most = 16384);
  void commit(std::size_t bytes);
  // Parses what has been committed, as far as it goes.
  Progress parse();
  // For tests and the fuzzer: commits bytes from the front of `bytes` (removing them from it) and
  // parses, until there is a verdict other than need_more or `bytes` is empty.
  Progress feed(std::string_view& bytes);

  // After header_done: the memory the body and its answer take. Chunked bodies take more of it
  // from this hold as each chunk is announced; a chunk that does not fit is refused (503).
  void hold(BudgetHold hold) { hold_ = std::move(hold); }

  const Request& header() const { return parser_->get(); }
  // The header's Content-Length, once the header is in; nothing for a chunked body.
  std::optional<std::uint64_t> content_length() const {
    const auto length = parser_->content_length();
    return length ? std::optional<std::uint64_t>(*length) : std::nullopt;
  }
  bool header_done() const { return parser_->is_header_done(); }
  // True once any byte of the request has been committed (for a timeout: 408 or silent close).
  bool got_some() const { return started_; }
  const Refusal& refusal() const { return refusal_; }
  // The request line's target as sent, once the line is complete; empty before.
  std::string_view target() const { return parser_->get().target(); }

  // After complete: the request and the budget it holds. The reader is then ready for the next
  // request on the connection, starting with any bytes already buffered (pipelining).
  std::pair<Request, BudgetHold> take();
  // Bytes received and not yet parsed (a pipelined next request).
  std::size_t buffered() const { return buffer_.size(); }
  // An idle connection gives back the memory of a large read.
  void shrink() { buffer_.shrink_to_fit(); }

  // The read buffer's limit: the largest header, chunk-size line or trailer that can arrive.
  std::size_t buffer_limit() const { return buffer_.max_size(); }

 private:
  Progress refuse(int status, std::string code, std::string message, bool close = true);
  Progress check_header();
  Progress refuse_parse_error(const boost::system::error_code& ec);
  void reset();

  const HttpLimits limits_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  // Beast calls this for each chunk-size line: extensions and the body's memory are counted here.
  std::function<void(std::uint64_t, std::string_view, boost::system::error_code&)> on_chunk_;
  BudgetHold hold_;
  Refusal refusal_;
  bool started_ = false, header_checked_ = false, refused_ = false;
  std::size_t header_bytes_ = 0;     // the request line and header fields parsed so far
  std::size_t body_wire_bytes_ = 0;  // everything parsed after the header
  std::size_t extension_bytes_ = 0;
  std::optional<Refusal> chunk_refusal_;  // set by on_chunk_ when it stops the parser
};

}  // namespace digits::server
