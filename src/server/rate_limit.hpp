// A per-client limit on judgements: a token bucket per key (the server uses remote address and
// client_id), holding up to `per_minute` tokens and refilled at per_minute/60 a second. A burst of
// per_minute is allowed, then one every 60/per_minute seconds.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>

namespace digits::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimiter(int per_minute) : per_minute_(per_minute) {}

  // 0 when one more is allowed now (and counts it); otherwise the whole seconds to wait.
  int retry_after(const std::string& key, Clock::time_point now = Clock::now()) {
    if (per_minute_ <= 0) return 0;  // unlimited
    const double capacity = per_minute_, per_second = per_minute_ / 60.0;
    std::lock_guard lock(mutex_);
    if (buckets_.size() > kMaxKeys) forget_idle(now, capacity, per_second);
    auto [it, added] = buckets_.try_emplace(key, Bucket{capacity, now});
    Bucket& bucket = it->second;
    bucket.tokens = std::min(capacity, bucket.tokens + std::chrono::duration<double>(now - bucket.at).count() * per_second);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return std::max(1, static_cast<int>(std::ceil((1 - bucket.tokens) / per_second)));
  }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };
  // Beyond this many clients, those whose bucket has refilled are forgotten: they lose nothing.
  static constexpr std::size_t kMaxKeys = 10000;

  void forget_idle(Clock::time_point now, double capacity, double per_second) {
    std::erase_if(buckets_, [&](const auto& entry) {
      return entry.second.tokens + std::chrono::duration<double>(now - entry.second.at).count() * per_second >= capacity;
    });
  }

  int per_minute_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace digits::server
