// The HTTP request reader (src/server/request_reader.hpp): a connection's raw bytes, cut into reads
// at places the input chooses, through Beast's parser and every limit the server keeps. Small
// limits, so that each one is reached within the input sizes libFuzzer tries.
//
// Input: one byte of read size (1–256), then the bytes a client sends. What must hold, whatever
// the bytes: no crash or sanitizer report; the unparsed bytes never exceed the read buffer's limit;
// a complete request's body is within the body limit; a refusal is a 4xx or 501/503; and the
// memory the requests took from the budget is all given back.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "server/request_reader.hpp"

namespace {

using namespace digits::server;

HttpLimits fuzz_limits() {
  HttpLimits limits;
  limits.max_request_line_bytes = 256;
  limits.max_header_bytes = 1024;
  limits.max_body_bytes = 4096;
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t read_size = std::size_t{data[0]} + 1;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  static const HttpLimits limits = fuzz_limits();
  MemoryBudget budget(16384, 8192);
  {
    RequestReader reader(limits);
    using Progress = RequestReader::Progress;
    Progress progress = Progress::need_more;
    for (;;) {
      if (reader.buffered() > reader.buffer_limit()) __builtin_trap();
      if (progress == Progress::header_done) {
        // As the server does: the body's memory first (503 and close when it does not fit).
        BudgetHold hold(&budget, "client");
        if (!hold.take(static_cast<std::size_t>(reader.content_length().value_or(0)))) break;
        reader.hold(std::move(hold));
        progress = reader.parse();
      } else if (progress == Progress::complete) {
        auto [request, hold] = reader.take();
        if (request.body().size() > limits.max_body_bytes) __builtin_trap();
        progress = reader.parse();  // a pipelined request, if any
      } else if (progress == Progress::refused) {
        const Refusal& refusal = reader.refusal();
        if (!((refusal.status >= 400 && refusal.status <= 499) || refusal.status == 501 || refusal.status == 503)) __builtin_trap();
        if (refusal.close) break;
        reader.take();
        progress = reader.parse();
      } else {
        if (rest.empty()) break;
        std::string_view read = rest.substr(0, read_size);
        rest.remove_prefix(read.size());
        progress = reader.feed(read);
        // feed() stops at a verdict: what it did not take of this read goes back in front.
        rest = std::string_view(read.data(), read.size() + rest.size());
      }
    }
  }
  if (budget.used() != 0) __builtin_trap();  // every request gave its memory back
  return 0;
}
