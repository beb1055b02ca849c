// Limits on judgements: a token bucket per key, each holding up to `per_minute` tokens and refilled
// at per_minute/60 a second, so a burst of per_minute is allowed, then one every 60/per_minute
// seconds. The server asks with two keys at once, the remote address and the client_id, each with
// its own rate: rotating client_ids from one address does not escape the address's bucket, and
// one client_id cannot hide behind many addresses. It asks before decoding anything, so a refusal
// costs microseconds.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace digits::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limit {
    std::string key;  // "address\n127.0.0.1", "client\nabc…": kinds kept apart by their prefix
    int per_minute;   // 0 or less: unlimited, and nothing is counted
  };
  struct Verdict {
    int retry_after = 0;          // 0: allowed (and counted in every bucket); else whole seconds to wait
    std::size_t refused_by = 0;   // when refused: the index of the limit that refused
  };

  // Allowed only when every limit allows; then one token is taken from each. When one refuses,
  // none is taken: a refused request costs no bucket anything. Atomic across the keys.
  Verdict check(const std::vector<Limit>& limits, Clock::time_point now = Clock::now()) {
    std::lock_guard lock(mutex_);
    if (buckets_.size() > kMaxKeys) forget_idle(now);
    std::vector<Bucket*> taken;
    for (std::size_t i = 0; i < limits.size(); ++i) {
      const Limit& limit = limits[i];
      if (limit.per_minute <= 0) continue;
      const double capacity = limit.per_minute, per_second = limit.per_minute / 60.0;
      auto [it, added] = buckets_.try_emplace(limit.key, Bucket{capacity, now, limit.per_minute});
      Bucket& bucket = it->second;
      bucket.per_minute = limit.per_minute;
      bucket.tokens = std::min(capacity, bucket.tokens + std::chrono::duration<double>(now - bucket.at).count() * per_second);
      bucket.at = now;
      if (bucket.tokens < 1) return {std::max(1, static_cast<int>(std::ceil((1 - bucket.tokens) / per_second))), i};
      taken.push_back(&bucket);
    }
    for (Bucket* bucket : taken) bucket->tokens -= 1;
    return {};
  }

  // One key: 0 when one more is allowed now (and counts it); otherwise the whole seconds to wait.
  int retry_after(const std::string& key, int per_minute, Clock::time_point now = Clock::now()) { return check({{key, per_minute}}, now).retry_after; }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
    int per_minute;
  };
  // Beyond this many keys, those whose bucket has refilled are forgotten: they lose nothing.
  static constexpr std::size_t kMaxKeys = 10000;

  void forget_idle(Clock::time_point now) {
    std::erase_if(buckets_, [&](const auto& entry) {
      const Bucket& b = entry.second;
      return b.tokens + std::chrono::duration<double>(now - b.at).count() * b.per_minute / 60.0 >= b.per_minute;
    });
  }

  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace digits::server
