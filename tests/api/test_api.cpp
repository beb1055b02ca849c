// The HTTP API, over real sockets: every endpoint, every kind of bad request, the page's files,
// concurrency and hostile clients (in-process server on a free port), and the `digits serve`
// process itself (port 0, request log, SIGTERM). The drawings come from tests/support/strokes.hpp.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "../support/strokes.hpp"
#include "digits/base64.hpp"
#include "digits/builtin_model.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"
#include "http_support.hpp"
#include "image_files.hpp"  // tests/unit: JPEG through libjpeg
#include "server/server.hpp"

// After Eigen: httplib.h brings in <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>

extern char** environ;

namespace digits {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace api_testing;

// ---- an in-process server on a free port, shared by the tests of this file ----

class Api : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server::ServerOptions options;
    options.port = 0;
    options.log = nullptr;
    server_ = new server::Server({builtin(), "built-in model"}, options);
    port_ = server_->bind();
    thread_ = new std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    return c;
  }
  json post_json(const std::string& path, const json& body, int expected_status) const {
    return post_text(path, body.dump(), expected_status);
  }
  json post_text(const std::string& path, const std::string& body, int expected_status) const {
    auto response = client().Post(path, body, "application/json");
    EXPECT_TRUE(response) << "no response from POST " << path;
    if (!response) return {};
    EXPECT_EQ(response->status, expected_status) << response->body;
    EXPECT_EQ(response->get_header_value("Content-Type"), "application/json");
    return json::parse(response->body);
  }
  json get_json(const std::string& path, int expected_status = 200) const {
    auto response = client().Get(path);
    EXPECT_TRUE(response) << "no response from GET " << path;
    if (!response) return {};
    EXPECT_EQ(response->status, expected_status) << response->body;
    return json::parse(response->body);
  }
  // Our API's errors: {"error": {"code": …, "message": …}} with a message that says what was wrong.
  void expect_error(const json& body, const std::string& code, const std::string& message_part = "") const {
    ASSERT_TRUE(body.contains("error")) << body;
    ASSERT_TRUE(body["error"].is_object()) << body;
    EXPECT_EQ(body["error"]["code"], code) << body;
    ASSERT_TRUE(body["error"]["message"].is_string()) << body;
    EXPECT_NE(body["error"]["message"].get<std::string>().find(message_part), std::string::npos) << body;
  }
  // The Open Inference Protocol's errors: {"error": "message"}.
  void expect_v2_error(const json& body, const std::string& message_part) const {
    ASSERT_TRUE(body.contains("error") && body["error"].is_string()) << body;
    EXPECT_NE(body["error"].get<std::string>().find(message_part), std::string::npos) << body;
  }

  static inline server::Server* server_ = nullptr;
  static inline std::thread* thread_ = nullptr;
  static inline int port_ = 0;
};

std::vector<float> library_probabilities(const GrayImage& image) {
  const Preprocessed input = preprocess(image);
  const Matrix p = builtin().network.predict_proba(Eigen::Map<const Matrix>(input.pixels.data(), 1, 784));
  return {p.data(), p.data() + p.size()};
}

// ---- health, model, page ----

TEST_F(Api, HealthSaysOk) {
  const json body = get_json("/api/health");
  EXPECT_EQ(body["status"], "ok");
}

TEST_F(Api, ModelDescribesArchitectureAccuracyAndMetadata) {
  const json body = get_json("/api/model");
  EXPECT_EQ(body["layers"].front(), 784);
  EXPECT_EQ(body["layers"].back(), builtin().network.classes());
  EXPECT_EQ(body["parameters"], builtin().network.parameter_count());
  EXPECT_EQ(body["metadata"]["architecture"], builtin().metadata.at("architecture"));
  EXPECT_EQ(body["metadata"].size(), builtin().metadata.size());
  if (builtin().metadata.contains("accuracy.test")) {
    EXPECT_TRUE(body["accuracy"]["test_percent"].is_number());
  }
  EXPECT_DOUBLE_EQ(body["unsure_below"], answers::kUnsureBelow);
}

