// What the HTTP endpoints answer, without the HTTP: each function takes a request body (or nothing)
// and returns the JSON to send, or throws RequestError. server.cpp maps paths and methods to these;
// docs/api.md is the reference for clients.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "digits/model_file.hpp"
#include "feedback/store.hpp"
#include "answers/answers.hpp"  // kUnsureBelow, the layers and a reading as JSON

namespace digits::server {

// A request the server cannot answer, with the HTTP status and a stable machine-readable code
// ("malformed_json", "invalid_request", "empty_drawing", …) next to the message for people.
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status(status), code(std::move(code)) {}
  RequestError& with_header(const std::string& name, const std::string& value) {
    headers[name] = value;
    return *this;
  }
  int status;
  std::string code;
  std::map<std::string, std::string> headers;  // sent with the error: Retry-After, WWW-Authenticate
};

// The largest drawing the server decodes, in pixels per side: the library's own limit. The page
// sends 280×280; the pixel caps below bound the area.
inline constexpr int kMaxDrawingSide = 4096;

// What one request may cost: each bound is there because the CPU time of a request grows with it
// (docs/security.md, "What one request costs", measured by bench/request_costs.cpp).
//  - Image pixels (`digits serve --max-image-pixels`), read from the header before anything is
//    decoded: the page sends 280×280 = 78,400, a drawing needs no more than a megapixel, and a
//    16-bit RGB PNG of 4096×3072 (the CLI's cap) took 0.46 s to decode. Raw JSON pixels count too.
//  - Image file bytes (`--max-image-bytes`), from the data URL's length before base64 is decoded:
//    a JPEG's cost follows its entropy-coded data, not its pixels (a progressive CMYK JPEG of
//    1 megapixel and 3 MB took 117 ms, most of it Huffman decoding; of 512 KB, 28 ms). The page's
//    PNG is about 20 KB, a phone photo of a drawing at 1 megapixel 100–300 KB.
//  - JSON values in a body (every number, string, array…): parsing costs about 75 ns a value, so a
//    4 MiB body of "0," (2 million values) took 140 ms. 300,000 hold a 512×512 drawing as raw pixels
//    or a v2 batch of kMaxV2Batch images, nested or flat.
inline constexpr std::int64_t kDefaultMaxImagePixels = std::int64_t{1} << 20;  // 1024×1024
inline constexpr std::size_t kDefaultMaxImageBytes = std::size_t{512} << 10;    // 512 KiB
inline constexpr std::size_t kMaxJsonValues = 300'000;
inline constexpr std::int64_t kMaxJsonPixels = std::int64_t{512} * 512;
struct RequestLimits {
  std::int64_t max_image_pixels = kDefaultMaxImagePixels;  // 1 to kMaxImagePixels
  std::size_t max_image_bytes = kDefaultMaxImageBytes;
};

// The longest client_id a judgement may carry, in bytes: the page sends a UUID (36).
inline constexpr std::size_t kMaxClientIdBytes = 64;

// The model as served: the network plus the model file's metadata and where it came from. The
// server holds it as shared_ptr<const ServedModel> and swaps in a new one when it learns: a
// request keeps the snapshot it started with.
struct ServedModel {
  Model model;
  std::string source;  // "built-in model" or the file's path: the starting model
  int version = 0;     // 0: the starting model itself; N: STATE_DIR/models/v000N.safetensors, learned from it
  // On the guard's 5,000 validation images (fine_tune.hpp), as a fraction; −1 when not measured
  // (learning off). Version files record theirs; the starting model's is measured at start-up.
  double validation_accuracy = -1;
};

// What the background learner has done and is doing (learner.hpp), for GET /api/model.
struct LearningAttempt {
  bool accepted = false;
  std::string reason;                // the guard's verdict, in a sentence
  std::int64_t up_to_judgement_id = 0;
  double validation_before = 0, validation_after = 0;  // fractions
  std::string at;                    // ISO 8601, UTC
};

