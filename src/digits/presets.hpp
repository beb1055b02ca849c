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
  std::vector<int> sizes;   // a dense network: {784, 50, 20, 10}
  std::string layers;       // or, when not empty, layers of any kind over 1×28×28 images (layer.hpp)
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
// "cnn":  a convolutional network for the best single model in at most 15 minutes on two cores.
// "cnn-fast": a small convolutional network for ≥ 99.3% in at most 2 minutes on two cores.
// "app": the built-in model's: "cnn" with batch norm and an eleventh output, "not a digit".
// "cnn-best": "cnn" with batch norm, label smoothing, a moving average of the weights and light
//         distortions: the best mean on MNIST test measured (docs/frontier.md).
const std::vector<Preset>& presets();
const Preset& find_preset(const std::string& name);  // throws Error listing the names

// The preset's network, weights at zero: dense from `sizes`, or `layers` over 1×28×28 images.
Network build_network(const Preset& preset);

}  // namespace digits
