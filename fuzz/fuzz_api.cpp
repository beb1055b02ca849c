// The JSON bodies of POST /api/predict, /api/feedback, /v2/models/digits/infer and
// /api/model/rollback, through the functions the server calls for them (src/server/api.hpp),
// each body given to all four. A small in-process model keeps an execution short.
//
// The server answers RequestError with its status and digits::Error with 400; anything else would be
// a 500 (or worse), so it escapes here and libFuzzer reports it. Run with a -max_len large enough to
// nest deeply (fuzz/api.options).
#include <cmath>

#include "digits/error.hpp"
#include "fuzz_support.hpp"
#include "server/api.hpp"

namespace {

using namespace digits;

const server::ServedModel& served() {
  static const server::ServedModel model{Model{fuzzing::small_network(), {}, {}}, "fuzz model", 0, -1};
  return model;
}

// Probabilities the server hands out are numbers in 0–1 (JSON has no NaN: dump() writes null).
void check_probabilities(const nlohmann::json& values) {
  for (const auto& p : values)
    if (!p.is_number() || !(p.get<double>() >= 0 && p.get<double>() <= 1)) __builtin_trap();
}

template <typename Call>
void answer(Call call) {
  try {
    call();
  } catch (const server::RequestError& e) {
    if (e.status < 400 || e.status > 499) __builtin_trap();  // a client's mistake is a 4xx
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body = fuzzing::as_text(data, size);
  answer([&] {
    const nlohmann::json answer = server::predict_drawing(served(), body);
    const int digit = answer.at("digit");
    if (digit < 0 || digit > 9 || answer.at("input").at("pixels").size() != 784) __builtin_trap();
    check_probabilities(answer.at("probabilities"));
  });
  answer([&] {
    const feedback::Judgement judgement = server::judge_drawing(served(), body);
    if (judgement.input.size() != 784 || judgement.label < 0 || judgement.label > 9 || judgement.drawing_png.empty()) __builtin_trap();
  });
  answer([&] {
    const nlohmann::json answer = server::v2_infer(served(), body);
    const auto& output = answer.at("outputs").at(0);
    if (output.at("data").size() != output.at("shape").at(0).get<std::size_t>() * 10) __builtin_trap();
    check_probabilities(output.at("data"));
  });
  answer([&] {
    const auto version = server::rollback_target(body);
    if (version && *version < 0) __builtin_trap();
  });
  return 0;
}
