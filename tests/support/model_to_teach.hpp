// The model the learning tests teach: the built-in one, which is what a server learns from unless
// told otherwise. $DIGITS_TEST_MODEL names a model file to teach instead, so that a candidate can
// be checked before it is built in (issue 20's app model was, as /work/runs/app-s1.safetensors):
//   DIGITS_TEST_MODEL=/path/model.safetensors ctest --preset release -R 'Learning|FineTuneMnist'
#pragma once

#include <cstdlib>
#include <string>

#include "digits/builtin_model.hpp"
#include "digits/model_file.hpp"

namespace digits::testing {

// The file $DIGITS_TEST_MODEL names, or "" for the built-in model.
inline std::string model_to_teach_file() {
  const char* file = std::getenv("DIGITS_TEST_MODEL");
  return file && *file ? file : "";
}

inline const Model& model_to_teach() {
  static const Model model = model_to_teach_file().empty() ? parse_model(builtin_model_bytes(), "built-in model") : load_model(model_to_teach_file());
  return model;
}

// How the tests name it in what they print.
inline std::string model_to_teach_name() { return model_to_teach_file().empty() ? "built-in model" : model_to_teach_file(); }

}  // namespace digits::testing
