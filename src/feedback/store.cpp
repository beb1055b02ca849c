#include "feedback/store.hpp"

#include <sqlite3.h>

#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <mutex>

#include "digits/classes.hpp"
#include "digits/error.hpp"
#include "feedback/storage_error.hpp"

namespace digits::feedback {

namespace {

// Stamped into the database header (PRAGMA application_id) so that a SQLite file made by another
// program is recognised as "not ours" rather than written into. The bytes spell "dgts".
constexpr int kApplicationId = 0x64677473;
// PRAGMA user_version: the schema below. A later schema bumps it and migrates older files on open.
// Version 2 added client_address and the indexes the quotas count by (kMigrateFrom1); version 3
// lets label and predicted be 10, "not a digit" (digits/classes.hpp; kWidenLabelsFrom2).
constexpr int kSchemaVersion = 3;
constexpr int kImageBytes = 28 * 28;
constexpr std::size_t kMaxClientIdBytes = 256;

// The schema, version 3. The CHECKs repeat add()'s validation so that a row written by any other
// tool is held to the same rules. AUTOINCREMENT: an id is never reused, even after rows are deleted,
// so "everything after id N" (since) never misses or repeats a judgement. The drawing is the last
// column: SQLite keeps the tail of a large row in a chain of overflow pages, and a query for the
// columns before it (examples(), the learner's) never walks that chain. (A database made by
// version 1 keeps its order, the drawing third: reading it costs more I/O, the same memory.)
constexpr const char* kSchema = R"sql(
CREATE TABLE judgements (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  input          BLOB    NOT NULL CHECK (length(input) = 784),        -- 28×28 uint8, row-major, 0 = background
  label          INTEGER NOT NULL CHECK (label BETWEEN 0 AND 10),      -- a digit, or 10: not a digit (since version 3)
  predicted      INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 10),
  probabilities  BLOB    NOT NULL CHECK (length(probabilities) = 40),  -- 10 × float32, little-endian
  correct        INTEGER NOT NULL CHECK (correct = (label = predicted)),
  model_version  INTEGER NOT NULL CHECK (model_version >= 0),
  created_ms     INTEGER NOT NULL CHECK (created_ms >= 0),             -- Unix time, milliseconds
  client_id      TEXT    NOT NULL,
  client_address TEXT    NOT NULL DEFAULT '',                          -- the remote address (since version 2)
  drawing_png    BLOB    NOT NULL                                      -- 8-bit gray PNG, re-encoded by the server (may be empty)
);
CREATE INDEX judgements_by_correct ON judgements (correct);
CREATE INDEX judgements_by_client ON judgements (client_id);
CREATE INDEX judgements_by_address ON judgements (client_address);
)sql";

// Version 1 → 2: the column (ALTER TABLE … ADD COLUMN with a constant default rewrites no row) and
// the two indexes the quotas count by (built once, reading every row: seconds for a gigabyte).
constexpr const char* kMigrateFrom1 = R"sql(
ALTER TABLE judgements ADD COLUMN client_address TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS judgements_by_client ON judgements (client_id);
CREATE INDEX IF NOT EXISTS judgements_by_address ON judgements (client_address);
)sql";

// Version 2 → 3: the two CHECKs on label and predicted widened from 0–9 to 0–10. SQLite cannot
// ALTER a CHECK; a constraint that every existing row still meets may instead be changed in the
// schema's text (https://www.sqlite.org/lang_altertable.html#otheralter, the procedure for
// "removing CHECK … constraints": writable_schema, then bump schema_version so every connection
// reads the new text). One UPDATE, whatever the size of the store; a rebuild would copy every
// drawing. kCheckFrom2 → kCheckTo3 in the table's CREATE text, for label and predicted.
constexpr std::array<std::pair<const char*, const char*>, 2> kWidenLabelsFrom2 = {{
    {"CHECK (label BETWEEN 0 AND 9)", "CHECK (label BETWEEN 0 AND 10)"},
    {"CHECK (predicted BETWEEN 0 AND 9)", "CHECK (predicted BETWEEN 0 AND 10)"},
}};

constexpr const char* kColumns = "id, input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id, client_address";

