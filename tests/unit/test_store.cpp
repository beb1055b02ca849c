// The feedback store: every field of a judgement comes back as it went in, after a reopen and after
// the writing process is killed; bad judgements and files that are not ours are refused with a
// message naming what was wrong.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "digits/error.hpp"
#include "feedback/drawing.hpp"
#include "feedback/store.hpp"

using namespace digits;
using namespace digits::feedback;
namespace fs = std::filesystem;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("digits-store-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    path = dir / "state" / "feedback.db";
  }
  void TearDown() override { fs::remove_all(dir); }

  fs::path dir, path;
};

// A judgement whose every field differs from the defaults and from its neighbours'.
Judgement sample(int seed, bool correct = false) {
  Judgement j;
  j.input.resize(784);
  for (std::size_t i = 0; i < j.input.size(); ++i) j.input[i] = static_cast<std::uint8_t>((i * 7 + static_cast<std::size_t>(seed) * 13) % 256);
  j.drawing_png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(1, '\0') + "drawing " + std::to_string(seed);  // binary, with a NUL
  j.predicted = seed % 10;
  j.label = correct ? j.predicted : (seed + 3) % 10;
  j.correct = correct;
  for (std::size_t d = 0; d < 10; ++d) j.probabilities[d] = static_cast<float>(d + 1) / 55.0f + 1e-7f * static_cast<float>(seed);
  j.model_version = seed % 4;
  j.created_ms = 1'700'000'000'000 + seed;
  j.client_id = "client-" + std::to_string(seed) + " 'quoted'; DROP TABLE judgements; --";
  j.client_address = "192.0.2." + std::to_string(seed % 3);
  return j;
}

void expect_same(const Judgement& stored, const Judgement& given) {
  EXPECT_EQ(stored.input, given.input);
  EXPECT_EQ(stored.drawing_png, given.drawing_png);
  EXPECT_EQ(stored.label, given.label);
  EXPECT_EQ(stored.predicted, given.predicted);
  for (std::size_t d = 0; d < 10; ++d) EXPECT_EQ(stored.probabilities[d], given.probabilities[d]) << d;  // bit-exact
  EXPECT_EQ(stored.correct, given.correct);
  EXPECT_EQ(stored.model_version, given.model_version);
  EXPECT_EQ(stored.created_ms, given.created_ms);
  EXPECT_EQ(stored.client_id, given.client_id);
  EXPECT_EQ(stored.client_address, given.client_address);
}

// Runs SQL on a database file directly, as another program would.
void run_sql(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

}  // namespace

TEST_F(StoreTest, RoundTripsEveryField) {
  Store store(path);
  const Judgement wrong = sample(5), right = sample(8, true);
  const std::int64_t first = store.add(wrong);
  const std::int64_t second = store.add(right);
  EXPECT_GT(first, 0);
  EXPECT_GT(second, first);
  const std::vector<Judgement> all = store.since();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, first);
  EXPECT_EQ(all[1].id, second);
  expect_same(all[0], wrong);
  expect_same(all[1], right);
  EXPECT_EQ(store.count(), 2);
  EXPECT_EQ(store.corrections(), 1);
  EXPECT_EQ(store.path(), path);
}

TEST_F(StoreTest, AnEmptyDrawingAndClientIdRoundTrip) {
  Store store(path);
  Judgement j = sample(1);
  j.drawing_png.clear();
  j.client_id.clear();
  store.add(j);
  expect_same(store.since().at(0), j);
}

TEST_F(StoreTest, FillsTheTimeWhenNotGiven) {
  Store store(path);
  Judgement j = sample(2);
  j.created_ms = 0;
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  store.add(j);
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::int64_t created = store.since().at(0).created_ms;
  EXPECT_GE(created, before);
  EXPECT_LE(created, after);
}

TEST_F(StoreTest, SinceReturnsOnlyLaterJudgementsOldestFirst) {
  Store store(path);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(store.add(sample(i)));
  const std::vector<Judgement> later = store.since(ids[2]);
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].id, ids[3]);
  EXPECT_EQ(later[1].id, ids[4]);
  expect_same(later[1], sample(4));
  EXPECT_TRUE(store.since(ids[4]).empty());
  EXPECT_EQ(store.since(0).size(), 5u);
}

