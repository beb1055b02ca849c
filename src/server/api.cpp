#include "server/api.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>
#include <vector>

#include "digits/base64.hpp"
#include "digits/classes.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/json_depth.hpp"
#include "digits/preprocess.hpp"
#include "feedback/drawing.hpp"
#include "feedback/model_versions.hpp"

namespace digits::server {

using json = nlohmann::json;

namespace {


RequestError invalid(const std::string& message) { return RequestError(400, "invalid_request", message); }

// The body as a JSON object. Nesting deeper than kMaxJsonDepth is refused while parsing
// (digits/json_depth.hpp says why), with `too_deep` as the message.
json parse_body(std::string_view body, const std::string& too_deep) {
  if (body.empty()) throw RequestError(400, "malformed_json", "the request body is empty; expected a JSON object");
  json document;
  try {
    document = parse_json_bounded(body, kMaxJsonDepth, kMaxJsonValues);
  } catch (const JsonTooDeep&) {
    throw invalid(too_deep);
  } catch (const JsonTooManyValues&) {
    throw RequestError(413, "too_many_values", "the request body holds more than " + std::to_string(kMaxJsonValues) +
                                                   " JSON values (numbers, strings, arrays…); send a drawing as a PNG data URL, or a v2 batch of at most " +
                                                   std::to_string(kMaxV2Batch) + " images");
  } catch (const json::exception&) {
    throw RequestError(400, "malformed_json", "the request body is not valid JSON");
  }
  if (!document.is_object()) throw RequestError(400, "invalid_request", "the request body must be a JSON object");
  return document;
}

// The bodies of /api/…: objects holding numbers, strings and one flat array.
json parse_body(std::string_view body) {
  return parse_body(body, "the request body nests arrays or objects more than " + std::to_string(kMaxJsonDepth) +
                              " levels deep; expected a JSON object as docs/api.md shows");
}

std::string json_type(const json& value) { return value.type_name(); }

// The "image" field of a request: a data URL in a string.
// The image file's size is checked from the base64 text's length, before it is decoded.
std::string decode_image_field(const json& image, const RequestLimits& limits) {
  if (!image.is_string()) throw invalid("\"image\" must be a string holding a data URL (data:image/png;base64,…), not " + json_type(image));
  const std::string& url = image.get_ref<const std::string&>();
  const std::size_t comma = url.find(',');
  const std::size_t file_bytes = comma == std::string::npos ? 0 : (url.size() - comma - 1) / 4 * 3;  // within 2 bytes, padding aside
  if (file_bytes > limits.max_image_bytes)
    throw RequestError(413, "image_too_large", "the image file is about " + std::to_string(file_bytes) + " bytes; at most " + std::to_string(limits.max_image_bytes) +
                                                   " are accepted (a drawing as PNG is a few tens of kilobytes)");
  return decode_data_url(url);
}

GrayImage image_from_pixels(const json& request, const RequestLimits& limits) {
  const json& width = request.at("width");
  const json& height = request.at("height");
  const json& pixels = request.at("pixels");
  if (!width.is_number_integer() || !height.is_number_integer()) throw invalid("\"width\" and \"height\" must be integers");
  const long long w = width.get<long long>(), h = height.get<long long>();
  if (w < 1 || h < 1) throw invalid("\"width\" and \"height\" must be at least 1");
  const long long most = std::min<long long>(limits.max_image_pixels, kMaxJsonPixels);
  if (w > kMaxDrawingSide || h > kMaxDrawingSide || w * h > most)
    throw RequestError(413, "image_too_large", "the image is " + std::to_string(w) + "×" + std::to_string(h) + " pixels; as raw pixels at most " +
                                                   std::to_string(kMaxDrawingSide) + " a side and " + std::to_string(most) + " in all are accepted (send a larger image as a PNG data URL)");
  if (!pixels.is_array()) throw invalid("\"pixels\" must be an array of gray values 0–255, not " + json_type(pixels));
  if (pixels.size() != static_cast<std::size_t>(w * h))
    throw invalid("\"pixels\" has " + std::to_string(pixels.size()) + " values but width × height is " + std::to_string(w * h));
  GrayImage image{static_cast<int>(w), static_cast<int>(h), std::vector<float>(pixels.size())};
  for (std::size_t i = 0; i < pixels.size(); ++i) {
    const json& value = pixels[i];
    if (!value.is_number()) throw invalid("\"pixels\"[" + std::to_string(i) + "] is " + json_type(value) + ", not a number");
    const double v = value.get<double>();
    if (!(v >= 0 && v <= 255)) throw invalid("\"pixels\"[" + std::to_string(i) + "] is " + value.dump() + ", outside 0–255");
    image.pixels[i] = static_cast<float>(v);
  }
  return image;
}

// The drawing of a request, decoded, and the image file's bytes as sent (empty for raw pixels).
struct SentDrawing {
  GrayImage image;
  std::string file;
};

SentDrawing drawing_from_request(const json& request, const RequestLimits& limits) {
  const bool has_image = request.contains("image"), has_pixels = request.contains("pixels");
  if (has_image && has_pixels) throw invalid("send either \"image\" or \"pixels\", not both");
  if (has_image) {
    std::string bytes = decode_image_field(request["image"], limits);
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    try {  // the format is told by the bytes, whatever the data URL's MIME type says
      const ImageLimits image_limits{kMaxDrawingSide, limits.max_image_pixels};
      GrayImage image = decode_image(std::span<const unsigned char>(data, bytes.size()), "image", image_limits);
      return {std::move(image), std::move(bytes)};
    } catch (const UnsupportedImage& e) {
      throw RequestError(400, "unsupported_image", e.what());
    } catch (const ImageTooLarge& e) {  // refused from the header, before decoding
      throw RequestError(413, "image_too_large", e.what());
    } catch (const Error& e) {
      throw RequestError(400, "bad_image", e.what());
    }
  }
  if (has_pixels) {
    if (!request.contains("width") || !request.contains("height")) throw invalid("\"pixels\" needs \"width\" and \"height\"");
    return {image_from_pixels(request, limits), {}};
  }
  throw invalid(R"(expected {"image": "data:image/png;base64,…"} or {"width": W, "height": H, "pixels": [gray values 0–255]})");
}

Matrix row_of(const std::vector<float>& pixels) {
  return Eigen::Map<const Matrix>(pixels.data(), 1, static_cast<Eigen::Index>(pixels.size()));
}

double parse_percent(const Metadata& metadata, const std::string& key) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return -1;
  try {
    return std::stod(it->second);
  } catch (const std::exception&) {
    return -1;
  }
}

// The v2 tensor's data: a flat row-major array or arrays nested to the shape's depth (both are
// valid in the protocol). Appends numbers to out, checking their type; the count is checked after.
void flatten(const json& data, std::size_t depth_left, const std::string& datatype, std::vector<float>& out, std::size_t limit) {
  for (const json& value : data) {
    if (value.is_array()) {
      if (depth_left == 0) throw invalid("\"data\" is nested deeper than the shape");
      flatten(value, depth_left - 1, datatype, out, limit);
      continue;
    }
    if (out.size() >= limit) throw invalid("\"data\" holds more values than the shape says");
    if (datatype == "UINT8") {
      if (!value.is_number_integer() || value.get<long long>() < 0 || value.get<long long>() > 255)
        throw invalid("UINT8 data must be integers 0–255; found " + value.dump());
    } else if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() <= 255)) {
      // Not merely finite: 1e300 is finite as a double but infinite as a float, and the network
      // answered NaN for it (fuzz/README.md).
      throw invalid("FP32 data must be finite numbers, raw pixel values 0–255; found " + value.dump());
    }
    out.push_back(value.get<float>());
  }
}

