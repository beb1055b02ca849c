// What the page is told about a network and about one reading of a drawing, as JSON: the parts of
// GET /api/model and POST /api/predict that describe layers and activations (docs/api.md). One
// code for both places the page gets them from: the server (api.cpp) and, without a server, the
// same functions compiled to WebAssembly (src/web_wasm), so "Inside the network" draws the same
// answer from either. Needs the library and nlohmann-json only: no HTTP, no SQLite.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "digits/network.hpp"
#include "digits/preprocess.hpp"
#include "digits/segment.hpp"

namespace digits::answers {

// A prediction whose top probability is below this is shown as unsure rather than as an answer
// (with "not a digit", a digit is shown only when it is the most probable of the eleven classes at
// this probability or more).
// Chosen so that clear drawings (typically above 0.9) pass and scribbles and ambiguous shapes
// (a 4 that could be a 9 splits about evenly) do not; docs/app.md states the rule.
inline constexpr double kUnsureBelow = 0.7;

// Bounds on what the page's "Inside the network" panel is sent. A conv or pooling layer's maps go
// one byte a value, at most kMaxMapBytes of them per answer (the cnn preset's four map layers
// hold 28,160); a layer past the budget is sent with its shape and "maps": null. GET /api/model
// sends at most kMaxKernelsShown of the first convolution's kernels.
inline constexpr std::size_t kMaxMapBytes = 65536;
inline constexpr int kMaxKernelsShown = 64;

// Every layer for clients (GET /api/model, the v2 metadata): its name, kind, how the command line
// writes it, the shape it outputs ([C, H, W] for a map, [n] for a vector), its function and how
// many weights it has.
nlohmann::json describe_layers(const Network& network);

// The first layer's kernels when it is a convolution, for the page's pictures; null otherwise.
nlohmann::json first_layer_kernels(const Network& network);

// What every answer about one image says, from the network's probabilities for it (10, or 11 with
// "not a digit", digits/classes.hpp): {"digit": 7 or null, "probability", "unsure", "probabilities"
// (the ten digits'), "not_a_digit", "not_a_digit_probability" (null for a model without it)}.
// "digit" is null when "not a digit" is the most probable of the eleven classes; "probability" is
// then that of "not a digit", else the digit's; "unsure" is probability < kUnsureBelow. With eleven
// classes the ten probabilities are the eleven-way softmax's: they add up to
// 1 − not_a_digit_probability. docs/api.md shows it.
nlohmann::json answer_fields(std::span<const float> probabilities);

// One drawing read by the network, from its preprocessed input: answer_fields, the 28×28 input
// the network saw, inverted, and every layer's output
// (activations: a dense layer's values as numbers, a conv or pooling layer's maps as base64
// bytes; a conv or dense layer followed by batch norm is one entry holding the batch norm's output,
// named in "batch_norm"). POST /api/predict's answer without its time. Without
// `with_activations` the answer has no "activations" and the probabilities come from
// predict_proba (batch norm folded, as `digits predict` reads), which costs a fraction of the
// whole: POST /api/predict with "activations": false.
nlohmann::json reading(const Network& network, const Preprocessed& input, bool with_activations = true);

// `answer` as JSON text: the same bytes as answer.dump(-1, ' ', false, error_handler_t::replace)
// (compact, keys in order, invalid UTF-8 replaced), written faster where answers are long: a
// string of plain ASCII (the maps' base64, 37 KB for the built-in model) is copied as it is,
// where nlohmann's serializer decodes every character as UTF-8 (12% of the server's time for a
// POST /api/predict answer). Every other value is nlohmann's own dump.
std::string text(const nlohmann::json& answer);

// A number read by read_number (digits/segment.hpp), as POST /api/read and `digits read --json`
// give it: {"text": "2026", "digits": [{"digit", "probability", "unsure", "probabilities" (10),
// "not_a_digit_probability" (null for a model without it), "box": [x, y, w, h]}, …] left to
// right, "not_digits": [{"box": [x, y, w, h]}, …] (dashes, dots, and parts a model with "not a
// digit" read as such), "inverted"}.
// With `with_ink` (POST /api/read and the page without a server, not the command line), each digit
// also carries its own ink, "ink": {"x", "y", "width", "height", "pixels": base64 of one byte a
// pixel, row by row}: the page makes a PNG of it and sends it to /api/predict (to look inside the
// network at that digit) or /api/feedback (to judge it), which read exactly what read_number read.
nlohmann::json number_answer(const NumberReading& reading, bool with_ink = false);

}  // namespace digits::answers
