#include "server/learner.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "digits/error.hpp"
#include "digits/file_util.hpp"
#include "digits/json_depth.hpp"
#include "digits/sha256.hpp"
#include "digits/trainer.hpp"
#include "feedback/model_versions.hpp"
#include "feedback/postgres_store.hpp"
#include "feedback/store.hpp"

namespace digits::server {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Beyond feedback::record_learning's keys, each version the server saves records which judgements
// it learned from (first_judgement_id … last_judgement_id: the corrections among them) and the
// starting model it descends from, so a restart with another --model is refused.
constexpr const char* kFirstJudgementKey = "version.first_judgement_id";
constexpr const char* kStartFingerprintKey = "version.start_sha256";

double metadata_fraction(const Metadata& metadata, const char* key) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return -1;
  try {
    return std::stod(it->second) / 100;
  } catch (const std::exception&) {
    return -1;
  }
}

// What a client is told when the storage fails: the cause and what did not happen, never a path
// (the log has the full message). A full disk is 507 Insufficient Storage (RFC 4918 §11.5), the
// other faults 503: the server's trouble, not the request's.
// `damaged`: what a corrupt fault is about.
RequestError storage_refusal(feedback::StorageFault fault, const std::string& not_done,
                             const std::string& damaged = "the server's feedback database is damaged") {
  switch (fault) {
    case feedback::StorageFault::disk_full:
      return RequestError(507, "insufficient_storage", "the server's disk is full; " + not_done).with_header("Retry-After", "60");
    case feedback::StorageFault::read_only:
      return RequestError(503, "storage_read_only", "the server's state directory has become read-only; " + not_done);
    case feedback::StorageFault::corrupt:
      return RequestError(503, "storage_corrupt", damaged + "; " + not_done);
    case feedback::StorageFault::foreign:
      return RequestError(503, "feedback_unavailable", "the server's feedback database belongs to another program; " + not_done);
    case feedback::StorageFault::unavailable:
      // PostgreSQL stopped or out of reach: a client may try again soon, it resumes by itself.
      return RequestError(503, "store_unavailable", "the server cannot reach its shared store; " + not_done).with_header("Retry-After", "5");
    case feedback::StorageFault::io:
      break;
  }
  return RequestError(503, "storage_failed", "the server could not write to its disk; " + not_done);
}

// The most recent `limit` examples added, oldest first, as a Dataset: replay that does not grow
// with the store. trim() drops the oldest beyond the limit; callers trim after each page they add,
// so that at most limit + one page is ever held.
class RecentExamples {
 public:
  RecentExamples(std::size_t limit, std::string name) : limit_(limit) { data_.name = std::move(name); }

  void add(const feedback::Example& example) {
    data_.pixels.insert(data_.pixels.end(), example.input.begin(), example.input.end());
    data_.labels.push_back(static_cast<std::uint8_t>(example.label));
  }
  void add(const Dataset& examples) { data_.append(examples); }
  void trim() {
    if (data_.size() <= limit_) return;
    const std::size_t drop = data_.size() - limit_;
    data_.labels.erase(data_.labels.begin(), data_.labels.begin() + static_cast<std::ptrdiff_t>(drop));
    data_.pixels.erase(data_.pixels.begin(), data_.pixels.begin() + static_cast<std::ptrdiff_t>(drop * static_cast<std::size_t>(data_.features())));
  }
  const Dataset& data() const { return data_; }

 private:
  std::size_t limit_;
  Dataset data_;
};

}  // namespace

std::string model_fingerprint(const Network& network) { return sha256_hex(serialize_model(network, {})); }

struct Learner::Impl {
  LearnerOptions options;
  std::shared_ptr<const ServedModel> start;  // version 0
  std::string fingerprint;
  long start_validation_correct = -1;  // of the guard's validation images, by the starting model
  // With options.store: the PostgreSQL that replicas share (and store, versions are views over it).
  std::unique_ptr<feedback::PostgresStore> shared;
  std::string holder;                                // this replica, for people: host:pid
  std::unique_ptr<feedback::JudgementStore> store;  // null when feedback.db is another program's: store_problem says so
  std::string store_problem;                         // for clients: no paths
  std::unique_ptr<feedback::VersionStore> versions;
  std::atomic<std::shared_ptr<const ServedModel>> live_model;

  // Held for a whole round and for a rollback: the two never interleave, so a candidate is always
  // saved as the child of the version it was learned from, and `earlier` matches the live version.
  std::mutex change;
  // What every round replays besides MNIST: the most recent corrections the live version's line
  // learned, and the most recent confirmations considered (options.bounds says how many of each).
  RecentExamples earlier_corrections, earlier_confirmations;
  // A model whose validation count this process has measured (start-up measures the starting
  // model; every round measures its candidate, and the live model when not known), and that count.
  // A round on it skips reading the 5,000 images with it again: a third of a round with a CNN.
  // Held, so the pointer can never name another model; guarded by `change`.
  std::shared_ptr<const ServedModel> counted;
  long long counted_correct = -1;