// The model's outputs in the v2 metadata: the probabilities of its classes; with "not a digit"
// (classes.hpp), the ten digits' probabilities, then whether each image is not a digit and how
// probable that is, one value an image.
json v2_outputs(const Network& network) {
  if (!has_not_a_digit(network.classes()))
    return json::array({{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, network.classes()}}}});
  return json::array({
      {{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, kDigitClasses}}},
      {{"name", "not_a_digit"}, {"datatype", "BOOL"}, {"shape", json::array({-1})}},
      {{"name", "not_a_digit_probability"}, {"datatype", "FP32"}, {"shape", json::array({-1})}},
  });
}

// A fraction as the percentage the API reports: two decimals (0.99424 → 99.42).
json percent_value(double fraction) { return std::round(fraction * 10000) / 100; }

// The library's preprocessing, with an empty drawing answered as 422 empty_drawing.
Preprocessed preprocess_drawing(const GrayImage& drawing) {
  try {
    return preprocess(drawing);
  } catch (const Error& e) {
    throw RequestError(422, "empty_drawing", std::string("there is nothing to read: ") + e.what());
  }
}

}  // namespace

// "data:image/png;base64,iVBOR…" → the PNG's bytes.
std::string decode_data_url(std::string_view url) {
  const std::size_t comma = url.find(',');
  if (!url.starts_with("data:") || comma == std::string_view::npos)
    throw invalid("\"image\" is not a data URL; expected data:image/png;base64,…");
  const std::string_view header = url.substr(5, comma - 5);  // "image/png;base64"
  if (!header.starts_with("image/")) throw invalid("\"image\" is a data URL of '" + std::string(header) + "', not of an image");
  if (!header.ends_with(";base64")) throw invalid("\"image\" must be base64-encoded (data:image/png;base64,…)");
  try {
    return decode_base64(url.substr(comma + 1));
  } catch (const Error& e) {
    throw invalid(std::string("the image's ") + e.what());
  }
}

