// Google Benchmark micro-benchmarks of the hot paths: one training step of the seed recipe, one
// prediction of a single 28×28 image, the evaluation of the 10,000 MNIST test digits, and one
// guarded fine-tune on corrections (fine_tune.hpp), the decoding of the page's 280×280 PNG, and the
// cost of hostile images: refused at once, or the most work the limits allow.
// Run: build/release/bench/bench_micro   (MNIST from $DIGITS_DATA or data/mnist; random data otherwise)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <span>

#include "digits/augment.hpp"
#include "digits/builtin_model.hpp"
#include "digits/error.hpp"
#include "digits/fine_tune.hpp"
#include "digits/gemm.hpp"
#include "digits/kernels.hpp"
#include "digits/image.hpp"
#include "image_files.hpp"  // tests/unit: PNG written by hand, JPEG through libjpeg
#include "digits/model_file.hpp"
#include "digits/presets.hpp"
#include "digits/random.hpp"
#include "digits/segment.hpp"
#include "digits/trainer.hpp"
#include "answers/answers.hpp"

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
// Second argument: 1 sums the first layer over non-zero pixels (kernels.hpp), 0 forces the dense product.
void BM_TrainStepSeed(benchmark::State& state) {
  const Dataset& data = test_images();
  Network network = seed_network();
  std::get<DenseLayer>(network.layers[0]).skip_zero_inputs = state.range(1) != 0;
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
BENCHMARK(BM_TrainStepSeed)->ArgsProduct({{40, 128}, {0, 1}});

// The seed network's first layer forward alone, Z = X·W + b over batches of 40 test digits:
// first argument 0 dense_forward, 1 dense_forward_sparse_input; second argument 0 raw pixels as
// the seed recipe feeds them, 1 the `fast` preset's distortions (0–1 pixels, fewer exact zeros).
// The counter "sparse" is the share of batches the sparse sums ran on (the rest fell back).
void BM_FirstLayerForwardSeed(benchmark::State& state) {
  const Dataset& data = test_images();
  const Network network = seed_network();
  const DenseLayer& layer = std::get<DenseLayer>(network.layers[0]);
  const Preset& fast = find_preset("fast");
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng(2).shuffle(order);
  std::vector<Matrix> batches(50);
  std::vector<std::uint8_t> labels;
  for (std::size_t n = 0; n < batches.size(); ++n) {
    const auto indices = std::span(order).subspan(n * 40, 40);
    if (state.range(1) == 0) gather_batch(data, indices, 1.0f, batches[n], labels);
    else augment_batch(data, indices, fast.recipe.augment, 7, fast.input_scale, batches[n], labels, n * 40);
  }
  Matrix Z;
  SparseInputWorkspace workspace;
  std::size_t n = 0;
  long sparse = 0;
  for (auto _ : state) {
    const Matrix& X = batches[n++ % batches.size()];
    if (state.range(0) == 0) dense_forward(X, layer.W, layer.b, Z);
    else sparse += dense_forward_sparse_input(X, layer.W, layer.b, Z, workspace);
    benchmark::DoNotOptimize(Z.data());
  }
  state.counters["sparse"] = static_cast<double>(sparse) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_FirstLayerForwardSeed)->ArgsProduct({{0, 1}, {0, 1}});

// Z = X·W + b for the dense shapes of the presets, on random numbers: (batch, in, out) =
// seed's first layer, fast's two hidden layers, best's two hidden layers. dense_forward picks the
// hand-written kernel up to kFewNeurons neurons and Eigen's product above (kernels.cpp).
void BM_DenseForward(benchmark::State& state) {
  const long batch = state.range(0), in = state.range(1), out = state.range(2);
  Rng rng(3);
  Matrix X(batch, in);
  WeightMatrix W(in, out);
  for (float& x : std::span(X.data(), static_cast<std::size_t>(X.size()))) x = rng.normal();
  for (float& w : std::span(W.data(), static_cast<std::size_t>(W.size()))) w = rng.normal();
  const RowVector b = RowVector::Zero(out);
  Matrix Z;
  for (auto _ : state) {
    dense_forward(X, W, b, Z);
    benchmark::DoNotOptimize(Z.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * double(batch * in * out) / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DenseForward)->Args({40, 784, 50})->Args({64, 784, 512})->Args({64, 512, 256})->Args({128, 784, 768})->Args({128, 768, 768});

// Our matrix product (gemm.hpp) beside Eigen's, on the same stored operands, for the products of
// the cnn and app presets' layers at batch 128 (m × n × k; A and B row- or column-major as the
// layer holds them). Args: m, n, k, A column-major, B column-major, 0 ours / 1 Eigen. The conv
// layers multiply one sample at a time (n = H′·W′ positions, or k for dW); Eigen multiplied
// groups of about 512 positions, so those shapes are measured too.
void BM_Gemm(benchmark::State& state) {
  const long m = state.range(0), n = state.range(1), k = state.range(2);
  const bool a_columns = state.range(3) != 0, b_columns = state.range(4) != 0, eigen = state.range(5) != 0;
  Rng rng(4);
  std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n)), c(static_cast<std::size_t>(m * n));
  for (float& x : a) x = rng.normal();
  for (float& x : b) x = rng.normal();
  const GemmOperand A = a_columns ? GemmOperand::column_major(a.data(), m) : GemmOperand::row_major(a.data(), k);
  const GemmOperand B = b_columns ? GemmOperand::column_major(b.data(), k) : GemmOperand::row_major(b.data(), n);
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  Eigen::Map<RowMajor> C_map(c.data(), m, n);
  GemmWorkspace workspace;
  auto eigen_product = [&] {
    if (!a_columns && !b_columns) C_map.noalias() = Eigen::Map<const RowMajor>(a.data(), m, k) * Eigen::Map<const RowMajor>(b.data(), k, n);
    if (!a_columns && b_columns) C_map.noalias() = Eigen::Map<const RowMajor>(a.data(), m, k) * Eigen::Map<const ColMajor>(b.data(), k, n);
    if (a_columns && !b_columns) C_map.noalias() = Eigen::Map<const ColMajor>(a.data(), m, k) * Eigen::Map<const RowMajor>(b.data(), k, n);
    if (a_columns && b_columns) C_map.noalias() = Eigen::Map<const ColMajor>(a.data(), m, k) * Eigen::Map<const ColMajor>(b.data(), k, n);
  };
  for (auto _ : state) {
    if (eigen) eigen_product();
    else gemm(m, n, k, A, B, c.data(), n, {}, workspace);
    benchmark::DoNotOptimize(c.data());
  }
  state.SetLabel(std::string(eigen ? "Eigen" : "ours") + " " + (a_columns ? "Aᵀ" : "A") + "·" + (b_columns ? "Bᵀ" : "B"));
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * double(m * n * k) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Gemm)
    // a large square product: our kernel's own ceiling, beside OpenBLAS's (bench/sgemm_ceiling.py)
    ->ArgsProduct({{1024}, {1024}, {1024}, {0}, {0}, {0, 1}})
    // conv5x5x32 on 1×28×28: Z = Wᵀ·X̂ per sample (W column-major), dWᵀ = dZ·X̂ᵀ per sample
    ->ArgsProduct({{32}, {576}, {25}, {1}, {0}, {0, 1}})
    ->ArgsProduct({{32}, {25}, {576}, {0}, {1}, {0, 1}})
    // ... dWᵀ for a share of 32 samples in one product (what the layer does now): k = 32·576
    ->ArgsProduct({{32}, {25}, {18432}, {0}, {1}, {0, 1}})
    // conv5x5x64 on 32×12×12: Z = Wᵀ·X̂, per sample (n = 64) and per group of 8 (n = 512) ...
    ->ArgsProduct({{64}, {64, 512}, {800}, {1}, {0}, {0, 1}})
    // ... dWᵀ = dZ·X̂ᵀ (k = 64 or 512), dX̂ = W·dZ (W column-major)
    ->ArgsProduct({{64}, {800}, {64, 512}, {0}, {1}, {0, 1}})
    ->ArgsProduct({{800}, {64, 512}, {64}, {1}, {0}, {0, 1}})
    // ... dWᵀ for a share of 32 samples in one product: k = 32·64
    ->ArgsProduct({{64}, {800}, {2048}, {0}, {1}, {0, 1}})
    // LeNet-5's convolutions (bench/compare --cnn): conv5x5x6same on 1×28×28, conv5x5x16 on 6×14×14
    ->ArgsProduct({{6}, {784}, {25}, {1}, {0}, {0, 1}})
    ->ArgsProduct({{16}, {100}, {150}, {1}, {0}, {0, 1}})
    // fc256 on 1,024: Z = X·W (W column-major), dWᵀ = dZᵀ·X, dX = dZ·Wᵀ
    ->ArgsProduct({{128}, {256}, {1024}, {0}, {1}, {0, 1}})
    ->ArgsProduct({{256}, {1024}, {128}, {1}, {0}, {0, 1}})
    ->ArgsProduct({{128}, {1024}, {256}, {0}, {0}, {0, 1}})
    // fc10 / fc11 on 256: Z = X·W, dWᵀ = dZᵀ·X, dX = dZ·Wᵀ
    ->ArgsProduct({{128}, {11}, {256}, {0}, {1}, {0, 1}})
    ->ArgsProduct({{11}, {256}, {128}, {1}, {0}, {0, 1}})
    ->ArgsProduct({{128}, {256}, {11}, {0}, {0}, {0, 1}});

// Multiply-adds of one image's forward pass: C′·H′·W′·C·k² per conv layer, in·out per dense one.
double forward_multiply_adds(const Network& network) {
  double total = 0;
  for (const Layer& layer : network.layers) {
    if (const auto* conv = std::get_if<Conv2dLayer>(&layer)) total += double(conv->out()) * double(conv->W.rows());
    if (const auto* dense = std::get_if<DenseLayer>(&layer)) total += double(dense->in()) * double(dense->out());
  }
  return total;
}

// The test set's images in order, `batch` at a time, starting over when they run out.
class TestBatches {
 public:
  explicit TestBatches(std::size_t batch) : batch_(batch), order_(test_images().size()) {
    std::iota(order_.begin(), order_.end(), std::size_t{0});
  }
  std::span<const std::size_t> next() {
    first_ = first_ + 2 * batch_ > order_.size() ? 0 : first_ + batch_;
    return std::span<const std::size_t>(order_).subspan(first_, batch_);
  }
  std::size_t first() const { return first_; }  // the position of next()'s first image

 private:
  std::size_t batch_, first_ = 0;
  std::vector<std::size_t> order_;
};

// One step of a conv preset at its own batch size (0: cnn-fast, 1: cnn, 2: app, the cnn network
// with batch norm) on 1 or 2 threads (the second argument): gather, forward, loss,
// backward, update. GFLOP/s counts 2 FLOPs per multiply-add, three products per layer (forward,
// dW, dX), the first layer's dX included though it is skipped: the usual 6 × forward estimate.
void BM_TrainStepConvPreset(benchmark::State& state) {
  const Preset& preset = find_preset(state.range(0) == 0 ? "cnn-fast" : state.range(0) == 1 ? "cnn" : "app");
  const Dataset& data = test_images();
  Network network = build_network(preset);
  network.initialize(preset.init, 1);
  network.set_threads(static_cast<int>(state.range(1)));
  Optimizer optimizer(preset.recipe.optimizer);
  const std::size_t batch = static_cast<std::size_t>(preset.recipe.batch);
  TestBatches batches(batch);
  Matrix X;
  std::vector<std::uint8_t> labels;
  for (auto _ : state) {
    gather_batch(data, batches.next(), network.input_scale, X, labels);
    benchmark::DoNotOptimize(network.train_step(X, labels, optimizer, preset.recipe.dropout, batches.first()));
  }
  const double samples = static_cast<double>(state.iterations() * batch);
  state.SetLabel(preset.name);
  state.counters["samples/s"] = benchmark::Counter(samples, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(samples * 6 * forward_multiply_adds(network) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TrainStepConvPreset)->ArgsProduct({{0, 1, 2}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

// Each layer of the app preset's network (the cnn preset's, batch norm after each convolution) on
// its own, forward then backward with dX, at batch 128, on 1 or 2 threads: what the second core
// gives each kind of layer. Args: the layer (0 conv5x5x32, 1 bn, 2 pool2, 3 conv5x5x64, 4 bn,
// 5 pool2, 6 flatten, 7 fc256, 8 fc11; 9 the optimizer's step over the whole network), threads.
void BM_LayerThreads(benchmark::State& state) {
  const Preset& preset = find_preset("app");
  Network network = build_network(preset);
  network.initialize(preset.init, 1);
  const auto index = static_cast<std::size_t>(state.range(0));
  WorkerPool pool(static_cast<int>(state.range(1)));
  Matrix pixels;
  std::vector<std::uint8_t> labels;
  TestBatches batches(128);
  gather_batch(test_images(), batches.next(), network.input_scale, pixels, labels);
  if (index >= network.layers.size()) {
    Optimizer optimizer(preset.recipe.optimizer);
    network.train_step(pixels, labels, optimizer);  // every dW and db set once
    for (auto _ : state) optimizer.step(network.layers, &pool);
    state.SetLabel("optimizer");
    return;
  }
  const std::vector<Matrix> outputs = network.activations(pixels);
  const Matrix X = index == 0 ? Matrix(pixels * network.input_scale) : outputs[index - 1];
  Rng rng(5);
  Matrix dA(X.rows(), layer_outputs(network.layers[index]));
  for (Eigen::Index i = 0; i < dA.size(); ++i) dA.data()[i] = 0.01f * rng.normal();
  Layer& layer = network.layers[index];
  for (auto _ : state) {
    benchmark::DoNotOptimize(forward(layer, X, &pool).data());
    benchmark::DoNotOptimize(backward(layer, dA, true, &pool).data());
  }
  state.SetLabel(layer_spec_text(network.specs()[index]));
}
BENCHMARK(BM_LayerThreads)->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2}})->Unit(benchmark::kMicrosecond)->UseRealTime();

// Where a training step's time goes: one layer of the cnn (first argument 0) or app (1) preset's
// network, at batch 128 on one thread, its forward alone (second argument 0) or its backward alone
// (1; with dX except for the first layer, as train_step). Args: preset, pass, layer index.
void BM_LayerPass(benchmark::State& state) {
  const Preset& preset = find_preset(state.range(0) == 0 ? "cnn" : "app");
  Network network = build_network(preset);
  network.initialize(preset.init, 1);
  const auto index = static_cast<std::size_t>(state.range(2));
  if (index >= network.layers.size()) return state.SkipWithError("no such layer");
  Matrix pixels;
  std::vector<std::uint8_t> labels;
  TestBatches batches(128);
  gather_batch(test_images(), batches.next(), network.input_scale, pixels, labels);
  const std::vector<Matrix> outputs = network.activations(pixels);
  const Matrix X = index == 0 ? Matrix(pixels * network.input_scale) : outputs[index - 1];
  Rng rng(5);
  Layer& layer = network.layers[index];
  Matrix dA(X.rows(), layer_outputs(layer));
  for (Eigen::Index i = 0; i < dA.size(); ++i) dA.data()[i] = 0.01f * rng.normal();
  forward(layer, X);
  for (auto _ : state) {
    if (state.range(1) == 0) benchmark::DoNotOptimize(forward(layer, X).data());
    else benchmark::DoNotOptimize(backward(layer, dA, index > 0).data());
  }
  state.SetLabel(preset.name + " " + layer_spec_text(network.specs()[index]) + (state.range(1) == 0 ? " forward" : " backward"));
}
BENCHMARK(BM_LayerPass)->ArgsProduct({{0, 1}, {0, 1}, {0, 1, 2, 3, 4, 5, 6, 7}})->Unit(benchmark::kMicrosecond);

// Distorting one batch of the cnn preset (its default augmentation, elastic included), on the one
// thread that prepares the next batch while the step trains: its time per image sets how much of
// the second core the training steps can have.
void BM_AugmentBatchCnnPreset(benchmark::State& state) {
  const Preset& preset = find_preset("cnn");
  const Dataset& data = test_images();
  const std::size_t batch = static_cast<std::size_t>(preset.recipe.batch);
  TestBatches batches(batch);
  Matrix X;
  std::vector<std::uint8_t> labels;
  for (auto _ : state) {
    augment_batch(data, batches.next(), preset.recipe.augment, 7, preset.input_scale, X, labels, batches.first());
    benchmark::DoNotOptimize(X.data());
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AugmentBatchCnnPreset)->Unit(benchmark::kMillisecond);

// One 28×28 image through the built-in model, already preprocessed.
// Arg: the threads the caller lends it (1: its own alone; 2: a WorkerPool of 2 shares each
// convolution's output positions).
void BM_PredictOneBuiltin(benchmark::State& state) {
  const Model model = parse_model(builtin_model_bytes(), "built-in model");
  const auto image = test_images().image(0);
  Matrix pixels(1, 784);
  for (int i = 0; i < 784; ++i) pixels(0, i) = image[static_cast<std::size_t>(i)];
  WorkerPool pool(static_cast<int>(state.range(0)));
  WorkerPool* threads = state.range(0) > 1 ? &pool : nullptr;
  for (auto _ : state) benchmark::DoNotOptimize(model.network.predict_proba(pixels, threads));
}
BENCHMARK(BM_PredictOneBuiltin)->Arg(1)->Arg(2)->UseRealTime();

void BM_PredictOneSeed(benchmark::State& state) {
  const Network network = seed_network();
  const auto image = test_images().image(0);
  Matrix pixels(1, 784);
  for (int i = 0; i < 784; ++i) pixels(0, i) = image[static_cast<std::size_t>(i)];
  for (auto _ : state) benchmark::DoNotOptimize(network.predict_proba(pixels));
}
BENCHMARK(BM_PredictOneSeed);

// One drawing through the cnn preset's network (weights as initialised: the time does not depend
// on them), as the server predicts it, and with every layer's output kept for "Inside the network".
void BM_PredictOneCnnPreset(benchmark::State& state) {
  Network network = build_network(find_preset("cnn"));
  network.initialize(Init::he, 1);
  const auto image = test_images().image(0);
  Matrix pixels(1, 784);
  for (int i = 0; i < 784; ++i) pixels(0, i) = image[static_cast<std::size_t>(i)];
  for (auto _ : state) {
    if (state.range(0) == 0) benchmark::DoNotOptimize(network.predict_proba(pixels));
    else benchmark::DoNotOptimize(network.activations(pixels));
  }
}
BENCHMARK(BM_PredictOneCnnPreset)->Arg(0)->Arg(1);

// A six-digit number read whole by the built-in model (issue 21's goal: under 5 ms of CPU): the
// first six MNIST test digits, each drawn twice its size (56 px), side by side 6 px apart, on a
// 380×100 canvas; read_number labels components, finds no cut to try (no group is wide) and reads
// six candidates in one batch. Arg 1: the boxes overlap by 2 px, so digits whose strokes meet
// make wide groups with candidate cuts, and up to 28 pieces a group go through the network.
// Process CPU time: the network's products may run on the worker pool's threads too.
void BM_ReadNumberSixDigits(benchmark::State& state) {
  const Model model = parse_model(builtin_model_bytes(), "built-in model");
  const int gap = state.range(0) == 0 ? 6 : -2;
  GrayImage canvas{380, 100, std::vector<float>(380 * 100, 0.0f)};
  for (int k = 0; k < 6; ++k) {
    const auto image = test_images().image(static_cast<std::size_t>(k));
    const int left = 10 + k * (40 + gap) - 8;  // a 20-pixel digit is 40 px wide at twice the size; its field has 4 px of margin
    for (int y = 0; y < 56; ++y)
      for (int x = 0; x < 56; ++x) {
        const int cx = left + x;
        if (cx < 0 || cx >= 380) continue;
        float& v = canvas.pixels[static_cast<std::size_t>(20 + y) * 380 + static_cast<std::size_t>(cx)];
        v = std::max(v, static_cast<float>(image[static_cast<std::size_t>((y / 2) * 28 + x / 2)]));
      }
  }
  for (auto _ : state) benchmark::DoNotOptimize(read_number(model.network, canvas).digits.size());
}
BENCHMARK(BM_ReadNumberSixDigits)->Arg(0)->Arg(1)->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond);

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

// One guarded fine-tune with the default settings (150 steps of 32, then the guard's four
// evaluations), as the server runs it in the background: 20 corrections, 5,000 replay and 5,000
// validation images (the test set's two halves here; the time does not depend on which images).
// Args: the network (0 the seed-sized one, 1 the built-in model, 2 784-512-256-10, 3 the cnn-fast
// preset's network, 4 the cnn preset's, He-initialized: the time does not depend on the weights'
// values), then 1 when the live network's validation count is known, as the server knows it
// after start-up and every round (FineTuneSettings::live_validation_correct), 0 when the guard
// reads the 5,000 images with it too.
void BM_FineTuneGuarded(benchmark::State& state) {
  static const auto halves = [] {
    const Dataset& all = test_images();
    auto half = [&](std::size_t first, std::size_t count, const char* name) {
      Dataset part;
      part.name = name;
      part.pixels.assign(all.pixels.begin() + static_cast<std::ptrdiff_t>(first * 784), all.pixels.begin() + static_cast<std::ptrdiff_t>((first + count) * 784));
      part.labels.assign(all.labels.begin() + static_cast<std::ptrdiff_t>(first), all.labels.begin() + static_cast<std::ptrdiff_t>(first + count));
      return part;
    };
    return std::array<Dataset, 3>{half(0, 20, "corrections"), half(0, 5000, "replay"), half(5000, 5000, "validation")};
  }();
  Network network = seed_network();
  if (state.range(0) == 1) network = parse_model(builtin_model_bytes(), "built-in model").network;
  if (state.range(0) == 2) {
    network = Network({784, 512, 256, 10}, Activation::relu, 1.0f / 255.0f);
    network.initialize(Init::he, 1);
  }
  if (state.range(0) >= 3) {
    const Preset& preset = find_preset(state.range(0) == 3 ? "cnn-fast" : "cnn");
    network = build_network(preset);
    network.initialize(preset.init, 1);
    state.SetLabel(preset.layers);
  }
  FineTuneSettings settings;
  if (state.range(1) == 1) settings.live_validation_correct = static_cast<long long>(evaluate(network, halves[2], 1).correct);
  for (auto _ : state) benchmark::DoNotOptimize(fine_tune_guarded(network, halves[0], {}, halves[1], halves[2], settings).verdict.accepted);
}
BENCHMARK(BM_FineTuneGuarded)->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1}})->Unit(benchmark::kMillisecond);

