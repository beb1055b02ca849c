// walkthrough: the NumPy ancestor's notebook, step by step, with the digits library.
//
//   1. load MNIST                     4. train it well: mini-batches of 40
//   2. create the 784-50-20-10 net    5. save it, load it back
//   3. train it badly: one batch      6. the loaded model predicts exactly the same
//
// Run:  walkthrough [MNIST directory] [model file to write]
// The directory defaults to $DIGITS_DATA, then <source>/data/mnist; the model file to
// walkthrough.safetensors in the current directory. The math behind every step is in
// docs/how-it-works.md, which quotes this program's output.
//
// Every sentence this program prints about the network is also checked: a claim that fails
// makes it exit with status 1, so the ctest that runs it fails too.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/model_file.hpp"
#include "digits/network.hpp"
#include "digits/presets.hpp"
#include "digits/trainer.hpp"

namespace {

namespace fs = std::filesystem;

// The thresholds the claims are judged by. Measured over seeds 1–6: after the bad phase the test
// accuracy is 10.7–17.0% (chance is 10%), after the good phase 94.8–96.1%. 50% sits far from both.
constexpr int kBadEpochs = 5;          // full-batch epochs: one gradient step each
constexpr int kGoodEpochs = 2;         // mini-batch epochs: 1,500 steps each
constexpr double kBadCeiling = 0.50;   // after the bad phase, test accuracy stays below this
constexpr double kGoodFloor = 0.93;    // after the good phase, it is above this

int claims = 0, failures = 0;

// Prints a claim and whether it holds.
void claim(bool holds, const std::string& text) {
  ++claims;
  if (!holds) ++failures;
  std::printf("  [%s] %s\n", holds ? "ok" : "FAILED", text.c_str());
}

std::string percent(double fraction) {
  char text[16];
  std::snprintf(text, sizeof text, "%.2f%%", 100 * fraction);
  return text;
}

fs::path data_directory(int argc, char** argv) {
  if (argc > 1) return argv[1];
  if (const char* env = std::getenv("DIGITS_DATA"); env && *env) return env;
  return fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
}

double seconds(const std::vector<digits::EpochReport>& reports) {
  double total = 0;
  for (const auto& report : reports) total += report.seconds;
  return total;
}

void print_epoch(const digits::EpochReport& report) {
  std::printf("    epoch %d: loss %.4f, test accuracy %s, %.2f s\n", report.epoch, report.loss,
              percent(report.test_accuracy).c_str(), report.seconds);
}

int run(int argc, char** argv) {
  digits::TrainingObserver observer;  // fit() calls it after every epoch
  observer.on_epoch = print_epoch;
  const auto start = std::chrono::steady_clock::now();

  // ---- 1. Load MNIST -------------------------------------------------------------------------
  // 60,000 training and 10,000 test images of 28×28 = 784 pixels, 0 (background) to 255 (ink),
  // kept as bytes; each batch becomes float32 rows of X (batch × 784) only when it is used.
  const fs::path dir = data_directory(argc, argv);
  const digits::TrainTestData data = digits::load_train_test(dir);
  std::printf("1. Loaded MNIST from %s: %zu training and %zu test images of %d×%d pixels.\n",
              dir.string().c_str(), data.train.size(), data.test.size(), data.train.rows, data.train.cols);

  // ---- 2. Create the network -----------------------------------------------------------------
  // The ancestor's shape and start: 784 → 50 ReLU → 20 ReLU → 10 softmax, weights randn × 0.01,
  // biases 0, raw 0–255 pixels as inputs (input_scale 1). The "seed" preset records all of it.
  const digits::Preset& seed = digits::find_preset("seed");
  digits::Network network(seed.sizes, seed.hidden, seed.input_scale);
  network.initialize(seed.init, /*seed=*/1);
  std::printf("2. Created a 784-50-20-10 network: %zu parameters (784·50+50 + 50·20+20 + 20·10+10).\n",
              network.parameter_count());
  const double untrained = digits::evaluate(network, data.test).accuracy();
  std::printf("   Untrained, it guesses: test accuracy %s.\n", percent(untrained).c_str());

  // ---- 3. Train it badly: the whole training set as one batch ---------------------------------
  // The ancestor's recipe (plain gradient descent, learning rate 0.005) with batch = 60,000: every
  // epoch computes the exact gradient of the mean loss over all images — and then takes one step.
  digits::TrainingRecipe bad = seed.recipe;
  bad.batch = static_cast<int>(data.train.size());
  bad.epochs = kBadEpochs;
  bad.measure_train_accuracy = false;
  std::printf("3. Training badly: %d epochs of one batch of %d images (%d gradient steps in all).\n", bad.epochs,
              bad.batch, bad.epochs);
  const auto bad_reports = digits::fit(network, data.train, &data.test, bad, observer);
  const double bad_accuracy = bad_reports.back().test_accuracy;
  claim(bad_accuracy < kBadCeiling, "after " + std::to_string(bad.epochs) + " full-batch epochs (" +
                                        std::to_string(static_cast<int>(seconds(bad_reports) * 1000)) +
                                        " ms) test accuracy is " + percent(bad_accuracy) + ", below " +
                                        percent(kBadCeiling));

  // ---- 4. Train it well: mini-batches of 40 ---------------------------------------------------
  // The same learning rate and the same weights, carried on; only the batch changes. Each epoch now
  // takes 60,000 / 40 = 1,500 steps, each on a noisier gradient estimate, and that is what moves it.
  // (digits::improve is the ancestor's improve_train: the same call with extra images appended to
  // the training set. With none to add, fit is the call.)
  digits::TrainingRecipe good = seed.recipe;
  good.epochs = kGoodEpochs;
  good.measure_train_accuracy = false;
  const std::size_t steps = (data.train.size() + good.batch - 1) / good.batch;
  std::printf("4. Training well: %d epochs of batches of %d (%zu steps per epoch).\n", good.epochs, good.batch, steps);
  const auto good_reports = digits::fit(network, data.train, &data.test, good, observer);
  const double good_accuracy = good_reports.back().test_accuracy;
  claim(good_accuracy > kGoodFloor, "after " + std::to_string(good.epochs) + " epochs of batch " +
                                        std::to_string(good.batch) + " (" +
                                        std::to_string(static_cast<int>(seconds(good_reports) * 1000)) +
                                        " ms) test accuracy is " + percent(good_accuracy) + ", above " +
                                        percent(kGoodFloor));
  const digits::Evaluation evaluation = digits::evaluate(network, data.test);
  claim(evaluation.accuracy() == good_accuracy,
        "evaluate() agrees: " + std::to_string(evaluation.correct) + " of " + std::to_string(evaluation.total) +
            " test digits right");

  // ---- 5. Save and load -----------------------------------------------------------------------
  // The model file is safetensors: the weights plus, in its metadata, everything needed to rebuild
  // the network (sizes, activations, input scale). docs/model-format.md describes it.
  const fs::path model_path = argc > 2 ? fs::path(argv[2]) : fs::path("walkthrough.safetensors");
  digits::save_model(model_path, network,
                     {{"training.preset", "seed"},
                      {"training.note", "examples/walkthrough: " + std::to_string(kBadEpochs) +
                                            " full-batch epochs, then " + std::to_string(kGoodEpochs) +
                                            " epochs of batch 40"},
                      {"accuracy.test", percent(good_accuracy)}});
  const digits::Model loaded = digits::load_model(model_path);
  std::printf("5. Saved and loaded %s (%ju bytes).\n", model_path.string().c_str(),
              static_cast<std::uintmax_t>(fs::file_size(model_path)));

  // ---- 6. The loaded model predicts exactly the same ------------------------------------------
  // All 10,000 test images as one (10000 × 784) matrix of raw pixels; predict_proba applies each
  // model's own input scale. The round trip stores float32 bits as they are, so the probabilities
  // must be identical, not merely close.
  std::vector<std::size_t> all(data.test.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  digits::Matrix X;
  std::vector<std::uint8_t> labels;
  digits::gather_batch(data.test, all, 1.0f, X, labels);
  const std::vector<int> before = network.predict(X), after = loaded.network.predict(X);
  std::size_t same = 0;
  for (std::size_t i = 0; i < before.size(); ++i) same += before[i] == after[i];
  std::printf("6. Predicting the test set with both models:\n");
  claim(same == before.size(),
        "the loaded model agrees on " + std::to_string(same) + " of " + std::to_string(before.size()) + " predictions");
  claim(network.predict_proba(X) == loaded.network.predict_proba(X),
        "and its probabilities are bit for bit the same");

  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("Total time %.1f s.\n", total);
  if (failures > 0) {
    std::printf("walkthrough: %d of %d claims FAILED\n", failures, claims);
    return 1;
  }
  std::printf("walkthrough: all %d claims hold\n", claims);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const digits::Error& error) {
    std::fprintf(stderr, "walkthrough: %s\n", error.what());
    return 1;
  }
}
