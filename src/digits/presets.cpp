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

    // About a minute on the 2-core machine: a wider network, Nesterov momentum with a cosine
    // schedule, and mild distortions of the training digits.
    Preset fast;
    fast.name = "fast";
    fast.description = "784-512-256-10 ReLU, He init, 0–1 pixels, Nesterov 0.9, lr 0.05 cosine, batch 64, 16 epochs, light augmentation";
    fast.sizes = {784, 512, 256, 10};
    fast.init = Init::he;
    fast.input_scale = 1.0f / 255.0f;
    fast.recipe.epochs = 16;
    fast.recipe.batch = 64;
    fast.recipe.optimizer = {.kind = OptimizerKind::nesterov, .learning_rate = 0.05f, .momentum = 0.9f};
    fast.recipe.schedule = {.kind = Schedule::Kind::cosine, .warmup_epochs = 0.5};
    fast.recipe.augment = parse_augment("shift=2,rotate=10,scale=0.1,shear=0.1,thickness=0.2");

    // Dense layers only, at most 15 minutes on the 2-core machine: two layers of 768 (Simard et al.
    // 2003 used 800) trained long on elastically distorted digits, the best validation epoch kept.
    Preset best;
    best.name = "best";
    best.description = "784-768-768-10 ReLU, He init, Nesterov 0.9, lr 0.05 cosine, batch 128, 60 epochs, elastic + affine augmentation, best of 5,000 held-out digits kept";
    best.sizes = {784, 768, 768, 10};
    best.init = Init::he;
    best.input_scale = 1.0f / 255.0f;
    best.recipe.epochs = 60;
    best.recipe.batch = 128;
    best.recipe.optimizer = {.kind = OptimizerKind::nesterov, .learning_rate = 0.05f, .momentum = 0.9f, .weight_decay = 1e-5f};
    best.recipe.schedule = {.kind = Schedule::Kind::cosine, .warmup_epochs = 1};
    best.recipe.augment = parse_augment("default");
    best.recipe.measure_train_accuracy = false;
    // The kept epoch is chosen on 5,000 training digits set aside, never on the test set; they are
    // the feedback guard's validation digits, so the app's guard is measured on unseen digits.
    best.recipe.validation = 5000;

    return std::vector<Preset>{seed, fast, best};
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