std::string encode_probabilities(const std::array<float, 10>& probabilities) {
  std::string bytes(40, '\0');
  for (std::size_t d = 0; d < 10; ++d) {
    const auto bits = std::bit_cast<std::uint32_t>(probabilities[d]);
    for (std::size_t k = 0; k < 4; ++k) bytes[4 * d + k] = static_cast<char>((bits >> (8 * k)) & 0xff);  // little-endian
  }
  return bytes;
}

std::array<float, 10> decode_probabilities(const unsigned char* bytes) {
  std::array<float, 10> probabilities{};
  for (std::size_t d = 0; d < 10; ++d) {
    std::uint32_t bits = 0;
    for (std::size_t k = 0; k < 4; ++k) bits |= static_cast<std::uint32_t>(bytes[4 * d + k]) << (8 * k);
    probabilities[d] = std::bit_cast<float>(bits);
  }
  return probabilities;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void validate_judgement(const Judgement& j) {
  auto invalid = [](const std::string& what) { throw Error("invalid judgement: " + what); };
  if (j.input.size() != kImageBytes) invalid("the input has " + std::to_string(j.input.size()) + " bytes, expected 784 (28×28)");
  if (j.label < 0 || j.label > kNotADigit) invalid("label " + std::to_string(j.label) + " is neither a digit 0–9 nor 10 (not a digit)");
  if (j.predicted < 0 || j.predicted > kNotADigit) invalid("predicted " + std::to_string(j.predicted) + " is neither a digit 0–9 nor 10 (not a digit)");
  if (j.correct != (j.label == j.predicted))
    invalid(j.correct ? "judged right, but the label " + std::to_string(j.label) + " is not the prediction " + std::to_string(j.predicted)
                      : "judged wrong, but the label is the prediction " + std::to_string(j.predicted));
  for (float p : j.probabilities) {
    if (!std::isfinite(p) || p < 0.0f || p > 1.0f) invalid("a probability is not a number in 0–1");
  }
  if (j.model_version < 0) invalid("model version " + std::to_string(j.model_version) + " is negative");
  if (j.created_ms < 0) invalid("created_ms is negative");
  if (j.client_id.size() > kMaxClientIdBytes) invalid("the client id is longer than " + std::to_string(kMaxClientIdBytes) + " bytes");
  if (j.client_address.size() > kMaxClientIdBytes) invalid("the client address is longer than " + std::to_string(kMaxClientIdBytes) + " bytes");
}

// One connection, one mutex: SQLite's own locking would allow more, but a judgement is a few
// hundred bytes and nothing here is slow enough to be worth the subtlety.
struct Store::Impl {
  std::filesystem::path path;
  sqlite3* db = nullptr;
  sqlite3_stmt* insert = nullptr;
  sqlite3_stmt* insert_with_id = nullptr;
  sqlite3_stmt* select_since = nullptr;
  sqlite3_stmt* select_examples = nullptr;
  sqlite3_stmt* count_all = nullptr;
  sqlite3_stmt* count_wrong = nullptr;
  sqlite3_stmt* count_wrong_after = nullptr;
  sqlite3_stmt* count_client = nullptr;
  sqlite3_stmt* count_address = nullptr;
  mutable std::mutex mutex;

  ~Impl() {
    for (sqlite3_stmt* statement : {insert, insert_with_id, select_since, select_examples, count_all, count_wrong, count_wrong_after, count_client, count_address})
      sqlite3_finalize(statement);
    sqlite3_close_v2(db);
  }

  // Every failure past add()'s validation is the storage's, never the caller's: a StorageError
  // whose fault says which (a full disk, a read-only one, a damaged file…), naming the file.
  [[noreturn]] void fail(const std::string& what) const {
    if (!db) throw StorageError(StorageFault::io, path.string() + ": " + what + ": out of memory");
    fail(what, sqlite3_extended_errcode(db), sqlite3_errmsg(db), sqlite3_system_errno(db));
  }

  [[noreturn]] void fail(const std::string& what, int code, const std::string& message, int system_errno) const {
    StorageFault fault = StorageFault::io;
    switch (code & 0xff) {  // the primary code; the extended one says more in the message
      case SQLITE_FULL: fault = StorageFault::disk_full; break;
      case SQLITE_READONLY:
      case SQLITE_PERM: fault = StorageFault::read_only; break;
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB: fault = StorageFault::corrupt; break;
      case SQLITE_IOERR:
      case SQLITE_CANTOPEN: fault = system_errno ? fault_of_errno(system_errno) : StorageFault::io; break;
      default: break;
    }
    throw StorageError(fault, path.string() + ": " + what + ": " + message);
  }

  void execute(const char* sql, const char* what) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(what);
  }

  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) != SQLITE_OK) fail("cannot prepare a query");
    return statement;
  }

  // A PRAGMA or query whose answer is one integer.
  std::int64_t integer(const char* sql) const {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) != SQLITE_OK) fail_open();
    const int step = sqlite3_step(statement);
    const std::int64_t value = step == SQLITE_ROW ? sqlite3_column_int64(statement, 0) : 0;
    sqlite3_finalize(statement);
    if (step != SQLITE_ROW && step != SQLITE_DONE) fail_open();
    return value;
  }

  // A PRAGMA whose answer is one word.
  std::string text(const char* sql) const {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) != SQLITE_OK) fail_open();
    std::string value;
    const int step = sqlite3_step(statement);
    if (step == SQLITE_ROW && sqlite3_column_text(statement, 0)) value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    sqlite3_finalize(statement);
    if (step != SQLITE_ROW && step != SQLITE_DONE) fail_open();
    return value;
  }

  // The first read of the file is where SQLite notices it is not a database at all.
  [[noreturn]] void fail_open() const {
    if (sqlite3_errcode(db) == SQLITE_NOTADB) throw StorageError(StorageFault::corrupt, path.string() + ": not a feedback database (not a SQLite file at all)");
    fail("cannot read the feedback database");
  }

  void open(bool create_if_missing) {
    std::error_code ec;
    if (!create_if_missing && !std::filesystem::exists(path, ec))
      throw Error(path.string() + ": no feedback database here (nothing has been judged yet, or the state directory is wrong)");
    if (std::filesystem::is_directory(path, ec)) throw Error(path.string() + ": is a directory, not a feedback database");
    if (create_if_missing && path.has_parent_path()) {
      std::filesystem::create_directories(path.parent_path(), ec);
      if (ec) throw StorageError(fault_of_errno(ec.value()), path.parent_path().string() + ": cannot create the state directory: " + ec.message());
    }
    const int flags = SQLITE_OPEN_READWRITE | (create_if_missing ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) fail("cannot open the feedback database");
    sqlite3_extended_result_codes(db, 1);
    // Another process (the CLI exporting while the server writes) may hold the lock for a moment.
    sqlite3_busy_timeout(db, 5000);

    // Is it ours? A new file has no tables, application id 0 and user_version 0.
    const std::int64_t application_id = integer("PRAGMA application_id");
    const std::int64_t schema_version = integer("PRAGMA user_version");
    const std::int64_t tables = integer("SELECT count(*) FROM sqlite_schema");
    if (application_id != kApplicationId && (application_id != 0 || tables != 0))
      throw StorageError(StorageFault::foreign, path.string() + ": a SQLite database, but not a digits feedback database");
    if (schema_version > kSchemaVersion)
      throw StorageError(StorageFault::foreign, path.string() + ": feedback schema version " + std::to_string(schema_version) + " was written by a newer digits; this one reads up to version " +
                  std::to_string(kSchemaVersion));

    // A file cut short or damaged in the middle opens without complaint: SQLite notices only when a
    // read reaches the damage, which could be in the middle of serving. quick_check reads every
    // page now (a few milliseconds for thousands of judgements) and finds it at start-up instead.
    if (tables != 0) {
      if (const std::string check = text("PRAGMA quick_check(1)"); check != "ok")
        throw StorageError(StorageFault::corrupt, path.string() + ": the feedback database is damaged: " + check);
    }

    // WAL: a write appends to the log and readers are never blocked. synchronous=FULL: the log is
    // fsynced at every commit, so a judgement that add() returned survives kill -9 and power loss
    // (NORMAL would only survive a process crash).
    if (text("PRAGMA journal_mode = WAL") != "wal") fail("cannot switch the feedback database to WAL mode");
    execute("PRAGMA synchronous = FULL", "cannot set synchronous = FULL");

    if (tables == 0) {
      // A new database: the schema and its stamps in one transaction, so a crash leaves either
      // nothing or everything.
      execute("BEGIN IMMEDIATE", "cannot start the schema transaction");
      try {
        // Another process may have created it while this one waited for the write lock.
        if (integer("SELECT count(*) FROM sqlite_schema") == 0) execute(kSchema, "cannot create the schema");
        execute(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str(), "cannot stamp the application id");
        execute(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(), "cannot stamp the schema version");
        execute("COMMIT", "cannot commit the schema");
      } catch (...) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }

    // Ids must be the rowid, which AUTOINCREMENT hands out: in a table whose id is an ordinary
    // column (another program's CREATE TABLE), every judgement stored got the id NULL (fuzz_store).
    if (integer("SELECT count(*) FROM pragma_table_info('judgements') WHERE name = 'id' AND pk = 1 AND upper(type) = 'INTEGER'") != 1)
      throw StorageError(StorageFault::foreign, path.string() + ": its judgements table has no INTEGER PRIMARY KEY id; not a digits feedback database");
    if (tables != 0 && schema_version < kSchemaVersion) migrate();

    insert = prepare(
        "INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id, client_address) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert_with_id = prepare(
        "INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id, client_address, id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    select_since = prepare((std::string("SELECT ") + kColumns + " FROM judgements WHERE id > ? ORDER BY id LIMIT ?").c_str());
    // length() of a blob is read from the row's header (SQLite's OPFLAG_LENGTHARG), never from the
    // blob itself: probabilities sits after the drawing, and its bytes would cost the whole row.
    select_examples = prepare("SELECT id, input, label, correct, length(probabilities) FROM judgements WHERE id > ? ORDER BY id LIMIT ?");
    count_all = prepare("SELECT count(*) FROM judgements");
    count_wrong = prepare("SELECT count(*) FROM judgements WHERE correct = 0");
    count_wrong_after = prepare("SELECT count(*) FROM judgements WHERE correct = 0 AND id > ?");
    count_client = prepare("SELECT count(*) FROM judgements WHERE client_id = ?");
    count_address = prepare("SELECT count(*) FROM judgements WHERE client_address = ?");
  }

  // An older schema's file, brought up to kSchemaVersion in one transaction: a crash leaves the old
  // version whole, and another process that migrated it first is noticed under the write lock.
  // A version-1 table that cannot take the change is not one digits made.
  void migrate() {
    execute("BEGIN IMMEDIATE", "cannot start the schema migration");
    try {
      const std::int64_t from = integer("PRAGMA user_version");
      if (from < 2) {
        if (sqlite3_exec(db, kMigrateFrom1, nullptr, nullptr, nullptr) != SQLITE_OK) {
          if ((sqlite3_errcode(db) & 0xff) == SQLITE_ERROR)
            throw StorageError(StorageFault::foreign, path.string() + ": its judgements table cannot be brought to schema version 2 (" +
                                                          sqlite3_errmsg(db) + "); not a digits feedback database");
          fail("cannot migrate the feedback database to schema version 2");
        }
      }
      if (from < 3) widen_labels();
      execute(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(), "cannot stamp the schema version");
      execute("COMMIT", "cannot commit the schema migration");
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::int64_t store(sqlite3_stmt* statement, const Judgement& judgement, std::int64_t id);

  // Version 2 → 3 (kWidenLabelsFrom2), inside migrate()'s transaction. A table whose text lacks
  // either CHECK as digits wrote it is not one digits made.
  void widen_labels() {
    std::string sql;
    {
      sqlite3_stmt* statement = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'judgements'", -1, &statement, nullptr) != SQLITE_OK)
        fail("cannot read the feedback schema");
      if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0)) sql = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
      sqlite3_finalize(statement);
    }
    for (const auto& [before, after] : kWidenLabelsFrom2) {
      const std::size_t at = sql.find(before);
      if (at == std::string::npos || sql.find(before, at + 1) != std::string::npos)
        throw StorageError(StorageFault::foreign, path.string() + ": its judgements table cannot be brought to schema version 3 (it has no single " + before +
                                                      "); not a digits feedback database");
      sql.replace(at, std::string_view(before).size(), after);
    }
    // SQLite's defensive mode, when a build turns it on, forbids writable_schema: off for this
    // connection, which only ever runs this program's statements.
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, nullptr);
    const std::int64_t cookie = integer("PRAGMA schema_version");
    execute("PRAGMA writable_schema = ON", "cannot widen the label constraints");
    sqlite3_stmt* update = nullptr;
    if (sqlite3_prepare_v2(db, "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = 'judgements'", -1, &update, nullptr) != SQLITE_OK)
      fail("cannot widen the label constraints");
    sqlite3_bind_text(update, 1, sql.c_str(), static_cast<int>(sql.size()), SQLITE_TRANSIENT);
    const int step = sqlite3_step(update);
    sqlite3_finalize(update);
    if (step != SQLITE_DONE) fail("cannot widen the label constraints");
    execute(("PRAGMA schema_version = " + std::to_string(cookie + 1)).c_str(), "cannot widen the label constraints");
    execute("PRAGMA writable_schema = OFF", "cannot widen the label constraints");
  }

  std::int64_t count(sqlite3_stmt* statement) const {
    const int step = sqlite3_step(statement);
    const std::int64_t value = step == SQLITE_ROW ? sqlite3_column_int64(statement, 0) : 0;
    sqlite3_reset(statement);
    if (step != SQLITE_ROW) fail("cannot count the judgements");
    return value;
  }
};

