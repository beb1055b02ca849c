// The PostgreSQL store against a real PostgreSQL 15 (the fixture `postgres`, no mocks): the schema
// made, versioned and refused when newer; judgements stored and read as SQLite's store does; model
// versions promoted with the fencing epoch, rolled back from anywhere, damaged bytes refused; one
// learner at a time; NOTIFY reaching a listener; and no password anywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "digits/error.hpp"
#include "digits/sha256.hpp"
#include "feedback/postgres_store.hpp"
#include "feedback/storage_error.hpp"
#include "postgres_support.hpp"

using namespace digits;
using namespace digits::feedback;
using digits::test::postgres_run;
using digits::test::postgres_value;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

Judgement judgement(int label, int predicted, const std::string& client = "c1", std::uint8_t ink = 200) {
  Judgement j;
  j.input.assign(784, 0);
  j.input[14 * 28 + 14] = ink;
  j.drawing_png = "not really a png, but bytes";
  j.label = label;
  j.predicted = predicted;
  j.probabilities.fill(0.05f);
  if (predicted < 10) j.probabilities[static_cast<std::size_t>(predicted)] = 0.55f;  // 10, not a digit, has no digit's probability
  j.correct = label == predicted;
  j.model_version = 0;
  j.client_id = client;
  j.client_address = "192.0.2.1";
  return j;
}

Network network_number(int n) {
  Network network({6, 4, 3}, Activation::relu, 1.0f / 255.0f);
  network.initialize(Init::he, static_cast<std::uint64_t>(n));
  return network;
}

Metadata learned(int parent, std::int64_t last_id) {
  Metadata metadata{{"note", "kept"}};
  record_learning(metadata, 0.99, 5, last_id);
  metadata[kParentKey] = std::to_string(parent);
  return metadata;
}

PostgresStore open(const std::string& conninfo, const std::string& name = "digits") {
  return PostgresStore(PostgresOptions{conninfo, 4, std::chrono::milliseconds(5000), name});
}

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(PostgresStore, StoresJudgementsAsTheSqliteStoreDoes) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore store = open(db);
  EXPECT_EQ(store.schema_version(), kPostgresSchemaVersion);
  auto judgements = store.judgements();
  EXPECT_EQ(judgements->count(), 0);
  EXPECT_EQ(judgements->last_id(), 0);

  const std::int64_t a = judgements->add(judgement(3, 3));
  const std::int64_t b = judgements->add(judgement(7, 1, "c2"));
  const std::int64_t c = judgements->add(judgement(5, 6));
  EXPECT_EQ(a, 1);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(judgements->count(), 3);
  EXPECT_EQ(judgements->corrections(), 2);
  EXPECT_EQ(judgements->corrections_after(a), 2);
  EXPECT_EQ(judgements->corrections_after(b), 1);
  EXPECT_EQ(judgements->last_id(), c);

  const std::vector<Judgement> all = judgements->since();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].id, b);
  EXPECT_EQ(all[1].label, 7);
  EXPECT_EQ(all[1].predicted, 1);
  EXPECT_FALSE(all[1].correct);
  EXPECT_EQ(all[1].client_id, "c2");
  EXPECT_EQ(all[1].client_address, "192.0.2.1");
  EXPECT_EQ(all[1].drawing_png, "not really a png, but bytes");
  EXPECT_EQ(all[1].input, judgement(7, 1).input);
  EXPECT_EQ(all[1].probabilities[1], 0.55f);  // bit-exact float32
  EXPECT_GT(all[1].created_ms, 1'700'000'000'000);
  EXPECT_EQ(judgements->since(a, 1).size(), 1u);

  const std::vector<Example> page = judgements->examples(a, 10);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, b);
  EXPECT_EQ(page[0].label, 7);

  const Usage usage = judgements->usage("c1", "192.0.2.1");
  EXPECT_EQ(usage.by_client_id, 2);
  EXPECT_EQ(usage.by_address, 3);
  EXPECT_GT(usage.bytes, 0);
  EXPECT_EQ(judgements->usage("", "").by_client_id, 0);

  // Ids continue past a given one, and a restored judgement keeps its id.
  judgements->continue_ids_after(100);
  EXPECT_EQ(judgements->add(judgement(1, 1)), 101);
  Judgement old = judgement(2, 2);
  old.id = 500;
  old.created_ms = 1234;
  judgements->restore(old);
  EXPECT_EQ(judgements->add(judgement(1, 1)), 501);
  EXPECT_EQ(judgements->since(499, 1).at(0).created_ms, 1234);
  EXPECT_CONTAINS(error_of([&] { judgements->restore(old); }), "judgement id 500 is already taken");
}

