// "Not a digit" through the API (issue 20): what POST /api/predict, POST /api/read, POST
// /api/feedback and the Open Inference Protocol say for a model with an eleventh output, and that
// a model of ten classes answers as it always did. The endpoints' functions are called directly
// (server/api.hpp). The eleven-class models are the built-in one with a made-up eleventh output
// (tests/support/not_a_digit.hpp), so what they answer is known: "sevens are not digits" reads
// every drawing the built-in model reads as 7 as "not a digit", and every other as before.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "../support/not_a_digit.hpp"
#include "digits/preprocess.hpp"
#include "http_support.hpp"
#include "server/api.hpp"

namespace digits {
namespace {

using json = nlohmann::json;
using namespace api_testing;

const server::ServedModel& sevens_are_not_digits() {
  // Every 7 e³ ≈ 20 times likelier "not a digit" than a 7: left out of a number too (kAmongDigits).
  static const server::ServedModel served{testing::builtin_with_not_a_digit(7, 3.0f), "sevens are not digits"};
  return served;
}

const server::ServedModel& ten_classes() {
  static const server::ServedModel served{testing::builtin_with_ten_classes(), "the built-in model with ten outputs"};
  return served;
}

json predict(const server::ServedModel& served, int digit) {
  return server::predict_drawing(served, json{{"image", png_data_url(drawing(digit))}}.dump());
}

// The RequestError a call throws: its status and message; status 0 when it throws none.
template <typename Call>
std::pair<int, std::string> refusal(Call call) {
  try {
    call();
  } catch (const server::RequestError& e) {
    return {e.status, e.what()};
  }
  return {0, ""};
}

TEST(NotADigit, PredictSaysItInsteadOfADigitAndKeepsTheTenProbabilities) {
  const json seven = predict(sevens_are_not_digits(), 7);
  EXPECT_TRUE(seven["digit"].is_null()) << seven.dump().substr(0, 300);
  EXPECT_EQ(seven["not_a_digit"], true);
  const double none = seven["not_a_digit_probability"].get<double>();
  EXPECT_DOUBLE_EQ(seven["probability"].get<double>(), none);  // the answer's probability: "not a digit"'s
  EXPECT_EQ(seven["unsure"], false);                           // 88%: e² times the 7's
  const std::vector<double> p = seven["probabilities"].get<std::vector<double>>();
  ASSERT_EQ(p.size(), 10u);
  EXPECT_GT(none, *std::max_element(p.begin(), p.end()));
  double sum = none;
  for (double v : p) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-5) << "the ten are the eleven-way softmax's, not renormalised";
  // "Inside the network" gets all eleven outputs.
  const json& output = seven["activations"].back();
  ASSERT_EQ(output["values"].size(), 11u);
  EXPECT_NEAR(output["values"][10].get<double>(), none, 1e-7);

