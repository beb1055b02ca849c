// `digits store copy`, both ways, against a real PostgreSQL 15 (the fixture `postgres`): a state
// directory into PostgreSQL and back keeps every judgement's id, time and fields, every model
// version's bytes and number, the live pointer and the learner's progress; later ids continue past
// the copied ones; a store that holds anything is refused as a destination. The binary is run as a
// person runs it (popen), so the flags and $DIGITS_STORE are what is tested.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

#include "digits/file_util.hpp"
#include "digits/sha256.hpp"
#include "feedback/model_versions.hpp"
#include "feedback/postgres_store.hpp"
#include "feedback/store.hpp"
#include "postgres_support.hpp"

using namespace digits;
using namespace digits::feedback;
namespace fs = std::filesystem;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

struct Outcome {
  int status = -1;
  std::string output;  // standard output and error
};

// Runs `digits ARGS` through the shell, with `environment` (NAME=value …) before it.
Outcome digits_run(const std::string& args, const std::string& environment = "") {
  Outcome run;
  const std::string command = environment + " " DIGITS_BINARY " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return run;
  char chunk[4096];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0;) run.output.append(chunk, n);
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }  // the tests' strings hold no quote

struct Scratch {
  fs::path path;
  explicit Scratch(const std::string& name) : path(fs::temp_directory_path() / ("digits-store-copy-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
  }
  ~Scratch() { fs::remove_all(path); }
};

Judgement judgement(int label, int predicted, std::uint8_t ink) {
  Judgement j;
  j.input.assign(784, 0);
  j.input[14 * 28 + 14] = ink;
  j.drawing_png = "drawing " + std::to_string(ink);
  j.label = label;
  j.predicted = predicted;
  j.probabilities.fill(0.01f);
  if (predicted < 10) j.probabilities[static_cast<std::size_t>(predicted)] = 0.9f;
  j.correct = label == predicted;
  j.model_version = 1;
  j.client_id = "client " + std::to_string(ink);
  j.client_address = "192.0.2.7";
  return j;
}

Network network_number(int n) {
  Network network({6, 4, 3}, Activation::relu, 1.0f / 255.0f);
  network.initialize(Init::he, static_cast<std::uint64_t>(n));
  return network;
}

Metadata learned(std::int64_t last_id) {
  Metadata metadata{{"note", "kept"}};
  record_learning(metadata, 0.98, 3, last_id);
  return metadata;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fields a copy must keep, as one line per judgement.
std::string describe(const std::vector<Judgement>& judgements) {
  std::string text;
  for (const Judgement& j : judgements) {
    std::string input(j.input.begin(), j.input.end());
    text += std::to_string(j.id) + " " + std::to_string(j.label) + "/" + std::to_string(j.predicted) + (j.correct ? " right " : " wrong ") +
            std::to_string(j.model_version) + " " + std::to_string(j.created_ms) + " " + j.client_id + " " + j.client_address + " " + j.drawing_png +
            " " + std::to_string(j.probabilities[4]) + " " + sha256_hex(input) + "\n";
  }
  return text;
}

}  // namespace

TEST(StoreCopy, AStateDirectoryIntoPostgresqlAndBackKeepsEverything) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  Scratch from("from"), back("back");

  // The source: five judgements with a gap in their ids (one restored as id 10, "not a digit"),
  // two versions of which the first is live (the second was rolled back), and the learner's progress.
  std::string source_judgements;
  {
    Store store(feedback_database(from.path));
    store.add(judgement(3, 3, 10));
    store.add(judgement(7, 1, 20));
    store.add(judgement(4, 4, 30));
    Judgement old = judgement(10, 4, 40);
    old.id = 10;
    old.created_ms = 1234;
    store.restore(old);
    EXPECT_EQ(store.add(judgement(2, 5, 50)), 11);
    source_judgements = describe(store.since());
    ModelVersions versions(from.path);
    EXPECT_EQ(versions.add(network_number(1), learned(2)), 1);
    EXPECT_EQ(versions.add(network_number(2), learned(11)), 2);
    EXPECT_EQ(versions.rollback(1), 1);
  }
  const std::string progress = "{\n  \"considered_up_to\": 11\n}\n";
  write_file_atomically(from.path / "learning.json", progress);

  const Outcome into = digits_run("store copy --from " + quoted(from.path.string()) + " --to " + quoted(db));
  ASSERT_EQ(into.status, 0) << into.output;
  EXPECT_CONTAINS(into.output, "copied 5 judgements, 2 model versions (live: version 1)");

  {
    PostgresStore store(PostgresOptions{db, 2, std::chrono::milliseconds(5000), "test"});
    auto judgements = store.judgements();
    auto versions = store.versions();
    EXPECT_EQ(describe(judgements->since()), source_judgements);
    EXPECT_EQ(versions->current(), 1);
    ASSERT_EQ(versions->list().size(), 2u);
    const ModelVersions files(from.path);
    for (int v : {1, 2}) EXPECT_EQ(versions->model_file(v), read_file(files.file(v))) << "version " << v << " byte for byte";
    EXPECT_EQ(versions->list()[1].parent, 1);
    EXPECT_EQ(store.progress(), progress);
    // New judgements continue after the copied ones: one stored in PostgreSQL before copying back.
    EXPECT_EQ(judgements->add(judgement(1, 1, 60)), 12);
    source_judgements = describe(judgements->since());
  }