Store::Store(const std::filesystem::path& path, bool create_if_missing) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->open(create_if_missing);
}

Store::~Store() = default;

std::int64_t Store::add(const Judgement& judgement) {
  validate_judgement(judgement);
  std::lock_guard lock(impl_->mutex);
  return impl_->store(impl_->insert, judgement, 0);
}

void Store::restore(const Judgement& judgement) {
  validate_judgement(judgement);
  if (judgement.id < 1) throw Error("judgement id " + std::to_string(judgement.id) + " is not positive");
  std::lock_guard lock(impl_->mutex);
  impl_->store(impl_->insert_with_id, judgement, judgement.id);
}

// One INSERT: with a new id (id 0, `insert`) or the given one (`insert_with_id`, whose last
// parameter it is). Returns the id.
std::int64_t Store::Impl::store(sqlite3_stmt* s, const Judgement& judgement, std::int64_t id) {
  const std::string probabilities = encode_probabilities(judgement.probabilities);
  const std::int64_t created_ms = judgement.created_ms ? judgement.created_ms : now_ms();
  // Bound parameters only: nothing a client sends is ever part of the SQL text.
  sqlite3_bind_blob(s, 1, judgement.input.data(), static_cast<int>(judgement.input.size()), SQLITE_STATIC);
  sqlite3_bind_blob(s, 2, judgement.drawing_png.data(), static_cast<int>(judgement.drawing_png.size()), SQLITE_STATIC);
  sqlite3_bind_int(s, 3, judgement.label);
  sqlite3_bind_int(s, 4, judgement.predicted);
  sqlite3_bind_blob(s, 5, probabilities.data(), static_cast<int>(probabilities.size()), SQLITE_STATIC);
  sqlite3_bind_int(s, 6, judgement.correct ? 1 : 0);
  sqlite3_bind_int(s, 7, judgement.model_version);
  sqlite3_bind_int64(s, 8, created_ms);
  sqlite3_bind_text(s, 9, judgement.client_id.data(), static_cast<int>(judgement.client_id.size()), SQLITE_STATIC);
  sqlite3_bind_text(s, 10, judgement.client_address.data(), static_cast<int>(judgement.client_address.size()), SQLITE_STATIC);
  if (id) sqlite3_bind_int64(s, 11, id);
  const int step = sqlite3_step(s);
  // The error as the step left it: reset() may report it again, but keep the first account.
  const int code = sqlite3_extended_errcode(db);
  const std::string message = sqlite3_errmsg(db);
  const int system_errno = sqlite3_system_errno(db);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (id && (code & 0xff) == SQLITE_CONSTRAINT) throw Error("judgement id " + std::to_string(id) + " is already taken in " + path.string());
  if (step != SQLITE_DONE) fail("cannot store the judgement", code, message, system_errno);
  return sqlite3_last_insert_rowid(db);
}

