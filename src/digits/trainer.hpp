// The training loop: epochs of shuffled mini-batches, with metrics after every epoch.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"

namespace digits {

struct TrainingRecipe {
  int epochs = 100;
  int batch = 40;
  OptimizerSettings optimizer;  // sgd, lr 0.005: the ancestor's
  std::uint64_t seed = 1;       // the shuffles' seed (the weights have their own, in initialize)
  bool measure_train_accuracy = true;  // a forward pass over the whole training set each epoch
  // Threads: 1 does everything on the calling thread; with 2 or more (0 = one per core), each
  // epoch's evaluation runs on other threads, on a copy of the weights, while the next epoch trains.
  // The weights are the same either way: evaluation reads them and never changes them.
  int threads = 0;
};

struct BatchProgress {
  int epoch = 0, epochs = 0;         // epoch counts from 1
  std::size_t batch = 0, batches = 0;  // batch counts from 1
  float loss = 0;                    // mean loss so far in this epoch
  double samples_per_second = 0;
};

struct EpochReport {
  int epoch = 0;
  double loss = 0;                  // mean training loss over the epoch's batches
  double train_accuracy = -1;       // on the whole training set after the epoch; −1 if not measured
  double test_accuracy = -1;        // −1 without a test set
  double seconds = 0;               // training steps only
  double samples_per_second = 0;
};

struct TrainingObserver {
  std::function<void(const BatchProgress&)> on_batch;  // called every few batches
  std::function<void(const EpochReport&)> on_epoch;
};

// Trains the network from its current weights: recipe.epochs epochs over `train`, reshuffled every
// epoch, in mini-batches of recipe.batch (the last one smaller if it does not divide). Evaluates on
// `test` after every epoch when given. Returns one report per epoch.
std::vector<EpochReport> fit(Network& network, const Dataset& train, const Dataset* test,
                             const TrainingRecipe& recipe, const TrainingObserver& observer = {});

// The ancestor's improve_train: continue training from the current weights on `train` with
// `extra` labelled images added to it.
std::vector<EpochReport> improve(Network& network, const Dataset& train, const Dataset& extra, const Dataset* test,
                                 const TrainingRecipe& recipe, const TrainingObserver& observer = {});

struct Evaluation {
  std::size_t total = 0, correct = 0;
  std::array<std::array<std::size_t, 10>, 10> confusion{};  // [true label][predicted]
  double accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
  double class_accuracy(int label) const;
};

// Predicts every image of data, in chunks so memory stays bounded, and counts the outcomes,
// splitting the chunks over `threads` threads (0 = one per core).
Evaluation evaluate(const Network& network, const Dataset& data, int threads = 0);

// The number of threads `threads` means: itself if positive, else one per core.
int resolve_threads(int threads);

}  // namespace digits
