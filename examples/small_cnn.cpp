// small_cnn: a convolutional network trained for one epoch, then one test digit followed through it,
// layer by layer, as pictures in the terminal.
//
//   conv5x5x8   8 filters of 5×5 slide over the 28×28 image: 8 maps of 24×24, ReLU
//   pool2       the largest of each 2×2 block: 8 maps of 12×12
//   conv3x3x16  16 filters of 3×3×8: 16 maps of 10×10, ReLU
//   pool2       16 maps of 5×5
//   flatten     400 numbers (inserted by itself before the dense layer)
//   fc10        the ten logits, then softmax
// docs/how-it-works.md §8 derives each layer's forward and backward.
//
// Run:  small_cnn [MNIST directory]      (default $DIGITS_DATA, then <source>/data/mnist)
// It checks what it prints and exits with status 1 if a claim fails.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>

#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/network.hpp"
#include "digits/trainer.hpp"

namespace {

namespace fs = std::filesystem;

// One epoch of this network reads about 97–98% of the test digits; the floor leaves room for other
// seeds and other CPUs' rounding.
constexpr double kAccuracyFloor = 0.95;

fs::path data_directory(int argc, char** argv) {
  if (argc > 1) return argv[1];
  if (const char* env = std::getenv("DIGITS_DATA"); env && *env) return env;
  return fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
}

// Channel c of a map (one NCHW row of `shape`), drawn with ten shades from ' ' (0 or less) to '@'
// (the largest value of that channel).
void draw_channel(const float* row, digits::Shape shape, int c) {
  const float* channel = row + static_cast<std::ptrdiff_t>(c) * shape.height * shape.width;
  const float largest = std::max(1e-6f, *std::max_element(channel, channel + shape.height * shape.width));
  const char* shades = " .:-=+*#%@";
  for (int y = 0; y < shape.height; ++y) {
    std::printf("      ");
    for (int x = 0; x < shape.width; ++x) {
      const float v = std::max(0.0f, channel[y * shape.width + x]) / largest;
      std::printf("%c", shades[std::min(9, static_cast<int>(v * 9.99f))]);
    }
    std::printf("\n");
  }
}

int run(int argc, char** argv) {
  const digits::TrainTestData data = digits::load_train_test(data_directory(argc, argv));

  digits::Network network(digits::parse_layer_specs("conv5x5x8,pool2,conv3x3x16,pool2,10"), {1, 28, 28}, digits::Activation::relu,
                          /*input_scale=*/1.0f / 255.0f);
  network.initialize(digits::Init::he, /*seed=*/1);
  digits::TrainingRecipe recipe;
  recipe.epochs = 1;
  recipe.batch = 64;
  recipe.optimizer = {.kind = digits::OptimizerKind::nesterov, .learning_rate = 0.05f, .momentum = 0.9f};
  recipe.measure_train_accuracy = false;

  std::printf("%s, %zu parameters; Nesterov lr %g, batch %d, %d epoch\n", network.architecture().c_str(),
              network.parameter_count(), static_cast<double>(recipe.optimizer.learning_rate), recipe.batch, recipe.epochs);
  digits::TrainingObserver observer;
  observer.on_epoch = [](const digits::EpochReport& r) {
    std::printf("  epoch %d: loss %.4f, test accuracy %.2f%%, %.1f s\n", r.epoch, r.loss, 100 * r.test_accuracy, r.seconds);
  };
  const std::vector<digits::EpochReport> reports = digits::fit(network, data.train, &data.test, recipe, observer);
  int failures = 0;
  auto claim = [&](bool holds, const std::string& what) {
    std::printf("  [%s] %s\n", holds ? "ok" : "FAILED", what.c_str());
    failures += !holds;
  };
  const double accuracy = reports.back().test_accuracy;
  claim(accuracy >= kAccuracyFloor, "after one epoch the test accuracy is " + std::to_string(100 * accuracy).substr(0, 5) + "%, at least 95%");

  // The first test digit, through every layer. Each layer's output is one row: a map's channels one
  // after another (NCHW), so channel c of a C×H×W map starts at column c·H·W.
  std::vector<std::size_t> first{0};
  digits::Matrix pixels;
  std::vector<std::uint8_t> label;
  digits::gather_batch(data.test, first, 1.0f, pixels, label);
  const std::vector<digits::Matrix> outputs = network.activations(pixels);
  std::printf("\nWhat each layer sees of the first test digit (a %d):\n", label[0]);
  draw_channel(pixels.data(), {1, 28, 28}, 0);
  bool every_map_lit = true;
  for (std::size_t i = 0; i < network.layers.size(); ++i) {
    const digits::Layer& layer = network.layers[i];
    const digits::Shape shape = digits::output_shape(layer);
    std::printf("  layer %zu, %s: %s\n", i + 1, digits::layer_spec_text(network.specs()[i]).c_str(), digits::shape_text(shape).c_str());
    if (std::holds_alternative<digits::FlattenLayer>(layer)) {
      std::printf("      the same %d numbers, read as one vector\n", shape.size());
    } else if (shape.height > 1) {  // a map: its first two channels
      for (int c = 0; c < std::min(2, shape.channels); ++c) {
        std::printf("    channel %d\n", c + 1);
        draw_channel(outputs[i].data(), shape, c);
      }
      every_map_lit = every_map_lit && outputs[i].maxCoeff() > 0;
    } else {
      int digit = 0;
      outputs[i].row(0).maxCoeff(&digit);
      std::printf("      probabilities:");
      for (Eigen::Index d = 0; d < outputs[i].cols(); ++d) std::printf(" %ld:%.3f", static_cast<long>(d), static_cast<double>(outputs[i](0, d)));
      std::printf("\n      it reads a %d\n", digit);
      claim(digit == label[0], "the first test digit is read right");
    }
  }
  claim(every_map_lit, "every conv and pool layer's maps light up somewhere for the digit");
  claim((outputs.back() - network.predict_proba(pixels)).cwiseAbs().maxCoeff() == 0,
        "the last layer's output is exactly predict_proba's probabilities");
  if (failures > 0) {
    std::printf("small_cnn: %d claims failed\n", failures);
    return 1;
  }
  std::printf("small_cnn: all 4 claims hold\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const digits::Error& e) {
    std::fprintf(stderr, "small_cnn: %s\n", e.what());
    return 1;
  }
}