TEST(PostgresStore, KeepsNotADigitAsSqliteSchemaThreeDoes) {
  REQUIRE_POSTGRES();
  PostgresStore store = open(test::test_database());
  auto judgements = store.judgements();
  // "Not a digit" (label 10) as a correction of a 4, and a confirmed "not a digit".
  const std::int64_t corrected = judgements->add(judgement(10, 4));
  const std::int64_t confirmed = judgements->add(judgement(10, 10));
  EXPECT_EQ(judgements->corrections(), 1);
  const std::vector<Example> page = judgements->examples(0, 10);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, corrected);
  EXPECT_EQ(page[0].label, 10);
  EXPECT_FALSE(page[0].correct);
  EXPECT_EQ(page[1].id, confirmed);
  EXPECT_TRUE(page[1].correct);
  EXPECT_EQ(judgements->since(corrected, 1).at(0).predicted, 10);
}

TEST(PostgresStore, RefusesAnInvalidJudgementAndStoresNothing) {
  REQUIRE_POSTGRES();
  PostgresStore store = open(test::test_database());
  auto judgements = store.judgements();
  Judgement bad = judgement(3, 3);
  bad.label = 12;
  EXPECT_CONTAINS(error_of([&] { judgements->add(bad); }), "label 12 is neither a digit 0–9 nor 10");
  Judgement lying = judgement(3, 4);
  lying.correct = true;
  EXPECT_THROW(judgements->add(lying), Error);
  EXPECT_EQ(judgements->count(), 0);
}

TEST(PostgresStore, RefusesANewerSchemaAndAnotherProgramsTables) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  { PostgresStore made = open(db); }
  postgres_run(db, "UPDATE digits_schema SET version = 99");
  try {
    PostgresStore newer = open(db);
    FAIL() << "a newer schema was opened";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.fault, StorageFault::foreign);
    EXPECT_CONTAINS(e.what(), "schema is version 99, written by a newer digits");
    EXPECT_CONTAINS(e.what(), "knows versions up to 1");
  }
  EXPECT_EQ(postgres_value(db, "SELECT version FROM digits_schema"), "99") << "a refused schema is left as it was";

  const std::string other = test::fresh_database("t_postgresstore_foreign");
  postgres_run(other, "CREATE TABLE judgements (x int)");
  try {
    PostgresStore foreign = open(other);
    FAIL() << "another program's tables were taken";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.fault, StorageFault::foreign);
    EXPECT_CONTAINS(e.what(), "not a digits store");
  }
}

TEST(PostgresStore, ReplicasStartingTogetherMakeTheSchemaOnce) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  std::atomic<int> opened{0};
  std::vector<std::thread> replicas;
  for (int r = 0; r < 4; ++r)
    replicas.emplace_back([&] {
      PostgresStore store = open(db);
      opened += store.schema_version() == kPostgresSchemaVersion;
    });
  for (std::thread& t : replicas) t.join();
  EXPECT_EQ(opened, 4);
  EXPECT_EQ(postgres_value(db, "SELECT count(*) FROM digits_schema"), "1");
}