// A 280×280 drawing of a 7 as a PNG, the size the page sends: 8-bit gray as encode_png writes it.
std::string drawing_png() {
  GrayImage image{280, 280, std::vector<float>(280 * 280, 0.0f)};
  auto ink_near = [](float x, float y, float x0, float y0, float x1, float y1) {  // within 9 px of the segment
    const float dx = x1 - x0, dy = y1 - y0;
    const float t = std::clamp(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0f, 1.0f);
    return std::hypot(x - x0 - t * dx, y - y0 - t * dy) < 9.0f;
  };
  for (int y = 0; y < 280; ++y)
    for (int x = 0; x < 280; ++x)
      if (ink_near(x, y, 70, 60, 210, 60) || ink_near(x, y, 210, 60, 120, 230)) image.pixels[static_cast<std::size_t>(y * 280 + x)] = 255.0f;
  return encode_png(image);
}

void BM_DecodePng280(benchmark::State& state) {
  const std::string png = drawing_png();
  const std::span bytes(reinterpret_cast<const unsigned char*>(png.data()), png.size());
  for (auto _ : state) benchmark::DoNotOptimize(decode_image(bytes, "drawing").pixels.data());
  state.SetLabel(std::to_string(png.size()) + " bytes");
}
BENCHMARK(BM_DecodePng280);

