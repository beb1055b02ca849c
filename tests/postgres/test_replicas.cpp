// Three `digits serve` replicas sharing one PostgreSQL 15 (issue 22's fault tests), as processes
// over real sockets, no mocks. The tests run in order on one set of replicas and one cluster of
// their own (tests/postgres/server, started here: one test stops PostgreSQL for 20 s, which must not
// disturb the other PostgreSQL tests running beside it):
//  1. judgements sent to each replica are all stored once, and exactly one replica learns;
//  2. a new version (learned from corrections) is served by every replica, by NOTIFY;
//  3. a rollback through one replica switches all, including one whose listener was cut (it reads
//     the pointer when it reconnects);
//  4. concurrent rollbacks from two replicas end in one state that every replica serves;
//  5. kill -9 of the learner: another takes over, and no acknowledged judgement is lost;
//  6. kill -9 of learners in the middle of rounds: no replica ever serves a version that is not
//     whole (every version's bytes match their SHA-256, the pointer names a stored one);
//  7. PostgreSQL stopped for 20 s: predictions go on everywhere, judgements get 503 with
//     Retry-After, nothing acknowledged is lost, and storing resumes by itself.
// The learner's model is a small dense network (784-16-10, barely trained), so that every round
// is accepted by the guard and takes milliseconds; its MNIST is the first 6,000 training images.
// Times are printed, not asserted (bench/ holds speed goals); the waits are generous bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <set>

#include "../api/http_support.hpp"
#include "digits/dataset.hpp"
#include "digits/network.hpp"
#include "digits/sha256.hpp"
#include "postgres_support.hpp"
// After Eigen: <resolv.h>, which httplib includes, defines _res, a name Eigen's headers use.
#include <httplib.h>

using namespace digits;
using namespace digits::api_testing;
using digits::test::postgres_run;
using digits::test::postgres_value;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kServerScript = DIGITS_SOURCE_DIR "/tests/postgres/server";

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// A `digits serve` replica: its port, and its standard error read into a string as it comes (a
// pipe nobody reads would fill and stop the server).
class Replica {
 public:
  // process_ is made in place: Process kills its pid when it goes, so a temporary assigned from
  // would kill the replica it just started.
  Replica(const std::string& name, const std::string& conninfo, const fs::path& model, const fs::path& data)
      : name_(name),
        process_(Process::start({"serve", "--port", "0", "--store", conninfo + " application_name=" + name, "--model", model.string(), "--data",
                                 data.string(), "--admin-token", "secret", "--feedback-rate", "0", "--feedback-rate-address", "0",
                                 "--feedback-quota-client", "0", "--feedback-quota-address", "0"})) {
    std::string out;
    const std::string port = Process::read_until(process_.out, std::regex(R"(127\.0\.0\.1:(\d+)/)"), std::chrono::seconds(120), out);
    if (port.empty()) {
      std::string err;
      Process::read_until(process_.err, std::regex("never matches: the whole output"), std::chrono::seconds(2), err);
      throw std::runtime_error(name + " did not start: " + out + err);
    }
    port_ = std::stoi(port);
    drain_ = std::thread([this, fd = process_.err] {
      char chunk[4096];
      for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) {
        std::lock_guard lock(mutex_);
        log_.append(chunk, static_cast<std::size_t>(n));
      }
    });
  }
  ~Replica() {
    kill9();
    if (drain_.joinable()) drain_.join();
  }

  void kill9() {
    if (process_.pid > 0) {
      ::kill(process_.pid, SIGKILL);
      ::waitpid(process_.pid, nullptr, 0);
      process_.pid = -1;
    }
  }
  bool alive() const { return process_.pid > 0; }
  // What ps shows of the replica's command line.
  std::string command_line() const {
    std::ifstream in("/proc/" + std::to_string(process_.pid) + "/cmdline", std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(text.begin(), text.end(), '\0', ' ');
    return text;
  }
  const std::string& name() const { return name_; }
  std::string log() const {
    std::lock_guard lock(mutex_);
    return log_;
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(5);
    c.set_read_timeout(30);
    return c;
  }
  json model() const {
    auto response = client().Get("/api/model");
    return response && response->status == 200 ? json::parse(response->body) : json();
  }
  int version() const {
    const json m = model();
    return m.is_null() ? -1 : m["version"]["number"].get<int>();
  }
  bool learner() const {
    const json m = model();
    return !m.is_null() && m["learning"]["learner"].get<bool>();
  }
  httplib::Result post(const std::string& path, const json& body, bool admin = false) const {
    httplib::Headers headers;
    if (admin) headers.emplace("Authorization", "Bearer secret");
    return client().Post(path, headers, body.dump(), "application/json");
  }

 private:
  std::string name_;
  Process process_;
  int port_ = 0;
  std::thread drain_;
  mutable std::mutex mutex_;
  std::string log_;
};