TEST(PostgresStore, IdsBecomeVisibleInOrderUnderConcurrentInserts) {
  // The learner reads "every judgement after id N": with ids visible out of order it would skip
  // one for good. Eight writers on eight connections, and a reader that checks, each time, that
  // the ids it sees have no hole below the highest (a rolled-back insert would leave one; none here).
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore store(PostgresOptions{db, 9, std::chrono::milliseconds(5000), "digits"});
  auto judgements = store.judgements();
  std::atomic<bool> done{false};
  std::atomic<int> holes{0};
  std::thread reader([&] {
    while (!done) {
      const std::vector<Example> seen = judgements->examples(0, 100000);
      for (std::size_t i = 0; i < seen.size(); ++i) holes += seen[i].id != static_cast<std::int64_t>(i + 1);
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w)
    writers.emplace_back([&] {
      for (int i = 0; i < 40; ++i) judgements->add(judgement(i % 10, i % 10));
    });
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(judgements->count(), 320);
  EXPECT_EQ(holes, 0);
}

TEST(PostgresStore, PromotesVersionsAndRollsBackFromAnyReplica) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore learner = open(db), other = open(db);
  auto versions = learner.versions();
  auto elsewhere = other.versions();
  EXPECT_EQ(versions->current(), 0);
  EXPECT_TRUE(versions->list().empty());

  EXPECT_THROW(versions->add(network_number(1), learned(0, 10)), PromotionRefused) << "only the learner promotes";
  ASSERT_TRUE(learner.try_lead("test"));
  EXPECT_EQ(versions->add(network_number(1), learned(0, 10)), 1);
  EXPECT_EQ(versions->add(network_number(2), learned(1, 20)), 2);
  EXPECT_EQ(elsewhere->current(), 2);

  const Model loaded = elsewhere->load(2);
  EXPECT_EQ(serialize_model(loaded.network, {}), serialize_model(network_number(2), {})) << "the weights, bit for bit";
  EXPECT_EQ(elsewhere->metadata(2).at(kVersionKey), "2");
  EXPECT_EQ(elsewhere->metadata(2).at("note"), "kept");
  const std::vector<VersionInfo> list = elsewhere->list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].parent, 1);
  EXPECT_TRUE(list[1].current);
  EXPECT_NEAR(list[1].validation_accuracy, 0.99, 1e-9);
  EXPECT_EQ(list[1].last_judgement_id, 20);
  EXPECT_EQ(list[1].status, "promoted");
  EXPECT_EQ(postgres_value(db, "SELECT sha256 FROM model_versions WHERE number = 2"), sha256_hex(elsewhere->model_file(2)));

  // A rollback through another replica: back to the parent, marked; a name that does not exist refused.
  EXPECT_EQ(elsewhere->rollback(), 1);
  EXPECT_EQ(versions->current(), 1);
  EXPECT_EQ(versions->list()[1].status, "rolled_back");
  EXPECT_CONTAINS(error_of([&] { elsewhere->rollback(7); }), "model version 7 does not exist (saved: 1, 2)");
  EXPECT_EQ(elsewhere->rollback(0), 0);
  EXPECT_CONTAINS(error_of([&] { elsewhere->rollback(); }), "already current");

  // The learner's candidate was learned from 2, but 0 is live now: refused, nothing stored.
  EXPECT_CONTAINS(error_of([&] { versions->add(network_number(3), learned(2, 30)); }), "a rollback came first");
  EXPECT_EQ(versions->list().size(), 2u);
  EXPECT_EQ(versions->current(), 0);
}

TEST(PostgresStore, RefusesDamagedVersionBytes) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore store = open(db);
  ASSERT_TRUE(store.try_lead("test"));
  auto versions = store.versions();
  versions->add(network_number(1), learned(0, 1));
  versions->rollback(0);
  postgres_run(db, "UPDATE model_versions SET model = overlay(model placing '\\xff'::bytea from 200) WHERE number = 1");
  try {
    versions->load(1);
    FAIL() << "damaged bytes were loaded";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.fault, StorageFault::corrupt);
    EXPECT_CONTAINS(e.what(), "do not match their recorded SHA-256");
  }
  EXPECT_THROW(versions->rollback(1), StorageError) << "a damaged version is never made live";
  EXPECT_EQ(versions->current(), 0);
}

