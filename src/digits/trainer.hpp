// The training loop: epochs of shuffled mini-batches, with metrics after every epoch.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "digits/augment.hpp"
#include "digits/classes.hpp"
#include "digits/dataset.hpp"
#include "digits/network.hpp"
#include "digits/optimizer.hpp"
#include "digits/schedule.hpp"

namespace digits {

struct TrainingRecipe {
  int epochs = 100;
  int batch = 40;
  OptimizerSettings optimizer;  // sgd, lr 0.005: the ancestor's
  Schedule schedule;            // how the learning rate moves over the epochs
  float dropout = 0;            // on every hidden layer's output, while training
  float label_smoothing = 0;    // ε: train toward (1 − ε)·one-hot + ε/classes (loss.hpp)
  // Weight averaging: with a decay d > 0, an exponential moving average of the weights is kept
  // beside the trained ones (Network::move_average_toward after every step, with the decay ramped
  // in as min(d, (1 + t)/(10 + t)) at step t so the start's random weights fade fast), and the
  // average is what each epoch's accuracy measures, what early stopping keeps and what fit returns.
  float weight_averaging = 0;
  // Temperature scaling after training (calibration.hpp): the T of least NLL on the validation set,
  // folded into the last layer, so the probabilities shown are calibrated on digits not trained on.
  // Needs a validation set; fit leaves T in TrainingState::temperature.
  bool calibrate = false;
  AugmentSettings augment = AugmentSettings::none();  // random distortions of each training image (augment.hpp)
  // Early stopping: this many training images are set aside (always the same choice for the same
  // data, kValidationSplitSeed below) as a validation set;
  // after training the network keeps the weights of the epoch with the best validation accuracy.
  // With patience > 0, training also stops after that many epochs without improvement.
  std::size_t validation = 0;
  int patience = 0;
  std::uint64_t seed = 1;       // the shuffles', augmentations' and dropout masks' seed (the weights have their own)
  bool measure_train_accuracy = true;  // a forward pass over the whole training set each epoch
  // A forward pass over the test set each epoch, for its learning curve. The recipes that choose
  // their epoch on a validation set leave it off: the test set is then read once, for the final
  // figure (the caller's), and the `cnn` preset's epochs no longer share the cores with 10,000
  // readings each.
  bool measure_test_each_epoch = true;
  // Threads: 1 does everything on the calling thread; with 2 or more (0 = one per core), each
  // epoch's evaluation runs on other threads, on a copy of the weights, while the next epoch trains,
  // and the next batch is augmented while the current one trains. The weights are the same either
  // way: every random draw depends only on the seed, the epoch and the position in it.
  int threads = 0;
};

struct BatchProgress {
  int epoch = 0, epochs = 0;           // epoch counts from 1
  std::size_t batch = 0, batches = 0;  // batch counts from 1
  float loss = 0;                      // mean loss so far in this epoch
  double samples_per_second = 0;
};

struct EpochReport {
  int epoch = 0;
  double loss = 0;                  // mean training loss over the epoch's batches
  double train_accuracy = -1;       // on the whole training set after the epoch; −1 if not measured
  double validation_accuracy = -1;  // −1 without a validation set
  double test_accuracy = -1;        // −1 without a test set
  double learning_rate = 0;         // at the end of the epoch
  double seconds = 0;               // training steps only
  double samples_per_second = 0;
};

// Where training stands, so that it can stop and resume exactly: the optimizer (with its moments)
// and how many epochs are done. The network's weights are the rest of the state.
struct TrainingState {
  Optimizer optimizer;
  int epochs_done = 0;
  double temperature = 1;  // what recipe.calibrate folded into the last layer at the end (1: nothing)
};

struct TrainingObserver {
  std::function<void(const BatchProgress&)> on_batch;  // called every few batches
  std::function<void(const EpochReport&)> on_epoch;
  // Called after every epoch with the weights and state to resume from (a checkpoint).
  std::function<void(const Network&, const TrainingState&)> on_checkpoint;
};

// Trains the network from its current weights: from epoch state.epochs_done + 1 to recipe.epochs
// over `train`, reshuffled every epoch, in mini-batches of recipe.batch (the last one smaller if it
// does not divide). Evaluates on `test` after every epoch when given, unless
// !recipe.measure_test_each_epoch. Returns one report per epoch.
// `extra` images, when given, join the training images after the validation set has been carved
// from `train`, so the validation set is the same with or without them and never holds them.
std::vector<EpochReport> fit(Network& network, const Dataset& train, const Dataset* test, const TrainingRecipe& recipe,
                             TrainingState& state, const TrainingObserver& observer = {}, const Dataset* extra = nullptr);
// The same, from a fresh optimizer at epoch 0.
std::vector<EpochReport> fit(Network& network, const Dataset& train, const Dataset* test,
                             const TrainingRecipe& recipe, const TrainingObserver& observer = {});

// The ancestor's improve_train: continue training from the current weights on `train` with
// `extra` labelled images added to it (after the validation split, as in fit).
std::vector<EpochReport> improve(Network& network, const Dataset& train, const Dataset& extra, const Dataset* test,
                                 const TrainingRecipe& recipe, const TrainingObserver& observer = {});

// Splits off `count` images chosen by the seed as a validation set; the rest stay for training.
std::pair<Dataset, Dataset> split_validation(const Dataset& data, std::size_t count, std::uint64_t seed);
// The same split, made in the given dataset's own memory (the rows permuted in place, the
// validation rows copied out): the whole set is never held twice. For the server's start-up,
// where MNIST's copy was 47 MB of the peak.
std::pair<Dataset, Dataset> split_validation(Dataset&& data, std::size_t count, std::uint64_t seed);

// Training always carves its validation set with this seed, whatever the training seed: runs with
// different seeds are judged on the same images, and with 5,000 images on MNIST it is exactly the
// set the feedback guard uses (fine_tune.hpp), so a model trained with `--validation 5000` (the
// built-in one) is guarded on digits it never learned from.
inline constexpr std::uint64_t kValidationSplitSeed = 6;  // fixed forever: changing it changes what "validation accuracy" means

// confusion[true label][predicted], room for a model's eleventh class, "not a digit" (classes.hpp).
using Confusion = std::array<std::array<std::size_t, kDigitClasses + 1>, kDigitClasses + 1>;

struct Evaluation {
  int classes = kDigitClasses;  // the network's: 10, or 11 with "not a digit"
  std::size_t total = 0, correct = 0;
  Confusion confusion{};  // [true label][predicted]; rows and columns past `classes` stay 0
  double accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
  double class_accuracy(int label) const;
};

// Predicts every image of data, in chunks so memory stays bounded, and counts the outcomes,
// splitting the chunks over `threads` threads (0 = one per core).
Evaluation evaluate(const Network& network, const Dataset& data, int threads = 0);

// The number of threads `threads` means: itself if positive, else one per core.
int resolve_threads(int threads);

}  // namespace digits