  // Everything below is guarded by `mutex` and read by status().
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::int64_t judgements = 0, corrections = 0;
  std::int64_t considered = 0;             // every judgement up to this id has been considered
  std::int64_t pending = 0;                // corrections after `considered`
  Clock::time_point last_arrival{};
  bool learn_requested = false, stopping = false, training = false;
  // Whether this process learns: always with SQLite; with PostgreSQL, while it holds the lock.
  bool leads = true;
  // The live version changed under the learner (another replica's rollback): the replay is rebuilt
  // for its line before the next round.
  bool rescan = false;
  std::optional<LearningAttempt> last_attempt;
  // After a round failed on the storage (a full disk): it is tried again at retry_at.
  bool retrying = false;
  Clock::time_point retry_at{};
  std::string problem;  // for status(): why learning is held up, naming no file

  // Held from a quota's check to the insert, so that concurrent judgements cannot overshoot it.
  std::mutex storing;

  std::thread thread;
  std::thread watcher;  // with PostgreSQL: the learner's lock, NOTIFY and the poll
  std::atomic<bool> cancel_round{false};

  Impl(ServedModel starting, LearnerOptions learner_options)
      : options(std::move(learner_options)),
        start(std::make_shared<const ServedModel>(std::move(starting))),
        fingerprint(model_fingerprint(start->model.network)),
        earlier_corrections(options.bounds.earlier_corrections, "earlier corrections"),
        earlier_confirmations(options.bounds.earlier_confirmations, "confirmations") {
    if (!options.store.empty()) {
      shared = std::make_unique<feedback::PostgresStore>(
          feedback::PostgresOptions{options.store, options.store_connections, std::chrono::milliseconds(5000), "digits"});
      versions = shared->versions();
      char host[256] = "";
      ::gethostname(host, sizeof host - 1);
      holder = std::string(host) + ":" + std::to_string(::getpid());
      leads = false;  // until the watcher takes the lock
    } else {
      require_writable(options.state_dir);
      auto files = std::make_unique<feedback::ModelVersions>(options.state_dir);
      if (const int removed = files->remove_unfinished())
        log("removed " + std::to_string(removed) + " unfinished version file(s) in " + files->directory().string() + " (a save was interrupted)");
      versions = std::move(files);
    }
    check_versions_descend_from_start();
    if (options.data) {
      const Evaluation e = evaluate(start->model.network, options.data->validation, 1);
      start_validation_correct = static_cast<long>(e.correct);
      auto measured = std::make_shared<ServedModel>(*start);
      measured->validation_accuracy = e.accuracy();
      start = std::move(measured);
    }
    live_model.store(load_current());
    if (start_validation_correct >= 0) counted = start, counted_correct = start_validation_correct;
    read_learning_state();
    open_store();
    log_start();
    if (learning_on()) {
      if (pending > 0) last_arrival = Clock::now();
      thread = std::thread([this] { run(); });
    }
    if (shared) watcher = std::thread([this] { watch(); });
  }

  ~Impl() {
    cancel_round = true;  // a round in progress stops at its next step: the server exits promptly
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    if (thread.joinable()) thread.join();
    if (watcher.joinable()) watcher.join();
  }

  bool learning_on() const { return options.data && store; }

  // The state directory must take writes: a read-only one (a read-only mount, say) is refused at
  // start-up, naming it, rather than refusing every judgement later. Writing a file is the test:
  // permissions alone do not tell (root ignores them; a read-only mount does not show in them).
  static void require_writable(const fs::path& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (!fs::is_directory(dir, ec))
      throw Error(dir.string() + ": cannot create the state directory" + (ec ? ": " + ec.message() : "") + " (give another --state-dir)");
    std::string probe = (dir / ".digits-write-test.XXXXXX").string();
    const int fd = ::mkstemp(probe.data());
    if (fd < 0) {
      const int error_number = errno;
      throw Error(dir.string() + ": the state directory is not writable (" + std::strerror(error_number) +
                  "): the server keeps its judgements and model versions there; make it writable or give another --state-dir");
    }
    ::close(fd);
    ::unlink(probe.c_str());
  }

  // Opens feedback.db and reads every judgement (scan(): counted, and the replay kept). A damaged
  // database is moved aside, never deleted, and a new one started; another program's is left
  // alone and judgements are refused (store stays null). Other failures stop the start-up.
  void open_store() {
    if (shared) {
      store = shared->judgements();
      return after_open();
    }
    const fs::path file = feedback::feedback_database(options.state_dir);
    try {
      return read_store(file);
    } catch (const feedback::StorageError& e) {
      store.reset();
      if (e.fault == feedback::StorageFault::foreign) {
        log(std::string(e.what()) + "; left untouched: judgements are refused and learning is off until it is moved away (predictions go on)");
        store_problem = "the server's feedback database belongs to another program (or a newer digits); judgements are not stored";
        return;
      }
      if (e.fault != feedback::StorageFault::corrupt) throw;
      const fs::path aside = move_aside(file);
      log(std::string(e.what()) + "; moved it to " + aside.string() +
          " (nothing is deleted: `sqlite3 FILE .recover` may get its judgements back) and started a new feedback database");
      return read_store(file);
    }
  }

