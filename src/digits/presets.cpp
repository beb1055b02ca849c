#include "digits/presets.hpp"

#include "digits/error.hpp"

namespace digits {

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    Preset seed;
    seed.name = "seed";
    seed.description = "the NumPy ancestor: 784-50-20-10 ReLU, randn×0.01, raw pixels, SGD lr 0.005, batch 40, 100 epochs";
    seed.sizes = {784, 50, 20, 10};
    seed.init = Init::ancestor;
    seed.input_scale = 1.0f;
    seed.recipe.epochs = 100;
    seed.recipe.batch = 40;
    seed.recipe.optimizer = {.kind = OptimizerKind::sgd, .learning_rate = 0.005f};

    Preset fast;
    fast.name = "fast";
    fast.description = "784-256-128-10 ReLU, He init, 0–1 pixels, Nesterov momentum 0.9, lr 0.02, batch 32, 12 epochs";
    fast.sizes = {784, 256, 128, 10};
    fast.init = Init::he;
    fast.input_scale = 1.0f / 255.0f;
    fast.recipe.epochs = 12;
    fast.recipe.batch = 32;
    fast.recipe.optimizer = {.kind = OptimizerKind::nesterov, .learning_rate = 0.02f, .momentum = 0.9f};
    return std::vector<Preset>{seed, fast};
  }();
  return all;
}

const Preset& find_preset(const std::string& name) {
  std::string names;
  for (const Preset& preset : presets()) {
    if (preset.name == name) return preset;
    names += (names.empty() ? "" : ", ") + preset.name;
  }
  throw Error("unknown preset '" + name + "' (expected one of: " + names + ")");
}

}  // namespace digits
