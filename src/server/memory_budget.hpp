// The server's memory budget for requests: the bytes of every request body being received, queued
// or worked on, and the answer it will get, added up for the whole server and for each client.
//
// Why: a body is read into memory whole (Beast's string body reserves its Content-Length at once),
// and a client may send it as slowly as the body deadline allows. Without a bound for the whole
// server, 2,500 connections each trickling a 4 MiB body held 9.45 GB (issue 19, F2). With it, a
// body that does not fit is refused (503, Retry-After) before a byte of it is read, and one client
// can hold at most its share, so others are still served.
//
// Thread-safe: taken on the event loop, given back on whichever thread drops the last hold (a
// worker, when the request's work ends).
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace digits::server {

class MemoryBudget {
 public:
  // `total`: bytes for the whole server; `per_client`: bytes one client (an address, see
  // client_key) may hold of it. 0 for either: no limit.
  MemoryBudget(std::size_t total, std::size_t per_client) : total_(total), per_client_(per_client) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Takes `bytes` for `client` if both the client's share and the whole budget have room; else
  // takes nothing and returns false.
  bool try_take(const std::string& client, std::size_t bytes) {
    std::lock_guard lock(mutex_);
    std::size_t& held = held_[client];
    const bool fits = (total_ == 0 || bytes <= total_ - std::min(total_, used_)) && (per_client_ == 0 || held + bytes <= per_client_);
    if (fits) {
      held += bytes;
      used_ += bytes;
    } else if (held == 0) {
      held_.erase(client);
    }
    return fits;
  }

  void give_back(const std::string& client, std::size_t bytes) {
    if (bytes == 0) return;
    std::lock_guard lock(mutex_);
    used_ -= bytes;
    const auto it = held_.find(client);
    if (it != held_.end() && (it->second -= bytes) == 0) held_.erase(it);
  }

  std::size_t used() const {
    std::lock_guard lock(mutex_);
    return used_;
  }
  std::size_t total() const { return total_; }
  std::size_t per_client() const { return per_client_; }

 private:
  const std::size_t total_, per_client_;
  mutable std::mutex mutex_;
  std::size_t used_ = 0;
  std::unordered_map<std::string, std::size_t> held_;  // only clients holding something
};

// What one request holds of the budget, given back when the hold is destroyed (RAII). Moves with
// the request: from the connection reading it, to the queue, to the worker, to the answer.
class BudgetHold {
 public:
  BudgetHold() = default;
  BudgetHold(MemoryBudget* budget, std::string client) : budget_(budget), client_(std::move(client)) {}
  BudgetHold(BudgetHold&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)), client_(std::move(other.client_)), bytes_(std::exchange(other.bytes_, 0)) {}
  BudgetHold& operator=(BudgetHold&& other) noexcept {
    if (this != &other) {
      release();
      budget_ = std::exchange(other.budget_, nullptr);
      client_ = std::move(other.client_);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~BudgetHold() { release(); }

  // Takes `bytes` more; false when the budget or the client's share has no room. Without a
  // budget (a hold made empty), always true.
  bool take(std::size_t bytes) {
    if (!budget_) return true;
    if (!budget_->try_take(client_, bytes)) return false;
    bytes_ += bytes;
    return true;
  }
  void release() {
    if (budget_) budget_->give_back(client_, std::exchange(bytes_, 0));
  }
  std::size_t bytes() const { return bytes_; }

 private:
  MemoryBudget* budget_ = nullptr;
  std::string client_;
  std::size_t bytes_ = 0;
};

}  // namespace digits::server
