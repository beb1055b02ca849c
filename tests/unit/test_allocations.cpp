// The training loop allocates nothing per step once its workspaces exist: every operator new is
// counted here, and in builds with EIGEN_RUNTIME_NO_MALLOC (the sanitizer preset) Eigen itself
// aborts if it reaches for malloc while that is forbidden.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <numeric>

#include "digits/network.hpp"
#include "digits/optimizer.hpp"
#include "digits/presets.hpp"
#include "digits/random.hpp"
#include "digits/trainer.hpp"

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
// These replace the global pair, so free() is the right match for the malloc() above; GCC 12 sees
// a delete calling free and warns (-Wmismatched-new-delete) where it inlines them into callers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace digits;

TEST(Allocations, TrainingStepsAllocateNothingOnceWarm) {
  for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::nesterov, OptimizerKind::adam}) {
    Dataset data;
    data.name = "random";
    Rng rng(1);
    for (int i = 0; i < 400 * 784; ++i) data.pixels.push_back(static_cast<std::uint8_t>(rng.below(256)));
    for (int i = 0; i < 400; ++i) data.labels.push_back(static_cast<std::uint8_t>(rng.below(10)));
    Network network({784, 50, 20, 10}, Activation::relu, 1.0f / 255);
    network.initialize(Init::he, 1);
    Optimizer optimizer({.kind = kind, .learning_rate = 0.01f});
    std::vector<std::size_t> order(data.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    Matrix X;
    std::vector<std::uint8_t> labels;
    auto step = [&](std::size_t first) {
      gather_batch(data, std::span(order).subspan(first, 40), network.input_scale, X, labels);
      network.train_step(X, labels, optimizer);
    };
    step(0);  // the first step sizes every workspace
    const long before = allocations.load();
#ifdef EIGEN_RUNTIME_NO_MALLOC
    Eigen::internal::set_is_malloc_allowed(false);
#endif
    for (std::size_t first = 40; first + 40 <= data.size(); first += 40) step(first);
#ifdef EIGEN_RUNTIME_NO_MALLOC
    Eigen::internal::set_is_malloc_allowed(true);
#endif
    EXPECT_EQ(allocations.load() - before, 0) << optimizer_name(kind);
  }
}

TEST(Allocations, ConvTrainingStepsAllocateNothingOnceWarm) {
  // Every kind of layer, at sizes where the products are real work: conv (valid, then stride 2
  // with "same" padding), pooling, flatten, dense; dropout on the hidden dense layer.
  Rng rng(2);
  Network network(parse_layer_specs("conv5x5x16,pool2,conv3x3x32s2same,fc64,10"), {1, 28, 28}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 1);
  Optimizer optimizer({.kind = OptimizerKind::nesterov, .learning_rate = 0.01f});
  Matrix X(64, 784);
  std::vector<std::uint8_t> labels(64);
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.uniform();
  for (std::uint8_t& label : labels) label = static_cast<std::uint8_t>(rng.below(10));
  network.train_step(X, labels, optimizer, 0.25f, 1);  // sizes every workspace
  const long before = allocations.load();
  for (std::uint64_t step = 2; step < 5; ++step) network.train_step(X, labels, optimizer, 0.25f, step);
  EXPECT_EQ(allocations.load() - before, 0);
}

TEST(Allocations, TheCnnPresetsStepsAllocateNothingOnceWarm) {
  // At the `cnn` preset's own sizes (batch 128, 32 and 64 filters of 5×5), where Eigen's products
  // would take their blocking buffers from the heap if they outgrew its stack limit.
  const Preset& cnn = find_preset("cnn");
  Network network = build_network(cnn);
  network.initialize(cnn.init, 1);
  Optimizer optimizer(cnn.recipe.optimizer);
  Rng rng(3);
  Matrix X(cnn.recipe.batch, 784);
  std::vector<std::uint8_t> labels(static_cast<std::size_t>(cnn.recipe.batch));
  for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.uniform();
  for (std::uint8_t& label : labels) label = static_cast<std::uint8_t>(rng.below(10));
  network.train_step(X, labels, optimizer, cnn.recipe.dropout, 1);
  const long before = allocations.load();
  network.train_step(X, labels, optimizer, cnn.recipe.dropout, 2);
  EXPECT_EQ(allocations.load() - before, 0);
}

TEST(Allocations, TheCounterSeesAllocations) {
  // Guards the test above against a counter that never counts.
  const long before = allocations.load();
  std::vector<int>* v = new std::vector<int>(100);
  delete v;
  EXPECT_GE(allocations.load() - before, 2);
}
