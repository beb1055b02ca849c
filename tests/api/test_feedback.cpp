// Learning from corrections through the HTTP API: POST /api/feedback, the background learner, the
// admin endpoints, restarts and kill -9. Servers run in-process on a free port with a temporary
// state directory, or as the `digits serve` process. The tests that learn need MNIST (data/mnist
// or $DIGITS_DATA) for the replay and the guard's validation set; without it they are skipped.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>

#include "digits/error.hpp"
#include "digits/fine_tune.hpp"
#include "digits/preprocess.hpp"
#include "feedback/model_versions.hpp"
#include "feedback/store.hpp"
#include "http_support.hpp"
#include "server/learner.hpp"
#include "server/server.hpp"

// After Eigen: httplib.h brings in <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>

namespace digits {
namespace {

using namespace api_testing;
namespace fs = std::filesystem;

// ---- MNIST, for the tests that learn ----

fs::path mnist_dir() {
  if (const char* env = std::getenv("DIGITS_DATA"); env && *env) return env;
  return fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
}

// MNIST's training set split as the guard splits it, loaded once; null without MNIST.
std::shared_ptr<const server::LearningData> learning_data() {
  static const std::shared_ptr<const server::LearningData> data = []() -> std::shared_ptr<const server::LearningData> {
    std::error_code ec;
    if (!fs::exists(mnist_dir() / "train-images-idx3-ubyte", ec) && !fs::exists(mnist_dir() / "train-images-idx3-ubyte.gz", ec)) return nullptr;
    auto [replay, validation] = guard_split(load_train_test(mnist_dir()).train);
    return std::make_shared<const server::LearningData>(server::LearningData{std::move(replay), std::move(validation)});
  }();
  return data;
}

#define REQUIRE_MNIST()                                                                                                         \
  if (!learning_data())                                                                                                         \
  GTEST_SKIP() << "no MNIST in " << mnist_dir() << ": learning needs its training set (run scripts/fetch-mnist or set DIGITS_DATA)"

// ---- drawings in styles MNIST barely has ----

struct Style {
  std::string name;
  int label;
  std::vector<testing::Stroke> strokes;
};

// Shapes people do draw that the built-in model reads wrong. The tests take the first one the
// model at hand gets mostly wrong, so a better built-in model does not silently void them.
std::vector<Style> unusual_styles() {
  testing::Stroke ring;
  for (int k = 0; k <= 40; ++k) {
    const double t = k * 2 * 3.14159265358979 / 40;
    ring.push_back({0.5 + 0.32 * std::cos(t), 0.5 + 0.45 * std::sin(t)});
  }
  return {
      {"a six as on a seven-segment display", 6, {{{0.85, 0.05}, {0.15, 0.05}, {0.15, 0.95}, {0.85, 0.95}, {0.85, 0.5}, {0.15, 0.5}}}},
      {"a zero with a slash through it", 0, {ring, {{0.85, 0.0}, {0.15, 1.0}}}},
      {"a nine as on a seven-segment display", 9, {{{0.85, 0.5}, {0.15, 0.5}, {0.15, 0.05}, {0.85, 0.05}, {0.85, 0.95}, {0.15, 0.95}}}},
  };
}

// `count` placements on the 280×280 canvas: anywhere, of any reasonable size and pen; a different
// seed gives different ones.
std::vector<testing::Placement> placements(int count, unsigned seed) {
  std::mt19937 rng(seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  std::vector<testing::Placement> list;
  for (int i = 0; i < count; ++i) {
    testing::Placement p;
    p.width = uniform(90, 180), p.height = uniform(130, 220);
    p.left = uniform(10, 270 - p.width), p.top = uniform(10, 270 - p.height);
    p.pen = uniform(9, 24);
    list.push_back(p);
  }
  return list;
}

std::vector<GrayImage> draw_all(const std::vector<testing::Stroke>& strokes, const std::vector<testing::Placement>& where) {
  std::vector<GrayImage> images;
  for (const testing::Placement& p : where) images.push_back(testing::draw(strokes, p));
  return images;
}

// ---- an in-process server with a state directory ----

struct LiveOptions {
  bool learning = true;  // needs MNIST
  int feedback_per_minute = 0;
  std::string admin_token;
  std::chrono::milliseconds debounce = 100ms;
};

LiveOptions without_learning(int feedback_per_minute = 0, const std::string& admin_token = "") {
  LiveOptions options;
  options.learning = false;
  options.feedback_per_minute = feedback_per_minute;
  options.admin_token = admin_token;
  return options;
}

class LiveServer {
 public:
  LiveServer(const fs::path& state_dir, LiveOptions live = {}, server::ServedModel start = {builtin(), "built-in model"}) {
    server::ServerOptions options;
    options.port = 0;
    options.log = nullptr;
    options.feedback_per_minute = live.feedback_per_minute;
    options.admin_token = live.admin_token;
    server::LearnerOptions learning;
    learning.state_dir = state_dir;
    learning.debounce = live.debounce;
    // DIGITS_TEST_LOG=1 shows the learner's lines (each round's verdict and time) on stderr.
    learning.log = std::getenv("DIGITS_TEST_LOG") ? stderr : nullptr;
    if (live.learning) learning.data = learning_data();
    learning.disabled_reason = "this test runs without learning";
    options.learning = learning;
    server_ = std::make_unique<server::Server>(std::move(start), options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~LiveServer() {
    server_->stop();
    thread_.join();
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const json& body, const std::string& token = "") const {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client().Post(path, headers, body.is_null() ? std::string() : body.dump(), "application/json");
  }
  json model() const {
    auto response = client().Get("/api/model");
    EXPECT_TRUE(response && response->status == 200);
    return response ? json::parse(response->body) : json();
  }
  int port() const { return port_; }

 private:
  std::unique_ptr<server::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

json parsed(const httplib::Result& response) { return response ? json::parse(response->body, nullptr, false) : json(); }

json post_feedback(const LiveServer& live, const GrayImage& image, int label, const std::string& client_id = "test-client") {
  auto response = live.post("/api/feedback", {{"image", png_data_url(image)}, {"label", label}, {"client_id", client_id}});
  EXPECT_TRUE(response);
  if (!response) return {};
  EXPECT_EQ(response->status, 201) << response->body;
  return json::parse(response->body);
}

int predict(int port, const GrayImage& image) {
  httplib::Client c("127.0.0.1", port);
  auto response = c.Post("/api/predict", json{{"image", png_data_url(image)}}.dump(), "application/json");
  if (!response || response->status != 200) return -1;
  return json::parse(response->body)["digit"].get<int>();
}

int count_read_as(int port, const std::vector<GrayImage>& images, int digit) {
  int count = 0;
  for (const GrayImage& image : images) count += predict(port, image) == digit;
  return count;
}

// Polls GET /api/model until the learner has considered every correction and is idle.
json wait_until_learned(const LiveServer& live, std::chrono::seconds timeout = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  json model;
  do {
    std::this_thread::sleep_for(50ms);
    model = live.model();
    if (model["learning"]["pending"] == 0 && model["learning"]["state"] == "idle") return model;
  } while (std::chrono::steady_clock::now() < deadline);
  ADD_FAILURE() << "the learner did not finish within " << timeout.count() << " s: " << model["learning"];
  return model;
}

// The first unusual style the live model reads wrong at least 70% of the time, or nullopt.
std::optional<Style> style_it_gets_wrong(int port, const std::vector<testing::Placement>& where) {
  for (const Style& style : unusual_styles()) {
    const int right = count_read_as(port, draw_all(style.strokes, where), style.label);
    std::printf("  %s: the starting model reads %d of %zu as %d\n", style.name.c_str(), right, where.size(), style.label);
    if (right * 10 <= static_cast<int>(where.size()) * 3) return style;
  }
  return std::nullopt;
}

// ---- the endpoint ----

TEST(Feedback, StoresTheJudgementWithTheServersOwnPrediction) {
  TempDir state("state");
  {
    LiveServer live(state.path, without_learning());
    const GrayImage seven = drawing(7);
    const int shown = predict(live.port(), seven);
    const json right = post_feedback(live, seven, shown, "client-a");
    EXPECT_EQ(right["id"], 1);
    EXPECT_EQ(right["label"], shown);
    EXPECT_EQ(right["predicted"], shown);
    EXPECT_EQ(right["correct"], true);
    EXPECT_EQ(right["model_version"], 0);
    EXPECT_EQ(right["probabilities"].size(), 10u);
    EXPECT_EQ(right["learning"], "off");

    // Raw pixels, judged wrong: the stored prediction is the server's, whatever the label.
    const GrayImage one = drawing(1);
    auto response = live.post("/api/feedback", [&] {
      json body = pixels_request(one);
      body["label"] = 4;
      return body;
    }());
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 201) << response->body;
    const json wrong = json::parse(response->body);
    EXPECT_EQ(wrong["id"], 2);
    EXPECT_EQ(wrong["predicted"], predict(live.port(), one));
    EXPECT_EQ(wrong["correct"], wrong["predicted"] == 4);

    const json model = live.model();
    EXPECT_EQ(model["learning"]["judgements"], 2);
    EXPECT_EQ(model["learning"]["enabled"], false);
    EXPECT_EQ(model["learning"]["disabled_reason"], "this test runs without learning");
  }
  // Everything acknowledged is in the database, with the drawing as PNG and the 28×28 input the network saw.
  const feedback::Store store(feedback::feedback_database(state.path), false);
  const std::vector<feedback::Judgement> stored = store.since();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].client_id, "client-a");
  EXPECT_EQ(stored[1].client_id, "");
  EXPECT_EQ(stored[1].label, 4);
  for (const feedback::Judgement& j : stored) {
    EXPECT_TRUE(j.drawing_png.starts_with("\x89PNG")) << j.id;
    EXPECT_EQ(j.input.size(), 784u);
  }
  const Preprocessed input = preprocess(drawing(1));
  for (std::size_t i = 0; i < 784; ++i) EXPECT_NEAR(stored[1].input[i], input.pixels[i], 0.51) << i;
}

TEST(Feedback, BadInputSaysWhichField) {
  TempDir state("state");
  LiveServer live(state.path, without_learning());
  const std::string image = png_data_url(drawing(7));
  auto expect_400 = [&](const json& body, const std::string& field) {
    auto response = live.post("/api/feedback", body);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 400) << body.dump().substr(0, 80);
    const json error = json::parse(response->body)["error"];
    EXPECT_EQ(error["code"], "invalid_request");
    EXPECT_NE(error["message"].get<std::string>().find(field), std::string::npos) << error;
  };
  expect_400({{"image", image}, {"label", 10}}, "\"label\" is 10");
  expect_400({{"image", image}, {"label", -1}}, "\"label\"");
  expect_400({{"image", image}}, "\"label\" is missing");
  expect_400({{"image", image}, {"label", "7"}}, "\"label\" must be an integer");
  expect_400({{"image", image}, {"label", 3.5}}, "\"label\" must be an integer");
  expect_400({{"image", image}, {"label", 7}, {"client_id", std::string(65, 'x')}}, "\"client_id\" is 65 bytes");
  expect_400({{"image", image}, {"label", 7}, {"client_id", 12}}, "\"client_id\" must be a string");
  expect_400({{"image", "data:image/png;base64,@@"}, {"label", 7}}, "base64");
  expect_400({{"label", 7}}, "expected");
  auto bad_image = live.post("/api/feedback", {{"image", "data:image/png;base64," + encode_base64(std::string("\x89PNG\r\n\x1a\n", 8) + "but no more")}, {"label", 7}});
  ASSERT_TRUE(bad_image);
  EXPECT_EQ(bad_image->status, 400);
  EXPECT_EQ(parsed(bad_image)["error"]["code"], "bad_image");
  auto blank = live.post("/api/feedback", {{"image", png_data_url(GrayImage{280, 280, std::vector<float>(280 * 280, 0.0f)})}, {"label", 7}});
  ASSERT_TRUE(blank);
  EXPECT_EQ(blank->status, 422);
  auto not_json = live.client().Post("/api/feedback", "{label: 7", "application/json");
  ASSERT_TRUE(not_json);
  EXPECT_EQ(not_json->status, 400);
  EXPECT_EQ(live.model()["learning"]["judgements"], 0) << "nothing invalid is stored";
}

TEST(Feedback, DefaultRateLimitAnswers429WithRetryAfter) {
  TempDir state("state");
  LiveServer live(state.path, without_learning(server::ServerOptions{}.feedback_per_minute));
  ASSERT_EQ(server::ServerOptions{}.feedback_per_minute, 30);
  const json body = {{"image", png_data_url(drawing(7))}, {"label", 7}, {"client_id", "eager"}};
  for (int i = 0; i < 30; ++i) ASSERT_EQ(live.post("/api/feedback", body)->status, 201) << i;
  auto limited = live.post("/api/feedback", body);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(parsed(limited)["error"]["code"], "rate_limited");
  const std::string retry = limited->get_header_value("Retry-After");
  ASSERT_FALSE(retry.empty());
  EXPECT_GE(std::stoi(retry), 1);
  EXPECT_LE(std::stoi(retry), 60);
  // Another client id on the same address has its own allowance.
  json other = body;
  other["client_id"] = "patient";
  EXPECT_EQ(live.post("/api/feedback", other)->status, 201);
  EXPECT_EQ(live.model()["learning"]["judgements"], 31);
}

// ---- the admin endpoints and restarts ----

// Saves `network` as the next version in state_dir, recorded as learned from the built-in model.
int save_version(const fs::path& state_dir, const Network& network) {
  Metadata metadata = builtin().metadata;
  metadata.erase("created");
  metadata["version.start_sha256"] = server::model_fingerprint(builtin().network);
  feedback::record_learning(metadata, 0.99, 1, 0);
  return feedback::ModelVersions(state_dir).add(network, metadata);
}

TEST(Admin, RollbackAndLearnNeedTheAdminToken) {
  TempDir state("state");
  ASSERT_EQ(save_version(state.path, builtin().network), 1);
  {
    LiveServer no_token(state.path, without_learning());
    auto response = no_token.post("/api/model/rollback", json::object());
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 403);
    EXPECT_EQ(parsed(response)["error"]["code"], "admin_disabled");
    EXPECT_EQ(no_token.post("/api/model/learn", json(), "anything")->status, 403);
    EXPECT_EQ(no_token.model()["version"]["number"], 1);
  }
  LiveServer live(state.path, without_learning(0, "s3cret-token"));
  for (const std::string& token : {std::string(), std::string("wrong"), std::string("s3cret-toke"), std::string("s3cret-token2")}) {
    auto response = live.post("/api/model/rollback", json::object(), token);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 401) << "token '" << token << "'";
    EXPECT_EQ(parsed(response)["error"]["code"], "unauthorized");
    EXPECT_TRUE(response->get_header_value("WWW-Authenticate").starts_with("Bearer")) << token;
  }
  auto basic = live.client().Post("/api/model/rollback", {{"Authorization", "Basic czNjcmV0LXRva2Vu"}}, "{}", "application/json");
  EXPECT_EQ(basic->status, 401);
  EXPECT_EQ(live.model()["version"]["number"], 1) << "nothing changed without the token";