  const json one = predict(sevens_are_not_digits(), 1);
  EXPECT_EQ(one["digit"], 1);
  EXPECT_EQ(one["not_a_digit"], false);
  EXPECT_LT(one["not_a_digit_probability"].get<double>(), 0.1);  // e² times the 7's, which is small
  EXPECT_DOUBLE_EQ(one["probability"].get<double>(), one["probabilities"][1].get<double>());
}

// A digit is shown only when it is the most probable of the eleven classes, and "unsure" below 70%
// of them: with the eleventh output half a logit below the 7's, a 7 is still the answer, at 62%.
TEST(NotADigit, ADigitJustAboveNotADigitIsUnsure) {
  const server::ServedModel close{testing::builtin_with_not_a_digit(7, -0.5f), "a close call"};
  const json seven = predict(close, 7);
  EXPECT_EQ(seven["digit"], 7);
  EXPECT_EQ(seven["not_a_digit"], false);
  EXPECT_NEAR(seven["probability"].get<double>(), 1 / (1 + std::exp(-0.5)), 0.01);
  EXPECT_EQ(seven["unsure"], true);
}

TEST(NotADigit, ATenClassModelAnswersAsBeforeAndSaysItCannotTell) {
  const json seven = predict(ten_classes(), 7);
  EXPECT_EQ(seven["digit"], 7);
  EXPECT_EQ(seven["not_a_digit"], false);
  EXPECT_TRUE(seven["not_a_digit_probability"].is_null()) << "a model without the output cannot tell";
  EXPECT_EQ(seven["probabilities"], seven["activations"].back()["values"]);
  const std::vector<double> p = seven["probabilities"].get<std::vector<double>>();
  EXPECT_DOUBLE_EQ(seven["probability"].get<double>(), *std::max_element(p.begin(), p.end()));
}

TEST(NotADigit, ReadLeavesNotDigitsOutOfTheText) {
  // A 1 and a 7, apart, on one canvas.
  GrayImage image = drawing(1, {.canvas_width = 400, .canvas_height = 220, .left = 30, .top = 20, .width = 120, .height = 180});
  const GrayImage seven = drawing(7, {.canvas_width = 400, .canvas_height = 220, .left = 230, .top = 20, .width = 120, .height = 180});
  for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = std::max(image.pixels[i], seven.pixels[i]);
  const std::string body = json{{"image", png_data_url(image)}}.dump();

  const json ten = server::read_drawing(ten_classes(), body);
  ASSERT_EQ(ten["text"], "17") << ten.dump();
  EXPECT_TRUE(ten["not_digits"].empty());
  EXPECT_TRUE(ten["digits"][0]["not_a_digit_probability"].is_null());

  const json eleven = server::read_drawing(sevens_are_not_digits(), body);
  EXPECT_EQ(eleven["text"], "1") << eleven.dump();
  ASSERT_EQ(eleven["digits"].size(), 1u);
  EXPECT_LT(eleven["digits"][0]["not_a_digit_probability"].get<double>(), 0.1);
  ASSERT_EQ(eleven["not_digits"].size(), 1u);
  EXPECT_EQ(eleven["not_digits"][0]["box"], ten["digits"][1]["box"]);
}

TEST(NotADigit, V2MetadataListsTheTwoMoreOutputsOnlyForAnElevenClassModel) {
  EXPECT_EQ(server::v2_model_metadata(ten_classes())["outputs"], json::parse(R"([{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}])"));
  EXPECT_EQ(server::v2_model_metadata(sevens_are_not_digits())["outputs"], json::parse(R"([
      {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
      {"name": "not_a_digit", "datatype": "BOOL", "shape": [-1]},
      {"name": "not_a_digit_probability", "datatype": "FP32", "shape": [-1]}])"));
}

// Two 28×28 inputs as preprocess makes them, a 7 and a 1, as a v2 request's UINT8 tensor.
json v2_request() {
  std::vector<int> data;
  for (int digit : {7, 1}) {
    const std::string png = encode_png(drawing(digit));
    const Preprocessed input = preprocess(decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "test"));
    for (float v : input.pixels) data.push_back(static_cast<int>(std::lround(v)));
  }
  return {{"inputs", {{{"name", "input"}, {"datatype", "UINT8"}, {"shape", {2, 28, 28}}, {"data", data}}}}};
}

TEST(NotADigit, V2InferAddsNotADigitAndItsProbability) {
  const json answer = server::v2_infer(sevens_are_not_digits(), v2_request().dump());
  const json& outputs = answer["outputs"];
  ASSERT_EQ(outputs.size(), 3u) << answer.dump();
  EXPECT_EQ(outputs[0]["name"], "probabilities");
  EXPECT_EQ(outputs[0]["shape"], json({2, 10}));
  EXPECT_EQ(outputs[0]["data"].size(), 20u);
  EXPECT_EQ(outputs[1]["name"], "not_a_digit");
  EXPECT_EQ(outputs[1]["datatype"], "BOOL");
  EXPECT_EQ(outputs[1]["shape"], json({2}));
  EXPECT_EQ(outputs[1]["data"], json({true, false}));
  EXPECT_EQ(outputs[2]["name"], "not_a_digit_probability");
  EXPECT_EQ(outputs[2]["shape"], json({2}));
  EXPECT_GT(outputs[2]["data"][0].get<double>(), 0.7);
  EXPECT_LT(outputs[2]["data"][1].get<double>(), 0.1);
  // Each image's ten and its "not a digit" add up to 1.
  for (int image = 0; image < 2; ++image) {
    double sum = outputs[2]["data"][image].get<double>();
    for (int d = 0; d < 10; ++d) sum += outputs[0]["data"][image * 10 + d].get<double>();
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }

  // "outputs" picks by name.
  json request = v2_request();
  request["outputs"] = {{{"name", "not_a_digit"}}};
  const json picked = server::v2_infer(sevens_are_not_digits(), request.dump());
  ASSERT_EQ(picked["outputs"].size(), 1u);
  EXPECT_EQ(picked["outputs"][0]["name"], "not_a_digit");
}

TEST(NotADigit, V2RefusesAnOutputTheModelDoesNotHave) {
  json request = v2_request();
  request["outputs"] = {{{"name", "not_a_digit"}}};
  auto [status, message] = refusal([&] { server::v2_infer(ten_classes(), request.dump()); });
  EXPECT_EQ(status, 400);
  EXPECT_NE(message.find(R"(the model's outputs are "probabilities"; not "not_a_digit")"), std::string::npos) << message;
  request["outputs"] = {{{"name", "logits"}}};
  std::tie(status, message) = refusal([&] { server::v2_infer(sevens_are_not_digits(), request.dump()); });
  EXPECT_EQ(status, 400);
  EXPECT_NE(message.find(R"("probabilities", "not_a_digit", "not_a_digit_probability"; not "logits")"), std::string::npos) << message;
  // A ten-class model's answer is as before: one output, the ten probabilities.
  const json answer = server::v2_infer(ten_classes(), v2_request().dump());
  ASSERT_EQ(answer["outputs"].size(), 1u);
  EXPECT_EQ(answer["outputs"][0]["shape"], json({2, 10}));
}

TEST(NotADigit, AJudgementOfNotADigitIsLabelTenAndOnlyForAModelWithIt) {
  const std::string seven = png_data_url(drawing(7)), one = png_data_url(drawing(1));
  // Read as "not a digit" and judged right: label and prediction 10.
  feedback::Judgement right = server::judge_drawing(sevens_are_not_digits(), json{{"image", seven}, {"label", 10}}.dump());
  EXPECT_EQ(right.label, 10);
  EXPECT_EQ(right.predicted, 10);
  EXPECT_TRUE(right.correct);
  // A 1 that the person says is not a digit: a correction.
  feedback::Judgement taught = server::judge_drawing(sevens_are_not_digits(), json{{"image", one}, {"label", 10}}.dump());
  EXPECT_EQ(taught.predicted, 1);
  EXPECT_FALSE(taught.correct);
  // A 7 read as "not a digit" that the person says is a 7.
  feedback::Judgement corrected = server::judge_drawing(sevens_are_not_digits(), json{{"image", seven}, {"label", 7}}.dump());
  EXPECT_EQ(corrected.predicted, 10);
  EXPECT_FALSE(corrected.correct);

  // A ten-class model cannot learn it: 400, before the drawing is decoded.
  auto [status, message] = refusal([&] { server::judge_drawing(ten_classes(), json{{"image", "not even a data URL"}, {"label", 10}}.dump()); });
  EXPECT_EQ(status, 400);
  EXPECT_NE(message.find("\"label\" is 10, \"not a digit\", but the served model has 10 outputs"), std::string::npos) << message;
  std::tie(status, message) = refusal([&] { server::parse_judgement(json{{"image", seven}, {"label", 11}}.dump()); });
  EXPECT_EQ(status, 400);
  EXPECT_NE(message.find("it must be a digit 0–9, or 10 for \"not a digit\""), std::string::npos) << message;
}

}  // namespace
}  // namespace digits