json health(const ServedModel& served) { return {{"status", "ok"}, {"model", served.source}}; }

json model_info(const ServedModel& served, const LearningStatus& learning) {
  const Network& network = served.model.network;
  const Metadata& metadata = served.model.metadata;
  json accuracy = json::object();
  if (const double test = parse_percent(metadata, "accuracy.test"); test >= 0) accuracy["test_percent"] = test;
  if (const double train = parse_percent(metadata, "accuracy.train"); train >= 0) accuracy["train_percent"] = train;

  // A saved version's file records how it was learned (feedback/model_versions.hpp): a whole
  // number, or null when missing or unreadable. Version 0, the starting model, has no parent and
  // has learned nothing.
  auto recorded = [&](const char* key) -> json {
    const auto it = metadata.find(key);
    if (it == metadata.end()) return nullptr;
    try {
      return std::stoll(it->second);
    } catch (const std::exception&) {
      return nullptr;
    }
  };
  const bool starting = served.version == 0;
  const json version = {
      {"number", served.version},
      {"parent", starting ? json(nullptr) : recorded(feedback::kParentKey)},
      {"validation_percent", served.validation_accuracy < 0 ? json(nullptr) : percent_value(served.validation_accuracy)},
      {"corrections_learned", starting ? json(0) : recorded(feedback::kCorrectionsLearnedKey)},
      {"last_judgement_id", starting ? json(0) : recorded(feedback::kLastJudgementKey)},
      {"created", starting || !metadata.contains("created") ? json(nullptr) : json(metadata.at("created"))},
  };
  json last_attempt = nullptr;
  if (const auto& a = learning.last_attempt) {
    last_attempt = {
        {"accepted", a->accepted},
        {"reason", a->reason},
        {"up_to_judgement_id", a->up_to_judgement_id},
        {"validation_before_percent", percent_value(a->validation_before)},
        {"validation_after_percent", percent_value(a->validation_after)},
        {"at", a->at},
    };
  }
  const json learning_info = {
      {"enabled", learning.enabled},
      {"store", learning.store},
      {"learner", learning.learner},
      {"disabled_reason", learning.enabled ? json(nullptr) : json(learning.disabled_reason)},
      {"state", learning.state},
      {"judgements", learning.judgements},
      {"corrections", learning.corrections},
      {"pending", learning.pending},
      {"last_attempt", last_attempt},
      {"problem", learning.problem.empty() ? json(nullptr) : json(learning.problem)},
  };
  return {
      {"source", served.source},
      {"layers", network.sizes()},
      {"architecture", network.architecture()},
      {"network", answers::describe_layers(network)},
      {"kernels", answers::first_layer_kernels(network)},
      {"hidden_activation", activation_name(network.hidden_activation())},
      {"parameters", network.parameter_count()},
      {"input_scale", network.input_scale},
      {"accuracy", accuracy},
      {"unsure_below", answers::kUnsureBelow},
      {"metadata", metadata},
      {"version", version},
      {"learning", learning_info},
  };
}

