#include "digits/worker_pool.hpp"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace digits {

namespace {

// A training step hands out a job every millisecond or so (each conv and pooling layer, forward
// and backward). Waking a sleeping thread takes tens of microseconds, more on a virtual machine,
// so a thread that has just finished a job first watches for the next one for a while (about
// 50 µs), and only then sleeps on the condition variable.
constexpr int kSpins = 20000;

void relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

}  // namespace

WorkerPool::WorkerPool(int threads) {
  for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
  }
  job_posted_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void WorkerPool::take_tasks() {
  for (int i = next_task_.fetch_add(1); i < tasks_; i = next_task_.fetch_add(1)) function_(context_, i);
}

void WorkerPool::run_erased(int tasks, Function function, const void* context) {
  std::lock_guard turn(running_);
  {
    std::lock_guard lock(mutex_);
    function_ = function;
    context_ = context;
    tasks_ = tasks;
    next_task_.store(0);
    busy_.store(static_cast<int>(workers_.size()));
    job_.fetch_add(1, std::memory_order_release);  // after the job's fields: a spinning thread reads them next
  }
  job_posted_.notify_all();
  take_tasks();  // the caller works too
  for (int spin = 0; spin < kSpins && busy_.load(std::memory_order_acquire) > 0; ++spin) relax();
  std::unique_lock lock(mutex_);
  job_finished_.wait(lock, [&] { return busy_.load() == 0; });
}

void WorkerPool::work() {
  std::uint64_t seen = 0;
  for (;;) {
    for (int spin = 0; spin < kSpins && job_.load(std::memory_order_acquire) == seen && !stopping_.load(); ++spin) relax();
    if (job_.load(std::memory_order_acquire) == seen) {
      std::unique_lock lock(mutex_);
      job_posted_.wait(lock, [&] { return stopping_.load() || job_.load() != seen; });
    }
    if (stopping_.load()) return;
    seen = job_.load(std::memory_order_acquire);
    take_tasks();
    if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);  // taken so the caller cannot miss the notification between its check and its wait
      job_finished_.notify_one();
    }
  }
}

}  // namespace digits