  // A store that holds anything is no destination (ids and numbers would collide).
  const Outcome again = digits_run("store copy --from " + quoted(from.path.string()) + " --to " + quoted(db));
  EXPECT_EQ(again.status, 1);
  EXPECT_CONTAINS(again.output, "already holds 6 judgements and 2 model versions; copy into an empty store");

  // And back, the PostgreSQL side from $DIGITS_STORE.
  const Outcome out = digits_run("store copy --to " + quoted(back.path.string()), "DIGITS_STORE=" + quoted(db));
  ASSERT_EQ(out.status, 0) << out.output;
  EXPECT_CONTAINS(out.output, "copied 6 judgements, 2 model versions (live: version 1)");
  Store copied(feedback_database(back.path), /*create_if_missing=*/false);
  EXPECT_EQ(describe(copied.since()), source_judgements);
  EXPECT_EQ(copied.add(judgement(0, 0, 70)), 13);
  const ModelVersions versions(back.path), original(from.path);
  EXPECT_EQ(versions.current(), 1);
  for (int v : {1, 2}) EXPECT_EQ(read_file(versions.file(v)), read_file(original.file(v))) << "version " << v << " byte for byte";
  EXPECT_EQ(read_file(back.path / "learning.json"), progress);
}

TEST(StoreCopy, NamesWhatIsWrongWithItsArguments) {
  REQUIRE_POSTGRES();
  Scratch missing("missing");
  Outcome run = digits_run("store copy --from " + quoted(missing.path.string()) + " --to " + quoted(test::test_database()));
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.output, "no such state directory");
  run = digits_run("store copy --from " + quoted(missing.path.string()), "DIGITS_STORE=");
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.output, "--to is not given and $DIGITS_STORE is not set");
  run = digits_run("store copy --from postgresql://nobody@127.0.0.1:1/none --to " + quoted(missing.path.string()));
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.output, "cannot connect");
  EXPECT_FALSE(fs::exists(missing.path)) << "nothing made when the source cannot be opened";
}

// `digits model list`, `digits model rollback` and `digits feedback export` on the PostgreSQL the
// replicas share (--store, --store-file or $DIGITS_STORE), and an explicit --state-dir winning
// over $DIGITS_STORE.
TEST(StoreCommands, ListRollBackAndExportTheSharedStore) {
  REQUIRE_POSTGRES();
  const std::string db = test::test_database();
  {
    PostgresStore store(PostgresOptions{db, 2, std::chrono::milliseconds(5000), "test"});
    store.judgements()->add(judgement(3, 3, 10));
    store.judgements()->add(judgement(7, 1, 20));
    ASSERT_TRUE(store.try_lead("test"));
    Metadata first = learned(2), second = learned(2);
    EXPECT_EQ(store.versions()->add(network_number(1), first), 1);
    EXPECT_EQ(store.versions()->add(network_number(2), second), 2);
  }
  Scratch scratch("commands");
  fs::create_directories(scratch.path);
  const fs::path file = scratch.path / "store";
  write_file_atomically(file, db + "\n");

  Outcome listed = digits_run("model list --store-file " + quoted(file.string()));
  ASSERT_EQ(listed.status, 0) << listed.output;
  EXPECT_CONTAINS(listed.output, "model versions in PostgreSQL (");
  EXPECT_CONTAINS(listed.output, "*       2");

  const Outcome rolled = digits_run("model rollback", "DIGITS_STORE=" + quoted(db));
  ASSERT_EQ(rolled.status, 0) << rolled.output;
  EXPECT_CONTAINS(rolled.output, "rolled back from version 2 to version 1");
  EXPECT_CONTAINS(rolled.output, "every replica serves it");
  EXPECT_EQ(test::postgres_value(db, "SELECT version FROM live_version"), "1");
  listed = digits_run("model list --store " + quoted(db));
  EXPECT_CONTAINS(listed.output, "*       1");
  EXPECT_CONTAINS(listed.output, "(rolled back)");

  const Outcome exported = digits_run("feedback export --store " + quoted(db) + " --out " + quoted((scratch.path / "out").string()));
  ASSERT_EQ(exported.status, 0) << exported.output;
  EXPECT_CONTAINS(exported.output, "exported 2 judgements (1 corrections, 1 confirmed right) from PostgreSQL (");
  EXPECT_TRUE(fs::exists(scratch.path / "out" / "feedback-labels-idx1-ubyte"));

  const Outcome both = digits_run("model list --store " + quoted(db) + " --state-dir " + quoted(scratch.path.string()));
  EXPECT_EQ(both.status, 2) << both.output;
  EXPECT_CONTAINS(both.output, "excludes");
  const Outcome folder = digits_run("model list --state-dir " + quoted(scratch.path.string()), "DIGITS_STORE=" + quoted(db));
  EXPECT_EQ(folder.status, 0) << folder.output;
  EXPECT_CONTAINS(folder.output, "model versions in " + scratch.path.string());
}