struct LearningStatus {
  bool enabled = false;
  std::string store = "sqlite";      // "sqlite" (a state directory) or "postgresql" (shared by replicas)
  bool learner = false;              // this process is the one that learns (always, with learning on, for sqlite)
  std::string disabled_reason;       // when not enabled
  std::int64_t judgements = 0, corrections = 0;
  std::int64_t pending = 0;          // corrections not yet considered by the learner
  std::string state = "idle";        // "idle", "waiting" (for more corrections) or "training"
  std::optional<LearningAttempt> last_attempt;
  // Why storing or learning is held up, for people, naming no file ("the server's disk is full;
  // …"); empty when nothing is wrong.
  std::string problem;
};

// GET /api/health
nlohmann::json health(const ServedModel& served);
// GET /api/model: architecture (every layer with its shape), parameter count, accuracy, the first
// convolution's kernels (null without one), every metadata entry of the file, the live version
// and what the learner is doing.
nlohmann::json model_info(const ServedModel& served, const LearningStatus& learning);
// POST /api/predict: a drawing as a PNG data URL or raw gray pixels → digit, the ten
// probabilities, the 28×28 input the network saw, every layer's output (activations: a dense
// layer's values as numbers, a conv or pooling layer's maps as base64 bytes) and the time taken.
// An image over limits.max_image_pixels or max_image_bytes (or raw pixels over kMaxJsonPixels) is
// 413 image_too_large.
nlohmann::json predict_drawing(const ServedModel& served, std::string_view body, const RequestLimits& limits = {});
// POST /api/read: the same bodies as /api/predict → every digit in the drawing, left to right
// (digits/segment.hpp): answers::number_answer and the time taken. 422 empty_drawing for no ink.
nlohmann::json read_drawing(const ServedModel& served, std::string_view body, const RequestLimits& limits = {});

// POST /api/feedback, the part without state, in two steps so that the server can check its rate
// limit and quotas between them, before anything is decoded:
// 1. the body parsed as JSON and "label" and "client_id" checked (microseconds, whatever the image);
struct JudgementRequest {
  nlohmann::json body;
  int label = 0;
  std::string client_id;  // "" when none was sent
};
JudgementRequest parse_judgement(std::string_view body);
// 2. the drawing decoded and preprocessed as predict does, and the served model's own prediction
//    (never the client's) → a judgement ready for Store::add. The drawing kept is re-encoded from
//    the decoded pixels and bounded (feedback::stored_drawing), never the bytes as sent.
// An image over the limits is 413 image_too_large, as for predict.
feedback::Judgement judge_drawing(const ServedModel& served, const JudgementRequest& request, const RequestLimits& limits = {});
// Both steps (the fuzz target's way in).
feedback::Judgement judge_drawing(const ServedModel& served, std::string_view body, const RequestLimits& limits = {});
// POST /api/model/rollback: no body, {} (back to the live version's parent) or {"version": N}.
std::optional<int> rollback_target(std::string_view body);
// The 201 answer once the judgement is stored; learning: "queued", "not_needed" or "off".
nlohmann::json feedback_answer(const feedback::Judgement& stored, const std::string& learning);

// The Open Inference Protocol (KServe v2), model name "digits".
inline constexpr const char* kV2ModelName = "digits";
nlohmann::json v2_server_metadata();
nlohmann::json v2_model_metadata(const ServedModel& served);
// POST /v2/models/digits/infer: a UINT8 [N,28,28] or FP32 [N,784] tensor named "input" of raw 0–255
// pixels → an FP32 [N,10] tensor named "probabilities"; a model with "not a digit" (classes.hpp)
// adds a BOOL [N] tensor "not_a_digit" and an FP32 [N] "not_a_digit_probability". The request's
// "outputs", when given, picks some of them by name. N is at most kMaxV2Batch: the parse and the
// network's forward pass cost time in proportion to N (docs/security.md).
inline constexpr int kMaxV2Batch = 256;
nlohmann::json v2_infer(const ServedModel& served, std::string_view body);

// A data URL of an image ("data:image/png;base64,iVBOR…") → the image file's bytes; throws
// RequestError (400) when it is no base64 data URL of an image (digits::decode_base64 says which).
std::string decode_data_url(std::string_view url);

}  // namespace digits::server
