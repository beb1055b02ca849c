// A fixed set of threads that run the shares of one job together: `run(tasks, task)` calls
// task(0) … task(tasks − 1), spread over the pool's threads and the caller's, and returns when all
// are done. Training splits a batch into shares whose boundaries depend on the batch alone, never
// on the number of threads, and adds the shares' gradients in share order: so the weights come out
// bit for bit the same whatever --threads is (tests/unit/test_conv.cpp checks it).
//
// Between jobs a thread watches for the next one for about 50 µs, then sleeps on a condition
// variable; tasks are taken from an atomic counter, and the caller returns once every task is
// done, without waiting for a pool thread that never got a core to take one. A job costs a few microseconds to hand out,
// against the milliseconds of a conv layer's products.
// A task must not throw. No allocations per job. Callers on several threads take turns.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace digits {

class WorkerPool {
 public:
  // threads counts the caller: WorkerPool(2) starts one thread of its own. At least 1.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  template <typename Task>
  void run(int tasks, const Task& task) {
    run_erased(tasks, [](const void* context, int index) { (*static_cast<const Task*>(context))(index); }, &task);
  }

 private:
  using Function = void (*)(const void* context, int index);
  void run_erased(int tasks, Function function, const void* context);
  void take_tasks(std::uint64_t job, Function function, const void* context, int tasks);  // until none of `job` is left
  void work();  // a pool thread's loop
  static constexpr std::uint64_t kIndexMask = 0xffffffffu;

  std::vector<std::thread> workers_;
  std::mutex running_;  // one job at a time: a second caller waits for the first's to end
  std::mutex mutex_;
  std::condition_variable job_posted_, job_finished_;
  std::atomic<std::uint64_t> job_{0};  // counts jobs (mod 2³²), so a waking thread knows whether a new one was posted
  std::atomic<bool> stopping_{false};
  Function function_ = nullptr;        // the current job, written and read under mutex_
  const void* context_ = nullptr;
  int tasks_ = 0;
  std::atomic<std::uint64_t> next_{0};  // (job << 32) | the next task to hand out
  std::atomic<int> pending_{0};         // tasks of the current job not yet finished
};

// Items first…first+count−1 of share `share` when `size` items are cut into `shares` nearly equal
// shares. The bounds depend on the sizes alone, never on the threads that run the shares.
struct Share {
  std::ptrdiff_t first, count;
};
inline Share share_of(std::ptrdiff_t size, int shares, int share) {
  const std::ptrdiff_t first = size * share / shares, end = size * (share + 1) / shares;
  return {first, end - first};
}

// Runs task(0 … tasks − 1) on the pool, or one after another on the caller's thread without one.
template <typename Task>
void run_tasks(WorkerPool* pool, int tasks, const Task& task) {
  if (pool && pool->threads() > 1 && tasks > 1) return pool->run(tasks, task);
  for (int i = 0; i < tasks; ++i) task(i);
}

}  // namespace digits