// The same drawing as the page really sends it: canvas.toDataURL gives 8-bit RGBA.
void BM_DecodePng280Rgba(benchmark::State& state) {
  const GrayImage gray = decode_image(testing::as_bytes(drawing_png()), "drawing");
  testing::Png rgba{.width = 280, .height = 280, .depth = 8, .colour_type = 6};
  for (float v : gray.pixels) rgba.samples.insert(rgba.samples.end(), {static_cast<std::uint16_t>(v), static_cast<std::uint16_t>(v), static_cast<std::uint16_t>(v), 255});
  const std::string png = rgba.encode();
  for (auto _ : state) benchmark::DoNotOptimize(decode_image(testing::as_bytes(png), "drawing").pixels.data());
  state.SetLabel(std::to_string(png.size()) + " bytes");
}
BENCHMARK(BM_DecodePng280Rgba);

// POST /api/predict's work for the page's drawing (the RGBA PNG above), stage by stage, with the
// built-in model: what bench/http/run's requests cost the server apart from HTTP. Arg: 0 decoding
// the PNG, 1 preprocessing, 2 the network with every layer's output kept (Network::activations),
// 3 the answer without the activations (answers::reading with maps off) written as text, 4 the
// whole answer with every layer's maps (answers::reading) written as text, 5 all of it: decode,
// preprocess, the lean answer (what a client that does not ask for the activations costs), 6 all
// of it with the full answer.
void BM_PredictDrawingStages(benchmark::State& state) {
  const GrayImage gray = decode_image(testing::as_bytes(drawing_png()), "drawing");
  testing::Png rgba{.width = 280, .height = 280, .depth = 8, .colour_type = 6};
  for (float v : gray.pixels) rgba.samples.insert(rgba.samples.end(), {static_cast<std::uint16_t>(v), static_cast<std::uint16_t>(v), static_cast<std::uint16_t>(v), 255});
  const std::string png = rgba.encode();
  const Model model = parse_model(builtin_model_bytes(), "built-in model");
  const Preprocessed input = preprocess(decode_image(testing::as_bytes(png), "drawing"));
  const Matrix X = Eigen::Map<const Matrix>(input.pixels.data(), 1, static_cast<Eigen::Index>(input.pixels.size()));
  std::size_t bytes = 0;
  for (auto _ : state) {
    switch (state.range(0)) {
      case 0: benchmark::DoNotOptimize(decode_image(testing::as_bytes(png), "drawing").pixels.data()); break;
      case 1: benchmark::DoNotOptimize(preprocess(gray).pixels.data()); break;
      case 2: benchmark::DoNotOptimize(model.network.activations(X).back().data()); break;
      case 3: bytes = answers::text(answers::reading(model.network, input, false)).size(); break;
      case 4: bytes = answers::text(answers::reading(model.network, input, true)).size(); break;
      case 5: bytes = answers::text(answers::reading(model.network, preprocess(decode_image(testing::as_bytes(png), "drawing")), false)).size(); break;
      default: bytes = answers::text(answers::reading(model.network, preprocess(decode_image(testing::as_bytes(png), "drawing")), true)).size(); break;
    }
  }
  static const char* const kStages[] = {"decode", "preprocess", "network", "lean answer", "full answer", "all, lean", "all, full"};
  state.SetLabel(std::string(kStages[state.range(0)]) + (bytes ? ", " + std::to_string(bytes) + " bytes" : ""));
}
BENCHMARK(BM_PredictDrawingStages)->DenseRange(0, 6)->Unit(benchmark::kMicrosecond);

