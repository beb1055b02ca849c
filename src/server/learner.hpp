// The server's state directory at work: it stores every judgement, holds the live model, and
// learns from corrections in a background thread. The library does the real work (feedback::Store,
// feedback::ModelVersions, fine_tune_guarded); this class decides when, on what, and swaps the
// result in. docs/feedback.md ("The server") describes the behaviour.
//
// The live model is a shared_ptr<const ServedModel> swapped atomically: a prediction keeps the
// snapshot it started with and never waits for training.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "digits/dataset.hpp"
#include "digits/fine_tune.hpp"
#include "server/api.hpp"

namespace digits::server {

// MNIST's training set as the guard splits it: replay for the fine-tune, validation for the guard.
struct LearningData {
  Dataset replay, validation;
};

struct LearnerOptions {
  std::filesystem::path state_dir;          // created if missing
  std::shared_ptr<const LearningData> data;  // null: learning is off, and disabled_reason says why
  std::string disabled_reason;
  // A round starts this long after the last new correction, so a burst is learned in one round.
  std::chrono::milliseconds debounce{1000};
  // A round whose version could not be saved (a full disk) is tried again this long after.
  std::chrono::milliseconds retry_delay{30000};
  FineTuneSettings fine_tune;               // threads = 1: the other cores stay with the requests
  std::FILE* log = stderr;                  // start-up state and every round's verdict; nullptr for none
};

class Learner {
 public:
  // Opens the state directory (creating it), its feedback database and model versions, and makes
  // the current saved version live (or `starting` when there is none). Throws Error naming the
  // directory when it cannot be made or written (read-only), and when the saved versions were
  // learned from another starting model (their recorded SHA-256 differs). Faults it survives,
  // logging each with the file's name (docs/feedback.md, "When the state directory fails"):
  //  - a current version whose file cannot be loaded: the newest earlier version that loads is
  //    served, else `starting`;
  //  - a damaged feedback.db (not SQLite, cut short, malformed): moved aside to
  //    feedback.db.corrupt-<time> and a new one started, its ids continuing past every id the
  //    versions and learning.json refer to;
  //  - another program's (or a newer digits') feedback.db: left untouched; judgements are
  //    refused (503) and learning is off, predictions go on;
  //  - temporary files of a save that a kill -9 interrupted: removed.
  Learner(ServedModel starting, LearnerOptions options);
  ~Learner();  // stops the thread; a round in progress finishes first (bounded work)
  Learner(const Learner&) = delete;
  Learner& operator=(const Learner&) = delete;

  std::shared_ptr<const ServedModel> live() const;

  // Stores a judgement durably (Store::add has returned when this returns) and, if it is a
  // correction, wakes the learner. Returns its id (set in `judgement`) and what learning will do
  // with it: "queued", "not_needed" (judged right: kept as an example to replay) or "off".
  // When the storage fails, throws RequestError 507 (a full disk) or 503, with a message that
  // names the cause and no file; the full message goes to the log.
  std::string add(feedback::Judgement& judgement);

  LearningStatus status() const;
  // Starts a round now instead of after the debounce. Returns false when learning is off.
  bool learn_now();
  // Makes an earlier version live, on disk and in memory (ModelVersions::rollback's rules);
  // returns the version now live. Throws Error when there is no such version, RequestError
  // 507/503 when `current` cannot be written.
  int rollback(std::optional<int> version);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The starting model's fingerprint: SHA-256 of its weights and architecture (the model file it
// would be saved as, without metadata). Every version records it (version.start_sha256).
std::string model_fingerprint(const Network& network);

}  // namespace digits::server
