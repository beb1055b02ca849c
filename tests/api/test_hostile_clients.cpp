// Issue 19's findings against the HTTP layer, each as an attacker sent it, over real sockets:
// F1 (chunked framing without bounds), F2 (bodies in flight without a bound for the whole server),
// F3 (a queue without bounds, fairness or cancellation, and a stop that waited for all of it), F6
// (a Transfer-Encoding that desynchronised requests) and F8 (one address taking every connection).
// Each test failed on 0888334. Behaviour only; the attacks' cost in memory and time is measured
// by bench/abuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_support.hpp"
#include "raw_client.hpp"
#include "server/http_server.hpp"

namespace digits {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace api_testing;

std::string predict_request(const json& body) {
  const std::string text = body.dump();
  return "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
}

int status_of(const std::string& response) { return response.size() >= 12 ? std::atoi(response.substr(9, 3).c_str()) : 0; }

// F1: a chunk-size line that never ends was buffered without bound (5.35 GB from one connection in
// 9 s), and only a 408 came, at 30 s.
TEST(HostileClients, AChunkSizeLineThatNeverEndsIsRefusedAtOnce) {
  ModelServer live{server::HttpLimits{}};
  for (const std::string& endless : {std::string("1;") + std::string(16384, 'e'), std::string(16384, '0')}) {
    RawClient attacker(live.port());
    ASSERT_TRUE(attacker.send("POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
    std::string answer;
    for (int i = 0; i < 64 && !attacker.closed(); ++i) {  // up to 1 MiB, stopping once the server has closed
      if (!attacker.send(endless)) break;
      answer += attacker.read_until_closed(20ms);
    }
    answer += attacker.read_until_closed(5s);
    EXPECT_EQ(status_of(answer), 431) << answer.substr(0, 300);
    EXPECT_EQ(body_of(answer)["error"]["code"], "header_too_large") << answer.substr(0, 300);
    EXPECT_TRUE(attacker.closed());
  }
}

// F6: `Transfer-Encoding: xchunked` was answered 411 with the connection kept open, and the body
// then answered as a second request. RFC 9112 §6.1: 400, and close.
TEST(HostileClients, ATransferEncodingNotEndingInChunkedIs400AndClosesWithoutASecondAnswer) {
  ModelServer live{server::HttpLimits{}};
  for (const char* coding : {"xchunked", "identity", "chunked, gzip"}) {
    RawClient attacker(live.port());
    ASSERT_TRUE(attacker.send("POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + std::string(coding) +
                              "\r\n\r\nGET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string answer = attacker.read_until_closed(5s);
    EXPECT_EQ(status_of(answer), 400) << coding << ": " << answer;
    EXPECT_EQ(body_of(answer)["error"]["code"], "bad_transfer_encoding") << answer;
    EXPECT_EQ(answer.find("HTTP/1.1", 8), std::string::npos) << "a second answer: the body was read as a request\n" << answer;
    EXPECT_TRUE(attacker.closed()) << coding;
  }
}

// A body promised with Expect: 100-continue: the server says "100 Continue" once it has taken the
// body's memory, or 503 when it cannot.
std::string promise_body(RawClient& client, std::size_t bytes) {
  client.send("POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
              std::to_string(bytes) + "\r\n\r\n");
  return client.read_response(5s);
}

// F2: 2,500 connections each sending a 4 MiB body slowly held 9.45 GB. Now the bodies in flight
// have a budget for the whole server and a share for each client, taken before a byte is read.
TEST(HostileClients, BodiesInFlightHaveABudgetAndAShareForEachClient) {
  server::HttpLimits limits;
  limits.max_bytes_in_flight = 20u << 20;  // with a 4 MiB body and its answer's room, 4 bodies fit
  limits.client_share_percent = 50;        // and 2 of them from one client
  ModelServer live(limits);
  const std::size_t body = 4'000'000;
  std::vector<std::unique_ptr<RawClient>> slow;
  auto hold_body = [&](const char* from) {
    slow.push_back(std::make_unique<RawClient>(live.port(), from));
    return promise_body(*slow.back(), body);
  };
  EXPECT_TRUE(hold_body("127.0.0.2").starts_with("HTTP/1.1 100"));
  EXPECT_TRUE(hold_body("127.0.0.2").starts_with("HTTP/1.1 100"));
  const std::string over_share = hold_body("127.0.0.2");
  EXPECT_EQ(status_of(over_share), 503) << over_share;
  EXPECT_EQ(body_of(over_share)["error"]["code"], "server_busy");
  EXPECT_NE(over_share.find("Retry-After: 1"), std::string::npos) << over_share;
  // Another client has a share of its own, until the whole budget is spent.
  EXPECT_TRUE(hold_body("127.0.0.3").starts_with("HTTP/1.1 100"));
  EXPECT_TRUE(hold_body("127.0.0.3").starts_with("HTTP/1.1 100"));
  EXPECT_EQ(status_of(hold_body("127.0.0.4")), 503) << "the whole budget";
  // A small request still fits in what is left, and is answered.
  RawClient honest(live.port(), "127.0.0.5");
  ASSERT_TRUE(honest.send(predict_request({{"image", png_data_url(drawing(3))}})));
  const std::string answer = honest.read_response(10s);
  EXPECT_EQ(status_of(answer), 200) << answer.substr(0, 300);
  // When a slow body is given up, its memory comes back.
  slow.clear();
  std::this_thread::sleep_for(200ms);  // for the server to see the connections close
  RawClient later(live.port(), "127.0.0.4");
  EXPECT_TRUE(promise_body(later, body).starts_with("HTTP/1.1 100"));
}

// F8: one address opening connections up to the cap left others 17% of their answers. Now one
// client holds at most its share.
TEST(HostileClients, OneClientHoldsAtMostItsShareOfTheConnections) {
  server::HttpLimits limits;
  limits.max_connections = 200;
  limits.client_share_percent = 10;  // 20 a client
  limits.keep_alive_timeout = 60s;   // the hoarder's connections keep their places
  ModelServer live(limits);
  std::vector<std::unique_ptr<RawClient>> hoard;
  for (int i = 0; i < 20; ++i) {
    hoard.push_back(std::make_unique<RawClient>(live.port(), "127.0.0.2"));
    ASSERT_TRUE(hoard.back()->send("GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(status_of(hoard.back()->read_response()), 200) << "connection " << i;
  }
  RawClient one_more(live.port(), "127.0.0.2");
  const std::string refused = one_more.read_until_closed(5s);
  EXPECT_EQ(status_of(refused), 503) << refused;
  EXPECT_EQ(body_of(refused)["error"]["code"], "too_many_connections");
  EXPECT_NE(body_of(refused)["error"]["message"].get<std::string>().find("this client"), std::string::npos);
  RawClient other(live.port(), "127.0.0.3");
  ASSERT_TRUE(other.send("GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(status_of(other.read_response()), 200);
}

// Behind a trusted proxy, the client is the one X-Forwarded-For names: the proxy's own connections
// are not one client's, and the rate limits and the queue count each forwarded address apart.
TEST(HostileClients, ATrustedProxysConnectionsAreNotHeldToOneClientsShare) {
  server::HttpLimits limits;
  limits.max_connections = 200;
  limits.client_share_percent = 10;
  limits.keep_alive_timeout = 60s;
  limits.trusted_proxies = {"127.0.0.2"};
  ModelServer live(limits);
  std::vector<std::unique_ptr<RawClient>> proxied;
  for (int i = 0; i < 30; ++i) {
    proxied.push_back(std::make_unique<RawClient>(live.port(), "127.0.0.2"));
    ASSERT_TRUE(proxied.back()->send("GET /api/health HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2." + std::to_string(i) + "\r\n\r\n"));
    ASSERT_EQ(status_of(proxied.back()->read_response()), 200) << "connection " << i;
  }
}

// An HttpServer whose every request is work that waits at a gate: the tests decide when work may
// run, and see which ran, in which order.
class GatedServer {
 public:
  explicit GatedServer(server::HttpLimits limits) {
    limits.workers = 1;
    server_ = std::make_unique<server::HttpServer>(
        limits,
        [this](server::HttpRequest& request) -> server::Routed {
          const std::string name = request.path.substr(1);
          return {std::nullopt, [this, name] {
                    {
                      std::unique_lock lock(mutex_);
                      started_.push_back(name);
                      changed_.notify_all();
                      changed_.wait(lock, [this] { return open_; });
                    }
                    return server::HttpResponse{200, "text/plain", name, {}};
                  }};
        },
        [](const std::string&, int status, const std::string& code, const std::string& message) {
          return server::HttpResponse{status, "application/json", json{{"error", {{"code", code}, {"message", message}}}}.dump(), {}};
        },
        nullptr);
    port_ = server_->bind("127.0.0.1", 0);
    thread_ = std::thread([this] { server_->run(); });
  }
  ~GatedServer() {
    open();
    stop();
  }
  void stop() {
    if (!thread_.joinable()) return;
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits until `count` works have started (at most 10 s; a guard, not a measurement).
  bool wait_started(std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return started_.size() >= count; });
  }
  std::vector<std::string> started() {
    std::lock_guard lock(mutex_);
    return started_;
  }

 private:
  std::unique_ptr<server::HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  std::vector<std::string> started_;
};

std::unique_ptr<RawClient> ask(int port, const char* from, const std::string& name) {
  auto client = std::make_unique<RawClient>(port, from);
  client->send("GET /" + name + " HTTP/1.1\r\nHost: x\r\n\r\n");
  return client;
}

// F3: an honest request waited behind an attacker's 300 (63 s at p99). Now each client has its
// own line, served in turn: the honest one waits for at most one request of each other client.
TEST(HostileClients, TheQueueServesClientsInTurn) {
  GatedServer live{server::HttpLimits{}};
  auto running = ask(live.port(), "127.0.0.2", "a0");
  ASSERT_TRUE(live.wait_started(1));  // the one worker is busy from here on
  std::vector<std::unique_ptr<RawClient>> attacker;
  for (int i = 1; i <= 8; ++i) attacker.push_back(ask(live.port(), "127.0.0.2", "a" + std::to_string(i)));
  std::this_thread::sleep_for(300ms);  // for the server to queue them
  auto honest = ask(live.port(), "127.0.0.3", "b0");
  std::this_thread::sleep_for(300ms);
  live.open();
  EXPECT_EQ(status_of(honest->read_response()), 200);
  ASSERT_TRUE(live.wait_started(10));
  const std::vector<std::string> order = live.started();
  const auto at = std::find(order.begin(), order.end(), "b0") - order.begin();
  EXPECT_LE(at, 2) << "the honest request ran after " << at << " of the attacker's";
}

// F3: work for a connection that has closed was still done. Now it is dropped before it runs.
TEST(HostileClients, WorkForAClientThatHungUpIsDropped) {
  GatedServer live{server::HttpLimits{}};
  auto running = ask(live.port(), "127.0.0.2", "busy");
  ASSERT_TRUE(live.wait_started(1));
  {
    std::vector<std::unique_ptr<RawClient>> gone;
    for (int i = 0; i < 5; ++i) gone.push_back(ask(live.port(), "127.0.0.3", "gone" + std::to_string(i)));
    std::this_thread::sleep_for(300ms);
  }  // they hang up
  std::this_thread::sleep_for(300ms);  // for the server to see it
  auto after = ask(live.port(), "127.0.0.4", "after");
  std::this_thread::sleep_for(200ms);
  live.open();
  EXPECT_EQ(status_of(after->read_response()), 200);
  for (const std::string& name : live.started()) EXPECT_FALSE(name.starts_with("gone")) << name << " ran for a client that had hung up";
}

// F3: the queue is bounded for each client, and a request that waited too long is refused, not run late.
TEST(HostileClients, TheQueueIsBoundedAndAWaitTooLongIsRefused) {
  server::HttpLimits limits;
  limits.max_queued_per_client = 2;
  limits.max_queue_wait = 200ms;
  GatedServer live(limits);
  auto running = ask(live.port(), "127.0.0.2", "a0");
  ASSERT_TRUE(live.wait_started(1));
  auto first = ask(live.port(), "127.0.0.2", "a1");
  auto second = ask(live.port(), "127.0.0.2", "a2");
  std::this_thread::sleep_for(200ms);
  auto third = ask(live.port(), "127.0.0.2", "a3");
  const std::string refused = third->read_response(5s);
  EXPECT_EQ(status_of(refused), 503) << "beyond the client's queue: " << refused;
  EXPECT_EQ(body_of(refused)["error"]["code"], "server_busy");
  std::this_thread::sleep_for(300ms);  // a1 and a2 have now waited longer than max_queue_wait
  live.open();
  for (auto* waited : {first.get(), second.get()}) {
    const std::string answer = waited->read_response(5s);
    EXPECT_EQ(status_of(answer), 503) << answer;
    EXPECT_NE(answer.find("Retry-After"), std::string::npos) << answer;
  }
  EXPECT_EQ(live.started().size(), 1u) << "a request that waited too long was worked on";
}

// F3: SIGTERM with 200 requests queued had not stopped the server after 120 s. Now stop() drops the
// queue (closing its connections unanswered), and only the request being worked on is finished.
TEST(HostileClients, StopDropsTheQueueAndFinishesOnlyTheWorkInHand) {
  server::HttpLimits limits;
  limits.max_queued_per_client = 100;
  GatedServer live(limits);
  auto running = ask(live.port(), "127.0.0.2", "running");
  ASSERT_TRUE(live.wait_started(1));
  std::vector<std::unique_ptr<RawClient>> queued;
  for (int i = 0; i < 50; ++i) queued.push_back(ask(live.port(), "127.0.0.2", "queued" + std::to_string(i)));
  std::this_thread::sleep_for(300ms);
  std::thread stopper([&] { live.stop(); });
  std::this_thread::sleep_for(100ms);
  live.open();  // the work in hand may finish
  stopper.join();
  EXPECT_EQ(status_of(running->read_response(5s)), 200) << "the request being worked on is answered";
  for (const auto& client : queued) {
    client->read_until_closed(2s);
    EXPECT_TRUE(client->closed());
  }
  EXPECT_EQ(live.started().size(), 1u) << "queued work ran after stop()";
}

}  // namespace
}  // namespace digits