  void read_store(const fs::path& file) {
    store = std::make_unique<feedback::Store>(file);
    after_open();
  }

  void after_open() {
    scan(true);  // reads every row: a malformed one is damage too
    // A database that is not the one the versions and learning.json speak of (new after a damaged
    // one was moved aside, or removed by hand): its ids continue past theirs, so that "after
    // judgement N" keeps one meaning.
    if (const std::int64_t last = store->last_id(); last < considered) {
      store->continue_ids_after(considered);
      log(store->where() + " holds judgements up to id " + std::to_string(last) + " but learning has considered up to " + std::to_string(considered) +
          ": new judgements are numbered from " + std::to_string(considered + 1));
    }
  }

  // feedback.db → feedback.db.corrupt-2026-12-03T07:15:00Z, with its write-ahead log beside it
  // under the same new name (SQLite reads the two together); the shared-memory index holds no
  // judgements and is removed.
  fs::path move_aside(const fs::path& file) const {
    fs::path aside = file;
    aside += ".corrupt-" + utc_timestamp();
    std::error_code ec;
    for (int n = 2; fs::exists(aside, ec); ++n) {
      aside = file;
      aside += ".corrupt-" + utc_timestamp() + "-" + std::to_string(n);
    }
    fs::rename(file, aside, ec);
    if (ec) throw Error(file.string() + ": damaged, and it cannot be moved aside to " + aside.string() + ": " + ec.message());
    fs::path wal = file, wal_aside = aside;
    wal += "-wal", wal_aside += "-wal";
    if (fs::exists(wal, ec)) fs::rename(wal, wal_aside, ec);
    fs::path shm = file;
    shm += "-shm";
    fs::remove(shm, ec);
    return aside;
  }

  void log(const std::string& line) const {
    if (!options.log) return;
    std::fprintf(options.log, "digits: %s\n", line.c_str());
    std::fflush(options.log);
  }

  // Every saved version must have been learned from the model this server starts from: a version
  // of another model (say, after the built-in model changed) would swap in foreign weights.
  void check_versions_descend_from_start() const {
    const std::string architecture = start->model.metadata.contains("architecture") ? start->model.metadata.at("architecture") : "";
    for (const feedback::VersionInfo& info : versions->list()) {
      if (!info.problem.empty()) continue;  // unreadable: refused if it is ever loaded
      const Metadata metadata = versions->metadata(info.version);
      const auto recorded = metadata.find(kStartFingerprintKey);
      const bool foreign = recorded != metadata.end() ? recorded->second != fingerprint
                                                      : metadata.contains("architecture") && metadata.at("architecture") != architecture;
      if (foreign)
        throw Error(versions->where(info.version) + " was learned from another starting model than " + start->source + " (SHA-256 " +
                    (recorded != metadata.end() ? recorded->second.substr(0, 12) : std::string("unknown")) + "…, not " + fingerprint.substr(0, 12) +
                    "…): start with the --model it was learned from, or give another --state-dir");
    }
  }

  std::shared_ptr<const ServedModel> serve_version(int number) const {
    if (number == 0) return start;
    Model model = versions->load(number);
    const double validation = metadata_fraction(model.metadata, feedback::kValidationAccuracyKey);
    return std::make_shared<const ServedModel>(ServedModel{std::move(model), start->source, number, validation});
  }

