// Models with "not a digit" (an eleventh output, digits/classes.hpp) for tests, made from the
// built-in model without any training, so that what they answer is known in advance: the tests
// check how an eleven-class answer is read, shown and stored, not how well a model learned it.
#pragma once

#include <algorithm>
#include <variant>

#include "digits/builtin_model.hpp"
#include "digits/classes.hpp"
#include "digits/model_file.hpp"

namespace digits::testing {

// The built-in network with its last layer cut or grown to `classes` outputs (10 or 11), the
// first ten keeping the built-in model's weights; a new eleventh output starts at zero.
inline Model builtin_with_classes(int classes) {
  Model model = parse_model(builtin_model_bytes(), "built-in model");
  std::vector<LayerSpec> specs = model.network.specs();
  specs.back().size = classes;
  Network resized(specs, model.network.input_shape(), model.network.hidden_activation(), model.network.input_scale);
  for (std::size_t i = 0; i + 1 < resized.layers.size(); ++i) resized.layers[i] = model.network.layers[i];
  const auto& old_last = std::get<DenseLayer>(model.network.layers.back());
  auto& last = std::get<DenseLayer>(resized.layers.back());
  const Eigen::Index kept = std::min<Eigen::Index>(old_last.W.cols(), classes);
  last.W.setZero();
  last.b.setZero();
  last.W.leftCols(kept) = old_last.W.leftCols(kept);
  last.b.head(kept) = old_last.b.head(kept);
  model.network = std::move(resized);
  return model;
}

// The built-in network with an eleventh output (replacing its own trained one) whose weights copy
// digit `like`'s and whose bias is that digit's plus `margin`: wherever `like` has logit z, "not a
// digit" has z + margin. With margin > 0 every drawing the built-in model reads as `like` becomes
// "not a digit" and every other keeps its digit. like = −1: the mean of the ten digits' weights
// and biases, so "not a digit" has the mean of their logits plus `margin`: with a negative margin it
// never wins, whatever the level of the model's logits (the largest is at least their mean). With like ≥ 0 the ten digits' logits are
// first made kSharper times larger (the same answers, surer), so that a margin of a few units
// decides only the drawings of `like`, however close a 1's logit and a 7's are in the built-in CNN.
inline constexpr float kSharper = 4.0f;
inline Model builtin_with_not_a_digit(int like, float margin) {
  Model model = builtin_with_classes(kDigitClasses + 1);
  auto& last = std::get<DenseLayer>(model.network.layers.back());
  const Eigen::Index out = kDigitClasses;
  if (like >= 0) {
    last.W.leftCols(out) *= kSharper;
    last.b.head(out) *= kSharper;
  }
  last.W.col(out) = like >= 0 ? Eigen::VectorXf(last.W.col(like)) : Eigen::VectorXf(last.W.leftCols(out).rowwise().mean());
  last.b(out) = (like >= 0 ? last.b(like) : last.b.head(out).mean()) + margin;
  model.network.fold_for_prediction();
  model.metadata["training.preset"] = "the built-in model with a made-up eleventh output, for tests";
  return model;
}

// The built-in network without its eleventh output: a model of the ten digits alone, reading each
// drawing's digits with the same ten logits, for the tests of what a ten-class model does.
inline Model builtin_with_ten_classes() {
  Model model = builtin_with_classes(kDigitClasses);
  model.network.fold_for_prediction();
  model.metadata["training.preset"] = "the built-in model without its eleventh output, for tests";
  return model;
}

}  // namespace digits::testing