  auto back = live.post("/api/model/rollback", json(), "s3cret-token");  // no body: back to the parent
  ASSERT_EQ(back->status, 200) << back->body;
  EXPECT_EQ(parsed(back), json({{"version", 0}}));
  EXPECT_EQ(live.model()["version"]["number"], 0);
  EXPECT_EQ(feedback::ModelVersions(state.path).current(), 0);
  auto forward = live.post("/api/model/rollback", {{"version", 1}}, "s3cret-token");
  ASSERT_EQ(forward->status, 200) << forward->body;
  EXPECT_EQ(live.model()["version"]["number"], 1);
  auto missing = live.post("/api/model/rollback", {{"version", 7}}, "s3cret-token");
  EXPECT_EQ(missing->status, 400);
  EXPECT_NE(parsed(missing)["error"]["message"].get<std::string>().find("does not exist"), std::string::npos) << missing->body;
  EXPECT_EQ(live.post("/api/model/rollback", {{"version", "one"}}, "s3cret-token")->status, 400);
  auto learn = live.post("/api/model/learn", json(), "s3cret-token");
  EXPECT_EQ(learn->status, 409) << "learning is off in this test";
  EXPECT_EQ(parsed(learn)["error"]["code"], "learning_off");
}

TEST(Restart, StartsOnTheCurrentVersionAndRefusesAnotherStartingModel) {
  TempDir state("state");
  Network reads_three = builtin().network;
  reads_three.layers.back().b(0, 3) += 100;  // every drawing reads as 3: unmistakably this version
  ASSERT_EQ(save_version(state.path, reads_three), 1);
  {
    LiveServer live(state.path, without_learning());
    const json model = live.model();
    EXPECT_EQ(model["version"]["number"], 1);
    EXPECT_EQ(model["version"]["parent"], 0);
    EXPECT_EQ(model["version"]["corrections_learned"], 1);
    EXPECT_EQ(predict(live.port(), drawing(7)), 3);
  }
  server::ServerOptions options;
  options.port = 0;
  options.log = nullptr;
  server::LearnerOptions learning;
  learning.state_dir = state.path;
  learning.log = nullptr;
  options.learning = learning;
  try {
    server::Server other({Model{reads_three, builtin().metadata, {}}, "another model"}, options);
    ADD_FAILURE() << "a state directory learned from another starting model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another starting model"), std::string::npos) << e.what();
  }
}

