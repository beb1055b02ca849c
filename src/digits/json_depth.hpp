// Parsing JSON that comes from outside, with its nesting bounded while it is parsed.
//
// nlohmann-json's parser keeps its own stack, but much of what is done with a value afterwards
// recurses: dump(), copies, comparisons. A 400 KB request body of nested arrays overflowed the
// server's stack that way and took the process down (issue 11). Refusing the depth while parsing
// means nothing that deep is ever built, so no later code has to think about it.
#pragma once

#include <nlohmann/json.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace digits {

// The documents this program reads nest at most 6 deep (a v2 inference request holding a
// [N,28,28] tensor); 32 leaves room and is still far from any stack's limit.
inline constexpr int kMaxJsonDepth = 32;

// Thrown by parse_json_bounded; the caller words the error for its own reader.
class JsonTooDeep : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by parse_json_bounded when the document holds more values than allowed.
class JsonTooManyValues : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// nlohmann::json::parse(text), which throws nlohmann::json::parse_error on invalid JSON, except
// that an array or object nested more than max_depth deep (the outermost value is depth 1) stops
// the parse with JsonTooDeep, and a document of more than max_values values (every number,
// string, literal, array and object counts one) stops it with JsonTooManyValues. The second
// bounds the work: a 4 MiB body of "0," is 2 million values, 140 ms of parsing (the server's
// bench/request_costs.cpp), whatever its size in bytes.
inline nlohmann::json parse_json_bounded(std::string_view text, int max_depth = kMaxJsonDepth, std::size_t max_values = SIZE_MAX) {
  using json = nlohmann::json;
  std::size_t values = 0;
  // The callback's depth is the number of arrays and objects enclosing the one that starts.
  return json::parse(text, [max_depth, max_values, &values](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth >= max_depth)
      throw JsonTooDeep("nested more than " + std::to_string(max_depth) + " levels deep");
    if ((event == json::parse_event_t::value || event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && ++values > max_values)
      throw JsonTooManyValues("more than " + std::to_string(max_values) + " values");
    return true;
  });
}

}  // namespace digits