TEST_F(Api, ServesThePageFromInsideTheBinary) {
  auto page = client().Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("Tell the Number"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  for (const auto& [path, type] : {std::pair{"/style.css", "text/css; charset=utf-8"}, {"/app.js", "text/javascript; charset=utf-8"},
                                   {"/inside.js", "text/javascript; charset=utf-8"}, {"/feedback.js", "text/javascript; charset=utf-8"},
                                   {"/number.js", "text/javascript; charset=utf-8"}, {"/favicon.svg", "image/svg+xml"}}) {
    auto file = client().Get(path);
    ASSERT_TRUE(file) << path;
    EXPECT_EQ(file->status, 200) << path;
    EXPECT_EQ(file->get_header_value("Content-Type"), type) << path;
    EXPECT_FALSE(file->body.empty()) << path;
  }
  // Nothing on the page comes from the internet.
  for (const char* path : {"/", "/style.css", "/app.js", "/inside.js", "/feedback.js", "/number.js"}) {
    const std::string body = client().Get(path)->body;
    EXPECT_EQ(body.find("http://"), std::string::npos) << path;
    EXPECT_EQ(body.find("https://"), std::string::npos) << path;
    EXPECT_EQ(body.find("@import"), std::string::npos) << path;
  }
}

TEST_F(Api, HeadIsAnsweredLikeGet) {
  auto response = client().Head("/api/health");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

// ---- /api/predict ----

TEST_F(Api, PredictReadsAPngDataUrl) {
  const GrayImage seven = drawing(7);
  const json body = post_json("/api/predict", {{"image", png_data_url(seven)}}, 200);
  EXPECT_EQ(body["digit"], 7);
  ASSERT_EQ(body["probabilities"].size(), 10u);
  double sum = 0;
  for (const json& p : body["probabilities"]) sum += p.get<double>();
  if (!body["not_a_digit_probability"].is_null()) sum += body["not_a_digit_probability"].get<double>();  // the eleven-way softmax
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_DOUBLE_EQ(body["probability"], body["probabilities"][7]);
  EXPECT_EQ(body["unsure"], body["probability"].get<double>() < answers::kUnsureBelow);
  EXPECT_EQ(body["input"]["width"], 28);
  EXPECT_EQ(body["input"]["height"], 28);
  ASSERT_EQ(body["input"]["pixels"].size(), 784u);
  int brightest = 0;
  for (const json& v : body["input"]["pixels"]) brightest = std::max(brightest, v.get<int>());
  EXPECT_EQ(brightest, 255);
  EXPECT_EQ(body["inverted"], false);
  EXPECT_GE(body["milliseconds"].get<double>(), 0.0);
}

// On a dense network (the built-in CNN's maps: test_conv_api.cpp), what the answer adds for
// "Inside the network".
TEST_F(Api, PredictShowsEveryLayersActivations) {
  const server::ServedModel dense = dense_model();
  const Network& network = dense.model.network;
  const json seven = server::predict_drawing(dense, json{{"image", png_data_url(drawing(7))}}.dump());
  const json zero = server::predict_drawing(dense, json{{"image", png_data_url(drawing(0))}}.dump());
  const json& layers = seven["activations"];
  ASSERT_TRUE(layers.is_array()) << seven;
  ASSERT_EQ(layers.size(), network.layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const bool last = i + 1 == layers.size();
    EXPECT_EQ(layers[i]["layer"], last ? "output" : "hidden " + std::to_string(i + 1));
    EXPECT_EQ(layers[i]["function"], last ? "softmax" : "relu");
    ASSERT_EQ(layers[i]["values"].size(), static_cast<std::size_t>(layer_outputs(network.layers[i]))) << i;
    double largest = 0;
    for (const json& v : layers[i]["values"]) {
      EXPECT_GE(v.get<double>(), 0.0) << "relu and softmax are never negative";
      largest = std::max(largest, v.get<double>());
    }
    EXPECT_GT(largest, 0.0) << "layer " << i << " is silent";
    // Different drawings light different neurons.
    EXPECT_NE(layers[i]["values"], zero["activations"][i]["values"]) << i;
  }
  // The output layer is the probabilities.
  EXPECT_EQ(layers.back()["values"], seven["probabilities"]);
  // The first hidden layer by hand, relu(x · scale · W₁ + b₁), on the drawing as the server
  // decodes and preprocesses it.
  const std::string png = encode_png(drawing(7));
  const Preprocessed input = preprocess(decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "test"));
  const Matrix X = Eigen::Map<const Matrix>(input.pixels.data(), 1, 784) * network.input_scale;
  const Matrix A1 = ((X * std::get<DenseLayer>(network.layers[0]).W).rowwise() + std::get<DenseLayer>(network.layers[0]).b).cwiseMax(0.0f);
  for (Eigen::Index j = 0; j < A1.cols(); ++j) EXPECT_NEAR(layers[0]["values"][static_cast<std::size_t>(j)].get<float>(), A1(0, j), 1e-4f + 1e-4f * A1(0, j)) << j;
}

TEST_F(Api, PredictLeavesTheActivationsOutWhenAskedTo) {
  // Over HTTP, as the page asks while "Inside the network" is folded: the same reading, without
  // every layer's output.
  const json drawn = {{"image", png_data_url(drawing(7))}};
  const json full = post_json("/api/predict", drawn, 200);
  json request = drawn;
  request["activations"] = false;
  const json lean = post_json("/api/predict", request, 200);
  EXPECT_TRUE(full.contains("activations"));
  EXPECT_FALSE(lean.contains("activations")) << lean;
  for (const char* field : {"digit", "unsure", "not_a_digit", "input", "inverted"}) EXPECT_EQ(lean[field], full[field]) << field;
  ASSERT_EQ(lean["probabilities"].size(), full["probabilities"].size());
  for (std::size_t k = 0; k < lean["probabilities"].size(); ++k)  // folded batch norm against layer by layer: rounding
    EXPECT_NEAR(lean["probabilities"][k].get<double>(), full["probabilities"][k].get<double>(), 1e-5) << k;
  // The lean answer's probabilities are `digits predict`'s (batch norm folded) on the PNG sent.
  const std::string png = encode_png(drawing(7));
  const std::vector<float> expected = library_probabilities(decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "test"));
  for (std::size_t k = 0; k < lean["probabilities"].size(); ++k) EXPECT_EQ(lean["probabilities"][k].get<float>(), expected[k]) << k;
  request["activations"] = true;
  EXPECT_TRUE(post_json("/api/predict", request, 200).contains("activations"));
  request["activations"] = "no";
  expect_error(post_json("/api/predict", request, 400), "invalid_request", "\"activations\" must be true or false");
}