// Hostile inputs of issue 11, refused: each must cost microseconds, not the seconds and hundreds
// of megabytes stb_image spent. Arg 0: the 55-byte Radiance HDR header claiming 4096×4096
// (stb_image: 1.35 s, 265 MB); 1: a 100 KB PNG declaring 30,000×30,000 pixels.
void BM_RefuseHostile(benchmark::State& state) {
  std::string bytes;
  if (state.range(0) == 0) {
    bytes = "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4096 +X 4096\n" + std::string(4, '\0');
  } else {
    std::string rows;
    while (rows.size() < 100'000'000) rows += std::string(1 + 30000, '\0');
    bytes = testing::kPngSignature + testing::png_ihdr(30000, 30000, 8, 0) + testing::png_chunk("IDAT", testing::zlib_compress(rows)) + testing::png_chunk("IEND", "");
  }
  for (auto _ : state) {
    try {
      decode_image(testing::as_bytes(bytes), "hostile");
      state.SkipWithError("decoded");
    } catch (const Error& e) {
      benchmark::DoNotOptimize(e.what());
    }
  }
  state.SetLabel(std::to_string(bytes.size()) + " bytes");
}
BENCHMARK(BM_RefuseHostile)->Arg(0)->Arg(1);

// The most work a JPEG may ask for: 4096×3072 colour (the pixel cap), progressive with 100 scans
// (the scan cap), each scan one pass over all the blocks. Arg 0: decoded; 1: a 101st scan, refused.
void BM_DecodeLargestProgressiveJpeg(benchmark::State& state) {
  testing::Jpeg jpeg{.width = 4096, .height = 3072, .components = 3, .quality = 90};
  jpeg.samples.resize(std::size_t{4096} * 3072 * 3);
  for (std::size_t i = 0; i < jpeg.samples.size(); ++i) jpeg.samples[i] = static_cast<unsigned char>((i * 7919) >> 10);
  // DC for all components; then component 0 one coefficient a scan (63 scans), components 1 and
  // 2 one a scan up to 18 and 16, the rest in one: 1 + 63 + 19 + 17 = 100 scans.
  jpeg.scans.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});
  for (int k = 1; k <= 63; ++k) jpeg.scans.push_back({1, {0, 0, 0, 0}, k, k, 0, 0});
  for (auto [component, singles] : {std::pair{1, 18}, std::pair{2, 16}}) {
    for (int k = 1; k <= singles; ++k) jpeg.scans.push_back({1, {component, 0, 0, 0}, k, k, 0, 0});
    jpeg.scans.push_back({1, {component, 0, 0, 0}, singles + 1, 63, 0, 0});
  }
  if (state.range(0) == 1) {  // split the last band: 101 scans
    jpeg.scans.back().Se = 62;
    jpeg.scans.push_back({1, {2, 0, 0, 0}, 63, 63, 0, 0});
  }
  const std::string bytes = jpeg.encode();
  for (auto _ : state) {
    try {
      benchmark::DoNotOptimize(decode_image(testing::as_bytes(bytes), "largest").pixels.data());
    } catch (const Error& e) {
      benchmark::DoNotOptimize(e.what());
    }
  }
  state.SetLabel(std::to_string(jpeg.scans.size()) + " scans, " + std::to_string(bytes.size()) + " bytes");
}
BENCHMARK(BM_DecodeLargestProgressiveJpeg)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
