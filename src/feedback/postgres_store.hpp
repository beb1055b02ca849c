// The store that replicas share: one PostgreSQL, through libpq. It holds what a state directory
// holds for one process (docs/scaling.md):
//  - the judgements (JudgementStore), ids given in commit order;
//  - the model versions (VersionStore): each model file's bytes in a bytea, with its number,
//    parent, SHA-256, guard figures and status;
//  - a one-row pointer to the live version;
//  - the learner's progress, and the fencing epoch of the replica that learns.
// And what one process never needed: exactly one learner among the replicas (a session advisory
// lock, try_lead), and word of a new live version (LISTEN/NOTIFY, wait_for_change).
//
// The schema is versioned (table digits_schema) and created or migrated on start; a newer one is
// refused. Connections: a bounded pool for judgements and reads, one connection that holds the
// learner's lock and promotes, one that listens. A password never leaves this file: where()
// and every message name the server without it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "feedback/model_versions.hpp"
#include "feedback/store.hpp"

namespace digits::feedback {

// "postgresql://…" or "postgres://…": a connection URI, which --store takes instead of a state
// directory. (libpq's key=value form is accepted too when it holds "dbname=" or "host=".)
bool is_postgres_connection(const std::string& text);

// The connection string as logs may show it: every option libpq parsed from it except the
// password, as key=value pairs ("host=db.example port=5432 dbname=digits user=digits sslmode=require").
// Throws Error when libpq cannot parse it (the message names no password).
std::string redact_connection_string(const std::string& conninfo);

struct PostgresOptions {
  std::string conninfo;  // a URI or key=value string; sslmode and every other libpq option pass through
  // Connections for judgements and reads, at most; a request waits up to wait_for_connection
  // for one, then is refused (StorageError io). With the learner's and the listener's, a replica
  // holds at most connections + 2.
  std::size_t connections = 4;
  std::chrono::milliseconds wait_for_connection{5000};
  std::string application_name = "digits";  // shown in pg_stat_activity
};

// What wait_for_change saw.
enum class Change { none, notified, reconnected, unavailable };

class PostgresStore {
 public:
  // Connects, then creates the schema or migrates an older one, in one transaction under an
  // advisory lock (replicas starting together migrate once). Throws StorageError: unavailable
  // when the server cannot be reached or refuses the login, foreign for a newer schema or
  // tables of another program, read_only when the role may not create the schema.
  explicit PostgresStore(PostgresOptions options);
  ~PostgresStore();
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // Views over this store's connections (they share them, and keep them open while they live).
  std::unique_ptr<JudgementStore> judgements() const;
  std::unique_ptr<VersionStore> versions() const;

  // ---- one learner among the replicas ----
  // Tries pg_try_advisory_lock on the learner's own connection; when it is taken, the fencing
  // epoch is raised in the same statement (one transaction), and every later promotion (a
  // version's add) and progress write presents it. Already leading: checks that the connection
  // and the epoch are still this replica's. Returns whether this replica leads now; a lost
  // connection is a lost lead. `holder` names this replica for people (host and pid).
  bool try_lead(const std::string& holder);
  bool leading() const;
  std::int64_t epoch() const;  // this replica's epoch while leading, else 0

  // The learner's progress as the learner wrote it (JSON text, "{}" when none).
  std::string progress() const;
  // Written only while leading, with the epoch: PromotionRefused when another replica leads now.
  void save_progress(const std::string& json);
  // Writes the progress without an epoch: for `digits store copy` into a store no replica uses yet.
  void restore_progress(const std::string& json);

  // ---- new versions ----
  // Waits up to `timeout` for a NOTIFY on the live version's channel. On its own connection,
  // (re)connected and LISTENing as needed: `reconnected` says that notifications may have been
  // missed (read the pointer), `unavailable` that the server cannot be reached (after waiting).
  Change wait_for_change(std::chrono::milliseconds timeout);
  // What the listener also heard for the learner (each true once per word, then false): a
  // correction stored by any replica (and after a reconnect, when some may have been missed), and
  // a request to learn now sent to any replica (request_learning).
  bool take_new_corrections();
  bool take_learn_request();
  // POST /api/model/learn on a replica that does not learn: NOTIFY the one that does.
  void request_learning();

  int schema_version() const;
  std::string where() const;  // the redacted connection string

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The schema version this digits writes (digits_schema.version).
inline constexpr int kPostgresSchemaVersion = 1;

}  // namespace digits::feedback
