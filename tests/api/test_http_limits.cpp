// The HTTP layer's limits (src/server/http_server.cpp), over raw sockets: each limit is refused
// the way docs/api.md says, and clients that stall or hoard connections never stop the server
// answering others. Behaviour only; how fast it answers under abuse is bench/abuse's business.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_support.hpp"
#include "raw_client.hpp"

// After Eigen: httplib.h brings in <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>

namespace digits {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace api_testing;

// A client of `live`, which answers within 10 s.
httplib::Client client_of(const ModelServer& live) {
  httplib::Client client("127.0.0.1", live.port());
  client.set_read_timeout(10, 0);
  return client;
}

const std::string kHealth = "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";

TEST(HttpLimits, ConnectionsBeyondTheCapGet503AndAreClosed) {
  server::HttpLimits limits;
  limits.max_connections = 3;
  limits.keep_alive_timeout = 60s;  // the three keep their places for the whole test
  ModelServer live(limits);
  // Three clients, each answered once, so the server has surely accepted and counted them.
  std::vector<std::unique_ptr<RawClient>> holders;
  for (int i = 0; i < 3; ++i) {
    holders.push_back(std::make_unique<RawClient>(live.port()));
    ASSERT_TRUE(holders.back()->send(kHealth));
    ASSERT_TRUE(holders.back()->read_response().starts_with("HTTP/1.1 200")) << i;
  }
  RawClient fourth(live.port());
  ASSERT_TRUE(fourth.connected());
  const std::string refusal = fourth.read_until_closed();
  EXPECT_TRUE(refusal.starts_with("HTTP/1.1 503")) << refusal;
  EXPECT_NE(refusal.find("Connection: close"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("Retry-After: 1"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("Content-Type: application/json"), std::string::npos) << refusal;
  EXPECT_EQ(body_of(refusal)["error"]["code"], "too_many_connections") << refusal;
  EXPECT_TRUE(fourth.closed()) << "the refused connection is closed";
  // The three are still served, and once one leaves a newcomer is.
  ASSERT_TRUE(holders[0]->send(kHealth));
  EXPECT_TRUE(holders[0]->read_response().starts_with("HTTP/1.1 200"));
  holders.pop_back();
  std::string answer;
  for (int attempt = 0; attempt < 100 && !answer.starts_with("HTTP/1.1 200"); ++attempt) {
    std::this_thread::sleep_for(20ms);  // until the server has seen the departure
    RawClient newcomer(live.port());
    newcomer.send(kHealth);
    answer = newcomer.read_response();
  }
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
}

TEST(HttpLimits, AHeaderThatNeverCompletesIsAnswered408AndClosed) {
  server::HttpLimits limits;
  limits.header_timeout = 300ms;
  ModelServer live(limits);
  RawClient half(live.port());
  ASSERT_TRUE(half.send("GET /api/health HTTP/1.1\r\nHost: x\r\nUser-Ag"));
  const std::string answer = half.read_until_closed();
  EXPECT_TRUE(half.closed());
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 408")) << answer;
  EXPECT_EQ(body_of(answer)["error"]["code"], "request_timeout") << answer;
  EXPECT_NE(body_of(answer)["error"]["message"].get<std::string>().find("0.3 s"), std::string::npos) << answer;

  // A client that connects and says nothing is closed too, without an answer.
  RawClient silent(live.port());
  EXPECT_EQ(silent.read_until_closed(), "");
  EXPECT_TRUE(silent.closed());
}

TEST(HttpLimits, TricklingAHeaderDoesNotBuyMoreTime) {
  server::HttpLimits limits;
  limits.header_timeout = 500ms;
  ModelServer live(limits);
  RawClient trickler(live.port());
  ASSERT_TRUE(trickler.send("GET /api/health HTTP/1.1\r\n"));
  // One header byte every 20 ms, for up to 10 s: far longer than the limit, never a pause in it.
  std::string answer;
  for (int i = 0; i < 500 && !trickler.closed(); ++i) {
    if (!trickler.send("X")) break;
    answer += trickler.read_until_closed(20ms);
  }
  EXPECT_TRUE(trickler.closed()) << "the server kept a trickling client for 10 s";
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 408")) << answer;
}

TEST(HttpLimits, OversizedHeaderIs431) {
  ModelServer live(server::HttpLimits{});
  std::string request = "GET /api/health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 20; ++i) request += "X-Filler-" + std::to_string(i) + ": " + std::string(1000, 'a') + "\r\n";
  request += "\r\n";
  RawClient client(live.port());
  ASSERT_TRUE(client.send(request));
  const std::string answer = client.read_until_closed();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 431")) << answer.substr(0, 200);
  EXPECT_EQ(body_of(answer)["error"]["code"], "header_too_large") << answer;
  EXPECT_TRUE(client.closed());
  // On a v2 path, the Open Inference Protocol's shape.
  RawClient v2(live.port());
  ASSERT_TRUE(v2.send("GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20'000, 'b') + "\r\n\r\n"));
  const json v2_body = body_of(v2.read_until_closed());
  ASSERT_TRUE(v2_body.contains("error") && v2_body["error"].is_string()) << v2_body;
  // A header just under the limit is fine.
  RawClient fits(live.port());
  ASSERT_TRUE(fits.send("GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(15'000, 'c') + "\r\n\r\n"));
  EXPECT_TRUE(fits.read_response().starts_with("HTTP/1.1 200"));
}

TEST(HttpLimits, LongRequestLineIs414) {
  ModelServer live(server::HttpLimits{});
  // Over the request-line limit (8 KiB), and over the whole header's (16 KiB): both 414.
  for (std::size_t length : {9'000u, 40'000u}) {
    RawClient client(live.port());
    ASSERT_TRUE(client.send("GET /api/" + std::string(length, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string answer = client.read_until_closed();
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 414")) << length << ": " << answer.substr(0, 200);
    EXPECT_EQ(body_of(answer)["error"]["code"], "uri_too_long") << length;
    EXPECT_TRUE(client.closed()) << length;
  }
  // A long query under the limit is served.
  RawClient fits(live.port());
  ASSERT_TRUE(fits.send("GET /api/health?" + std::string(7'000, 'q') + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(fits.read_response().starts_with("HTTP/1.1 200"));
}

TEST(HttpLimits, BodiesOverTheLimitAreRefusedBeforeTheyAreRead) {
  server::HttpLimits limits;
  limits.max_body_bytes = 1000;
  ModelServer live(limits);
  // A Content-Length over the limit: answered without waiting for the body.
  RawClient declared(live.port());
  ASSERT_TRUE(declared.send("POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"));
  const std::string answer = declared.read_response();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 413")) << answer;
  EXPECT_NE(body_of(answer)["error"]["message"].get<std::string>().find("limit of 1000 bytes"), std::string::npos) << answer;
  // A chunked body that grows past it.
  RawClient chunked(live.port());
  ASSERT_TRUE(chunked.send("POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + std::string(1024, ' ') +
                           "\r\n400\r\n" + std::string(1024, ' ') + "\r\n0\r\n\r\n"));
  const std::string chunked_answer = chunked.read_response();
  EXPECT_TRUE(chunked_answer.starts_with("HTTP/1.1 413")) << chunked_answer;
  EXPECT_TRUE(body_of(chunked_answer)["error"].is_string()) << chunked_answer;
}

TEST(HttpLimits, HeadSendsGetsHeadersWithoutTheBody) {
  ModelServer live(server::HttpLimits{});
  auto get = client_of(live).Get("/app.js");
  ASSERT_TRUE(get);
  RawClient head(live.port());
  ASSERT_TRUE(head.send("HEAD /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string answer = head.read_until_closed();
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_NE(answer.find("Content-Length: " + std::to_string(get->body.size()) + "\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Content-Security-Policy: "), std::string::npos) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\n")) << "no body after a HEAD's header";
}

TEST(HttpLimits, HealthAndPredictionsAreAnsweredWhileManyClientsStallOrIdle) {
  ModelServer live(server::HttpLimits{});
  std::vector<std::unique_ptr<RawClient>> hoarders;
  // The 64 half headers, idle connections, and bodies promised and never sent: together
  // more than the old server's 16 threads, and more than the worker pool.
  for (int i = 0; i < 64; ++i) {
    hoarders.push_back(std::make_unique<RawClient>(live.port()));
    ASSERT_TRUE(hoarders.back()->send("GET /api/health HTTP/1.1\r\nHost: x\r\n"));
  }
  for (int i = 0; i < 200; ++i) hoarders.push_back(std::make_unique<RawClient>(live.port()));
  for (int i = 0; i < 32; ++i) {
    hoarders.push_back(std::make_unique<RawClient>(live.port()));
    ASSERT_TRUE(hoarders.back()->send("POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"ima"));
  }
  for (const auto& hoarder : hoarders) ASSERT_TRUE(hoarder->connected());
  httplib::Client client = client_of(live);
  client.set_read_timeout(5, 0);  // the old server took 28 s here
  auto health = client.Get("/api/health");
  ASSERT_TRUE(health) << "no answer to GET /api/health";
  EXPECT_EQ(health->status, 200);
  auto predicted = client.Post("/api/predict", json{{"image", png_data_url(drawing(7))}}.dump(), "application/json");
  ASSERT_TRUE(predicted) << "no answer to POST /api/predict";
  EXPECT_EQ(predicted->status, 200) << predicted->body;
  EXPECT_EQ(json::parse(predicted->body)["digit"], 7);
}

TEST(HttpLimits, StopClosesStalledClientsAndReturns) {
  server::HttpLimits limits;
  auto live = std::make_unique<ModelServer>(limits);
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 20; ++i) {
    stalled.push_back(std::make_unique<RawClient>(live->port()));
    stalled.back()->send(i % 2 ? "GET /api/he" : "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{");
  }
  std::this_thread::sleep_for(100ms);
  live.reset();  // stop() and join(): returns although no stalled client ever finishes
  for (const auto& client : stalled) {
    client->read_until_closed(2s);
    EXPECT_TRUE(client->closed());
  }
}

}  // namespace
}  // namespace digits