TEST_F(StoreTest, JudgementsSurviveClosingAndReopening) {
  {
    Store store(path);
    for (int i = 0; i < 3; ++i) store.add(sample(i, i == 1));
  }
  Store reopened(path);
  const std::vector<Judgement> all = reopened.since();
  ASSERT_EQ(all.size(), 3u);
  for (int i = 0; i < 3; ++i) expect_same(all[static_cast<std::size_t>(i)], sample(i, i == 1));
  EXPECT_EQ(reopened.corrections(), 2);
  // Ids go on from where they were.
  EXPECT_GT(reopened.add(sample(9)), all.back().id);
}

TEST_F(StoreTest, AnAcknowledgedJudgementSurvivesKillMinus9) {
  // A child process adds judgements and then dies by SIGKILL: no destructor, no close, no
  // checkpoint of the WAL. Everything add() returned for must be there afterwards.
  constexpr int kJudgements = 20;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      Store* store = new Store(path);  // never deleted: the process is killed holding it open
      for (int i = 0; i < kJudgements; ++i) store->add(sample(i));
    } catch (...) {
      _exit(3);
    }
    raise(SIGKILL);
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child failed before it was killed, status " << status;
  EXPECT_TRUE(fs::exists(path.string() + "-wal")) << "the judgements should still be in the write-ahead log";
  Store reopened(path);
  const std::vector<Judgement> all = reopened.since();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kJudgements));
  for (int i = 0; i < kJudgements; ++i) expect_same(all[static_cast<std::size_t>(i)], sample(i));
}

TEST_F(StoreTest, UsesWriteAheadLogging) {
  Store store(path);
  EXPECT_EQ(store.journal_mode(), "wal");
  store.add(sample(1));
  EXPECT_TRUE(fs::exists(path.string() + "-wal"));
}

TEST_F(StoreTest, InvalidJudgementsAreRefusedAndNothingIsStored) {
  Store store(path);
  auto expect_refused = [&](Judgement j, const std::string& message) {
    try {
      store.add(j);
      ADD_FAILURE() << "accepted a judgement that should be refused for: " << message;
    } catch (const Error& e) {
      EXPECT_CONTAINS(e.what(), message);
    }
  };
  Judgement j = sample(1);
  j.input.resize(783);
  expect_refused(j, "783 bytes, expected 784");
  j = sample(1);
  j.input.clear();
  expect_refused(j, "0 bytes, expected 784");
  j = sample(1);
  j.label = 11;
  expect_refused(j, "label 11");
  j = sample(1);
  j.label = -1;
  expect_refused(j, "label -1");
  j = sample(1);
  j.predicted = 12;
  j.label = 3;
  expect_refused(j, "predicted 12");
  j = sample(1);
  j.correct = true;  // but label != predicted
  expect_refused(j, "judged right, but the label");
  j = sample(1, true);
  j.correct = false;  // but label == predicted
  expect_refused(j, "judged wrong, but the label is the prediction");
  j = sample(1);
  j.probabilities[3] = std::numeric_limits<float>::quiet_NaN();
  expect_refused(j, "probability");
  j = sample(1);
  j.probabilities[0] = 1.5f;
  expect_refused(j, "probability");
  j = sample(1);
  j.model_version = -1;
  expect_refused(j, "model version -1");
  j = sample(1);
  j.created_ms = -5;
  expect_refused(j, "created_ms");
  j = sample(1);
  j.client_id = std::string(300, 'x');
  expect_refused(j, "client id");
  EXPECT_EQ(store.count(), 0);
  EXPECT_TRUE(store.since().empty());
}

TEST_F(StoreTest, AGarbageFileIsRefusedNamingIt) {
  fs::create_directories(path.parent_path());
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 200; ++i) out << "this is not a database ";
  }
  try {
    Store store(path);
    FAIL() << "opened a garbage file";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), path.string());
    EXPECT_CONTAINS(e.what(), "not a feedback database");
  }
}

TEST_F(StoreTest, AnotherProgramsDatabaseIsRefusedAndLeftAlone) {
  fs::create_directories(path.parent_path());
  run_sql(path, "CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('bread');");
  try {
    Store store(path);
    FAIL() << "opened another program's database";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), path.string());
    EXPECT_CONTAINS(e.what(), "not a digits feedback database");
  }
  // Still theirs: no table of ours was added.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'judgements'", -1, &statement, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(statement, 0), 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

