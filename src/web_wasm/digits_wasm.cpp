// The page's network in the browser: the library's own preprocessing and forward pass, compiled
// to WebAssembly by emscripten (scripts/build-web), behind a few C functions that web/wasm-mode.js
// calls. Nothing here computes anything the library does not: a canvas's RGBA pixels go through
// to_gray (as `digits predict` turns a PNG's pixels gray), preprocess, then the network, and the
// answer is written by answers::reading, the very function behind POST /api/predict. The page
// cannot tell the two apart, and neither can "Inside the network".
//
// Memory is shared with JavaScript: it copies a model file or a drawing into a buffer it gets
// from malloc, calls in, and reads the answer, a UTF-8 JSON string, where these functions point.
// Errors are digits::Error, caught here: the return value says whether it worked and
// digits_error() says what went wrong, in the library's words.
#include <emscripten/emscripten.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "digits/decoders.hpp"
#include "digits/error.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"
#include "answers/answers.hpp"

namespace {

using json = nlohmann::json;
using namespace digits;

std::optional<Model> model;
std::string error_text;
std::string model_text;    // digits_model_json's answer
std::string reading_text;  // digits_read's answer

// The model as GET /api/model describes it (api.cpp's model_info), without what only a server
// has: where the model came from, its versions and the learner.
std::string describe(const Model& loaded) {
  const Network& network = loaded.network;
  json accuracy = json::object();
  if (const auto it = loaded.metadata.find("accuracy.test"); it != loaded.metadata.end()) {
    try {
      accuracy["test_percent"] = std::stod(it->second);
    } catch (const std::exception&) {
    }
  }
  return json{
      {"layers", network.sizes()},
      {"architecture", network.architecture()},
      {"network", answers::describe_layers(network)},
      {"kernels", answers::first_layer_kernels(network)},
      {"hidden_activation", activation_name(network.hidden_activation())},
      {"parameters", network.parameter_count()},
      {"input_scale", network.input_scale},
      {"accuracy", accuracy},
      {"unsure_below", answers::kUnsureBelow},
      {"metadata", loaded.metadata},
  }.dump();
}

// A canvas's pixels (width × height of red, green, blue, alpha) in gray, for a loaded model; throws
// Error when there is no model or the size is not a drawing's.
GrayImage drawing_in_gray(const unsigned char* rgba, int width, int height) {
  if (!model) throw Error("no model is loaded");
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide)
    throw Error("a drawing of " + std::to_string(width) + "×" + std::to_string(height) + " pixels is not one digits reads");
  const auto bytes = static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 4;
  return to_gray(Pixels{width, height, 4, std::vector<unsigned char>(rgba, rgba + bytes)});
}

}  // namespace

extern "C" {

// The last error's message, UTF-8, valid until the next call.
EMSCRIPTEN_KEEPALIVE const char* digits_error() { return error_text.c_str(); }

// Loads a model file from its bytes: parse_model checks it as strictly as `digits serve --model`
// does (F32 or F16). `name` names it in messages. Returns 1, or 0 with digits_error() saying why.
EMSCRIPTEN_KEEPALIVE int digits_load_model(const unsigned char* bytes, int size, const char* name) {
  try {
    if (size < 0) throw Error(std::string(name) + ": a negative size");
    Model loaded = parse_model(std::span(bytes, static_cast<std::size_t>(size)), name);
    model_text = describe(loaded);
    model.emplace(std::move(loaded));
    return 1;
  } catch (const std::exception& e) {
    error_text = e.what();
    return 0;
  }
}

// The loaded model as JSON, the parts of GET /api/model a page without a server can give.
EMSCRIPTEN_KEEPALIVE const char* digits_model_json() { return model ? model_text.c_str() : nullptr; }

// Reads a drawing: width × height pixels of 4 bytes (red, green, blue, alpha), as a canvas's
// getImageData gives them. Returns 1 with the reading in digits_reading_json() (POST
// /api/predict's answer, without its time; every layer's output in it when `with_activations` is
// not 0, as the server's unless asked "activations": false), 0 when there is nothing to read
// (preprocess refuses a drawing without ink, as the server answers 422 empty_drawing), −1 on any
// other error.
EMSCRIPTEN_KEEPALIVE int digits_read(const unsigned char* rgba, int width, int height, int with_activations) {
  try {
    const GrayImage gray = drawing_in_gray(rgba, width, height);
    Preprocessed input;
    try {
      input = preprocess(gray);
    } catch (const Error& e) {
      error_text = std::string("there is nothing to read: ") + e.what();
      return 0;
    }
    reading_text = answers::text(answers::reading(model->network, input, with_activations != 0));
    return 1;
  } catch (const std::exception& e) {
    error_text = e.what();
    return -1;
  }
}

// Reads every digit of a drawing, left to right (read_number, digits/segment.hpp): the same pixels
// and return values as digits_read, with POST /api/read's answer (without its time) in
// digits_reading_json().
EMSCRIPTEN_KEEPALIVE int digits_read_number(const unsigned char* rgba, int width, int height) {
  try {
    const GrayImage gray = drawing_in_gray(rgba, width, height);
    NumberReading reading;
    try {
      reading = read_number(model->network, gray);
    } catch (const Error& e) {
      error_text = std::string("there is nothing to read: ") + e.what();
      return 0;
    }
    reading_text = answers::text(answers::number_answer(reading, true));
    return 1;
  } catch (const std::exception& e) {
    error_text = e.what();
    return -1;
  }
}

EMSCRIPTEN_KEEPALIVE const char* digits_reading_json() { return reading_text.c_str(); }

}  // extern "C"
