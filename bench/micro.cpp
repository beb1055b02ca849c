// Google Benchmark micro-benchmarks of the hot paths: one training step of the seed recipe, one
// prediction of a single 28×28 image, and the evaluation of the 10,000 MNIST test digits.
// Run: build/release/bench/bench_micro   (MNIST from $DIGITS_DATA or data/mnist; random data otherwise)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "digits/builtin_model.hpp"
#include "digits/error.hpp"
#include "digits/model_file.hpp"
#include "digits/presets.hpp"
#include "digits/random.hpp"
#include "digits/trainer.hpp"

using namespace digits;

namespace {

// The MNIST test set, or 10,000 random images of the same shape when MNIST is absent: the time a
// dense network takes does not depend on the pixels.
const Dataset& test_images() {
  static const Dataset data = [] {
    std::filesystem::path dir = std::filesystem::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
    if (const char* env = std::getenv("DIGITS_DATA"); env && *env) dir = env;
    try {
      return load_train_test(dir).test;
    } catch (const Error&) {
      Dataset random;
      random.name = "random";
      Rng rng(1);
      for (int i = 0; i < 10000 * 784; ++i) random.pixels.push_back(static_cast<std::uint8_t>(rng.below(256)));
      for (int i = 0; i < 10000; ++i) random.labels.push_back(static_cast<std::uint8_t>(rng.below(10)));
      return random;
    }
  }();
  return data;
}

Network seed_network() {
  const Preset& seed = find_preset("seed");
  Network network(seed.sizes, seed.hidden, seed.input_scale);
  network.initialize(seed.init, 1);
  return network;
}

// One step of the seed recipe: gather a batch of 40 uint8 images as floats, forward, loss,
// backward, SGD update. 9.84 GFLOP per 60,000-sample epoch, i.e. 6.56 MFLOP per step.
void BM_TrainStepSeed(benchmark::State& state) {
  const Dataset& data = test_images();
  Network network = seed_network();
  Optimizer optimizer(find_preset("seed").recipe.optimizer);
  const int batch = static_cast<int>(state.range(0));
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  Matrix X;
  std::vector<std::uint8_t> labels;
  std::size_t first = 0;
  for (auto _ : state) {
    if (first + static_cast<std::size_t>(batch) > order.size()) first = 0;
    gather_batch(data, std::span(order).subspan(first, static_cast<std::size_t>(batch)), network.input_scale, X, labels);
    benchmark::DoNotOptimize(network.train_step(X, labels, optimizer));
    first += static_cast<std::size_t>(batch);
  }
  const double flops_per_sample = 9.84e9 / 60000;
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * batch, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * batch * flops_per_sample / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TrainStepSeed)->Arg(40)->Arg(128);

// One 28×28 image through the built-in model, already preprocessed.
void BM_PredictOneBuiltin(benchmark::State& state) {
  const Model model = parse_model(builtin_model_bytes(), "built-in model");
  const auto image = test_images().image(0);
  Matrix pixels(1, 784);
  for (int i = 0; i < 784; ++i) pixels(0, i) = image[static_cast<std::size_t>(i)];
  for (auto _ : state) benchmark::DoNotOptimize(model.network.predict_proba(pixels));
}
BENCHMARK(BM_PredictOneBuiltin);

void BM_PredictOneSeed(benchmark::State& state) {
  const Network network = seed_network();
  const auto image = test_images().image(0);
  Matrix pixels(1, 784);
  for (int i = 0; i < 784; ++i) pixels(0, i) = image[static_cast<std::size_t>(i)];
  for (auto _ : state) benchmark::DoNotOptimize(network.predict_proba(pixels));
}
BENCHMARK(BM_PredictOneSeed);

// All 10,000 test digits, counted into a confusion matrix.
void BM_EvaluateTestSetSeed(benchmark::State& state) {
  const Network network = seed_network();
  for (auto _ : state) benchmark::DoNotOptimize(evaluate(network, test_images()).correct);
}
BENCHMARK(BM_EvaluateTestSetSeed)->Unit(benchmark::kMillisecond);

void BM_EvaluateTestSetBuiltin(benchmark::State& state) {
  const Model model = parse_model(builtin_model_bytes(), "built-in model");
  for (auto _ : state) benchmark::DoNotOptimize(evaluate(model.network, test_images()).correct);
}
BENCHMARK(BM_EvaluateTestSetBuiltin)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