  // The current version; when its file cannot be loaded (damaged, cut short, missing), the newest
  // earlier version that loads, else the starting model. A version above current (rolled back
  // from) is never the fallback. `current` is left as it is: the log says what to do.
  std::shared_ptr<const ServedModel> load_current() const {
    int number = 0;
    try {
      number = versions->current();
    } catch (const Error& e) {
      const std::vector<feedback::VersionInfo> saved = versions->list();
      number = saved.empty() ? 0 : saved.back().version;
      log(std::string(e.what()) + "; trying the newest saved version, " + std::to_string(number));
    }
    std::vector<int> candidates;
    for (const feedback::VersionInfo& info : versions->list())
      if (info.version <= number) candidates.push_back(info.version);
    if (number > 0 && (candidates.empty() || candidates.back() != number)) candidates.push_back(number);  // missing: load() names it
    for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
      try {
        return serve_version(*it);
      } catch (const Error& e) {
        log(std::string(e.what()) + " (version " + std::to_string(*it) + (*it == number ? ", the current one" : "") +
            "); falling back to an earlier version ('digits model rollback' makes one current for good)");
      }
    }
    return serve_version(0);
  }

  // STATE_DIR/learning.json: how far the learner got and its last verdict, so a restart neither
  // retries a rejected batch nor forgets why it was rejected. Written atomically after every round.
  fs::path learning_file() const { return options.state_dir / "learning.json"; }

  // With PostgreSQL the same JSON is the learner row's progress, which only the replica that
  // leads writes (with its fencing epoch).
  void read_learning_state() {
    std::int64_t from_versions = 0;
    for (const feedback::VersionInfo& info : versions->list()) from_versions = std::max(from_versions, info.last_judgement_id);
    {
      std::lock_guard lock(mutex);
      considered = std::max(considered, from_versions);
    }
    std::string text;
    if (shared) {
      text = shared->progress();
    } else {
      std::ifstream in(learning_file());
      if (!in) return;
      std::stringstream read;
      read << in.rdbuf();
      text = read.str();
    }
    // Damaged or written by someone else: the file is a convenience, so it is ignored (the
    // versions still say how far learning got), never a reason not to start.
    const std::string ignored = (shared ? "the learner's progress in " + shared->where() : learning_file().string()) + " is not what digits writes there; ignored";
    try {
      const json state = parse_json_bounded(text);
      if (!state.is_object()) {
        log(ignored);
        return;
      }
      const std::int64_t read_considered = state.value("considered_up_to", std::int64_t{0});
      std::optional<LearningAttempt> read_attempt;
      if (const auto it = state.find("last_attempt"); it != state.end() && it->is_object()) {
        LearningAttempt a;
        a.accepted = it->value("accepted", false);
        a.reason = it->value("reason", "");
        a.up_to_judgement_id = it->value("up_to_judgement_id", std::int64_t{0});
        a.validation_before = it->value("validation_before", 0.0);
        a.validation_after = it->value("validation_after", 0.0);
        a.at = it->value("at", "");
        read_attempt = a;
      }
      std::lock_guard lock(mutex);
      considered = std::max(considered, read_considered);
      last_attempt = read_attempt;
    } catch (const std::exception&) {  // invalid JSON, too deep, or a field of the wrong type
      log(ignored);
    }
  }

  void write_learning_state() const {
    json state = {{"considered_up_to", considered}};
    if (last_attempt)
      state["last_attempt"] = {{"accepted", last_attempt->accepted},
                               {"reason", last_attempt->reason},
                               {"up_to_judgement_id", last_attempt->up_to_judgement_id},
                               {"validation_before", last_attempt->validation_before},
                               {"validation_after", last_attempt->validation_after},
                               {"at", last_attempt->at}};
    try {
      if (shared)
        shared->save_progress(state.dump(2) + "\n");
      else
        write_file_atomically(learning_file(), state.dump(2) + "\n");
    } catch (const Error& e) {
      log(std::string("cannot record the learner's progress: ") + e.what());
    }
  }

  // The judgement ids each version in the live version's line learned ([first, last] of each),
  // walking parents back to version 0.
  std::vector<std::pair<std::int64_t, std::int64_t>> learned_ranges() const {
    std::vector<std::pair<std::int64_t, std::int64_t>> learned;
    for (int v = live_model.load()->version; v > 0;) {
      Metadata metadata;
      try {
        metadata = versions->metadata(v);
      } catch (const Error&) {
        break;
      }
      learned.emplace_back(feedback::metadata_integer(metadata, kFirstJudgementKey), feedback::metadata_integer(metadata, feedback::kLastJudgementKey));
      const int parent = static_cast<int>(feedback::metadata_integer(metadata, feedback::kParentKey));
      if (parent >= v) break;  // a loop would never end
      v = parent;
    }
    return learned;
  }

  // Reads every judgement, a page at a time and without drawings, and rebuilds the replay for the
  // live version: the most recent corrections its line learned and the most recent confirmations
  // considered. With `count`, also the totals and the corrections pending (start-up). Memory: one
  // page and the two bounded replays, however large the store.
  void scan(bool count) {
    const auto learned = learned_ranges();
    std::int64_t up_to = 0;
    {
      std::lock_guard lock(mutex);
      up_to = considered;
    }
    RecentExamples kept_corrections(options.bounds.earlier_corrections, "earlier corrections");
    RecentExamples kept_confirmations(options.bounds.earlier_confirmations, "confirmations");
    std::int64_t all = 0, wrong = 0, waiting = 0;
    for (std::int64_t after = 0;;) {
      const std::vector<feedback::Example> page = store->examples(after, options.bounds.page);
      if (page.empty()) break;
      for (const feedback::Example& e : page) {
        ++all;
        if (!e.correct) ++wrong, waiting += e.id > up_to;
        if (!options.data || !learnable(e)) continue;  // learning is off, or this model cannot learn it: nothing to replay
        const bool was_learned = std::any_of(learned.begin(), learned.end(), [&](const auto& r) { return e.id >= r.first && e.id <= r.second; });
        if (e.correct && e.id <= up_to) kept_confirmations.add(e);
        if (!e.correct && was_learned) kept_corrections.add(e);
      }
      kept_corrections.trim();
      kept_confirmations.trim();
      after = page.back().id;
    }
    earlier_corrections = std::move(kept_corrections);
    earlier_confirmations = std::move(kept_confirmations);
    if (count) {
      std::lock_guard lock(mutex);
      judgements = all, corrections = wrong, pending = waiting;
    }
  }

  // Whether the models of this state directory can learn a judgement: "not a digit" (label 10)
  // needs the eleventh output (digits/classes.hpp). The API refuses such a judgement for a model of
  // ten classes, but a store may hold some from an earlier starting model that had it: they are
  // passed over, neither learned nor replayed.
  bool learnable(const feedback::Example& e) const { return e.label < start->model.network.classes(); }

  // The replay as one dataset, for a round (at most the two bounds' images: 15.7 MB by default).
  Dataset earlier() const {
    Dataset both = earlier_corrections.data();
    both.name = "earlier judgements";
    both.append(earlier_confirmations.data());
    return both;
  }

  // The quotas (options.quotas), from the store's indexes: microseconds, before anything is decoded.
  void check_quota(const std::string& client_id, const std::string& client_address) {
    const FeedbackQuotas& q = options.quotas;
    if (!store || (q.per_client_id <= 0 && q.per_address <= 0 && q.total_bytes <= 0)) return;
    feedback::Usage usage;
    try {
      usage = store->usage(q.per_client_id > 0 ? client_id : "", q.per_address > 0 ? client_address : "");
    } catch (const feedback::StorageError& e) {
      log(std::string("a judgement's quota could not be read: ") + e.what());
      throw storage_refusal(e.fault, "the judgement was not stored");
    }
    if (q.per_client_id > 0 && usage.by_client_id >= q.per_client_id)
      throw RequestError(429, "quota_exceeded", "this client_id has stored " + std::to_string(usage.by_client_id) +
                                                    " judgements, the most one client may; no more are stored from it (predictions go on)");
    if (q.per_address > 0 && usage.by_address >= q.per_address)
      throw RequestError(429, "quota_exceeded", "this address has stored " + std::to_string(usage.by_address) +
                                                    " judgements, the most one address may; no more are stored from it (predictions go on)");
    if (q.total_bytes > 0 && usage.bytes >= q.total_bytes)
      throw RequestError(507, "quota_exceeded", "the server's feedback store is full (" + std::to_string(usage.bytes >> 20) + " MiB of its " +
                                                    std::to_string(q.total_bytes >> 20) + " MiB quota); no more judgements are stored (predictions go on)");
  }

  void log_start() const {
    const auto served = live_model.load();
    std::string line = "state in " + (shared ? "PostgreSQL (" + shared->where() + ")" : options.state_dir.string()) + ": " + std::to_string(judgements) + " judgements (" + std::to_string(corrections) +
                       " corrections); ";
    if (served->version == 0)
      line += "serving the starting model (version 0)";
    else
      line += "serving version " + std::to_string(served->version) + ", learned from " +
              std::to_string(feedback::metadata_integer(served->model.metadata, feedback::kCorrectionsLearnedKey)) + " corrections (" +
              versions->where(served->version) + ")";
    log(line);
    if (!store)
      log("judgements are not stored and learning is off: " + store_problem);
    else if (!options.data)
      log("learning from corrections is off: " + options.disabled_reason + "; judgements are still stored");
  }

  // ---- with PostgreSQL: the learner's lock, and the live pointer other replicas move ----

  // One thread: every lead_retry it tries the learner's lock (or checks it still holds it), and
  // it follows the live pointer: at once on a NOTIFY, after the listener reconnects, and every
  // poll_interval whatever it heard. It waits in slices of 250 ms so that a stop is prompt.
  void watch() {
    auto next_lead = Clock::now(), next_poll = Clock::now();
    bool unreachable = false;
    for (;;) {
      {
        std::lock_guard lock(mutex);
        if (stopping) return;
      }
      if (learning_on() && Clock::now() >= next_lead) {
        try_lead();
        next_lead = Clock::now() + options.lead_retry;
      }
      bool read = Clock::now() >= next_poll;
      if (!read) {
        const auto slice = std::min({std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - Clock::now()),
                                     std::chrono::duration_cast<std::chrono::milliseconds>(next_lead - Clock::now()), std::chrono::milliseconds(250)});
        const feedback::Change change_seen = shared->wait_for_change(std::max(slice, std::chrono::milliseconds(1)));
        read = change_seen == feedback::Change::notified || change_seen == feedback::Change::reconnected;
        if (change_seen == feedback::Change::unavailable && !unreachable) log("the shared store cannot be reached; predictions go on with the live version, judgements are refused (503) until it returns");
        if (change_seen == feedback::Change::reconnected && unreachable) log("the shared store is reachable again");
        if (change_seen != feedback::Change::none) unreachable = change_seen == feedback::Change::unavailable;
      }
      // Word for the learner from other replicas: corrections they stored, a request to learn now.
      const bool corrections_stored = shared->take_new_corrections(), learn_asked = shared->take_learn_request();
      bool leading = false;
      {
        std::lock_guard lock(mutex);
        leading = leads;
        if (leading && learn_asked) {
          learn_requested = true;
          wake.notify_all();
        }
      }
      if (leading && corrections_stored) count_stored_corrections();
      if (read) next_poll = follow_live() ? Clock::now() + options.poll_interval : Clock::now() + std::chrono::milliseconds(200);
    }
  }

  void try_lead() {
    bool now_leads = false;
    try {
      now_leads = shared->try_lead(holder);
    } catch (const feedback::StorageError&) {
      now_leads = false;  // unreachable: the lock went with the session, and the log says so once (watch)
    }
    bool was = false;
    {
      std::lock_guard lock(mutex);
      was = leads;
      if (!now_leads) leads = false;
    }
    if (was && !now_leads) log("this replica no longer leads the learning (its PostgreSQL session ended); another replica takes over");
    if (was && now_leads) count_stored_corrections();  // in case a NOTIFY was missed
    if (now_leads && !was) {
      // Take over where the last learner stopped: its progress, the replay of the live line, the
      // corrections pending. Then rounds may start.
      try {
        std::lock_guard changing(change);
        read_learning_state();
        scan(true);
      } catch (const Error& e) {
        log(std::string("cannot take over the learning yet: ") + e.what());
        return;  // the lock stays held; the next try reads again
      }
      {
        std::lock_guard lock(mutex);
        leads = true;
        rescan = false;
        if (pending > 0) last_arrival = Clock::now();
      }
      log("this replica leads the learning now (fencing epoch " + std::to_string(shared->epoch()) + ", " + std::to_string(pending) + " corrections pending)");
      wake.notify_all();
    }
  }

  // Corrections other replicas stored wake no thread here: the learner counts those it has not
  // considered (on their NOTIFY, and at every check of its lock in case one was missed).
  void count_stored_corrections() {
    std::int64_t after = 0;
    {
      std::lock_guard lock(mutex);
      after = considered;
    }
    try {
      const std::int64_t waiting = store->corrections_after(after);
      std::lock_guard lock(mutex);
      if (waiting > pending) {
        pending = waiting;
        last_arrival = Clock::now();
        wake.notify_all();
      }
    } catch (const Error&) {
      // unreachable: counted again at the next word or check
    }
  }

  // Serves the version the pointer names, if it is not the one served. Returns false when it could
  // not look (the store unreachable, or a round or rollback holds `change`): then it looks again soon.
  bool follow_live() {
    std::unique_lock changing(change, std::try_to_lock);
    if (!changing) return false;
    int number = 0;
    std::int64_t all = 0, wrong = 0;
    try {
      number = versions->current();
      all = store ? store->count() : 0;
      wrong = store ? store->corrections() : 0;
    } catch (const Error&) {
      return false;
    }
    {
      std::lock_guard lock(mutex);
      judgements = all, corrections = wrong;  // every replica's, not only this one's
    }
    if (number == live_model.load()->version) return true;
    try {
      live_model.store(serve_version(number));
    } catch (const Error& e) {
      log(std::string("cannot serve the live version ") + std::to_string(number) + ": " + e.what() + "; still serving version " +
          std::to_string(live_model.load()->version));
      return true;
    }
    {
      std::lock_guard lock(mutex);
      rescan = true;
    }
    log("now serving version " + std::to_string(number) + ", which the shared store's live pointer names");
    return true;
  }

  // ---- the thread ----

  void run() {
    // Learning may take a core, never the requests' turn: a lower priority for this thread only
    // (on Linux, nice applies per thread). Best effort.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    std::unique_lock lock(mutex);
    while (!stopping) {
      if (!leads || (pending == 0 && !learn_requested && !retrying)) {
        wake.wait(lock);
        continue;
      }
      if (!learn_requested) {
        const Clock::time_point due = retrying ? retry_at : last_arrival + options.debounce;
        if (Clock::now() < due) {
          wake.wait_until(lock, due);
          continue;
        }
      }
      learn_requested = false;
      training = true;
      lock.unlock();
      try {
        round();
        std::lock_guard done(mutex);
        retrying = false;
        problem.clear();
      } catch (const feedback::StorageError& e) {
        // The disk's fault, not the judgements': the live model stays, nothing is marked as
        // considered, and the same round is tried again after a pause (with any corrections
        // that came meanwhile). A full disk so resumes by itself once there is space.
        const auto delay = std::chrono::duration_cast<std::chrono::seconds>(options.retry_delay).count();
        log(std::string("learning paused: ") + e.what() + "; the live model stays; trying again in " + std::to_string(delay) + " s");
        std::lock_guard failed(mutex);
        retrying = true;
        retry_at = Clock::now() + options.retry_delay;
        problem = storage_refusal(e.fault, "a new version cannot be saved; learning will try again", "a file in the server's state directory is damaged").what();
      } catch (const feedback::PromotionRefused& e) {
        // Another replica leads now, or a rollback came first: nothing was stored and nothing
        // is marked as considered. The new learner (or this one, on the new live version) learns
        // the same judgements again.
        log(std::string("learning: ") + e.what());
        std::lock_guard refused(mutex);
        retrying = true;
        retry_at = Clock::now() + options.debounce;
      } catch (const FineTuneCancelled&) {
        log("learning stopped: the server is stopping; the live model stays, and the round starts again with the next start");
      } catch (const std::exception& e) {
        // Any other failure is the round's own: logged, and not retried until new corrections come.
        log(std::string("learning failed: ") + e.what());
        std::lock_guard failed(mutex);
        pending = 0;
        retrying = false;
      }
      lock.lock();
      training = false;
    }
  }

  // One round: the judgements after `considered`, read a page at a time without drawings, up to
  // options.bounds.round_corrections corrections (the rest wait for the next round); the
  // corrections are fine-tuned on, the confirmations kept for replay. Bounded: fine_tune's steps
  // do not grow with the data, and nothing read grows with the store.
  void round() {
    std::lock_guard changing(change);
    bool changed = false;
    {
      std::lock_guard lock(mutex);
      changed = std::exchange(rescan, false);
    }
    if (changed) scan(false);  // the live version moved under us: replay its line
    std::int64_t after = 0;
    {
      std::lock_guard lock(mutex);
      after = considered;
    }
    Dataset new_corrections;
    new_corrections.name = "new corrections";
    RecentExamples confirmed(options.bounds.earlier_confirmations, "confirmations");
    std::size_t corrected = 0;
    std::int64_t up_to = after;
    for (bool full = false; !full;) {
      const std::vector<feedback::Example> page = store->examples(up_to, options.bounds.page);
      if (page.empty()) break;
      for (const feedback::Example& e : page) {
        if (!e.correct && corrected == options.bounds.round_corrections) {
          full = true;
          break;
        }
        if (!learnable(e)) {
          // passed over (learnable), but considered: the round moves past it
        } else if (e.correct) {
          confirmed.add(e);
        } else {
          new_corrections.pixels.insert(new_corrections.pixels.end(), e.input.begin(), e.input.end());
          new_corrections.labels.push_back(static_cast<std::uint8_t>(e.label));
          ++corrected;
        }
        up_to = e.id;
      }
      confirmed.trim();
    }
    if (up_to == after) return finish(after, std::nullopt);
    if (corrected == 0) {
      earlier_confirmations.add(confirmed.data());
      earlier_confirmations.trim();
      return finish(up_to, std::nullopt);
    }

    const auto base = live_model.load();
    FineTuneSettings settings = options.fine_tune;
    settings.cancelled = &cancel_round;
    settings.seed = options.fine_tune.seed + static_cast<std::uint64_t>(up_to);  // reproducible for the same judgements
    // The guard compares with the live version and with the starting model, so that accepted
    // rounds cannot drift down by 0.3 points each.
    settings.origin_validation_correct = start_validation_correct;
    settings.live_validation_correct = base == counted ? counted_correct : -1;
    const auto started = Clock::now();
    FineTuneResult result = fine_tune_guarded(base->model.network, new_corrections, earlier(), options.data->replay, options.data->validation, settings);
    const GuardVerdict& verdict = result.verdict;
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

    char timing[96];
    std::snprintf(timing, sizeof timing, "%zu corrections (judgements %lld–%lld), %.2f s: ", corrected, static_cast<long long>(after + 1),
                  static_cast<long long>(up_to), seconds);
    if (verdict.accepted) {
      Metadata metadata = start->model.metadata;
      std::erase_if(metadata, [](const auto& entry) {
        return entry.first.starts_with("checkpoint.") || entry.first.starts_with("optimizer.") || entry.first.starts_with("improved.") ||
               entry.first.starts_with("version.") || entry.first.starts_with("accuracy.") || entry.first == "created" ||
               entry.first == "dataset.directory";  // an older model's training folder: /api/model shows metadata
      });
      const long learned = static_cast<long>(feedback::metadata_integer(base->model.metadata, feedback::kCorrectionsLearnedKey)) + static_cast<long>(corrected);
      feedback::record_learning(metadata, verdict.validation_after, learned, up_to);
      metadata[feedback::kParentKey] = std::to_string(base->version);
      metadata[kFirstJudgementKey] = std::to_string(after + 1);
      metadata[kStartFingerprintKey] = fingerprint;
      metadata["version.start_source"] = start->source;
      metadata["version.fine_tune"] = std::to_string(settings.steps) + " steps of " + std::to_string(settings.batch) + ", momentum SGD lr " +
                                      std::to_string(settings.learning_rate) + ", seed " + std::to_string(settings.seed);
      const int number = versions->add(result.candidate, metadata);
      live_model.store(serve_version(number));  // read back: what is served is exactly what was saved
      counted = live_model.load(), counted_correct = verdict.validation_correct_after;  // a bit-exact round trip reads the same
      earlier_corrections.add(new_corrections);
      earlier_corrections.trim();
      earlier_confirmations.add(confirmed.data());
      earlier_confirmations.trim();
      log("learned version " + std::to_string(number) + " from " + timing + verdict.reason);
    } else {
      counted = base, counted_correct = verdict.validation_correct_before;
      earlier_confirmations.add(confirmed.data());
      earlier_confirmations.trim();
      log("kept version " + std::to_string(base->version) + " after " + timing + verdict.reason);
    }
    finish(up_to, LearningAttempt{verdict.accepted, verdict.reason, up_to, verdict.validation_before, verdict.validation_after, utc_timestamp()});
  }

  void finish(std::int64_t up_to, std::optional<LearningAttempt> attempt) {
    std::lock_guard lock(mutex);
    considered = std::max(considered, up_to);
    // Counted under the lock: a correction stored meanwhile is either in the count or counted by
    // add() after it, never missed (one counted twice only costs a round that finds nothing).
    try {
      pending = store->corrections_after(considered);
    } catch (const feedback::StorageError& e) {
      log(std::string("cannot count the corrections still pending: ") + e.what());
    }
    if (attempt) last_attempt = std::move(attempt);
    write_learning_state();
  }
};

