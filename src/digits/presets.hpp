// Named training recipes: the network's shape and how to train it.
#pragma once

#include <string>
#include <vector>

#include "digits/network.hpp"
#include "digits/trainer.hpp"

namespace digits {

struct Preset {
  std::string name;
  std::string description;
  std::vector<int> sizes;
  Activation hidden = Activation::relu;
  Init init = Init::he;
  float input_scale = 1.0f / 255.0f;
  TrainingRecipe recipe;
};

// "seed": the NumPy ancestor exactly — 784-50-20-10 ReLU, randn × 0.01, raw 0–255 pixels, SGD with
//         learning rate 0.005, batch 40, 100 epochs, reshuffled every epoch.
// "fast": the best accuracy in about a minute on two cores.
// "best": the best dense network in at most 15 minutes on two cores; the built-in model is made
//         with it (models/README.md).
const std::vector<Preset>& presets();
const Preset& find_preset(const std::string& name);  // throws Error listing the names

}  // namespace digits