TEST_F(StoreTest, ANewerSchemaIsRefusedNotMisread) {
  { Store store(path); }
  run_sql(path, "PRAGMA user_version = 99;");
  try {
    Store store(path);
    FAIL() << "opened a database of a newer schema";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), path.string());
    EXPECT_CONTAINS(e.what(), "version 99");
  }
}

// Label 10 is "not a digit" (digits/classes.hpp), as a label and as a prediction.
TEST_F(StoreTest, NotADigitIsStoredAsLabelTen) {
  Store store(path);
  Judgement taught = sample(3);  // predicted 3, corrected to "not a digit"
  taught.label = 10;
  Judgement confirmed = sample(4);  // read as "not a digit", and judged right
  confirmed.label = confirmed.predicted = 10;
  confirmed.correct = true;
  store.add(taught);
  store.add(confirmed);
  const std::vector<Judgement> all = store.since();
  ASSERT_EQ(all.size(), 2u);
  expect_same(all[0], taught);
  expect_same(all[1], confirmed);
  EXPECT_EQ(store.corrections(), 1);
  EXPECT_EQ(to_dataset(store.examples(0, 10)).labels, (std::vector<std::uint8_t>{10, 10}));
}

TEST_F(StoreTest, TheSchemaChecksHoldForRowsWrittenByOtherTools) {
  { Store store(path); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  // An input of the wrong size, inserted behind the store's back, breaks a CHECK.
  EXPECT_NE(sqlite3_exec(db,
                         "INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id) "
                         "VALUES (zeroblob(10), x'', 1, 2, zeroblob(40), 0, 0, 1, 'c')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  // So does a label past "not a digit" (10).
  EXPECT_NE(sqlite3_exec(db,
                         "INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id) "
                         "VALUES (zeroblob(784), x'', 11, 2, zeroblob(40), 0, 0, 1, 'c')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(StoreTest, AMissingFileIsAnErrorWhenNotCreating) {
  try {
    Store store(path, /*create_if_missing=*/false);
    FAIL() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), path.string());
    EXPECT_CONTAINS(e.what(), "no feedback database");
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(StoreTest, ADirectoryIsRefusedNamingIt) {
  fs::create_directories(path);
  try {
    Store store(path);
    FAIL() << "opened a directory";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), path.string());
  }
}

TEST_F(StoreTest, ManyThreadsAddingAtOnceLoseNothing) {
  Store store(path);
  constexpr int kThreads = 4, kEach = 10;
  std::vector<std::vector<std::int64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) ids[static_cast<std::size_t>(t)].push_back(store.add(sample(t * kEach + i)));
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::int64_t> distinct;
  for (const auto& some : ids) distinct.insert(some.begin(), some.end());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(store.count(), kThreads * kEach);
  EXPECT_EQ(store.since().size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST_F(StoreTest, ExamplesPageThroughWithoutDrawings) {
  Store store(path);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(store.add(sample(i, i % 2 == 0)));
  std::vector<Example> all;
  for (std::int64_t after = 0;;) {
    const std::vector<Example> page = store.examples(after, 2);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    all.insert(all.end(), page.begin(), page.end());
    after = page.back().id;
  }
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const Judgement given = sample(i, i % 2 == 0);
    EXPECT_EQ(all[static_cast<std::size_t>(i)].id, ids[static_cast<std::size_t>(i)]);
    EXPECT_EQ(all[static_cast<std::size_t>(i)].input, given.input);
    EXPECT_EQ(all[static_cast<std::size_t>(i)].label, given.label);
    EXPECT_EQ(all[static_cast<std::size_t>(i)].correct, given.correct);
  }
  EXPECT_EQ(store.examples(ids[3], 100).size(), 1u);
  EXPECT_EQ(store.corrections_after(0), 2);       // samples 1 and 3 were judged wrong
  EXPECT_EQ(store.corrections_after(ids[1]), 1);
  EXPECT_EQ(store.corrections_after(ids[3]), 0);
}

TEST_F(StoreTest, UsageCountsByClientIdAndAddressAndMeasuresTheFile) {
  Store store(path);
  const std::int64_t empty_bytes = store.usage("", "").bytes;
  EXPECT_GT(empty_bytes, 0);  // the schema's pages
  for (int i = 0; i < 6; ++i) {
    Judgement j = sample(i);
    j.client_id = i < 4 ? "alice" : "bob";
    j.client_address = i % 2 ? "192.0.2.1" : "2001:db8::1";
    j.drawing_png = std::string(20000, static_cast<char>('a' + i));  // 20 KB each: overflow pages
    store.add(j);
  }
  const Usage alice = store.usage("alice", "192.0.2.1");
  EXPECT_EQ(alice.by_client_id, 4);
  EXPECT_EQ(alice.by_address, 3);
  EXPECT_EQ(store.usage("bob", "2001:db8::1").by_client_id, 2);
  EXPECT_EQ(store.usage("bob", "2001:db8::1").by_address, 3);
  EXPECT_EQ(store.usage("carol", "198.51.100.7").by_client_id, 0);
  EXPECT_EQ(store.usage("", "").by_client_id, 0);  // an empty id is nobody's: not counted
  EXPECT_GE(alice.bytes - empty_bytes, 6 * 20000);
  EXPECT_LT(alice.bytes - empty_bytes, 6 * 20000 + 64 * 1024);
}

// The schema of version 1 (before client_address), exactly as that version created it.
constexpr const char* kSchemaVersion1 = R"sql(
CREATE TABLE judgements (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  input         BLOB    NOT NULL CHECK (length(input) = 784),
  drawing_png   BLOB    NOT NULL,
  label         INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
  predicted     INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
  probabilities BLOB    NOT NULL CHECK (length(probabilities) = 40),
  correct       INTEGER NOT NULL CHECK (correct = (label = predicted)),
  model_version INTEGER NOT NULL CHECK (model_version >= 0),
  created_ms    INTEGER NOT NULL CHECK (created_ms >= 0),
  client_id     TEXT    NOT NULL
);
CREATE INDEX judgements_by_correct ON judgements (correct);
PRAGMA application_id = 1684501619;
PRAGMA user_version = 1;
PRAGMA journal_mode = WAL;
INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id)
  VALUES (zeroblob(784), x'89504e47', 3, 5, zeroblob(40), 0, 2, 1700000000000, 'old-client');
INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id)
  VALUES (zeroblob(784), x'', 4, 4, zeroblob(40), 1, 0, 1700000000001, 'old-client');
)sql";

