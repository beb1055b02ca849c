// Models with "not a digit" (an eleventh output, digits/classes.hpp) for tests, made from the
// built-in model without any training, so that what they answer is known in advance: the tests
// check how an eleven-class answer is read, shown and stored, not how well a model learned it.
#pragma once

#include <variant>

#include "digits/builtin_model.hpp"
#include "digits/model_file.hpp"

namespace digits::testing {

// The built-in network with an eleventh output whose weights copy digit `like`'s and whose bias is
// that digit's plus `margin`: wherever `like` has logit z, "not a digit" has z + margin. With
// margin > 0 every drawing the built-in model reads as `like` becomes "not a digit" and every other
// keeps its digit, with the same ten logits. like = −1: weights 0 and bias `margin`, one logit
// for every drawing (a large negative margin: the built-in model's answers, "not a digit" never).
inline Model builtin_with_not_a_digit(int like, float margin) {
  Model model = parse_model(builtin_model_bytes(), "built-in model");
  auto& last = std::get<DenseLayer>(model.network.layers.back());
  const Eigen::Index in = last.W.rows(), out = last.W.cols();
  last.W.conservativeResize(in, out + 1);
  last.b.conservativeResize(out + 1);
  last.W.col(out) = like >= 0 ? WeightMatrix(last.W.col(like)) : WeightMatrix::Zero(in, 1);
  last.b(out) = (like >= 0 ? last.b(like) : 0.0f) + margin;
  model.metadata["training.preset"] = "the built-in model with a made-up eleventh output, for tests";
  return model;
}

}  // namespace digits::testing