TEST(PostgresStore, ConcurrentRollbacksEndInOneConsistentState) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore learner = open(db);
  ASSERT_TRUE(learner.try_lead("test"));
  auto versions = learner.versions();
  for (int v = 1; v <= 4; ++v) versions->add(network_number(v), learned(v - 1, v));
  // Two replicas each roll back once from version 4, at once: one goes to 3, the other then from
  // 3 to 2 (each starts from what the other left, under the pointer's row lock).
  PostgresStore a = open(db), b = open(db);
  int from_a = -1, from_b = -1;
  std::thread ta([&] { from_a = a.versions()->rollback(); });
  std::thread tb([&] { from_b = b.versions()->rollback(); });
  ta.join();
  tb.join();
  EXPECT_EQ(std::set<int>({from_a, from_b}), std::set<int>({3, 2}));
  EXPECT_EQ(versions->current(), 2);
  EXPECT_EQ(postgres_value(db, "SELECT string_agg(status, ',' ORDER BY number) FROM model_versions"), "promoted,promoted,rolled_back,rolled_back");
}

TEST(PostgresStore, OneLearnerAtATimeAndALostLockCannotPromote) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore first = open(db, "digits-first"), second = open(db, "digits-second");
  ASSERT_TRUE(first.try_lead("first"));
  const std::int64_t first_epoch = first.epoch();
  EXPECT_GT(first_epoch, 0);
  EXPECT_FALSE(second.try_lead("second"));
  EXPECT_TRUE(first.try_lead("first")) << "still leading";
  EXPECT_EQ(first.epoch(), first_epoch);
  EXPECT_EQ(postgres_value(db, "SELECT holder FROM learner"), "first");

  // The first's session ends (as when its process is killed): the lock goes with it.
  postgres_run(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'digits-first' AND datname = current_database()");
  // pg_terminate_backend only signals the backend, which then ends (and frees the lock) on its
  // own time: the second tries on an interval, as a replica does (LearnerOptions::lead_retry).
  bool took = false;
  for (int attempt = 0; attempt < 100 && !took; ++attempt) {
    took = second.try_lead("second");
    if (!took) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(took) << "the lock was not free 10 s after the first's session ended";
  EXPECT_GT(second.epoch(), first_epoch);
  EXPECT_THROW(first.versions()->add(network_number(1), learned(0, 1)), Error) << "the first lost its lock: it cannot promote";
  EXPECT_FALSE(first.leading());
  EXPECT_EQ(second.versions()->add(network_number(2), learned(0, 2)), 1);
  EXPECT_FALSE(first.try_lead("first")) << "the second holds the lock now";

  // A learner that does not know it lost the lead (its epoch was raised under it) is fenced out.
  postgres_run(db, "UPDATE learner SET epoch = epoch + 1");
  EXPECT_CONTAINS(error_of([&] { second.versions()->add(network_number(3), learned(1, 3)); }), "another replica leads the learning now");
  EXPECT_EQ(second.versions()->current(), 1);
  EXPECT_EQ(postgres_value(db, "SELECT count(*) FROM model_versions"), "1");
  EXPECT_THROW(second.save_progress("{}"), PromotionRefused);
}

TEST(PostgresStore, ProgressIsWrittenByTheLearnerOnly) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore learner = open(db), other = open(db);
  EXPECT_EQ(other.progress(), "{}");
  EXPECT_THROW(other.save_progress(R"({"considered_up_to": 9})"), PromotionRefused);
  ASSERT_TRUE(learner.try_lead("learner"));
  learner.save_progress(R"({"considered_up_to": 7})");
  EXPECT_EQ(other.progress(), R"({"considered_up_to": 7})");
}