int user_version(const fs::path& file) {
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  sqlite3_stmt* statement = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &statement, nullptr);
  const int version = sqlite3_step(statement) == SQLITE_ROW ? sqlite3_column_int(statement, 0) : -1;
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return version;
}

TEST_F(StoreTest, AVersionOneDatabaseOpensAndIsMigratedKeepingEveryJudgement) {
  fs::create_directories(path.parent_path());
  run_sql(path, kSchemaVersion1);
  ASSERT_EQ(user_version(path), 1);
  {
    Store store(path);
    EXPECT_EQ(user_version(path), 3);
    const std::vector<Judgement> old = store.since();
    ASSERT_EQ(old.size(), 2u);
    EXPECT_EQ(old[0].label, 3);
    EXPECT_EQ(old[0].predicted, 5);
    EXPECT_EQ(old[0].model_version, 2);
    EXPECT_EQ(old[0].drawing_png, std::string("\x89PNG"));
    EXPECT_EQ(old[0].client_id, "old-client");
    EXPECT_EQ(old[0].client_address, "");  // version 1 did not record it
    EXPECT_EQ(store.examples(0, 10).size(), 2u);
    EXPECT_EQ(store.usage("old-client", "").by_client_id, 2);
    const Judgement given = sample(7);
    const std::int64_t id = store.add(given);
    EXPECT_EQ(id, 3);
    expect_same(store.since(2).at(0), given);
    EXPECT_EQ(store.usage("", given.client_address).by_address, 1);
  }
  Store reopened(path);  // a second open finds version 3 and changes nothing
  EXPECT_EQ(reopened.count(), 3);
  EXPECT_EQ(user_version(path), 3);
}

