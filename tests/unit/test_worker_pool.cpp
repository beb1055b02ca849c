// WorkerPool (worker_pool.hpp): every task of every job runs exactly once, and run returns only
// when all of them are done, however the pool's threads and the caller share them out, whether a
// pool thread is awake, late or never scheduled at all during a job.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "digits/worker_pool.hpp"

using namespace digits;

TEST(WorkerPool, EveryTaskOfEveryJobRunsOnceAndIsDoneWhenRunReturns) {
  for (const int threads : {1, 2, 3}) {
    WorkerPool pool(threads);
    std::vector<std::atomic<int>> runs(17);
    for (int job = 0; job < 3000; ++job) {
      const int tasks = job % 18;  // 0 to 17 tasks: none, fewer than the threads, and many more
      for (auto& count : runs) count.store(0);
      pool.run(tasks, [&](int task) {
        if (job % 500 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // a slow job now and then
        runs[static_cast<std::size_t>(task)].fetch_add(1);
      });
      for (int task = 0; task < 17; ++task)
        ASSERT_EQ(runs[static_cast<std::size_t>(task)].load(), task < tasks ? 1 : 0) << threads << " threads, job " << job << ", task " << task;
    }
  }
}

// A job posted while a pool thread sleeps past the spinning (the pool idle for a while): the
// thread wakes for it, or the caller does it all; either way every task runs once.
TEST(WorkerPool, AJobAfterAnIdleSpellRunsWhole) {
  WorkerPool pool(2);
  std::atomic<int> done{0};
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    pool.run(8, [&](int) { done.fetch_add(1); });
    EXPECT_EQ(done.load(), 8 * (round + 1));
  }
}
