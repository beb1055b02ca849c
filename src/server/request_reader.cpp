#include "server/request_reader.hpp"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <limits>

namespace digits::server {

namespace http = boost::beast::http;
using boost::system::error_code;

namespace {

// The codings of every Transfer-Encoding field, in order, lower-cased: "gzip, Chunked" → {gzip, chunked}.
std::vector<std::string> transfer_codings(const RequestReader::Request& header) {
  std::vector<std::string> codings;
  const auto [first, last] = header.equal_range(http::field::transfer_encoding);
  for (auto field = first; field != last; ++field) {
    const std::string_view value = field->value();
    std::size_t start = 0;
    while (start <= value.size()) {
      const std::size_t end = std::min(value.find(',', start), value.size());
      std::string coding(value.substr(start, end - start));
      std::erase_if(coding, [](char c) { return c == ' ' || c == '\t'; });
      std::transform(coding.begin(), coding.end(), coding.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!coding.empty()) codings.push_back(std::move(coding));
      start = end + 1;
    }
  }
  return codings;
}

}  // namespace

RequestReader::RequestReader(const HttpLimits& limits) : limits_(limits), buffer_(limits.max_header_bytes) {
  on_chunk_ = [this](std::uint64_t size, std::string_view extensions, error_code& ec) {
    extension_bytes_ += extensions.size();
    if (extension_bytes_ > limits_.max_header_bytes) {
      chunk_refusal_ = Refusal{431, "header_too_large",
                               "the chunk extensions add up to more than the header limit of " + std::to_string(limits_.max_header_bytes) + " bytes"};
      ec = http::error::bad_chunk_extension;
      return;
    }
    // A string that grows by appending may hold twice what it has received: each chunk takes
    // twice its size from the budget.
    if (size > 0 && !hold_.take(2 * size)) {
      chunk_refusal_ = Refusal{503, "server_busy", "the server is receiving as much as its memory allows; send this again in a moment"};
      ec = http::error::body_limit;
    }
  };
  reset();
}

void RequestReader::reset() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
  parser_->body_limit(limits_.max_body_bytes);
  parser_->on_chunk_header(on_chunk_);
  refusal_ = {};
  started_ = buffer_.size() > 0;
  header_checked_ = refused_ = false;
  header_bytes_ = body_wire_bytes_ = extension_bytes_ = 0;
  chunk_refusal_.reset();
  hold_ = {};
}

boost::beast::flat_buffer::mutable_buffers_type RequestReader::prepare(std::size_t most) {
  return buffer_.prepare(std::min(most, buffer_.max_size() - buffer_.size()));
}

void RequestReader::commit(std::size_t bytes) {
  buffer_.commit(bytes);
  if (bytes > 0) started_ = true;
}

RequestReader::Progress RequestReader::feed(std::string_view& bytes) {
  for (;;) {
    const std::size_t room = std::min(bytes.size(), buffer_.max_size() - buffer_.size());
    const auto space = prepare(room);
    std::copy_n(bytes.data(), room, static_cast<char*>(space.data()));
    commit(room);
    bytes.remove_prefix(room);
    const Progress progress = parse();
    if (progress != Progress::need_more || bytes.empty()) return progress;
  }
}