std::vector<Judgement> Store::since(std::int64_t after_id, std::size_t limit) const {
  std::lock_guard lock(impl_->mutex);
  sqlite3_stmt* s = impl_->select_since;
  sqlite3_bind_int64(s, 1, after_id);
  sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  std::vector<Judgement> judgements;
  int step = SQLITE_ROW;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    Judgement j;
    j.id = sqlite3_column_int64(s, 0);
    auto blob = [&](int column) {
      const auto* bytes = static_cast<const unsigned char*>(sqlite3_column_blob(s, column));
      return std::pair{bytes, static_cast<std::size_t>(sqlite3_column_bytes(s, column))};
    };
    // The schema's CHECKs hold these sizes; a file edited by hand without them is refused, not misread.
    const auto [input, input_size] = blob(1);
    const auto [probabilities, probabilities_size] = blob(5);
    if (input_size != kImageBytes || probabilities_size != 40) {
      sqlite3_reset(s);
      throw StorageError(StorageFault::corrupt,
                         impl_->path.string() + ": judgement " + std::to_string(j.id) + " is malformed (input or probabilities of the wrong size)");
    }
    j.input.assign(input, input + input_size);
    const auto [drawing, drawing_size] = blob(2);
    if (drawing_size) j.drawing_png.assign(reinterpret_cast<const char*>(drawing), drawing_size);
    j.label = sqlite3_column_int(s, 3);
    j.predicted = sqlite3_column_int(s, 4);
    j.probabilities = decode_probabilities(probabilities);
    j.correct = sqlite3_column_int(s, 6) != 0;
    j.model_version = sqlite3_column_int(s, 7);
    j.created_ms = sqlite3_column_int64(s, 8);
    const auto* client = reinterpret_cast<const char*>(sqlite3_column_text(s, 9));
    if (client) j.client_id.assign(client, static_cast<std::size_t>(sqlite3_column_bytes(s, 9)));
    const auto* address = reinterpret_cast<const char*>(sqlite3_column_text(s, 10));
    if (address) j.client_address.assign(address, static_cast<std::size_t>(sqlite3_column_bytes(s, 10)));
    judgements.push_back(std::move(j));
  }
  sqlite3_reset(s);
  if (step != SQLITE_DONE) impl_->fail("cannot read the judgements");
  return judgements;
}