// ---- learning ----

TEST(Learning, CorrectingAStyleTeachesIt) {
  REQUIRE_MNIST();
  TempDir state("state");
  LiveServer live(state.path);
  const json start = live.model();
  const double validation_start = start["version"]["validation_percent"].get<double>();

  const std::vector<testing::Placement> fresh = placements(40, 2);  // never sent
  const std::optional<Style> style = style_it_gets_wrong(live.port(), fresh);
  ASSERT_TRUE(style) << "the model reads every candidate style right; add a style it gets wrong to unusual_styles()";
  const std::vector<GrayImage> new_drawings = draw_all(style->strokes, fresh);
  const int right_before = count_read_as(live.port(), new_drawings, style->label);

  constexpr int kCorrections = 20;
  std::int64_t last_id = 0;
  for (const GrayImage& image : draw_all(style->strokes, placements(kCorrections, 1))) {
    const json answer = post_feedback(live, image, style->label);
    EXPECT_EQ(answer["learning"], answer["correct"] == true ? "not_needed" : "queued");
    last_id = answer["id"].get<std::int64_t>();
  }
  const auto started = std::chrono::steady_clock::now();
  const json model = wait_until_learned(live);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_FALSE(model["learning"]["last_attempt"].is_null()) << model["learning"];
  EXPECT_EQ(model["learning"]["last_attempt"]["accepted"], true) << model["learning"]["last_attempt"];
  ASSERT_GE(model["version"]["number"].get<int>(), 1) << model["learning"];
  // What the page polls for: a version that has learned from its judgement.
  EXPECT_GE(model["version"]["last_judgement_id"].get<std::int64_t>(), last_id);
  EXPECT_EQ(model["version"]["parent"], 0);

  const int right_after = count_read_as(live.port(), new_drawings, style->label);
  const double validation_after = model["version"]["validation_percent"].get<double>();
  std::printf("  %s, %d corrections: new drawings read right %d/40 -> %d/40; validation %.2f%% -> %.2f%%; learned %.2f s after the last correction\n",
              style->name.c_str(), kCorrections, right_before, right_after, validation_start, validation_after, seconds);
  EXPECT_GE(right_after, 32) << "most new drawings of the corrected style are read right";
  EXPECT_GE(validation_after, validation_start - 0.3);
  // The version on disk is the one served.
  const feedback::ModelVersions versions(state.path);
  EXPECT_EQ(versions.current(), model["version"]["number"]);
  EXPECT_NO_THROW(versions.load(versions.current()));
}

