// The server's state directory at work: it stores every judgement, holds the live model, and
// learns from corrections in a background thread. The library does the real work (feedback::Store,
// feedback::ModelVersions, fine_tune_guarded); this class decides when, on what, and swaps the
// result in. docs/feedback.md ("The server") describes the behaviour.
//
// The live model is a shared_ptr<const ServedModel> swapped atomically: a prediction keeps the
// snapshot it started with and never waits for training.
#pragma once

#include <chrono>
#include <cstdint>
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

// What strangers may store (0: no bound). Beyond a quota a judgement is refused with
// quota_exceeded (429 for a client's own, 507 for the store's) before it is decoded; predictions
// and learning go on. Defaults for a classroom on one machine: a judgement is at most ~34 KB
// (feedback::kMaxStoredDrawingBytes, the input, the row), a drawing from the page 2–5 KB.
struct FeedbackQuotas {
  std::int64_t per_client_id = 2000;             // judgements one client_id may store: ≤ 68 MB
  std::int64_t per_address = 10000;              // from one remote address, whatever its client_ids: 30 pupils behind one NAT, 300 each
  std::int64_t total_bytes = std::int64_t{4} << 30;  // the database's size: 4 GiB, ~125,000 of the largest judgements
};

// How much of the store the learner holds at once, so that its memory does not grow with the
// store (docs/feedback.md, "Memory"): it reads judgements in pages, without their drawings, and
// replays only the most recent ones.
struct LearnerBounds {
  std::size_t page = 1000;                    // judgements a read takes (≈ 0.8 MB without drawings)
  std::size_t earlier_corrections = 10000;    // the most recent corrections the live line learned, replayed
  std::size_t earlier_confirmations = 10000;  // the most recent confirmations, replayed
  std::size_t round_corrections = 10000;      // new corrections one round takes; the rest wait for the next
};

struct LearnerOptions {
  std::filesystem::path state_dir;          // created if missing; unused with `store`
  // The store replicas share (docs/scaling.md): a PostgreSQL connection string, used instead of
  // the state directory. Empty: SQLite and files in state_dir, the embedded default.
  std::string store;
  std::size_t store_connections = 4;        // the pool for judgements and reads (and two more: the learner's lock, the listener)
  // How often a replica that does not learn tries the learner's lock: a replica takes over this
  // long (at most) after the learner's PostgreSQL session ends.
  std::chrono::milliseconds lead_retry{5000};
  // The live pointer is read at start, after the listener reconnects, and at least this often,
  // besides every NOTIFY: a replica that was disconnected misses notifications.
  std::chrono::milliseconds poll_interval{30000};
  std::shared_ptr<const LearningData> data;  // null: learning is off, and disabled_reason says why
  std::string disabled_reason;
  // A round starts this long after the last new correction, so a burst is learned in one round.
  std::chrono::milliseconds debounce{1000};
  // A round whose version could not be saved (a full disk) is tried again this long after.
  std::chrono::milliseconds retry_delay{30000};
  FineTuneSettings fine_tune;               // threads = 1: the other cores stay with the requests
  std::FILE* log = stderr;                  // start-up state and every round's verdict; nullptr for none
  FeedbackQuotas quotas;
  LearnerBounds bounds;
};

class Learner {
 public:
  // Opens the state directory (creating it), its feedback database and model versions, and makes
  // the current saved version live (or `starting` when there is none). With options.store, opens
  // the shared PostgreSQL instead (throwing StorageError when it cannot be reached or its schema
  // is newer), serves its live version, learns only while this replica holds the learner's lock,
  // and follows the live pointer that other replicas move (a thread that LISTENs and polls). Throws Error naming the
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
  // A judgement beyond a quota (options.quotas) is refused with RequestError 429 quota_exceeded
  // (its client_id's or its address's) or 507 quota_exceeded (the store's), checked under the
  // same lock as the insert so that concurrent requests cannot overshoot.
  std::string add(feedback::Judgement& judgement);
  // The same quota check alone, for before decoding: throws what add() would.
  void check_quota(const std::string& client_id, const std::string& client_address) const;

  LearningStatus status() const;
  // Starts a round now instead of after the debounce; with PostgreSQL, on a replica that does not
  // learn, asks the one that does (NOTIFY). Returns false when learning is off; throws RequestError
  // 503 when the shared store cannot be reached to ask.
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