// Waits until `done()` or `bound` passes; returns the seconds it took, or -1.
template <typename F>
double wait_for(F done, std::chrono::milliseconds bound) {
  const auto start = Clock::now();
  while (Clock::now() - start < bound) {
    if (done()) return seconds_since(start);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// A drawing of one of the digits tests/support/strokes.hpp can draw (0–4 and 7; any other is an
// empty canvas, which the server refuses), judged as `label`.
json judgement_body(int digit, int label) {
  constexpr int kDrawable[] = {0, 1, 2, 3, 4, 7};
  json body = {{"image", png_data_url(drawing(kDrawable[digit % 6]))}};
  body["label"] = label;
  body["client_id"] = "replica-test";
  return body;
}

class Replicas : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch = std::make_unique<TempDir>("replicas");
    state = scratch->path / "server";
    if (std::system((kServerScript + " start " + state.string() + " >/dev/null").c_str()) != 0) {
      skipped = "cannot start a PostgreSQL 15 (tests/postgres/server; scripts/setup installs postgresql-15)";
      return;
    }
    std::ifstream in(state / "conninfo");
    std::getline(in, admin);
    postgres_run(admin, "CREATE DATABASE replicas");
    database = admin + " dbname=replicas";

    // The learner's MNIST: the first 6,000 training images (the guard sets 5,000 aside).
    const fs::path mnist = fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
    if (!fs::exists(mnist / "train-images-idx3-ubyte") && !fs::exists(mnist / "train-images-idx3-ubyte.gz")) {
      skipped = "no MNIST in data/mnist (scripts/fetch-mnist)";
      return;
    }
    Dataset train = load_training_set(mnist);
    train.pixels.resize(6000 * 784);
    train.labels.resize(6000);
    data = scratch->path / "mnist";
    fs::create_directories(data);
    write_idx(train, data / "train-images-idx3-ubyte", data / "train-labels-idx1-ubyte");

    // A weak model: every round the guard sees improves it, so every round is promoted.
    Network network({784, 16, 10}, Activation::relu, 1.0f / 255.0f);
    network.initialize(Init::he, 7);
    model = scratch->path / "weak.safetensors";
    save_model(model, network, {});

    for (const char* name : {"replica_a", "replica_b", "replica_c"}) replicas.push_back(std::make_unique<Replica>(name, database, model, data));
  }

  static void TearDownTestSuite() {
    replicas.clear();
    if (!state.empty()) std::system((kServerScript + " stop " + state.string() + " >/dev/null 2>&1").c_str());
    scratch.reset();
  }

  void SetUp() override {
    if (!skipped.empty()) GTEST_SKIP() << skipped;
  }

  static std::vector<Replica*> running() {
    std::vector<Replica*> alive;
    for (auto& r : replicas)
      if (r->alive()) alive.push_back(r.get());
    return alive;
  }
  static Replica* the_learner() {
    for (Replica* r : running())
      if (r->learner()) return r;
    return nullptr;
  }
  static int learners() {
    int n = 0;
    for (Replica* r : running()) n += r->learner();
    return n;
  }
  static int live_in_database() { return std::stoi(postgres_value(database, "SELECT coalesce(version, 0) FROM live_version")); }
  static bool all_serve(int version) {
    for (Replica* r : running())
      if (r->version() != version) return false;
    return true;
  }
  static std::string logs() {
    std::string all;
    for (auto& r : replicas) all += "---- " + r->name() + "\n" + r->log();
    return all;
  }

  static inline std::unique_ptr<TempDir> scratch;
  static inline fs::path state, data, model;
  static inline std::string admin, database, skipped;
  static inline std::vector<std::unique_ptr<Replica>> replicas;
  static inline std::set<std::int64_t> acknowledged;  // every judgement id a replica answered 201 for
};

TEST_F(Replicas, JudgementsSentToEachAreStoredOnceAndOneReplicaLearns) {
  ASSERT_GE(wait_for([] { return learners() == 1; }, std::chrono::seconds(60)), 0) << logs();
  for (int i = 0; i < 12; ++i) {
    Replica& r = *replicas[static_cast<std::size_t>(i % 3)];
    const auto response = r.post("/api/feedback", judgement_body(i % 10, i % 10));
    ASSERT_TRUE(response) << r.name();
    ASSERT_EQ(response->status, 201) << response->body;
    acknowledged.insert(json::parse(response->body)["id"].get<std::int64_t>());
  }
  EXPECT_EQ(acknowledged.size(), 12u) << "twelve distinct ids";
  EXPECT_EQ(postgres_value(database, "SELECT count(*) FROM judgements"), "12");
  EXPECT_EQ(postgres_value(database, "SELECT count(DISTINCT id) FROM judgements"), "12");
  EXPECT_EQ(learners(), 1);
  // The connection string (a password's place) is not in what ps shows, nor in /api/model.
  for (Replica* r : running()) {
    EXPECT_EQ(r->command_line().find("dbname="), std::string::npos) << r->command_line();
    EXPECT_NE(r->command_line().find("--store ****"), std::string::npos) << r->command_line();
    EXPECT_EQ(r->model().dump().find("dbname"), std::string::npos);
    EXPECT_EQ(r->model()["learning"]["store"], "postgresql");
  }
}

