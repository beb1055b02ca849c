// What the HTTP layer's tests share: the real server on the built-in model, in-process, with the
// limits a test chooses; and a raw TCP client that sends exactly the bytes it is told, from a chosen
// loopback address, and reads what comes back (nothing of HTTP in it, so it can send what no
// library would).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "http_support.hpp"
#include "server/server.hpp"

namespace digits::api_testing {

using namespace std::chrono_literals;

// `digits serve` in-process on a free port, with the given limits; stopped and joined at the end.
class ModelServer {
 public:
  explicit ModelServer(server::HttpLimits limits) {
    server::ServerOptions options;
    options.port = 0;
    options.log = nullptr;
    options.http = std::move(limits);
    server_ = std::make_unique<server::Server>(server::ServedModel{builtin(), "built-in model"}, options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~ModelServer() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<server::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// A client socket that sends what it is told, with nothing of HTTP in it.
class RawClient {
 public:
  // `from`: the loopback address to connect from (all of 127.0.0.0/8 is this machine), so that a
  // test can be several clients as the server counts them.
  explicit RawClient(int port, const char* from = "127.0.0.1") : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in source{};
    source.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &source.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&source), sizeof source);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& bytes) { return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()); }

  // Everything the server sends until it closes the connection; closed() says whether it did
  // within `limit` (a guard against hanging, not a measurement).
  std::string read_until_closed(std::chrono::milliseconds limit = 10s) {
    std::string received;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    closed_ = false;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd ready{fd_, POLLIN, 0};
      if (::poll(&ready, 1, 50) != 1) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      received.append(chunk, static_cast<std::size_t>(n));
    }
    return received;
  }
  // One whole response to a request that has been sent: the header, then Content-Length bytes.
  std::string read_response(std::chrono::milliseconds limit = 10s) {
    std::string received;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::size_t end = received.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::size_t at = received.find("Content-Length: ");
        const std::size_t length = at == std::string::npos ? 0 : std::stoul(received.substr(at + 16));
        if (received.size() >= end + 4 + length) return received;
      }
      pollfd ready{fd_, POLLIN, 0};
      if (::poll(&ready, 1, 50) != 1) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      received.append(chunk, static_cast<std::size_t>(n));
    }
    return received;
  }
  bool closed() const { return closed_; }

 private:
  int fd_;
  bool connected_ = false, closed_ = false;
};

inline nlohmann::json body_of(const std::string& response) {
  const std::size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? nlohmann::json() : nlohmann::json::parse(response.substr(end + 4), nullptr, false);
}


}  // namespace digits::api_testing