std::vector<Example> Store::examples(std::int64_t after_id, std::size_t limit) const {
  std::lock_guard lock(impl_->mutex);
  sqlite3_stmt* s = impl_->select_examples;
  sqlite3_bind_int64(s, 1, after_id);
  sqlite3_bind_int64(s, 2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  std::vector<Example> examples;
  examples.reserve(std::min<std::size_t>(limit, 4096));
  int step = SQLITE_ROW;
  while ((step = sqlite3_step(s)) == SQLITE_ROW) {
    Example e;
    e.id = sqlite3_column_int64(s, 0);
    const auto* input = static_cast<const unsigned char*>(sqlite3_column_blob(s, 1));
    const auto input_size = static_cast<std::size_t>(sqlite3_column_bytes(s, 1));
    e.label = sqlite3_column_int(s, 2);
    e.correct = sqlite3_column_int(s, 3) != 0;
    // The schema's CHECKs hold these; a file edited by hand without them is refused, not misread.
    if (input_size != kImageBytes || sqlite3_column_int64(s, 4) != 40 || e.label < 0 || e.label > kNotADigit) {
      sqlite3_reset(s);
      throw StorageError(StorageFault::corrupt, impl_->path.string() + ": judgement " + std::to_string(e.id) +
                                                    " is malformed (input or probabilities of the wrong size, or a label outside 0–10)");
    }
    e.input.assign(input, input + input_size);
    examples.push_back(std::move(e));
  }
  sqlite3_reset(s);
  if (step != SQLITE_DONE) impl_->fail("cannot read the judgements");
  return examples;
}

std::int64_t Store::corrections_after(std::int64_t after_id) const {
  std::lock_guard lock(impl_->mutex);
  sqlite3_bind_int64(impl_->count_wrong_after, 1, after_id);
  return impl_->count(impl_->count_wrong_after);
}

Usage Store::usage(const std::string& client_id, const std::string& client_address) const {
  std::lock_guard lock(impl_->mutex);
  Usage usage;
  if (!client_id.empty()) {
    sqlite3_bind_text(impl_->count_client, 1, client_id.data(), static_cast<int>(client_id.size()), SQLITE_TRANSIENT);
    usage.by_client_id = impl_->count(impl_->count_client);
  }
  if (!client_address.empty()) {
    sqlite3_bind_text(impl_->count_address, 1, client_address.data(), static_cast<int>(client_address.size()), SQLITE_TRANSIENT);
    usage.by_address = impl_->count(impl_->count_address);
  }
  // The pages in use (a deleted row's pages go to the free list and are reused first), so this is
  // what the judgements hold on disk; O(1), read from the header and the WAL.
  usage.bytes = (impl_->integer("PRAGMA page_count") - impl_->integer("PRAGMA freelist_count")) * impl_->integer("PRAGMA page_size");
  return usage;
}

std::int64_t Store::count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->count(impl_->count_all);
}