Learner::Learner(ServedModel starting, LearnerOptions options) : impl_(std::make_unique<Impl>(std::move(starting), std::move(options))) {}
Learner::~Learner() = default;

std::shared_ptr<const ServedModel> Learner::live() const { return impl_->live_model.load(); }

std::string Learner::add(feedback::Judgement& judgement) {
  if (!impl_->store) throw RequestError(503, "feedback_unavailable", impl_->store_problem);
  std::lock_guard storing(impl_->storing);
  impl_->check_quota(judgement.client_id, judgement.client_address);
  try {
    judgement.id = impl_->store->add(judgement);
  } catch (const feedback::StorageError& e) {
    impl_->log(std::string("a judgement was not stored: ") + e.what());
    const RequestError refusal = storage_refusal(e.fault, "the judgement was not stored");
    {
      std::lock_guard lock(impl_->mutex);
      impl_->problem = refusal.what();
    }
    throw refusal;
  }
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->retrying) impl_->problem.clear();
    ++impl_->judgements;
    if (!judgement.correct) {
      ++impl_->corrections;
      if (impl_->learning_on()) {
        ++impl_->pending;
        impl_->last_arrival = Clock::now();
      }
    }
  }
  if (!impl_->learning_on()) return "off";
  if (judgement.correct) return "not_needed";
  impl_->wake.notify_all();
  return "queued";
}