TEST(Learning, HundredsOfWrongLabelsDoNotBreakIt) {
  REQUIRE_MNIST();
  TempDir state("state");
  LiveServer live(state.path);
  const double validation_start = live.model()["version"]["validation_percent"].get<double>();
  const std::vector<int> digits = {0, 1, 2, 3, 4, 7};
  std::vector<GrayImage> ordinary;
  for (int digit : digits)
    for (const GrayImage& image : draw_all(testing::digit_strokes(digit), placements(20, 100 + static_cast<unsigned>(digit)))) ordinary.push_back(image);
  std::vector<int> before;
  for (const GrayImage& image : ordinary) before.push_back(predict(live.port(), image));

  // 300 ordinary digits, each labelled as another digit, from a few clients.
  int sent = 0;
  for (int digit : digits)
    for (const GrayImage& image : draw_all(testing::digit_strokes(digit), placements(50, 200 + static_cast<unsigned>(digit))))
      post_feedback(live, image, (digit + 5) % 10, "poisoner-" + std::to_string(sent++ % 3));
  ASSERT_EQ(sent, 300);
  const json model = wait_until_learned(live, 120s);
  EXPECT_EQ(model["learning"]["judgements"], 300);
  int unchanged = 0;
  for (std::size_t i = 0; i < ordinary.size(); ++i) unchanged += predict(live.port(), ordinary[i]) == before[i];
  const double validation_now = model["version"]["validation_percent"].get<double>();
  std::printf("  300 wrong labels: version %d, last attempt: %s; validation %.2f%% -> %.2f%%; ordinary digits unchanged %d/%zu\n",
              model["version"]["number"].get<int>(), model["learning"]["last_attempt"].is_null() ? "none" : model["learning"]["last_attempt"]["reason"].get<std::string>().c_str(),
              validation_start, validation_now, unchanged, ordinary.size());
  EXPECT_GE(validation_now, validation_start - 0.3);
  EXPECT_GE(unchanged * 10, static_cast<int>(ordinary.size()) * 9) << "at least 90% of ordinary digits read as before";
}