TEST_F(Api, PredictReadsRawPixelsTheSameAsThePng) {
  testing::Placement placement;
  placement.left = 20, placement.top = 10, placement.width = 90, placement.height = 120, placement.pen = 12;
  const GrayImage one = drawing(1, placement);
  const json from_png = post_json("/api/predict", {{"image", png_data_url(one)}}, 200);
  const json from_pixels = post_json("/api/predict", pixels_request(one), 200);
  EXPECT_EQ(from_png["digit"], 1);
  EXPECT_EQ(from_pixels["digit"], from_png["digit"]);
  for (int d = 0; d < 10; ++d) EXPECT_FLOAT_EQ(from_pixels["probabilities"][d].get<float>(), from_png["probabilities"][d].get<float>());
  EXPECT_EQ(from_pixels["input"]["pixels"], from_png["input"]["pixels"]);
}

TEST_F(Api, PredictRunsTheLibrarysPreprocessing) {
  for (int digit : {0, 3, 4, 7}) {
    const GrayImage image = drawing(digit);
    // The PNG carries 8-bit values: compare with the library on exactly what the server decodes.
    const std::string png = encode_png(image);
    const std::vector<float> expected = library_probabilities(decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "test"));
    const json body = post_json("/api/predict", {{"image", png_data_url(image)}}, 200);
    for (int d = 0; d < 10; ++d) EXPECT_SAME_PROBABILITY(body["probabilities"][d].get<float>(), expected[static_cast<std::size_t>(d)]) << "digit " << digit;
  }
}

TEST_F(Api, PredictInvertsDarkInkOnLightPaper) {
  testing::Placement placement;
  placement.dark_on_light = true;
  const json body = post_json("/api/predict", {{"image", png_data_url(drawing(7, placement))}}, 200);
  EXPECT_EQ(body["digit"], 7);
  EXPECT_EQ(body["inverted"], true);
}

TEST_F(Api, ABlankDrawingIsNeverGuessed) {
  GrayImage blank{280, 280, std::vector<float>(280 * 280, 0.0f)};
  expect_error(post_json("/api/predict", {{"image", png_data_url(blank)}}, 422), "empty_drawing", "nothing to read");
  expect_error(post_json("/api/predict", pixels_request(blank), 422), "empty_drawing", "nothing to read");
}

TEST_F(Api, MalformedJsonIsA400) {
  expect_error(post_text("/api/predict", "{\"image\": ", 400), "malformed_json", "not valid JSON");
  expect_error(post_text("/api/predict", "", 400), "malformed_json", "empty");
  expect_error(post_text("/api/predict", "[1, 2, 3]", 400), "invalid_request", "JSON object");
}