RequestReader::Progress RequestReader::parse() {
  if (refused_) return Progress::refused;
  for (;;) {
    if (header_checked_ && parser_->is_done()) return Progress::complete;
    if (buffer_.size() == 0) return Progress::need_more;
    error_code ec;
    const std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    // Beast consumes header fields one by one and bounds only what waits unparsed: the header's
    // limit is the reader's to keep, over everything the header has taken so far.
    (header_checked_ ? body_wire_bytes_ : header_bytes_) += used;
    if (!header_checked_ && header_bytes_ + (parser_->is_header_done() ? 0 : buffer_.size()) > limits_.max_header_bytes) {
      if (parser_->get().target().empty())
        return refuse(414, "uri_too_long", "the request line is longer than the limit of " + std::to_string(limits_.max_request_line_bytes) + " bytes");
      return refuse(431, "header_too_large", "the request's header fields are larger than the limit of " + std::to_string(limits_.max_header_bytes) + " bytes");
    }
    if (chunk_refusal_) return refuse(chunk_refusal_->status, chunk_refusal_->code, chunk_refusal_->message);
    if (ec == http::error::need_more) {
      // The buffer holds only what is not parsed yet: full, it holds one line that never ends.
      if (buffer_.size() >= buffer_.max_size()) {
        if (!parser_->is_header_done())
          return refuse(431, "header_too_large", "the request's header fields are larger than the limit of " + std::to_string(limits_.max_header_bytes) + " bytes");
        return refuse(431, "header_too_large",
                      "a chunk-size line or the trailer of the chunked body is longer than " + std::to_string(buffer_.max_size()) + " bytes");
      }
      return Progress::need_more;
    }
    if (ec) return refuse_parse_error(ec);
    if (body_wire_bytes_ > limits_.max_body_bytes + limits_.max_header_bytes)
      return refuse(413, "payload_too_large",
                    "the chunked body's data and framing are larger than " + std::to_string(limits_.max_body_bytes + limits_.max_header_bytes) + " bytes");
    if (parser_->is_header_done() && !header_checked_) {
      header_checked_ = true;
      if (const Progress checked = check_header(); checked == Progress::refused) return checked;
      if (!parser_->is_done()) return Progress::header_done;
      continue;
    }
    // No progress and no error: never seen from Beast, but a loop that cannot advance must not spin.
    if (used == 0) {
      if (buffer_.size() >= buffer_.max_size()) return refuse(400, "bad_request", "the request is not valid HTTP");
      return Progress::need_more;
    }
  }
}

RequestReader::Progress RequestReader::check_header() {
  const Request& request = parser_->get();
  if (request.method_string().size() + request.target().size() + 10 > limits_.max_request_line_bytes)
    return refuse(414, "uri_too_long", "the request line is longer than the limit of " + std::to_string(limits_.max_request_line_bytes) + " bytes");

  // RFC 9112 §6.3: with a Transfer-Encoding whose last coding is not chunked, a request's body has
  // no length the server can know; answering and reading on would take the body for the next
  // request. Beast treats such a field as no framing at all, so it is checked here.
  const std::vector<std::string> codings = transfer_codings(request);
  if (!codings.empty()) {
    const auto chunked = std::count(codings.begin(), codings.end(), "chunked");
    if (codings.back() != "chunked" || chunked > 1)
      return refuse(400, "bad_transfer_encoding",
                    "Transfer-Encoding must end in chunked, once (RFC 9112 §6.1); without it the body's length cannot be known");
    if (codings.size() > 1) {
      std::string others;
      for (std::size_t i = 0; i + 1 < codings.size(); ++i) others += (others.empty() ? "" : ", ") + codings[i];
      return refuse(501, "not_implemented", "Transfer-Encoding " + others + " is not supported; send the body plain, with Content-Length or chunked");
    }
  }
  // A POST with neither Content-Length nor chunked has no body (RFC 9112 §6.3): say so at once
  // rather than let the client wonder why its data was ignored. The next bytes are a new request,
  // so the connection may stay open.
  if (request.method() == http::verb::post && !parser_->content_length() && !parser_->chunked())
    return refuse(411, "length_required", "a POST needs a body with a Content-Length (send {} for an empty one)", false);
  return Progress::header_done;
}

RequestReader::Progress RequestReader::refuse_parse_error(const error_code& ec) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    if (parser_->get().target().empty())
      return refuse(414, "uri_too_long", "the request line is longer than the limit of " + std::to_string(limits_.max_request_line_bytes) + " bytes");
    return refuse(431, "header_too_large", "the request's header fields are larger than the limit of " + std::to_string(limits_.max_header_bytes) + " bytes");
  }
  if (ec == http::error::body_limit)
    return refuse(413, "payload_too_large", "the request body is larger than the limit of " + std::to_string(limits_.max_body_bytes) + " bytes");
  return refuse(400, "bad_request", "the request is not valid HTTP (" + ec.message() + ")");
}

RequestReader::Progress RequestReader::refuse(int status, std::string code, std::string message, bool close) {
  refusal_ = Refusal{status, std::move(code), std::move(message), {}, close};
  if (status == 503) refusal_.headers.emplace_back("Retry-After", "1");
  refused_ = true;
  return Progress::refused;
}

std::pair<RequestReader::Request, BudgetHold> RequestReader::take() {
  std::pair<Request, BudgetHold> taken{parser_->release(), std::move(hold_)};
  reset();
  return taken;
}

}  // namespace digits::server
