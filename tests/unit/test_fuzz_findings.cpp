// What the fuzz targets found (fuzz/README.md), one test per finding: each input that broke a
// parser is kept in the seed corpus as fuzz/corpus/TARGET/finding-*, and here it must be refused
// with a message that names the problem, through the same function the target called.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "digits/checkpoint.hpp"
#include "digits/error.hpp"
#include "digits/model_file.hpp"
#include "feedback/store.hpp"
#include "server/api.hpp"

namespace digits {
namespace {

std::string finding(const std::string& target, const std::string& name) {
  const std::filesystem::path path = std::filesystem::path(DIGITS_SOURCE_DIR) / "fuzz" / "corpus" / target / name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": missing");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Model parse(const std::string& bytes) { return parse_model({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()}, "finding"); }

// Expects `call` to throw digits::Error whose message contains `part`.
template <typename Call>
void expect_error(Call call, const std::string& part) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one mentioning '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// fuzz_checkpoint: a checkpoint whose metadata lacks optimizer.kind was refused with "map::at"
// (std::out_of_range, not digits::Error: the server and CLI showed it as an internal error).
TEST(FuzzFindings, CheckpointWithoutOptimizerKindNamesTheMissingKey) {
  const Model model = parse(finding("checkpoint", "finding-no-optimizer-kind"));
  ASSERT_TRUE(is_checkpoint(model));
  expect_error([&] { restore_training_state(model, {.kind = OptimizerKind::momentum}); }, "has no optimizer.kind");
}

TEST(FuzzFindings, CheckpointCountersMissingOrNotNumbersAreNamed) {
  const Network network({4, 2}, Activation::relu, 1);
  const Model no_steps = parse(serialize_model(network, {{"checkpoint.epochs_done", "1"}, {"optimizer.kind", "sgd"}}));
  expect_error([&] { restore_training_state(no_steps, {}); }, "has no optimizer.steps_taken");
  const Model not_a_number = parse(serialize_model(network, {{"checkpoint.epochs_done", "x"}, {"optimizer.kind", "sgd"}, {"optimizer.steps_taken", "0"}}));
  expect_error([&] { restore_training_state(not_a_number, {}); }, "checkpoint.epochs_done 'x'");
}

// A deeply nested request body (issue 11: 400 KB of nested arrays sent to /v2/models/digits/infer
// overflowed the stack, in dump() of the error message, and the process died). The nesting is now
// refused while parsing, with a 400, wherever in the body it is.
TEST(FuzzFindings, DeeplyNestedRequestBodiesAreRefusedWhileParsing) {
  const std::string deep = std::string(200'000, '[') + std::string(200'000, ']');  // 400 KB
  const server::ServedModel served{Model{Network({784, 4, 10}, Activation::relu, 1), {}, {}}, "test", 0, -1};
  auto expect_400 = [](auto call, const std::string& part) {
    try {
      call();
      ADD_FAILURE() << "no error; expected a 400 mentioning '" << part << "'";
    } catch (const server::RequestError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.code, "invalid_request");
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  // Issue 11's body, kept in the corpus: a shape of 200,000 nested arrays, whose dump() in the
  // error message recursed once per level.
  expect_400([&] { server::v2_infer(served, finding("api", "finding-400k-deep-v2-shape")); }, "more than 32 levels deep");
  const std::string v2_id = R"({"id":)" + deep + R"(,"inputs":[]})";
  expect_400([&] { server::v2_infer(served, v2_id); }, "more than 32 levels deep");
  const std::string predict = R"({"image":)" + deep + "}";
  expect_400([&] { server::predict_drawing(served, predict); }, "more than 32 levels deep");
  expect_400([&] { server::judge_drawing(served, R"({"label":)" + deep + "}"); }, "more than 32 levels deep");
  expect_400([&] { server::rollback_target(R"({"version":)" + deep + "}"); }, "more than 32 levels deep");
  // 32 levels are still read: the limit is not off by one.
  const std::string nested_32 = R"({"version":)" + std::string(31, '[') + std::string(31, ']') + "}";
  expect_400([&] { server::rollback_target(nested_32); }, "\"version\" must be a version number");
}

// fuzz_api, once it checked that probabilities are numbers in 0–1: an FP32 v2 input of 1e300 is
// finite as a double, so it passed, became infinite as a float, and the answer held NaN (null).
TEST(FuzzFindings, Fp32InputOutsidePixelRangeIsRefused) {
  const server::ServedModel served{Model{Network({784, 4, 10}, Activation::relu, 1), {}, {}}, "test", 0, -1};
  try {
    server::v2_infer(served, finding("api", "finding-fp32-beyond-float"));
    ADD_FAILURE() << "1e300 was accepted as a pixel value";
  } catch (const server::RequestError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_NE(std::string(e.what()).find("raw pixel values 0–255; found 1e+300"), std::string::npos) << e.what();
  }
}

// fuzz_store: a database with our application id whose judgements table declares id as an
// ordinary column ("INTEGER PRIMARYEAUYK T OINCREMENT", a mangled CREATE TABLE) opened, and every
// judgement add() stored got the id NULL: since() and the learner could never tell them apart.
TEST(FuzzFindings, FeedbackDatabaseWhoseIdIsNoPrimaryKeyIsRefused) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("digits-finding-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "feedback.db", std::ios::binary) << finding("store", "finding-id-not-primary-key");
  }
  expect_error([&] { feedback::Store store(dir / "feedback.db"); }, "has no INTEGER PRIMARY KEY id");
  std::filesystem::remove_all(dir);
}

// The same bound on a model file's JSON header: its error messages dump() parts of the header.
TEST(FuzzFindings, DeeplyNestedModelHeaderIsRefusedWhileParsing) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  std::string header = R"({"__metadata__":{"format":"digits-mlp","format_version":"1","architecture":"4,2","hidden_activation":"relu",)"
                       R"("output":"softmax","input_scale":"1"},"fc1.weight":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,32]}})";
  std::string bytes(8, '\0');
  const std::uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>(length >> (8 * i) & 0xff);
  bytes += header;
  expect_error([&] { parse(bytes); }, "the header is nested more than 32 levels deep");
}

}  // namespace
}  // namespace digits