json predict_drawing(const ServedModel& served, std::string_view body, const RequestLimits& limits) {
  const auto start = std::chrono::steady_clock::now();
  const json request = parse_body(body);
  // "activations": false leaves every layer's output out (checked before the drawing is decoded).
  bool with_activations = true;
  if (const auto it = request.find("activations"); it != request.end()) {
    if (!it->is_boolean()) throw invalid("\"activations\" must be true or false, not " + json_type(*it));
    with_activations = it->get<bool>();
  }
  // The same two steps as `digits predict`: decode_image (above), then preprocess.
  const Preprocessed input = preprocess_drawing(drawing_from_request(request, limits).image);
  // Every layer's output, not only the last, unless the client said it does not want them: the
  // page's "Inside the network" panel draws them. The last layer's output is the probabilities.
  json answer = answers::reading(served.model.network, input, with_activations);
  const double milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  answer["milliseconds"] = std::round(milliseconds * 1000) / 1000;
  return answer;
}

json read_drawing(const ServedModel& served, std::string_view body, const RequestLimits& limits) {
  const auto start = std::chrono::steady_clock::now();
  const json request = parse_body(body);
  // The same decoding as predict, then read_number: components, cuts scored by the network, each
  // candidate through the preprocessing steps. Its answer is `digits read --json`'s.
  const GrayImage image = drawing_from_request(request, limits).image;
  NumberReading reading;
  try {
    reading = read_number(served.model.network, image);
  } catch (const Error& e) {
    throw RequestError(422, "empty_drawing", std::string("there is nothing to read: ") + e.what());
  }
  json answer = answers::number_answer(reading, true);
  const double milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  answer["milliseconds"] = std::round(milliseconds * 1000) / 1000;
  return answer;
}

JudgementRequest parse_judgement(std::string_view body) {
  JudgementRequest parsed;
  parsed.body = parse_body(body);
  const json& request = parsed.body;
  if (!request.contains("label"))
    throw invalid("\"label\" is missing: the true digit, 0–9, or 10 for \"not a digit\" (for a right answer, what was shown)");
  const json& label = request["label"];
  if (!label.is_number_integer())
    throw invalid("\"label\" must be an integer 0–9 (or 10: not a digit), not " + (label.is_number() ? label.dump() : json_type(label)));
  if (label.get<long long>() < 0 || label.get<long long>() > kNotADigit)
    throw invalid("\"label\" is " + label.dump() + "; it must be a digit 0–9, or 10 for \"not a digit\"");
  parsed.label = label.get<int>();
  if (request.contains("client_id")) {
    const json& id = request["client_id"];
    if (!id.is_string()) throw invalid("\"client_id\" must be a string, not " + json_type(id));
    parsed.client_id = id.get<std::string>();
    if (parsed.client_id.size() > kMaxClientIdBytes)
      throw invalid("\"client_id\" is " + std::to_string(parsed.client_id.size()) + " bytes long; at most " + std::to_string(kMaxClientIdBytes) +
                    " are allowed");
  }
  return parsed;
}

feedback::Judgement judge_drawing(const ServedModel& served, const JudgementRequest& request, const RequestLimits& limits) {
  // Only a model with the eleventh output can learn "not a digit"; checked before any decoding.
  if (request.label == kNotADigit && !has_not_a_digit(served.model.network.classes()))
    throw invalid("\"label\" is 10, \"not a digit\", but the served model has " + std::to_string(served.model.network.classes()) +
                  " outputs and no \"not a digit\" among them; it can learn the digits 0–9 only");
  // The same two steps as predict: decode, then preprocess.
  const SentDrawing drawing = drawing_from_request(request.body, limits);
  const Preprocessed input = preprocess_drawing(drawing.image);
  const Matrix probabilities = served.model.network.predict_proba(row_of(input.pixels));

  feedback::Judgement judgement;
  judgement.input.resize(input.pixels.size());
  for (std::size_t i = 0; i < input.pixels.size(); ++i)
    judgement.input[i] = static_cast<std::uint8_t>(std::clamp(std::lround(input.pixels[i]), 0L, 255L));
  judgement.drawing_png = feedback::stored_drawing(drawing.image);
  judgement.label = request.label;
  // What the page showed: a digit, or 10 for "not a digit" (read_classes, as answers:: reads it).
  const ClassReading classes = read_classes(std::span<const float>(probabilities.data(), static_cast<std::size_t>(probabilities.cols())));
  judgement.predicted = classes.not_a_digit ? kNotADigit : classes.digit;
  for (int d = 0; d < kDigitClasses && d < probabilities.cols(); ++d)
    judgement.probabilities[static_cast<std::size_t>(d)] = std::clamp(probabilities(0, d), 0.0f, 1.0f);
  judgement.correct = judgement.label == judgement.predicted;
  judgement.model_version = served.version;
  judgement.client_id = request.client_id;
  return judgement;
}