void Learner::check_quota(const std::string& client_id, const std::string& client_address) const {
  if (!impl_->store) throw RequestError(503, "feedback_unavailable", impl_->store_problem);
  impl_->check_quota(client_id, client_address);
}

LearningStatus Learner::status() const {
  std::lock_guard lock(impl_->mutex);
  LearningStatus s;
  s.enabled = impl_->learning_on();
  s.store = impl_->shared ? "postgresql" : "sqlite";
  s.learner = s.enabled && impl_->leads;
  s.disabled_reason = impl_->store ? impl_->options.disabled_reason : impl_->store_problem;
  s.problem = impl_->store ? impl_->problem : impl_->store_problem;
  s.judgements = impl_->judgements;
  s.corrections = impl_->corrections;
  s.pending = impl_->pending;
  const bool waiting = s.enabled && (s.pending > 0 || impl_->learn_requested);
  s.state = impl_->training ? "training" : (waiting ? "waiting" : "idle");
  s.last_attempt = impl_->last_attempt;
  return s;
}

bool Learner::learn_now() {
  if (!impl_->learning_on()) return false;
  bool elsewhere = false;
  {
    std::lock_guard lock(impl_->mutex);
    elsewhere = impl_->shared && !impl_->leads;
    if (!elsewhere) impl_->learn_requested = true;
  }
  if (elsewhere) {
    // Another replica learns: it hears the request (NOTIFY) and starts the round.
    try {
      impl_->shared->request_learning();
    } catch (const feedback::StorageError& e) {
      impl_->log(std::string("cannot pass the request to learn on: ") + e.what());
      throw storage_refusal(e.fault, "the round was not requested", "the shared store is damaged");
    }
    return true;
  }
  impl_->wake.notify_all();
  return true;
}

int Learner::rollback(std::optional<int> version) {
  std::lock_guard changing(impl_->change);
  int now = 0;
  try {
    now = impl_->versions->rollback(version);
  } catch (const feedback::StorageError& e) {
    impl_->log(std::string("rollback failed: ") + e.what());
    throw storage_refusal(e.fault, "the model was not rolled back", "a model version file on the server is damaged");
  }
  impl_->live_model.store(impl_->load_current());
  if (impl_->store) impl_->scan(false);
  impl_->log("rolled back to version " + std::to_string(now));
  return now;
}

}  // namespace digits::server