TEST_F(Replicas, ANewVersionReachesEveryReplica) {
  Replica* learner = the_learner();
  ASSERT_NE(learner, nullptr);
  Replica* other = nullptr;
  for (Replica* r : running())
    if (r != learner) other = r;
  // Corrections sent to a replica that does not learn: the learner finds them in the store.
  for (int i = 0; i < 10; ++i) {
    const auto response = other->post("/api/feedback", judgement_body(i, (i + 1) % 10));
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 201) << response->body;
    acknowledged.insert(json::parse(response->body)["id"].get<std::int64_t>());
  }
  // Asked to learn now through the replica that does not learn: it passes the request on.
  const auto asked = other->post("/api/model/learn", json::object(), true);
  ASSERT_TRUE(asked);
  EXPECT_EQ(asked->status, 202) << asked->body;
  ASSERT_GE(wait_for([] { return live_in_database() > 0; }, std::chrono::seconds(60)), 0) << logs();
  const int live = live_in_database();
  const double reached = wait_for([&] { return all_serve(live); }, std::chrono::seconds(10));
  std::printf("[   time   ] every replica served version %d %.2f s after the pointer moved was seen\n", live, reached);
  EXPECT_GE(reached, 0) << logs();
}

TEST_F(Replicas, ARollbackThroughAnyReplicaSwitchesAllEvenOneWhoseListenerWasCut) {
  const int live = live_in_database();
  ASSERT_GT(live, 0);
  // Replica C's listening connection is cut just before the rollback: it may miss the NOTIFY, and
  // reads the pointer when it reconnects.
  postgres_run(database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'replica_c' AND query LIKE 'LISTEN%'");
  const auto response = replicas[0]->post("/api/model/rollback", json{{"version", 0}}, true);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(live_in_database(), 0);
  const double reached = wait_for([] { return all_serve(0); }, std::chrono::seconds(10));
  std::printf("[   time   ] every replica served version 0 %.2f s after the rollback\n", reached);
  EXPECT_GE(reached, 0) << logs();
  // And forward again, through another replica, C's listener cut again while it is sent.
  postgres_run(database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'replica_c' AND query LIKE 'LISTEN%'");
  const auto forward = replicas[1]->post("/api/model/rollback", json{{"version", live}}, true);
  ASSERT_TRUE(forward);
  ASSERT_EQ(forward->status, 200) << forward->body;
  EXPECT_GE(wait_for([&] { return all_serve(live); }, std::chrono::seconds(10)), 0) << logs();
}

TEST_F(Replicas, ConcurrentRollbacksFromTwoReplicasEndInOneState) {
  const int live = live_in_database();
  ASSERT_GT(live, 0);
  std::vector<int> statuses(2);
  std::thread a([&] { statuses[0] = replicas[0]->post("/api/model/rollback", json::object(), true)->status; });
  std::thread b([&] { statuses[1] = replicas[1]->post("/api/model/rollback", json::object(), true)->status; });
  a.join();
  b.join();
  // Each is one step back from where the other left the pointer (or refused: nothing before 0).
  for (int status : statuses) EXPECT_TRUE(status == 200 || status == 400) << status;
  const int now = live_in_database();
  EXPECT_LT(now, live);
  EXPECT_GE(wait_for([&] { return all_serve(now); }, std::chrono::seconds(10)), 0) << logs();
}

TEST_F(Replicas, KillNineOfTheLearnerHandsOverAndLosesNoAcknowledgedJudgement) {
  Replica* learner = the_learner();
  ASSERT_NE(learner, nullptr) << logs();
  std::atomic<bool> sending{true};
  std::mutex ids_mutex;
  std::thread writer([&] {
    for (int i = 0; sending; ++i) {
      for (Replica* r : running()) {
        if (r == learner) continue;
        const auto response = r->post("/api/feedback", judgement_body(i % 10, (i + 3) % 10));
        if (response && response->status == 201) {
          std::lock_guard lock(ids_mutex);
          acknowledged.insert(json::parse(response->body)["id"].get<std::int64_t>());
        }
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto killed = Clock::now();
  learner->kill9();
  const double took = wait_for([] { return learners() == 1; }, std::chrono::seconds(60));
  std::printf("[   time   ] another replica took over the learning %.2f s after kill -9 of the learner\n", took);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  sending = false;
  writer.join();
  EXPECT_GE(took, 0) << logs();
  (void)killed;
  std::lock_guard lock(ids_mutex);
  std::string missing;
  for (std::int64_t id : acknowledged)
    if (postgres_value(database, "SELECT count(*) FROM judgements WHERE id = " + std::to_string(id)) != "1") missing += std::to_string(id) + " ";
  EXPECT_EQ(missing, "") << "acknowledged judgements lost";
  // A replica in its place, for the tests after.
  for (auto& r : replicas)
    if (!r->alive()) r = std::make_unique<Replica>(r->name(), database, model, data);
}

TEST_F(Replicas, KillNineInTheMiddleOfPromotionsLeavesOnlyWholeVersions) {
  std::mt19937 random(22);
  for (int round = 0; round < 3; ++round) {
    Replica* learner = nullptr;
    ASSERT_GE(wait_for([&] { return (learner = the_learner()) != nullptr; }, std::chrono::seconds(60)), 0) << logs();
    // Corrections, then a kill at a random moment while the learner learns and promotes.
    for (int i = 0; i < 6; ++i) learner->post("/api/feedback", judgement_body(i, (i + 2 + round) % 10));
    learner->post("/api/model/learn", json::object(), true);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 400)(random)));
    learner->kill9();
    // Every stored version is whole, the pointer names one of them, and every replica serves it.
    const int versions = std::stoi(postgres_value(database, "SELECT count(*) FROM model_versions"));
    const int damaged = std::stoi(postgres_value(database, "SELECT count(*) FROM model_versions WHERE sha256 <> encode(sha256(model), 'hex')"));
    EXPECT_EQ(damaged, 0) << "of " << versions;
    const int live = live_in_database();
    EXPECT_GE(wait_for([&] { return all_serve(live_in_database()); }, std::chrono::seconds(10)), 0) << logs();
    for (auto& r : replicas)
      if (!r->alive()) r = std::make_unique<Replica>(r->name(), database, model, data);
    (void)live;
  }
}

TEST_F(Replicas, PostgresStoppedForTwentySecondsPredictionsGoOnJudgementsWaitNothingIsLost) {
  ASSERT_GE(wait_for([] { return learners() == 1; }, std::chrono::seconds(60)), 0) << logs();
  const std::string acknowledged_before = postgres_value(database, "SELECT count(*) FROM judgements");
  ASSERT_EQ(std::system((kServerScript + " halt " + state.string() + " >/dev/null").c_str()), 0);
  const auto halted = Clock::now();
  int predictions = 0, failed_predictions = 0, refused = 0, other = 0;
  while (seconds_since(halted) < 20) {
    for (Replica* r : running()) {
      const auto predicted = r->client().Post("/api/predict", json{{"image", png_data_url(drawing(4))}}.dump(), "application/json");
      if (predicted && predicted->status == 200)
        ++predictions;
      else
        ++failed_predictions;
      const auto judged = r->post("/api/feedback", judgement_body(4, 4));
      if (judged && judged->status == 503 && judged->has_header("Retry-After") && json::parse(judged->body)["error"]["code"] == "store_unavailable")
        ++refused;
      else
        ++other;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(std::system((kServerScript + " resume " + state.string() + " >/dev/null").c_str()), 0);
  EXPECT_GT(predictions, 0);
  EXPECT_EQ(failed_predictions, 0) << "predictions go on while PostgreSQL is down";
  EXPECT_EQ(other, 0) << "every judgement while PostgreSQL was down: 503 store_unavailable with Retry-After";
  EXPECT_GT(refused, 0);
  // Judgements are stored again by themselves, on every replica, and nothing acknowledged is lost.
  for (Replica* r : running()) {
    const double took = wait_for(
        [&] {
          const auto response = r->post("/api/feedback", judgement_body(5, 5));
          if (!response || response->status != 201) return false;
          acknowledged.insert(json::parse(response->body)["id"].get<std::int64_t>());
          return true;
        },
        std::chrono::seconds(30));
    std::printf("[   time   ] %s stored judgements again %.2f s after PostgreSQL returned\n", r->name().c_str(), took);
    EXPECT_GE(took, 0) << logs();
  }
  EXPECT_EQ(postgres_value(database, "SELECT count(*) FROM judgements"), std::to_string(std::stoll(acknowledged_before) + static_cast<long long>(running().size())));
  EXPECT_GE(wait_for([] { return learners() == 1; }, std::chrono::seconds(30)), 0) << "one learner again\n" << logs();
  std::string missing;
  for (std::int64_t id : acknowledged)
    if (postgres_value(database, "SELECT count(*) FROM judgements WHERE id = " + std::to_string(id)) != "1") missing += std::to_string(id) + " ";
  EXPECT_EQ(missing, "") << "acknowledged judgements lost";
}

}  // namespace
