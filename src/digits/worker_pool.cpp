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

// The next task to hand out is the low half of next_, tagged with the job it belongs to in the
// high half: a thread claims task i of job j by moving next_ from (j, i) to (j, i + 1), so a
// thread that wakes late, after its job is over and the next one posted, can never take a task of
// a job it has not read. The caller waits for the tasks, not the threads: a pool thread that the
// machine has not scheduled yet (another program holds the core) costs nothing if the caller has
// done every task itself meanwhile.
void WorkerPool::take_tasks(std::uint64_t job, Function function, const void* context, int tasks) {
  const std::uint64_t tag = job << 32;
  for (std::uint64_t next = next_.load(std::memory_order_acquire);;) {
    if ((next & ~kIndexMask) != tag || static_cast<int>(next & kIndexMask) >= tasks) return;
    if (!next_.compare_exchange_weak(next, next + 1, std::memory_order_acq_rel)) continue;  // `next` reloaded
    function(context, static_cast<int>(next & kIndexMask));
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);  // taken so the caller cannot miss the notification between its check and its wait
      job_finished_.notify_one();
    }
    next = next_.load(std::memory_order_acquire);
  }
}

void WorkerPool::run_erased(int tasks, Function function, const void* context) {
  std::lock_guard turn(running_);
  std::uint64_t job;
  {
    std::lock_guard lock(mutex_);
    function_ = function;
    context_ = context;
    tasks_ = tasks;
    job = (job_.load() + 1) & kIndexMask;
    if (job == 0) job = 1;  // 0 is what a new pool thread has seen
    pending_.store(tasks);
    next_.store(job << 32, std::memory_order_release);
    job_.store(job, std::memory_order_release);  // after the job's fields: a spinning thread reads them next
  }
  job_posted_.notify_all();
  take_tasks(job, function, context, tasks);  // the caller works too
  for (int spin = 0; spin < kSpins && pending_.load(std::memory_order_acquire) > 0; ++spin) relax();
  std::unique_lock lock(mutex_);
  job_finished_.wait(lock, [&] { return pending_.load() == 0; });
}

void WorkerPool::work() {
  std::uint64_t seen = 0;
  for (;;) {
    for (int spin = 0; spin < kSpins && job_.load(std::memory_order_acquire) == seen && !stopping_.load(); ++spin) relax();
    Function function;
    const void* context;
    int tasks;
    {
      std::unique_lock lock(mutex_);  // the job's fields, read while no caller can be writing them
      job_posted_.wait(lock, [&] { return stopping_.load() || job_.load() != seen; });
      if (stopping_.load()) return;
      seen = job_.load();
      function = function_, context = context_, tasks = tasks_;
    }
    take_tasks(seen, function, context, tasks);
  }
}

}  // namespace digits
