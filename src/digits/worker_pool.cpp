#include "digits/worker_pool.hpp"

#include <algorithm>

namespace digits {

WorkerPool::WorkerPool(int threads) {
  for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
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
    busy_ = static_cast<int>(workers_.size());
    ++job_;
  }
  job_posted_.notify_all();
  take_tasks();  // the caller works too
  std::unique_lock lock(mutex_);
  job_finished_.wait(lock, [&] { return busy_ == 0; });
}

void WorkerPool::work() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      job_posted_.wait(lock, [&] { return stopping_ || job_ != seen; });
      if (stopping_) return;
      seen = job_;
    }
    take_tasks();
    std::lock_guard lock(mutex_);
    if (--busy_ == 0) job_finished_.notify_one();
  }
}

}  // namespace digits
