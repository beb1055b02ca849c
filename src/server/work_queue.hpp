// The queue between the event loop and the worker threads: bounded, fair between clients, and
// cancellable (issue 19, F3).
//
// Why: with an unbounded queue served in arrival order, one client's 300 costly requests put every
// other client behind them (an honest /api/predict waited 63 s), and work for connections that had
// already closed was still done. Here:
//   - bounded: at most `max_queued` jobs in all and `max_queued_per_client` from one client; a job
//     beyond either is refused at once (the caller answers 503 with Retry-After). Their bytes are
//     bounded by the MemoryBudget the jobs hold;
//   - fair: one FIFO per client, served round-robin, so a client with one request waits for at
//     most one job of each other client, however many they queued;
//   - cancellable: a job whose client hung up (`gone`) is dropped unrun; a job that waited longer
//     than `max_wait` is not run but expired (the caller answers 503): a late answer is worth
//     less than a prompt refusal, and the client may have given up;
//   - stoppable: stop() drops every queued job, lets the running ones finish, and join() returns
//     when they have.
// Each job is told its turn exactly once: run, expired or dropped. (One call, not three
// callbacks, so that whatever the job holds, say its connection, can be moved out in that call
// and released where the job chooses, not wherever the queue happens to destroy it.)
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace digits::server {

struct WorkQueueLimits {
  std::size_t max_queued = 256;
  std::size_t max_queued_per_client = 16;
  std::chrono::milliseconds max_wait{3000};
  int threads = 1;
};

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Turn { run, expired, dropped };
  struct Job {
    std::string client;                             // the fairness key (client_key in http_server.cpp)
    std::function<void(Turn)> take_turn;            // called once, on a worker thread (or in stop())
    std::shared_ptr<const std::atomic<bool>> gone;  // set when the client hung up: dropped unrun
    Clock::time_point queued_at{};                  // set by push()
  };
  enum class Admission { queued, full, client_full, stopped };

  explicit WorkQueue(WorkQueueLimits limits);
  ~WorkQueue();  // stop() and join()
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // From any thread. Anything but `queued` leaves the job untouched in the caller's hands.
  Admission push(Job& job);
  // Drops the queued jobs (each told Turn::dropped) and lets the workers end after their current job.
  void stop();
  // Waits for the workers to end (after stop()).
  void join();

  std::size_t queued() const;
  const WorkQueueLimits& limits() const { return limits_; }

 private:
  void work();

  const WorkQueueLimits limits_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::unordered_map<std::string, std::deque<Job>> waiting_;  // per client, only non-empty queues
  std::deque<std::string> turn_;                              // clients with jobs, in serving order
  std::size_t queued_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace digits::server