// The schema of version 2 (labels 0–9), exactly as that version created it, with one judgement.
constexpr const char* kSchemaVersion2 = R"sql(
CREATE TABLE judgements (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  input          BLOB    NOT NULL CHECK (length(input) = 784),        -- 28×28 uint8, row-major, 0 = background
  label          INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
  predicted      INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
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
PRAGMA application_id = 1684501619;
PRAGMA user_version = 2;
PRAGMA journal_mode = WAL;
INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id, client_address)
  VALUES (zeroblob(784), x'89504e47', 3, 5, zeroblob(40), 0, 2, 1700000000000, 'old-client', '192.0.2.1');
)sql";

// Version 2 → 3 widens the label and prediction CHECKs to 0–10 in place: the rows, the indexes and
// the ids stay; label 10 is stored afterwards, and label 11 is still refused by the schema itself.
TEST_F(StoreTest, AVersionTwoDatabaseIsMigratedToTakeNotADigit) {
  fs::create_directories(path.parent_path());
  run_sql(path, kSchemaVersion2);
  ASSERT_EQ(user_version(path), 2);
  {
    Store store(path);
    EXPECT_EQ(user_version(path), 3);
    const std::vector<Judgement> old = store.since();
    ASSERT_EQ(old.size(), 1u);
    EXPECT_EQ(old[0].label, 3);
    EXPECT_EQ(old[0].client_address, "192.0.2.1");
    Judgement taught = sample(2);
    taught.label = 10;
    EXPECT_EQ(store.add(taught), 2);
    EXPECT_EQ(store.since(1).at(0).label, 10);
    EXPECT_EQ(store.usage("old-client", "192.0.2.1").by_address, 1);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db,
                         "INSERT INTO judgements (input, drawing_png, label, predicted, probabilities, correct, model_version, created_ms, client_id) "
                         "VALUES (zeroblob(784), x'', 11, 2, zeroblob(40), 0, 0, 1, 'c')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok");
  sqlite3_finalize(check);
  sqlite3_close(db);
  Store reopened(path);
  EXPECT_EQ(reopened.count(), 2);
}

TEST_F(StoreTest, AVersionTwoTableWithoutTheLabelChecksIsRefusedNotMigrated) {
  fs::create_directories(path.parent_path());
  run_sql(path, "CREATE TABLE judgements (id INTEGER PRIMARY KEY, label INTEGER); PRAGMA application_id = 1684501619; PRAGMA user_version = 2;");
  try {
    Store store(path);
    FAIL() << "migrated a table that is not ours";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.fault, StorageFault::foreign);
    EXPECT_CONTAINS(e.what(), "schema version 3");
  }
  EXPECT_EQ(user_version(path), 2);  // rolled back: untouched
}

TEST_F(StoreTest, AVersionOneTableThatIsNotOursIsRefusedNotMigrated) {
  fs::create_directories(path.parent_path());
  // Stamped as ours, version 1, but with a table that already has the column version 2 adds.
  run_sql(path, "CREATE TABLE judgements (id INTEGER PRIMARY KEY, client_address TEXT); PRAGMA application_id = 1684501619; PRAGMA user_version = 1;");
  try {
    Store store(path);
    FAIL() << "migrated a table that is not ours";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.fault, StorageFault::foreign);
    EXPECT_CONTAINS(e.what(), path.string());
  }
  EXPECT_EQ(user_version(path), 1);  // rolled back: untouched
}

// ---- the drawing as stored ----

GrayImage noise(int width, int height, unsigned seed) {
  GrayImage image{width, height, std::vector<float>(static_cast<std::size_t>(width) * static_cast<std::size_t>(height))};
  std::uint32_t state = seed;
  for (float& p : image.pixels) {
    state = state * 1664525u + 1013904223u;  // Numerical Recipes' LCG
    p = static_cast<float>(state >> 24);
  }
  return image;
}

TEST(StoredDrawing, A280DrawingThatFitsComesBackPixelForPixel) {
  GrayImage drawing{280, 280, std::vector<float>(280 * 280, 0.0f)};
  for (int y = 60; y < 220; ++y)
    for (int x = 130; x < 150; ++x) drawing.pixels[static_cast<std::size_t>(y * 280 + x)] = 255;
  drawing.pixels[0] = 17.4f;  // rounded to 17
  const std::string png = stored_drawing(drawing);
  const GrayImage back = decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "stored");
  ASSERT_EQ(back.width, 280);
  ASSERT_EQ(back.height, 280);
  EXPECT_EQ(back.pixels[0], 17.0f);
  for (std::size_t i = 1; i < back.pixels.size(); ++i) ASSERT_EQ(back.pixels[i], drawing.pixels[i]) << i;
}