feedback::Judgement judge_drawing(const ServedModel& served, std::string_view body, const RequestLimits& limits) { return judge_drawing(served, parse_judgement(body), limits); }

std::optional<int> rollback_target(std::string_view body) {
  if (body.empty()) return std::nullopt;
  const json request = parse_body(body);
  if (!request.contains("version")) return std::nullopt;
  const json& version = request["version"];
  if (!version.is_number_integer() || version.get<long long>() < 0 || version.get<long long>() > 999'999'999)
    throw invalid("\"version\" must be a version number: 0 (the starting model), 1, 2, …; not " + version.dump());
  return version.get<int>();
}

json feedback_answer(const feedback::Judgement& stored, const std::string& learning) {
  return {
      {"id", stored.id},
      {"label", stored.label},
      {"predicted", stored.predicted},
      {"correct", stored.correct},
      {"model_version", stored.model_version},
      {"probabilities", stored.probabilities},
      {"learning", learning},
  };
}

json v2_server_metadata() { return {{"name", "digits"}, {"version", "0.1.0"}, {"extensions", json::array()}}; }

json v2_model_metadata(const ServedModel& served) {
  const Network& network = served.model.network;
  // The layers in one line, as the protocol's parameters are strings or numbers:
  // "conv1 conv5x5x16 relu → 16×24×24; pool1 pool2 max → 16×12×12; …; fc2 fc10 softmax → 10".
  std::string layers;
  for (const json& layer : answers::describe_layers(network)) {
    std::string output;
    for (const json& side : layer["output"]) output += (output.empty() ? "" : "×") + std::to_string(side.get<int>());
    const std::string function = layer["function"] == "none" ? "" : " " + layer["function"].get<std::string>();
    const std::string spec = layer["spec"] == layer["name"] ? "" : " " + layer["spec"].get<std::string>();
    layers += (layers.empty() ? "" : "; ") + layer["name"].get<std::string>() + spec + function + " → " + output;
  }
  // The input is the 28×28 image whatever the network: a dense one reads it as 784 values (its
  // input_shape() is 784×1×1), a conv one as one channel of 28×28.
  return {
      {"name", kV2ModelName},
      {"versions", {std::to_string(served.version)}},
      {"platform", kModelFormat},
      {"inputs", {{{"name", "input"}, {"datatype", "UINT8"}, {"shape", {-1, kInputSide, kInputSide}}}}},
      {"outputs", v2_outputs(network)},
      {"parameters",
       {{"source", served.source},
        {"also_accepts", "FP32 [-1," + std::to_string(network.inputs()) + "] of raw 0-255 pixel values"},
        {"architecture", network.architecture()},
        {"layers", layers},
        {"parameter_count", network.parameter_count()}}},
  };
}