TEST(Learning, PredictionsKeepFlowingWhileItLearns) {
  REQUIRE_MNIST();
  TempDir state("state");
  LiveServer live(state.path);
  const std::optional<Style> style = style_it_gets_wrong(live.port(), placements(20, 2));
  ASSERT_TRUE(style);

  std::atomic<bool> done = false;
  std::atomic<int> answered = 0, failures = 0;
  std::atomic<long> slowest_ms = 0;
  const std::string seven = json{{"image", png_data_url(drawing(7))}}.dump();
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", live.port());
      c.set_read_timeout(10, 0);
      while (!done) {
        const auto start = std::chrono::steady_clock::now();
        auto response = c.Post("/api/predict", seven, "application/json");
        const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
        if (!response || response->status != 200) ++failures;
        ++answered;
        for (long seen = slowest_ms; ms > seen && !slowest_ms.compare_exchange_weak(seen, ms);) {
        }
      }
    });
  }
  // Two rounds, each swapping in a new version while the clients keep asking.
  for (unsigned round = 0; round < 2; ++round) {
    for (const GrayImage& image : draw_all(style->strokes, placements(15, 10 + round))) post_feedback(live, image, style->label);
    wait_until_learned(live);
  }
  done = true;
  for (std::thread& c : clients) c.join();
  const json model = live.model();
  std::printf("  %d predictions while learning, slowest %ld ms, now on version %d\n", answered.load(), slowest_ms.load(), model["version"]["number"].get<int>());
  EXPECT_GE(model["version"]["number"].get<int>(), 1) << model["learning"];
  EXPECT_EQ(failures, 0);
  EXPECT_GT(answered, 20);
  EXPECT_LT(slowest_ms, 2000) << "a prediction waited for training";
}