TEST(PostgresStore, ANewVersionIsNotifiedToListeners) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore learner = open(db), replica = open(db, "digits-replica");
  EXPECT_EQ(replica.wait_for_change(std::chrono::milliseconds(10)), Change::reconnected) << "the first wait connects: read the pointer";
  EXPECT_EQ(replica.wait_for_change(std::chrono::milliseconds(10)), Change::none);
  ASSERT_TRUE(learner.try_lead("learner"));
  learner.versions()->add(network_number(1), learned(0, 1));
  EXPECT_EQ(replica.wait_for_change(std::chrono::milliseconds(10000)), Change::notified);
  learner.versions()->rollback(0);
  EXPECT_EQ(replica.wait_for_change(std::chrono::milliseconds(10000)), Change::notified);

  // Its connection cut: the next wait says so, the one after reconnects.
  postgres_run(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'digits-replica' AND query LIKE 'LISTEN%' "
                   "AND datname = current_database()");
  Change seen = Change::none;
  for (int i = 0; i < 20 && seen != Change::reconnected; ++i) seen = replica.wait_for_change(std::chrono::milliseconds(200));
  EXPECT_EQ(seen, Change::reconnected);
}

// The learner's wake-ups from other replicas: a correction stored there, and a request to learn.
TEST(PostgresStore, TheLearnerHearsCorrectionsAndRequestsFromOtherReplicas) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  PostgresStore learner = open(db, "digits-learner"), other = open(db, "digits-other");
  ASSERT_EQ(learner.wait_for_change(std::chrono::milliseconds(10)), Change::reconnected);
  EXPECT_TRUE(learner.take_new_corrections()) << "after a (re)connect, words may have been missed: look";
  EXPECT_FALSE(learner.take_new_corrections()) << "once";
  EXPECT_FALSE(learner.take_learn_request());

  auto judgements = other.judgements();
  judgements->add(judgement(4, 4));  // confirmed right: no word
  learner.wait_for_change(std::chrono::milliseconds(300));
  EXPECT_FALSE(learner.take_new_corrections());
  judgements->add(judgement(4, 9));  // a correction
  for (int i = 0; i < 40 && !learner.take_new_corrections(); ++i) {
    if (i == 39) ADD_FAILURE() << "no word of the correction in 10 s";
    learner.wait_for_change(std::chrono::milliseconds(250));
  }
  other.request_learning();
  bool asked = false;
  for (int i = 0; i < 40 && !asked; ++i) {
    learner.wait_for_change(std::chrono::milliseconds(250));
    asked = learner.take_learn_request();
  }
  EXPECT_TRUE(asked) << "no word of the request in 10 s";
  EXPECT_FALSE(learner.take_learn_request()) << "once";
}

TEST(PostgresStore, NeverShowsThePassword) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  postgres_run(test::postgres_admin(), "DROP ROLE IF EXISTS digits_secret");
  postgres_run(test::postgres_admin(), "CREATE ROLE digits_secret LOGIN PASSWORD 'hunter2-secret'");
  postgres_run(db, "GRANT ALL ON SCHEMA public TO digits_secret");
  const std::string with_password = db + " user=digits_secret password=hunter2-secret sslmode=disable";
  PostgresStore store = open(with_password);
  EXPECT_EQ(store.where().find("hunter2"), std::string::npos) << store.where();
  EXPECT_CONTAINS(store.where(), "user=digits_secret");
  EXPECT_CONTAINS(store.where(), "sslmode=disable") << "libpq's options pass through";
  EXPECT_EQ(store.versions()->where(3).find("hunter2"), std::string::npos);

  const std::string wrong = db + " user=digits_secret password=not-the-hunter2-secret";
  const std::string refused = error_of([&] { open(wrong); });
  EXPECT_CONTAINS(refused, "password authentication failed");
  EXPECT_EQ(refused.find("not-the-hunter2"), std::string::npos) << refused;

  const std::string uri = "postgresql://someone:hunter2-secret@127.0.0.1:1/nowhere?sslmode=require&connect_timeout=3";
  const std::string shown = redact_connection_string(uri);
  EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
  EXPECT_CONTAINS(shown, "sslmode=require");
  EXPECT_CONTAINS(shown, "user=someone");
  EXPECT_CONTAINS(error_of([] { redact_connection_string("postgresql://a b c:?x"); }), "cannot be read");
  const std::string unreachable = error_of([&] { open("postgresql://someone:hunter2-secret@127.0.0.1:1/nowhere?connect_timeout=3"); });
  EXPECT_EQ(unreachable.find("hunter2"), std::string::npos) << unreachable;
}

