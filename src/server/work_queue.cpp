#include "server/work_queue.hpp"

#include <algorithm>

namespace digits::server {

WorkQueue::WorkQueue(WorkQueueLimits limits) : limits_(limits) {
  const int threads = std::max(1, limits_.threads);
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

WorkQueue::~WorkQueue() {
  stop();
  join();
}

WorkQueue::Admission WorkQueue::push(Job& job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return Admission::stopped;
    if (queued_ >= limits_.max_queued) return Admission::full;
    const auto it = waiting_.find(job.client);
    if (it != waiting_.end() && it->second.size() >= limits_.max_queued_per_client) return Admission::client_full;
    job.queued_at = Clock::now();
    std::deque<Job>& mine = waiting_[job.client];
    if (mine.empty()) turn_.push_back(job.client);
    mine.push_back(std::move(job));
    ++queued_;
  }
  wake_.notify_one();
  return Admission::queued;
}

void WorkQueue::stop() {
  std::vector<Job> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [client, jobs] : waiting_)
      for (Job& job : jobs) dropped.push_back(std::move(job));
    waiting_.clear();
    turn_.clear();
    queued_ = 0;
  }
  wake_.notify_all();
  for (Job& job : dropped) job.take_turn(Turn::dropped);
}

void WorkQueue::join() {
  for (std::thread& worker : workers_)
    if (worker.joinable()) worker.join();
}

std::size_t WorkQueue::queued() const {
  std::lock_guard lock(mutex_);
  return queued_;
}

void WorkQueue::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !turn_.empty(); });
      if (stopping_) return;
      // Round-robin: the client at the front gives one job and, if it has more, goes to the back.
      std::string client = std::move(turn_.front());
      turn_.pop_front();
      const auto it = waiting_.find(client);
      job = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty())
        waiting_.erase(it);
      else
        turn_.push_back(std::move(client));
      --queued_;
    }
    if (job.gone && job.gone->load())
      job.take_turn(Turn::dropped);  // nobody to answer: the work is not done
    else if (Clock::now() - job.queued_at > limits_.max_wait)
      job.take_turn(Turn::expired);
    else
      job.take_turn(Turn::run);
  }
}

}  // namespace digits::server
