// What the HTTP endpoints answer, without the HTTP: each function takes a request body (or nothing)
// and returns the JSON to send, or throws RequestError. server.cpp maps paths and methods to these;
// docs/app.md is the reference for clients.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "digits/model_file.hpp"

namespace digits::server {

// A request the server cannot answer, with the HTTP status and a stable machine-readable code
// ("malformed_json", "invalid_request", "empty_drawing", …) next to the message for people.
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status(status), code(std::move(code)) {}
  int status;
  std::string code;
};

// A prediction whose top probability is below this is shown as unsure rather than as an answer.
// Chosen so that clear drawings (typically above 0.9) pass and scribbles and ambiguous shapes
// (a 4 that could be a 9 splits about evenly) do not; docs/app.md states the rule.
inline constexpr double kUnsureBelow = 0.7;

// The largest drawing the server decodes, in pixels per side: the library's own limit. The page
// sends 280×280; the body limit (ServerOptions::max_body_bytes) bounds the JSON pixel form further.
inline constexpr int kMaxDrawingSide = 4096;

// The model as served: the network plus the model file's metadata and where it came from.
struct ServedModel {
  Model model;
  std::string source;  // "built-in model" or the file's path
};

// GET /api/health
nlohmann::json health(const ServedModel& served);
// GET /api/model: architecture, parameter count, accuracy and every metadata entry of the file.
nlohmann::json model_info(const ServedModel& served);
// POST /api/predict: a drawing as a PNG data URL or raw gray pixels → digit, the ten
// probabilities, the 28×28 input the network saw, every layer's output (activations) and the
// time taken.
nlohmann::json predict_drawing(const ServedModel& served, std::string_view body);

// The Open Inference Protocol (KServe v2), model name "digits".
inline constexpr const char* kV2ModelName = "digits";
nlohmann::json v2_server_metadata();
nlohmann::json v2_model_metadata(const ServedModel& served);
// POST /v2/models/digits/infer: a UINT8 [N,28,28] or FP32 [N,784] tensor named "input" of raw 0–255
// pixels → an FP32 [N,10] tensor named "probabilities".
nlohmann::json v2_infer(const ServedModel& served, std::string_view body);

// Strict standard base64 (RFC 4648 §4), padding optional; throws RequestError on any other byte.
std::string decode_base64(std::string_view text);

}  // namespace digits::server