// The grants docs/feedback.md gives the replicas' role, and nothing more: a replica's whole life
// works with them (judgements, ids moved on, the lock, a promotion, a rollback, the progress, LISTEN).
TEST(PostgresStore, ALeastPrivilegeRoleIsEnough) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  { PostgresStore owner = open(db); }  // the owner (here the superuser) makes the schema once
  postgres_run(test::postgres_admin(), "DO $$ BEGIN CREATE ROLE digits_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
  postgres_run(db,
               "GRANT SELECT, INSERT ON judgements TO digits_app; "
               "GRANT SELECT, INSERT, UPDATE (status) ON model_versions TO digits_app; "
               "GRANT SELECT, UPDATE ON live_version, learner TO digits_app; "
               "GRANT SELECT ON digits_schema TO digits_app; "
               "GRANT USAGE, SELECT, UPDATE ON SEQUENCE judgements_id_seq TO digits_app");
  const std::string as_app = db + " user=digits_app";
  PostgresStore app = open(as_app, "digits-app");
  auto judgements = app.judgements();
  EXPECT_EQ(judgements->add(judgement(3, 5)), 1);
  EXPECT_EQ(judgements->corrections_after(0), 1);
  EXPECT_GT(judgements->usage("c1", "192.0.2.1").bytes, 0);
  judgements->continue_ids_after(10);
  EXPECT_EQ(judgements->add(judgement(3, 3)), 11);
  EXPECT_EQ(judgements->last_id(), 11);
  ASSERT_TRUE(app.try_lead("app"));
  EXPECT_EQ(app.versions()->add(network_number(1), learned(0, 11)), 1);
  EXPECT_EQ(app.versions()->load(1).network.sizes(), network_number(1).sizes());
  EXPECT_EQ(app.versions()->rollback(0), 0);
  app.save_progress(R"({"considered_up_to": 11})");
  EXPECT_EQ(app.progress(), R"({"considered_up_to": 11})");
  EXPECT_EQ(app.wait_for_change(std::chrono::milliseconds(10)), Change::reconnected);
  // And it is least: the role cannot change, drop or delete what the replicas keep.
  EXPECT_THROW(postgres_run(as_app, "DELETE FROM judgements"), std::runtime_error);
  EXPECT_THROW(postgres_run(as_app, "UPDATE judgements SET label = 1"), std::runtime_error);
  EXPECT_THROW(postgres_run(as_app, "DELETE FROM model_versions"), std::runtime_error);
  EXPECT_THROW(postgres_run(as_app, "UPDATE model_versions SET model = ''"), std::runtime_error);
  EXPECT_THROW(postgres_run(as_app, "DROP TABLE model_versions"), std::runtime_error);
  EXPECT_THROW(postgres_run(as_app, "CREATE TABLE mine (x int)"), std::runtime_error);
}

TEST(PostgresStore, AStoppedServerIsUnavailableNotAnotherFault) {
  REQUIRE_POSTGRES();
  try {
    PostgresStore nowhere = open("host=127.0.0.1 port=1 dbname=nothing connect_timeout=3");
    FAIL() << "connected to nothing";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.fault, StorageFault::unavailable);
    EXPECT_CONTAINS(e.what(), "cannot connect");
  }
}