TEST_F(Api, DeeplyNestedJsonIsRefusedNotACrash) {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  expect_error(post_text("/api/predict", deep, 400), "invalid_request", "JSON object");
  const std::string nested_data = R"({"inputs":[{"name":"input","datatype":"UINT8","shape":[1,28,28],"data":)" + std::string(100'000, '[') + "0" +
                                  std::string(100'000, ']') + "}]}";
  expect_v2_error(post_text("/v2/models/digits/infer", nested_data, 400), "nested deeper than the shape");
  EXPECT_EQ(get_json("/api/health")["status"], "ok");
}

// Issue 11's crash: a 400 KB body of nested arrays took the process down (a stack overflow in the
// code that described the bad shape). The depth is refused while parsing (digits/json_depth.hpp).
TEST_F(Api, A400KilobyteDeepBodyIsA400AndTheServerLives) {
  const std::string deep = std::string(200'000, '[') + std::string(200'000, ']');
  const std::string body = R"({"inputs":[{"name":"input","datatype":"UINT8","shape":[)" + deep + R"(],"data":[]}]})";
  expect_v2_error(post_text("/v2/models/digits/infer", body, 400), "more than 32 levels deep");
  expect_error(post_text("/api/predict", R"({"image":)" + deep + "}", 400), "invalid_request", "more than 32 levels deep");
  EXPECT_EQ(get_json("/api/health")["status"], "ok");
}

TEST_F(Api, WrongTypesSayWhichField) {
  expect_error(post_json("/api/predict", {{"image", 42}}, 400), "invalid_request", "\"image\" must be a string");
  expect_error(post_json("/api/predict", {{"image", "hello"}}, 400), "invalid_request", "not a data URL");
  expect_error(post_json("/api/predict", {{"image", "data:text/plain;base64,aGVsbG8="}}, 400), "invalid_request", "not of an image");
  expect_error(post_json("/api/predict", {{"image", "data:image/png,rawbytes"}}, 400), "invalid_request", "base64");
  expect_error(post_json("/api/predict", {{"image", "data:image/png;base64,@@@@"}}, 400), "invalid_request", "not base64");
  expect_error(post_json("/api/predict", {{"image", "data:image/png;base64," + encode_base64("not a png at all")}}, 400), "unsupported_image", "not an image");
  expect_error(post_json("/api/predict", json::object(), 400), "invalid_request", "expected");
  expect_error(post_json("/api/predict", {{"width", 2}, {"height", 2}, {"pixels", {0, 0, 0}}}, 400), "invalid_request", "3 values but width × height is 4");
  expect_error(post_json("/api/predict", {{"width", 2}, {"height", 2}, {"pixels", {0, 0, 0, "x"}}}, 400), "invalid_request", "\"pixels\"[3] is string");
  expect_error(post_json("/api/predict", {{"width", 2}, {"height", 2}, {"pixels", {0, 0, 0, 256}}}, 400), "invalid_request", "outside 0–255");
  expect_error(post_json("/api/predict", {{"width", 2.5}, {"height", 2}, {"pixels", {0, 0, 0, 0}}}, 400), "invalid_request", "integers");
  expect_error(post_json("/api/predict", {{"width", 0}, {"height", 2}, {"pixels", json::array()}}, 400), "invalid_request", "at least 1");
  expect_error(post_json("/api/predict", {{"width", 2}, {"height", 2}, {"pixels", "0000"}}, 400), "invalid_request", "must be an array");
  expect_error(post_json("/api/predict", {{"pixels", {0}}}, 400), "invalid_request", "needs \"width\" and \"height\"");
  expect_error(post_json("/api/predict", {{"image", png_data_url(drawing(1))}, {"width", 1}, {"height", 1}, {"pixels", {0}}}, 400), "invalid_request", "not both");
}

TEST_F(Api, ImagesOfOtherFormatsAreUnsupportedWhateverTheirLabel) {
  // The format comes from the bytes: a 1×1 GIF in a data URL that says image/png is still a GIF.
  const std::string gif("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;", 35);
  for (const std::string type : {"image/png", "image/gif"}) {
    const json answer = post_json("/api/predict", {{"image", "data:" + type + ";base64," + encode_base64(gif)}}, 400);
    expect_error(answer, "unsupported_image", "a GIF image, which digits does not read; it reads PNG, JPEG, BMP and PGM");
  }
  // A PNG that is broken, not of another format, is a bad image.
  expect_error(post_json("/api/predict", {{"image", "data:image/png;base64," + encode_base64(encode_png(drawing(1)).substr(0, 60))}}, 400), "bad_image", "cannot decode the PNG");
}

TEST_F(Api, TooLargeImagesAndBodiesAreRefused) {
  expect_error(post_json("/api/predict", {{"width", 5000}, {"height", 10}, {"pixels", json::array()}}, 413), "image_too_large", "5000×10");
  // A PNG whose header claims 5000×5000: refused before any decoding.
  std::string png = encode_png(drawing(1));
  for (std::size_t at : {16u, 20u}) {
    png[at] = 0, png[at + 1] = 0, png[at + 2] = static_cast<char>(5000 >> 8), png[at + 3] = static_cast<char>(5000 & 0xff);
  }
  expect_error(post_json("/api/predict", {{"image", "data:image/png;base64," + encode_base64(png)}}, 413), "image_too_large", "5000×5000");
  const std::string huge = "{\"image\": \"" + std::string(5u << 20, 'A') + "\"}";
  auto response = client().Post("/api/predict", huge, "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  expect_error(json::parse(response->body), "payload_too_large", "limit");
}

// Issue 19, F4: a request's CPU time is bounded by the server's own caps (api.hpp, RequestLimits),
// each checked before the work it bounds. Each refused image here would not decode (its pixel data
// is cut short or is not an image), so the 413 shows that nothing was decoded.
TEST_F(Api, ImagesOverTheServersCapsAreRefusedBeforeDecoding) {
  // A PNG whose header says 1200×1000, over the default 1,048,576 pixels; its data is a 280×280 drawing's.
  std::string png = encode_png(drawing(1));
  for (auto [at, side] : {std::pair{16, 1200}, std::pair{20, 1000}})
    png[at] = 0, png[at + 1] = 0, png[at + 2] = static_cast<char>(side >> 8), png[at + 3] = static_cast<char>(side & 0xff);
  expect_error(post_json("/api/predict", {{"image", "data:image/png;base64," + encode_base64(png)}}, 413), "image_too_large",
               "1200×1000 pixels is more than digits accepts (at most 4096 pixels a side and 1048576 in all)");
  // A JPEG of 1100×1000 cut in the middle of its pixel data: its header alone is read.
  testing::Jpeg jpeg{.width = 1100, .height = 1000, .components = 1, .quality = 50};
  jpeg.samples.assign(1100 * 1000, 128);
  const std::string cut = jpeg.encode().substr(0, 1000);
  expect_error(post_json("/api/predict", {{"image", "data:image/jpeg;base64," + encode_base64(cut)}}, 413), "image_too_large", "1100×1000 pixels");
  // An image file over 512 KiB, refused from the data URL's length before base64 is decoded.
  expect_error(post_json("/api/predict", {{"image", "data:image/png;base64," + std::string(800'000, 'A')}}, 413), "image_too_large", "at most 524288");
  // Raw pixels over 512×512, refused before any value is read; a body of more than 300,000 values.
  expect_error(post_json("/api/predict", {{"width", 600}, {"height", 500}, {"pixels", json::array()}}, 413), "image_too_large", "262144 in all");
  std::string values = "{\"pixels\": [0";
  for (int i = 0; i < 300'000; ++i) values += ",0";
  expect_error(post_text("/api/predict", values + "]}", 413), "too_many_values", "more than 300000 JSON values");
  // A v2 batch over 256 images.
  const json batch = {{"inputs", {{{"name", "input"}, {"shape", {257, 28, 28}}, {"datatype", "UINT8"}, {"data", json::array()}}}}};
  expect_v2_error(post_json("/v2/models/digits/infer", batch, 400), "the batch size N must be 1 to 256");
}

// ---- /api/read ----

// "1 7 4" drawn side by side on one canvas, white on black, and a dash.
GrayImage number_drawing() {
  GrayImage canvas{360, 180, std::vector<float>(360 * 180, 0.0f)};
  auto add = [&](const std::vector<testing::Stroke>& glyph, double left) {
    const GrayImage one = testing::draw(glyph, {.canvas_width = 360, .canvas_height = 180, .left = left, .top = 40, .width = 60, .height = 100, .pen = 10});
    for (std::size_t i = 0; i < canvas.pixels.size(); ++i) canvas.pixels[i] = std::max(canvas.pixels[i], one.pixels[i]);
  };
  add(testing::digit_strokes(1), 20);
  add(testing::digit_strokes(7), 100);
  add(testing::digit_strokes(4), 180);
  add({{{0.1, 0.5}, {0.9, 0.5}}}, 270);
  return canvas;
}

TEST_F(Api, ReadGivesEveryDigitLeftToRightAndThePartsThatAreNot) {
  const GrayImage number = number_drawing();
  const json body = post_json("/api/read", {{"image", png_data_url(number)}}, 200);
  EXPECT_EQ(body["text"], "174");
  ASSERT_EQ(body["digits"].size(), 3u);
  for (const json& d : body["digits"]) {
    ASSERT_EQ(d["probabilities"].size(), 10u);
    EXPECT_DOUBLE_EQ(d["probability"], d["probabilities"][d["digit"].get<std::size_t>()]);
    EXPECT_EQ(d["unsure"], d["probability"].get<double>() < answers::kUnsureBelow);
    ASSERT_EQ(d["box"].size(), 4u);
  }
  EXPECT_LT(body["digits"][0]["box"][0].get<int>(), body["digits"][1]["box"][0].get<int>());
  ASSERT_EQ(body["not_digits"].size(), 1u);
  EXPECT_GT(body["not_digits"][0]["box"][0].get<int>(), 260);
  EXPECT_EQ(body["inverted"], false);
  EXPECT_GE(body["milliseconds"].get<double>(), 0.0);
  // Raw pixels are read the same as the PNG.
  const json from_pixels = post_json("/api/read", pixels_request(number), 200);
  EXPECT_EQ(from_pixels["text"], body["text"]);
  EXPECT_EQ(from_pixels["digits"], body["digits"]);
}

TEST_F(Api, EachDigitsInkSentToPredictIsReadAsInTheNumber) {
  // The page's path (number.js): a digit's "ink", made a PNG, to /api/predict for "Inside the
  // network" and to /api/feedback to judge it: the same input, so the same probabilities.
  const json body = post_json("/api/read", {{"image", png_data_url(number_drawing())}}, 200);
  ASSERT_EQ(body["digits"].size(), 3u);
  for (const json& d : body["digits"]) {
    const json& ink = d["ink"];
    const int width = ink["width"], height = ink["height"];
    EXPECT_LE(ink["x"].get<int>(), d["box"][0].get<int>() - 1);
    EXPECT_GE(ink["x"].get<int>() + width, d["box"][0].get<int>() + d["box"][2].get<int>() + 1);
    const std::string bytes = decode_base64(ink["pixels"].get<std::string>());
    ASSERT_EQ(bytes.size(), static_cast<std::size_t>(width) * static_cast<std::size_t>(height));
    GrayImage image{width, height, std::vector<float>(bytes.begin(), bytes.end())};
    for (std::size_t i = 0; i < bytes.size(); ++i) image.pixels[i] = static_cast<unsigned char>(bytes[i]);
    const json reading = post_json("/api/predict", {{"image", png_data_url(image)}}, 200);
    EXPECT_EQ(reading["digit"], d["digit"]);
    for (std::size_t c = 0; c < 10; ++c) EXPECT_NEAR(reading["probabilities"][c].get<double>(), d["probabilities"][c].get<double>(), 1e-6) << c;
  }
}

TEST_F(Api, ReadRefusesWhatPredictRefuses) {
  expect_error(post_json("/api/read", {{"image", png_data_url(GrayImage{64, 48, std::vector<float>(64 * 48, 255.0f)})}}, 422), "empty_drawing", "nothing to read");
  expect_error(post_json("/api/read", {{"width", 5000}, {"height", 10}, {"pixels", json::array()}}, 413), "image_too_large", "5000×10");
  expect_error(post_json("/api/read", {{"image", "data:image/png;base64," + encode_base64(encode_png(drawing(1)).substr(0, 60))}}, 400), "bad_image", "cannot decode the PNG");
  auto response = client().Post("/api/read", "{\"image\": ", "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
}

TEST_F(Api, UnknownPathsAre404AndWrongMethods405) {
  expect_error(get_json("/api/nothing-here", 404), "not_found", "/api/nothing-here");
  expect_error(get_json("/api/predict", 405), "method_not_allowed", "use POST");
  auto response = client().Get("/api/predict");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->get_header_value("Allow"), "POST");
  expect_error(post_text("/api/health", "{}", 405), "method_not_allowed", "use GET");
  auto put = client().Put("/api/model", "{}", "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  auto del = client().Delete("/");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
}

// ---- feedback, on a server that keeps no state (tests/api/test_feedback.cpp has the rest) ----

TEST_F(Api, FeedbackNeedsAStateDirectory) {
  expect_error(post_json("/api/feedback", {{"image", png_data_url(drawing(7))}, {"label", 7}}, 503), "feedback_unavailable", "state directory");
  const json model = get_json("/api/model");
  EXPECT_EQ(model["version"]["number"], 0);
  EXPECT_TRUE(model["version"]["parent"].is_null());
  EXPECT_EQ(model["learning"]["enabled"], false);
  EXPECT_TRUE(model["learning"]["disabled_reason"].is_string());
  expect_error(post_json("/api/model/rollback", json::object(), 403), "admin_disabled", "--admin-token");
}

// ---- the Open Inference Protocol (KServe v2) ----

TEST_F(Api, V2HealthAndMetadata) {
  EXPECT_EQ(get_json("/v2/health/live")["live"], true);
  EXPECT_EQ(get_json("/v2/health/ready")["ready"], true);
  EXPECT_EQ(get_json("/v2")["name"], "digits");
  const json model = get_json("/v2/models/digits");
  EXPECT_EQ(model["name"], "digits");
  EXPECT_EQ(model["inputs"][0]["name"], "input");
  EXPECT_EQ(model["inputs"][0]["datatype"], "UINT8");
  EXPECT_EQ(model["inputs"][0]["shape"], json({-1, 28, 28}));
  EXPECT_EQ(model["outputs"][0]["name"], "probabilities");
  EXPECT_EQ(model["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(model["outputs"][0]["shape"], json({-1, 10}));
  // Every layer, the last giving the probabilities (test_conv_api.cpp checks the text in full).
  const std::string layers = model["parameters"]["layers"];
  EXPECT_TRUE(layers.ends_with(" softmax → " + std::to_string(builtin().network.classes()))) << layers;
  EXPECT_EQ(static_cast<std::size_t>(std::count(layers.begin(), layers.end(), ';')) + 1, builtin().network.layers.size()) << layers;
  EXPECT_EQ(get_json("/v2/models/digits/ready")["ready"], true);
  expect_v2_error(get_json("/v2/models/resnet", 404), "no model named 'resnet'");
}

std::vector<std::vector<int>> preprocessed_images(std::initializer_list<int> digits) {
  std::vector<std::vector<int>> images;
  for (int digit : digits) {
    const Preprocessed input = preprocess(drawing(digit));
    std::vector<int> pixels;
    for (float v : input.pixels) pixels.push_back(static_cast<int>(std::lround(v)));
    images.push_back(pixels);
  }
  return images;
}

TEST_F(Api, V2InferTakesUint8ImagesNestedOrFlat) {
  const auto images = preprocessed_images({7, 1});
  json nested = json::array();
  for (const auto& image : images) {
    json rows = json::array();
    for (int y = 0; y < 28; ++y) rows.push_back(std::vector<int>(image.begin() + y * 28, image.begin() + (y + 1) * 28));
    nested.push_back(rows);
  }
  const json request = {{"id", "req-42"}, {"inputs", {{{"name", "input"}, {"shape", {2, 28, 28}}, {"datatype", "UINT8"}, {"data", nested}}}}};
  const json body = post_json("/v2/models/digits/infer", request, 200);
  EXPECT_EQ(body["model_name"], "digits");
  EXPECT_EQ(body["id"], "req-42");
  const json& output = body["outputs"][0];
  EXPECT_EQ(output["name"], "probabilities");
  EXPECT_EQ(output["datatype"], "FP32");
  EXPECT_EQ(output["shape"], json({2, 10}));
  ASSERT_EQ(output["data"].size(), 20u);

  // The same numbers as the network on the same raw pixels, and the same as a flat data array.
  Matrix pixels(2, 784);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 784; ++j) pixels(i, j) = static_cast<float>(images[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
  const Matrix expected = builtin().network.predict_proba(pixels);
  for (int i = 0; i < 2; ++i)
    for (int d = 0; d < 10; ++d) EXPECT_SAME_PROBABILITY(output["data"][i * 10 + d].get<float>(), expected(i, d));
  std::vector<int> flat = images[0];
  flat.insert(flat.end(), images[1].begin(), images[1].end());
  json flat_request = request;
  flat_request["inputs"][0]["data"] = flat;
  EXPECT_EQ(post_json("/v2/models/digits/infer", flat_request, 200)["outputs"], body["outputs"]);
}

TEST_F(Api, V2InferTakesFp32RowsOfRawPixels) {
  const auto images = preprocessed_images({4});
  std::vector<float> row(images[0].begin(), images[0].end());
  const json request = {{"inputs", {{{"name", "input"}, {"shape", {1, 784}}, {"datatype", "FP32"}, {"data", row}}}}, {"outputs", {{{"name", "probabilities"}}}}};
  const json body = post_json("/v2/models/digits/infer", request, 200);
  EXPECT_FALSE(body.contains("id"));
  const Matrix expected = builtin().network.predict_proba(Eigen::Map<const Matrix>(row.data(), 1, 784));
  for (int k = 0; k < 10; ++k) EXPECT_SAME_PROBABILITY(body["outputs"][0]["data"][k].get<float>(), expected(0, k));
}

TEST_F(Api, V2BadRequestsSayWhatIsWrong) {
  auto tensor = [](json shape, std::string datatype, json data) {
    return json{{"inputs", {{{"name", "input"}, {"shape", shape}, {"datatype", datatype}, {"data", data}}}}};
  };
  const std::vector<int> zeros(784, 0);
  const std::string infer = "/v2/models/digits/infer";
  expect_v2_error(post_text(infer, "{nope", 400), "not valid JSON");
  expect_v2_error(post_json(infer, json::object(), 400), "\"inputs\"");
  expect_v2_error(post_json(infer, tensor({1, 28, 28}, "INT64", zeros), 400), "UINT8 tensor of shape [N,28,28] or an FP32 tensor of shape [N,784]");
  expect_v2_error(post_json(infer, tensor({1, 784}, "UINT8", zeros), 400), "[N,28,28]");
  expect_v2_error(post_json(infer, tensor({2, 28, 28}, "UINT8", zeros), 400), "holds 784 values; the shape [2,28,28] needs 1568");
  expect_v2_error(post_json(infer, tensor({0, 784}, "FP32", json::array()), 400), "batch size");
  json bad_value = tensor({1, 28, 28}, "UINT8", zeros);
  bad_value["inputs"][0]["data"][5] = 300;
  expect_v2_error(post_json(infer, bad_value, 400), "integers 0–255");
  bad_value["inputs"][0]["data"][5] = "7";
  expect_v2_error(post_json(infer, bad_value, 400), "integers 0–255");
  json fp_string = tensor({1, 784}, "FP32", zeros);
  fp_string["inputs"][0]["data"][0] = nullptr;
  expect_v2_error(post_json(infer, fp_string, 400), "finite numbers");
  json wrong_name = tensor({1, 784}, "FP32", zeros);
  wrong_name["inputs"][0]["name"] = "pixels";
  expect_v2_error(post_json(infer, wrong_name, 400), "named \"input\"");
  json wrong_output = tensor({1, 784}, "FP32", zeros);
  wrong_output["outputs"] = {{{"name", "logits"}}};
  expect_v2_error(post_json(infer, wrong_output, 400), "\"probabilities\"");
  json shape_type = tensor({"1", 784}, "FP32", zeros);
  expect_v2_error(post_json(infer, shape_type, 400), "array of integers");
  expect_v2_error(post_json("/v2/models/other/infer", tensor({1, 784}, "FP32", zeros), 404), "no model named 'other'");
  expect_v2_error(get_json(infer, 405), "use POST");
}

// ---- robustness ----

TEST_F(Api, ConcurrentPredictionsAllAgree) {
  const std::string seven = json{{"image", png_data_url(drawing(7))}}.dump();
  const std::string one = json{{"image", png_data_url(drawing(1))}}.dump();
  std::atomic<int> wrong = 0;
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port_);
      for (int i = 0; i < 40; ++i) {
        const bool is_seven = (t + i) % 2 == 0;
        auto response = c.Post("/api/predict", is_seven ? seven : one, "application/json");
        if (!response || response->status != 200 || json::parse(response->body)["digit"] != (is_seven ? 7 : 1)) ++wrong;
      }
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(wrong, 0);
}

int connect_raw(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(Api, GarbageAndStalledClientsDoNotStopTheServer) {
  // Bytes that are not HTTP at all get a 400 and a closed connection.
  const int garbage = connect_raw(port_);
  ASSERT_GE(garbage, 0);
  const std::string junk = "\x16\x03\x01 this is not HTTP\r\n\r\n";
  ASSERT_EQ(::write(garbage, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  char reply[256] = {};
  ASSERT_GT(::read(garbage, reply, sizeof reply - 1), 0);
  EXPECT_TRUE(std::string(reply).starts_with("HTTP/1.1 400")) << reply;
  ::close(garbage);

  // Clients that promise a body and stall hold one thread each, until the read timeout...
  std::vector<int> stalled;
  for (int i = 0; i < 4; ++i) {
    const int fd = connect_raw(port_);
    ASSERT_GE(fd, 0);
    const std::string partial = "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ima";
    ASSERT_EQ(::write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
    stalled.push_back(fd);
  }
  // ...while everyone else is still served, promptly.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(get_json("/api/health")["status"], "ok");
  EXPECT_EQ(post_json("/api/predict", {{"image", png_data_url(drawing(7))}}, 200)["digit"], 7);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  for (int fd : stalled) ::close(fd);
}

TEST_F(Api, APostWithoutContentLengthIsAnsweredAtOnce) {
  // `curl -X POST URL` sends no body and no Content-Length: that is an empty body, not one to wait
  // for until the read timeout.
  const int fd = connect_raw(port_);
  ASSERT_GE(fd, 0);
  const std::string request = "POST /api/predict HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  // Headers and body may come in separate segments: read until the body's code is there.
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (reply.find("length_required") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd ready{fd, POLLIN, 0};
    if (::poll(&ready, 1, 100) != 1) continue;
    char chunk[512];
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got <= 0) break;
    reply.append(chunk, static_cast<std::size_t>(got));
  }
  ::close(fd);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 411")) << reply;
  EXPECT_NE(reply.find("length_required"), std::string::npos) << "no 411 body within 2 s: " << reply;
  // A chunked body is still read.
  httplib::Client chunked("127.0.0.1", port_);
  const std::string body = json{{"image", png_data_url(drawing(7))}}.dump();
  auto answer = chunked.Post("/api/predict", [&](size_t offset, httplib::DataSink& sink) {
    sink.write(body.data() + offset, body.size() - offset);
    sink.done();
    return true;
  }, "application/json");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200) << answer->body;
}

// ---- the `digits serve` process ----

TEST(ServeCommand, PicksAFreePortLogsRequestsAndStopsOnSigterm) {
  Process serve = Process::start({"serve", "--port", "0"});
  std::string out, err;
  const std::string port = Process::read_until(serve.out, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"), 15s, out);
  ASSERT_FALSE(port.empty()) << "no address printed: " << out;

  httplib::Client client("127.0.0.1", std::stoi(port));
  auto response = client.Get("/api/health");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  // One line per request: method, path, status, milliseconds.
  EXPECT_FALSE(Process::read_until(serve.err, std::regex(R"(GET /api/health 200 \d+\.\d+ ms)"), 5s, err).empty()) << err;

  ASSERT_EQ(::kill(serve.pid, SIGTERM), 0);
  EXPECT_EQ(serve.wait(10s), 0);
  EXPECT_FALSE(Process::read_until(serve.out, std::regex("stopped"), 1s, out).empty()) << out;
}

TEST(ServeCommand, StopsOnSigintToo) {
  Process serve = Process::start({"serve", "--port", "0"});
  std::string out;
  ASSERT_FALSE(Process::read_until(serve.out, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"), 15s, out).empty()) << out;
  ASSERT_EQ(::kill(serve.pid, SIGINT), 0);
  EXPECT_EQ(serve.wait(10s), 0);
}

TEST(ServeCommand, AppPrintsTheAddressWhenNoBrowserCanBeOpened) {
  Process app = Process::start({"app", "--port", "0"});
  std::string out;
  EXPECT_FALSE(Process::read_until(app.out, std::regex(R"(open http://127\.0\.0\.1:\d+/ in one)"), 15s, out).empty()) << out;
  ::kill(app.pid, SIGTERM);
  EXPECT_EQ(app.wait(10s), 0);
}

TEST(ServeCommand, AppStartsTheBrowserFromBROWSER) {
  const std::filesystem::path opened = std::filesystem::temp_directory_path() / ("digits-browser-" + std::to_string(::getpid()));
  const std::filesystem::path fake_browser = opened.string() + ".sh";
  {
    std::ofstream script(fake_browser);
    script << "#!/bin/sh\necho \"$1\" > '" << opened.string() << "'\n";
  }
  std::filesystem::permissions(fake_browser, std::filesystem::perms::owner_all);
  Process app = Process::start({"app", "--port", "0"}, {"BROWSER=" + fake_browser.string()});
  std::string out;
  const std::string port = Process::read_until(app.out, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"), 15s, out);
  ASSERT_FALSE(port.empty()) << out;
  std::string url;
  for (int i = 0; i < 200 && url.empty(); ++i) {
    std::this_thread::sleep_for(20ms);
    std::ifstream in(opened);
    std::getline(in, url);
  }
  EXPECT_EQ(url, "http://127.0.0.1:" + port + "/");
  ::kill(app.pid, SIGTERM);
  EXPECT_EQ(app.wait(10s), 0);
  std::filesystem::remove(opened);
  std::filesystem::remove(fake_browser);
}

// The same drawing through `digits predict` and through the server gives the same answer.
TEST(ServeCommand, AgreesWithThePredictCommand) {
  server::ServerOptions options;
  options.port = 0;
  options.log = nullptr;
  server::Server server({builtin(), "built-in model"}, options);
  const int port = server.bind();
  std::thread running([&] { server.run(); });

  testing::Placement placement;
  placement.left = 150, placement.top = 120, placement.width = 90, placement.height = 140, placement.pen = 10;
  for (int digit : {2, 7}) {
    const GrayImage image = drawing(digit, placement);
    const std::filesystem::path file = std::filesystem::temp_directory_path() / ("digits-api-" + std::to_string(::getpid()) + "-" + std::to_string(digit) + ".png");
    write_png(file, image);
    Process predict = Process::start({"predict", "--json", file.string()});
    std::string out;
    const std::string line = Process::read_until(predict.out, std::regex(R"((\{.*\})\n)"), 15s, out);
    EXPECT_EQ(predict.wait(10s), 0);
    std::filesystem::remove(file);
    ASSERT_FALSE(line.empty()) << out;
    const json cli = json::parse(line);

    httplib::Client client("127.0.0.1", port);
    auto response = client.Post("/api/predict", json{{"image", png_data_url(image)}}.dump(), "application/json");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    const json api = json::parse(response->body);
    EXPECT_EQ(api["digit"], cli["digit"]);
    for (int d = 0; d < 10; ++d) EXPECT_SAME_PROBABILITY(api["probabilities"][d].get<float>(), cli["probabilities"][d].get<float>());
  }
  server.stop();
  running.join();
}

TEST(ServeCommand, UsageAndBindErrors) {
  Process bad_port = Process::start({"serve", "--port", "70000"});
  EXPECT_EQ(bad_port.wait(10s), 2);
  Process no_model = Process::start({"serve", "--port", "0", "--model", "/nonexistent/model.safetensors"});
  EXPECT_EQ(no_model.wait(10s), 1);

  // A port already taken is a failure with a message, not a hang.
  Process first = Process::start({"serve", "--port", "0"});
  std::string out, err;
  const std::string port = Process::read_until(first.out, std::regex(R"(http://127\.0\.0\.1:(\d+)/)"), 15s, out);
  ASSERT_FALSE(port.empty()) << out;
  Process second = Process::start({"serve", "--port", port});
  EXPECT_EQ(second.wait(10s), 1);
  EXPECT_FALSE(Process::read_until(second.err, std::regex("cannot listen on 127.0.0.1:" + port), 1s, err).empty()) << err;
  ::kill(first.pid, SIGTERM);
  EXPECT_EQ(first.wait(10s), 0);
}

}  // namespace
}  // namespace digits