// ---- kill -9 and restart: the `digits serve` process ----

struct Served {
  Process process;
  int port = 0;
};

Served start_serve(const fs::path& state_dir, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"serve", "--port", "0", "--state-dir", state_dir.string(), "--feedback-rate", "0", "--admin-token", "tok"};
  args.insert(args.end(), extra.begin(), extra.end());
  Served served{Process::start(args), 0};
  std::string out;
  const std::string port = Process::read_until(served.process.out, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"), 30s, out);
  if (port.empty()) throw std::runtime_error("digits serve printed no address: " + out);
  served.port = std::stoi(port);
  return served;
}

json get_model(int port) {
  httplib::Client c("127.0.0.1", port);
  auto response = c.Get("/api/model");
  return response && response->status == 200 ? json::parse(response->body) : json();
}

std::int64_t send_judgement(int port, const GrayImage& image, int label) {
  httplib::Client c("127.0.0.1", port);
  auto response = c.Post("/api/feedback", json{{"image", png_data_url(image)}, {"label", label}}.dump(), "application/json");
  if (!response || response->status != 201) return -1;
  return json::parse(response->body)["id"].get<std::int64_t>();
}

void kill_nine(Served& served) {
  ::kill(served.process.pid, SIGKILL);
  EXPECT_EQ(served.process.wait(10s), 128 + SIGKILL);
}