TEST(StoredDrawing, ALargeImageIsAreaAveragedToAtMost280ASide) {
  GrayImage photo{1000, 500, std::vector<float>(1000 * 500, 0.0f)};
  for (int y = 0; y < 500; ++y)
    for (int x = 500; x < 1000; ++x) photo.pixels[static_cast<std::size_t>(y * 1000 + x)] = 200;  // right half light
  const std::string png = stored_drawing(photo);
  EXPECT_LE(png.size(), kMaxStoredDrawingBytes);
  const GrayImage back = decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "stored");
  EXPECT_EQ(back.width, 280);
  EXPECT_EQ(back.height, 140);
  EXPECT_EQ(back.at(10, 70), 0.0f);
  EXPECT_EQ(back.at(270, 70), 200.0f);
}

TEST(StoredDrawing, NoiseIsHalvedUntilItFits) {
  const GrayImage static_noise = noise(280, 280, 7);
  EXPECT_GT(encode_png(static_noise).size(), kMaxStoredDrawingBytes);  // else this test proves nothing
  const std::string png = stored_drawing(static_noise);
  EXPECT_LE(png.size(), kMaxStoredDrawingBytes);
  const GrayImage back = decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "stored");
  EXPECT_EQ(back.width, 140);
  EXPECT_EQ(back.height, 140);
}

TEST(StoredDrawing, AreaAveragingKeepsTheMeanAndAveragesEachBlock) {
  const GrayImage image = noise(97, 61, 3);  // sides that do not divide evenly
  const GrayImage small = area_resize(image, 20, 13);
  double before = 0, after = 0;
  for (float p : image.pixels) before += p;
  for (float p : small.pixels) after += p;
  EXPECT_NEAR(after / small.pixels.size(), before / image.pixels.size(), 0.01);
  const GrayImage halved = area_resize(noise(4, 2, 5), 2, 1);
  const GrayImage source = noise(4, 2, 5);
  EXPECT_NEAR(halved.at(0, 0), (source.at(0, 0) + source.at(1, 0) + source.at(0, 1) + source.at(1, 1)) / 4, 1e-3);
  EXPECT_NEAR(halved.at(1, 0), (source.at(2, 0) + source.at(3, 0) + source.at(2, 1) + source.at(3, 1)) / 4, 1e-3);
}

TEST(FeedbackDataset, HoldsEachInputWithItsLabel) {
  std::vector<Judgement> judgements = {sample(1), sample(2, true)};
  judgements[0].id = 7;
  const Dataset data = to_dataset(judgements, "corrections");
  EXPECT_EQ(data.name, "corrections");
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data.rows, 28);
  EXPECT_EQ(data.cols, 28);
  EXPECT_EQ(data.labels[0], judgements[0].label);
  EXPECT_EQ(data.labels[1], judgements[1].label);
  EXPECT_TRUE(std::equal(data.image(1).begin(), data.image(1).end(), judgements[1].input.begin()));
  judgements[0].input.resize(10);
  EXPECT_THROW(to_dataset(judgements), Error);
}

TEST(FeedbackStateDir, FollowsXdgDataHomeThenHome) {
  const char* saved_xdg = std::getenv("XDG_DATA_HOME");
  const char* saved_home = std::getenv("HOME");
  const std::string xdg = saved_xdg ? saved_xdg : "", home = saved_home ? saved_home : "";
  setenv("XDG_DATA_HOME", "/tmp/xdg-data", 1);
  setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(default_state_dir(), fs::path("/tmp/xdg-data/digits"));
  setenv("XDG_DATA_HOME", "relative/path", 1);  // the XDG spec says to ignore a relative one
  EXPECT_EQ(default_state_dir(), fs::path("/home/someone/.local/share/digits"));
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(default_state_dir(), fs::path("/home/someone/.local/share/digits"));
  unsetenv("HOME");
  EXPECT_THROW(default_state_dir(), Error);
  if (saved_xdg) setenv("XDG_DATA_HOME", xdg.c_str(), 1);
  if (saved_home) setenv("HOME", home.c_str(), 1);
  EXPECT_EQ(feedback_database("/s"), fs::path("/s/feedback.db"));
}
