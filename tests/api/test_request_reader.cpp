// RequestReader (src/server/request_reader.hpp): every framing case, byte by byte where it
// matters, with no sockets. The limits are small here so that each case is cheap; the server's
// own are in HttpLimits. What a client meets over a socket is test_http_limits.cpp's business.
#include "server/request_reader.hpp"

#include <gtest/gtest.h>

#include <string>

namespace digits::server {
namespace {

using Progress = RequestReader::Progress;

HttpLimits small_limits() {
  HttpLimits limits;
  limits.max_request_line_bytes = 256;
  limits.max_header_bytes = 1024;
  limits.max_body_bytes = 4096;
  return limits;
}

// Feeds `bytes` one at a time, as the slowest client would: the verdict must not depend on how
// the bytes are cut.
Progress feed_bytewise(RequestReader& reader, std::string_view bytes) {
  Progress progress = Progress::need_more;
  for (char c : bytes) {
    std::string_view one(&c, 1);
    progress = reader.feed(one);
    while (progress == Progress::header_done) progress = reader.parse();
    if (progress != Progress::need_more) return progress;
  }
  return progress;
}

// Feeds everything at once, going on after header_done.
Progress feed_whole(RequestReader& reader, std::string_view bytes) {
  Progress progress = reader.feed(bytes);
  while (progress == Progress::header_done) progress = reader.feed(bytes);
  return progress;
}

std::string chunked_post(const std::string& chunks) {
  return "POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks;
}

TEST(RequestReader, ReadsAGetAndAPostWhicheverWayTheBytesAreCut) {
  const std::string get = "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string post = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"a\": true}";
  for (const bool bytewise : {false, true}) {
    RequestReader reader(small_limits());
    EXPECT_EQ(bytewise ? feed_bytewise(reader, get) : feed_whole(reader, get), Progress::complete);
    EXPECT_EQ(reader.take().first.target(), "/api/health");
    EXPECT_EQ(bytewise ? feed_bytewise(reader, post) : feed_whole(reader, post), Progress::complete);
    EXPECT_EQ(reader.take().first.body(), "{\"a\": true}");
  }
}

TEST(RequestReader, StopsAtTheHeaderOfABodySoTheServerCanTakeItsMemoryFirst) {
  RequestReader reader(small_limits());
  std::string_view bytes = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
  EXPECT_EQ(reader.feed(bytes), Progress::header_done);
  EXPECT_EQ(reader.content_length(), 4u);
  EXPECT_EQ(reader.parse(), Progress::complete);
  EXPECT_EQ(reader.take().first.body(), "body");
}

TEST(RequestReader, KeepsAPipelinedRequestForItsTurn) {
  RequestReader reader(small_limits());
  EXPECT_EQ(feed_whole(reader, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"), Progress::complete);
  EXPECT_EQ(reader.take().first.target(), "/a");
  EXPECT_GT(reader.buffered(), 0u);
  EXPECT_EQ(reader.parse(), Progress::complete);
  EXPECT_EQ(reader.take().first.target(), "/b");
}

TEST(RequestReader, ReadsAChunkedBody) {
  for (const bool bytewise : {false, true}) {
    RequestReader reader(small_limits());
    const std::string request = chunked_post("4;name=value\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n");
    EXPECT_EQ(bytewise ? feed_bytewise(reader, request) : feed_whole(reader, request), Progress::complete);
    EXPECT_EQ(reader.take().first.body(), "abcdefg");
  }
}

void expect_refused(RequestReader& reader, Progress progress, int status, const std::string& code) {
  ASSERT_EQ(progress, Progress::refused);
  EXPECT_EQ(reader.refusal().status, status) << reader.refusal().message;
  EXPECT_EQ(reader.refusal().code, code) << reader.refusal().message;
  EXPECT_TRUE(reader.refusal().close);
  EXPECT_LE(reader.buffered(), reader.buffer_limit());
}

// F1: a chunk-size line that never ends was buffered without bound (5.35 GB from one connection).
// Now it stops at the read buffer's limit, however much more comes.
TEST(RequestReader, RefusesAChunkSizeLineThatNeverEnds) {
  const std::string endless_extension = chunked_post("1;" + std::string(1 << 20, 'a'));
  const std::string endless_zeros = chunked_post(std::string(1 << 20, '0'));
  for (const std::string* request : {&endless_extension, &endless_zeros}) {
    RequestReader reader(small_limits());
    expect_refused(reader, feed_whole(reader, *request), 431, "header_too_large");
  }
}

TEST(RequestReader, RefusesATrailerThatNeverEnds) {
  RequestReader reader(small_limits());
  expect_refused(reader, feed_whole(reader, chunked_post("1\r\na\r\n0\r\nX-Trailer: " + std::string(1 << 20, 't'))), 431, "header_too_large");
  RequestReader many_fields(small_limits());
  std::string fields;
  for (int i = 0; i < 200; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  expect_refused(many_fields, feed_whole(many_fields, chunked_post("1\r\na\r\n0\r\n" + fields + "\r\n")), 431, "header_too_large");
}

TEST(RequestReader, CountsEveryChunkExtensionAgainstTheHeaderLimit) {
  std::string chunks;
  for (int i = 0; i < 40; ++i) chunks += "1;" + std::string(100, 'e') + "\r\na\r\n";  // each line fits; together 4 KB of extensions
  RequestReader reader(small_limits());
  expect_refused(reader, feed_whole(reader, chunked_post(chunks)), 431, "header_too_large");
}

TEST(RequestReader, CountsChunkDataAgainstTheBodyLimit) {
  RequestReader reader(small_limits());
  expect_refused(reader, feed_whole(reader, chunked_post("800\r\n" + std::string(0x800, 'a') + "\r\n800\r\n" + std::string(0x800, 'a') + "\r\n1\r\n")), 413,
                 "payload_too_large");
}

TEST(RequestReader, CountsChunkFramingAgainstTheBodyAndHeaderLimits) {
  // One byte a chunk: 4,096 bytes of data fit the body limit, but 6 bytes on the wire for each do not.
  std::string chunks;
  for (int i = 0; i < 1500; ++i) chunks += "1\r\na\r\n";
  RequestReader reader(small_limits());
  expect_refused(reader, feed_whole(reader, chunked_post(chunks)), 413, "payload_too_large");
}

TEST(RequestReader, RefusesAContentLengthOverTheLimitBeforeTheBody) {
  RequestReader reader(small_limits());
  expect_refused(reader, feed_whole(reader, "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n"), 413, "payload_too_large");
}

// F6: a Transfer-Encoding that does not end in chunked was answered 411 with the connection kept,
// and its body then read as a second request (a desync). RFC 9112 §6.1: 400, and close.
TEST(RequestReader, RefusesATransferEncodingThatDoesNotEndInChunkedAndCloses) {
  for (const char* coding : {"xchunked", "identity", "chunked, gzip", "gzip", "chunked, chunked"}) {
    RequestReader reader(small_limits());
    const std::string request = "POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + std::string(coding) +
                                "\r\n\r\nGET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_refused(reader, feed_whole(reader, request), 400, "bad_transfer_encoding");
  }
}

TEST(RequestReader, RefusesCodingsItDoesNotImplement) {
  RequestReader reader(small_limits());
  expect_refused(reader, feed_whole(reader, chunked_post("").replace(chunked_post("").find("chunked"), 7, "gzip, chunked") + "1\r\na\r\n0\r\n\r\n"), 501,
                 "not_implemented");
}

TEST(RequestReader, RefusesAContentLengthBesideChunked) {
  RequestReader reader(small_limits());
  const Progress progress =
      feed_whole(reader, "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nabcde\r\n0\r\n\r\n");
  expect_refused(reader, progress, 400, "bad_request");
}

TEST(RequestReader, AnswersAPostWithoutALength411AndKeepsTheConnection) {
  RequestReader reader(small_limits());
  ASSERT_EQ(feed_whole(reader, "POST /api/predict HTTP/1.1\r\nHost: x\r\n\r\n"), Progress::refused);
  EXPECT_EQ(reader.refusal().status, 411);
  EXPECT_FALSE(reader.refusal().close);
}

TEST(RequestReader, RefusesLongRequestLinesAndHeaders) {
  RequestReader line(small_limits());
  expect_refused(line, feed_whole(line, "GET /" + std::string(300, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n"), 414, "uri_too_long");
  RequestReader endless_line(small_limits());
  expect_refused(endless_line, feed_whole(endless_line, "GET /" + std::string(1 << 20, 'p')), 414, "uri_too_long");
  RequestReader header(small_limits());
  expect_refused(header, feed_whole(header, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'b') + "\r\n\r\n"), 431, "header_too_large");
  RequestReader endless_header(small_limits());
  expect_refused(endless_header, feed_whole(endless_header, "GET / HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'b')), 431, "header_too_large");
  RequestReader many(small_limits());
  std::string fields;
  for (int i = 0; i < 30; ++i) fields += "X-Filler-" + std::to_string(i) + ": " + std::string(60, 'a') + "\r\n";
  expect_refused(many, feed_whole(many, "GET / HTTP/1.1\r\n" + fields + "\r\n"), 431, "header_too_large");
}

TEST(RequestReader, RefusesBytesThatAreNotHttp) {
  RequestReader reader(small_limits());
  expect_refused(reader, feed_whole(reader, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"), 400, "bad_request");
}

// F2: a chunked body takes its memory from the budget as its chunks are announced.
TEST(RequestReader, TakesAChunkedBodysMemoryFromTheBudgetAndStopsWhenItIsSpent) {
  MemoryBudget budget(3000, 0);
  RequestReader reader(small_limits());
  const std::string request = chunked_post("");
  std::string_view header = request;
  ASSERT_EQ(reader.feed(header), Progress::header_done);
  BudgetHold hold(&budget, "client");
  reader.hold(std::move(hold));
  EXPECT_EQ(feed_whole(reader, "200\r\n" + std::string(0x200, 'a') + "\r\n"), Progress::need_more);
  EXPECT_EQ(budget.used(), 2u * 0x200);
  expect_refused(reader, feed_whole(reader, "400\r\n" + std::string(0x400, 'a') + "\r\n"), 503, "server_busy");
  reader.take();
  EXPECT_EQ(budget.used(), 0u) << "a refused request gives its memory back";
}

TEST(MemoryBudget, HoldsEachClientToItsShareAndTheWholeToTheTotal) {
  MemoryBudget budget(1000, 400);
  BudgetHold a(&budget, "a"), b(&budget, "b"), c(&budget, "c");
  EXPECT_TRUE(a.take(400));
  EXPECT_FALSE(a.take(1)) << "a client's share";
  EXPECT_TRUE(b.take(400));
  EXPECT_FALSE(c.take(201)) << "the whole";
  EXPECT_TRUE(c.take(200));
  a.release();
  EXPECT_TRUE(c.take(200));
  EXPECT_EQ(budget.used(), 800u);
}

}  // namespace
}  // namespace digits::server