TEST(Durability, AcknowledgedJudgementsSurviveKillNine) {
  TempDir state("state");
  Served first = start_serve(state.path, {"--no-learning"});
  std::int64_t last = 0;
  for (int i = 0; i < 25; ++i) {
    last = send_judgement(first.port, drawing(i % 2 ? 7 : 1), i % 10);
    ASSERT_EQ(last, i + 1);
  }
  kill_nine(first);  // right after the last acknowledgement

  Served second = start_serve(state.path, {"--no-learning"});
  EXPECT_EQ(get_model(second.port)["learning"]["judgements"], 25);
  EXPECT_EQ(send_judgement(second.port, drawing(7), 7), 26) << "ids go on after the last acknowledged one";
  kill_nine(second);
  const feedback::Store store(feedback::feedback_database(state.path), false);
  EXPECT_EQ(store.count(), 26);
}

TEST(Durability, KillNineWhileLearningKeepsTheLatestAcceptedVersion) {
  REQUIRE_MNIST();
  TempDir state("state");
  const std::vector<std::string> learning = {"--data", mnist_dir().string()};
  Served first = start_serve(state.path, learning);
  const std::vector<testing::Placement> where = placements(20, 1);
  std::optional<Style> style;
  for (const Style& candidate : unusual_styles()) {
    int right = 0;
    for (const GrayImage& image : draw_all(candidate.strokes, where)) right += predict(first.port, image) == candidate.label;
    if (right <= 6) {
      style = candidate;
      break;
    }
  }
  ASSERT_TRUE(style);
  for (const GrayImage& image : draw_all(style->strokes, where)) ASSERT_GT(send_judgement(first.port, image, style->label), 0);
  json model;
  for (int i = 0; i < 600 && (model.is_null() || model["version"]["number"] == 0 || model["learning"]["pending"] != 0); ++i) {
    std::this_thread::sleep_for(50ms);
    model = get_model(first.port);
  }
  ASSERT_EQ(model["version"]["number"], 1) << model["learning"];
  const int accepted = 1;

  // More corrections, a round started at once, and kill -9 while it trains.
  for (int i = 0; i < 30; ++i) ASSERT_GT(send_judgement(first.port, drawing(i % 2 ? 7 : 1), i % 2 ? 1 : 7), 0);
  httplib::Client admin("127.0.0.1", first.port);
  ASSERT_EQ(admin.Post("/api/model/learn", {{"Authorization", "Bearer tok"}}, "", "application/json")->status, 202);
  bool caught_training = false;
  for (int i = 0; i < 2000 && !caught_training; ++i) caught_training = get_model(first.port)["learning"]["state"] == "training";
  kill_nine(first);
  std::printf("  killed %s training\n", caught_training ? "while" : "(the round had already ended) after");

  Served second = start_serve(state.path, learning);
  const json restarted = get_model(second.port);
  EXPECT_EQ(restarted["learning"]["judgements"], 50);
  const feedback::ModelVersions versions(state.path);
  for (const feedback::VersionInfo& info : versions.list()) {
    EXPECT_TRUE(info.problem.empty()) << info.version << ": " << info.problem;
    EXPECT_NO_THROW(versions.load(info.version)) << info.version;
  }
  // The latest accepted version: 1, or 2 if the second round finished and was accepted before the kill.
  const int latest = versions.list().empty() ? 0 : versions.list().back().version;
  EXPECT_GE(latest, accepted);
  EXPECT_EQ(versions.current(), latest);
  EXPECT_EQ(restarted["version"]["number"], latest);
  kill_nine(second);
}

}  // namespace
}  // namespace digits