std::int64_t Store::corrections() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->count(impl_->count_wrong);
}

std::int64_t Store::last_id() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->integer(
      "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'judgements'), 0), coalesce((SELECT max(id) FROM judgements), 0))");
}

void Store::continue_ids_after(std::int64_t id) {
  std::lock_guard lock(impl_->mutex);
  const std::string n = std::to_string(id);
  // sqlite_sequence is AUTOINCREMENT's counter, one row per table once a row has been inserted;
  // SQLite documents that it may be written like any table.
  impl_->execute("BEGIN IMMEDIATE", "cannot start a transaction");
  try {
    impl_->execute(("UPDATE sqlite_sequence SET seq = max(seq, " + n + ") WHERE name = 'judgements'").c_str(), "cannot move the id counter");
    impl_->execute(("INSERT INTO sqlite_sequence (name, seq) SELECT 'judgements', " + n +
                    " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'judgements')")
                       .c_str(),
                   "cannot move the id counter");
    impl_->execute("COMMIT", "cannot commit the id counter");
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

const std::filesystem::path& Store::path() const { return impl_->path; }

std::string Store::journal_mode() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->text("PRAGMA journal_mode");
}

Dataset to_dataset(const std::vector<Judgement>& judgements, std::string name) {
  Dataset data;
  data.name = std::move(name);
  data.pixels.reserve(judgements.size() * kImageBytes);
  data.labels.reserve(judgements.size());
  for (const Judgement& j : judgements) {
    if (j.input.size() != kImageBytes || j.label < 0 || j.label > kNotADigit)
      throw Error(data.name + ": judgement " + std::to_string(j.id) + " is not a 28×28 input with a label 0–10 (10: not a digit)");
    data.pixels.insert(data.pixels.end(), j.input.begin(), j.input.end());
    data.labels.push_back(static_cast<std::uint8_t>(j.label));
  }
  return data;
}

Dataset to_dataset(const std::vector<Example>& examples, std::string name) {
  Dataset data;
  data.name = std::move(name);
  data.pixels.reserve(examples.size() * kImageBytes);
  data.labels.reserve(examples.size());
  for (const Example& e : examples) {
    if (e.input.size() != kImageBytes || e.label < 0 || e.label > kNotADigit)
      throw Error(data.name + ": judgement " + std::to_string(e.id) + " is not a 28×28 input with a label 0–10 (10: not a digit)");
    data.pixels.insert(data.pixels.end(), e.input.begin(), e.input.end());
    data.labels.push_back(static_cast<std::uint8_t>(e.label));
  }
  return data;
}

std::vector<Example> all_examples(const JudgementStore& store) {
  constexpr std::size_t kPage = 1000;
  std::vector<Example> all;
  for (std::int64_t after = 0;;) {
    std::vector<Example> page = store.examples(after, kPage);
    if (page.empty()) return all;
    after = page.back().id;
    std::move(page.begin(), page.end(), std::back_inserter(all));
  }
}

std::filesystem::path default_state_dir() {
  // The XDG Base Directory spec: $XDG_DATA_HOME if set to an absolute path, else ~/.local/share.
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg && std::filesystem::path(xdg).is_absolute())
    return std::filesystem::path(xdg) / "digits";
  if (const char* home = std::getenv("HOME"); home && *home) return std::filesystem::path(home) / ".local" / "share" / "digits";
  throw Error("no state directory: neither XDG_DATA_HOME nor HOME is set; give one with --state-dir");
}

std::filesystem::path feedback_database(const std::filesystem::path& state_dir) { return state_dir / "feedback.db"; }

}  // namespace digits::feedback