json v2_infer(const ServedModel& served, std::string_view body) {
  const json request = parse_body(body, "the request body nests arrays or objects more than " + std::to_string(kMaxJsonDepth) +
                                            " levels deep (a tensor's \"data\" is never nested deeper than the shape: 3 levels for [N,28,28])");
  const Network& network = served.model.network;

  if (request.contains("id") && !request["id"].is_string()) throw invalid("\"id\" must be a string");
  const json& inputs = request.contains("inputs") ? request["inputs"] : json();
  if (!inputs.is_array() || inputs.size() != 1) throw invalid("\"inputs\" must be an array holding exactly one tensor, named \"input\"");
  const json& input = inputs[0];
  if (!input.is_object()) throw invalid("each input must be an object with name, shape, datatype and data");
  for (const char* field : {"name", "shape", "datatype", "data"})
    if (!input.contains(field)) throw invalid(std::string("the input has no \"") + field + "\"");
  if (!input["name"].is_string() || input["name"] != "input") throw invalid("the model's one input is named \"input\", not " + input["name"].dump());
  if (!input["datatype"].is_string()) throw invalid("\"datatype\" must be a string");
  const std::string datatype = input["datatype"];
  const json& shape = input["shape"];
  if (!shape.is_array()) throw invalid("\"shape\" must be an array of integers");
  std::vector<long long> dims;
  for (const json& d : shape) {
    if (!d.is_number_integer()) throw invalid("\"shape\" must be an array of integers, found " + d.dump());
    dims.push_back(d.get<long long>());
  }
  const bool uint8_images = datatype == "UINT8" && dims.size() == 3 && dims[1] == kInputSide && dims[2] == kInputSide;
  const bool fp32_rows = datatype == "FP32" && dims.size() == 2 && dims[1] == network.inputs();
  if (!uint8_images && !fp32_rows)
    throw invalid("expected a UINT8 tensor of shape [N,28,28] or an FP32 tensor of shape [N,784]; got " + datatype + " " + shape.dump());
  const long long batch = dims[0];
  if (batch < 1 || batch > kMaxV2Batch) throw invalid("the batch size N must be 1 to " + std::to_string(kMaxV2Batch) + ", not " + std::to_string(batch));
  if (!input["data"].is_array()) throw invalid("\"data\" must be an array");

  // The outputs asked for, by name (all of them when "outputs" is absent), in the model's order.
  const json known = v2_outputs(network);
  std::vector<std::string> wanted;
  if (request.contains("outputs")) {
    const json& outputs = request["outputs"];
    if (!outputs.is_array()) throw invalid("\"outputs\" must be an array");
    std::string names;
    for (const json& output : known) names += (names.empty() ? "\"" : ", \"") + output["name"].get<std::string>() + "\"";
    for (const json& output : outputs) {
      const bool named = output.is_object() && output.contains("name") && output["name"].is_string();
      if (!named || std::none_of(known.begin(), known.end(), [&](const json& k) { return k["name"] == output["name"]; }))
        throw invalid("the model's outputs are " + names + (named ? "; not " + output["name"].dump() : "; each asked for as {\"name\": …}"));
      wanted.push_back(output["name"].get<std::string>());
    }
  }
  const auto asked = [&](const char* name) { return wanted.empty() || std::find(wanted.begin(), wanted.end(), name) != wanted.end(); };

  const std::size_t expected = static_cast<std::size_t>(batch) * static_cast<std::size_t>(network.inputs());
  std::vector<float> values;
  values.reserve(expected);
  flatten(input["data"], dims.size() - 1, datatype, values, expected);
  if (values.size() != expected)
    throw invalid("\"data\" holds " + std::to_string(values.size()) + " values; the shape " + shape.dump() + " needs " + std::to_string(expected));

  // Already 28×28 like preprocess() makes them: straight to the network, which applies its own input_scale.
  const Matrix pixels = Eigen::Map<const Matrix>(values.data(), static_cast<Eigen::Index>(batch), network.inputs());
  const Matrix probabilities = network.predict_proba(pixels);

  json outputs = json::array();
  if (!has_not_a_digit(network.classes())) {
    if (asked("probabilities"))
      outputs.push_back({{"name", "probabilities"},
                         {"datatype", "FP32"},
                         {"shape", {batch, network.classes()}},
                         {"data", std::vector<float>(probabilities.data(), probabilities.data() + probabilities.size())}});
  } else {
    // Eleven classes: the ten digits' probabilities (of the eleven-way softmax, as /api/predict
    // gives them), whether "not a digit" is the most probable (read_classes), and its probability.
    std::vector<float> digits, not_a_digit_probability;
    std::vector<bool> not_a_digit;
    for (Eigen::Index i = 0; i < probabilities.rows(); ++i) {
      const std::span<const float> row(&probabilities(i, 0), static_cast<std::size_t>(probabilities.cols()));
      digits.insert(digits.end(), row.begin(), row.begin() + kDigitClasses);
      const ClassReading classes = read_classes(row);
      not_a_digit.push_back(classes.not_a_digit);
      not_a_digit_probability.push_back(*classes.not_a_digit_probability);
    }
    if (asked("probabilities"))
      outputs.push_back({{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {batch, kDigitClasses}}, {"data", digits}});
    if (asked("not_a_digit")) outputs.push_back({{"name", "not_a_digit"}, {"datatype", "BOOL"}, {"shape", json::array({batch})}, {"data", not_a_digit}});
    if (asked("not_a_digit_probability"))
      outputs.push_back({{"name", "not_a_digit_probability"}, {"datatype", "FP32"}, {"shape", json::array({batch})}, {"data", not_a_digit_probability}});
  }
  json response = {{"model_name", kV2ModelName}, {"outputs", std::move(outputs)}};
  if (request.contains("id")) response["id"] = request["id"];
  return response;
}

}  // namespace digits::server
