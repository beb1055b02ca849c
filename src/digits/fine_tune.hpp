// Learning from corrections without forgetting, and without being wrecked by them: a short,
// bounded fine-tune of a copy of the live network on new corrections mixed with replayed older
// examples, then a guard that decides whether the copy may replace the live network.
//
// Used by the server's background learner and by `digits improve --feedback`. No I/O; no threads
// unless FineTuneSettings::threads asks for them. docs/feedback.md gives the numbers and why.
#pragma once

#include <atomic>

#include <cstdint>
#include <string>
#include <utility>

#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/network.hpp"
#include "digits/trainer.hpp"

namespace digits {

struct FineTuneSettings {
  // A bounded amount of work: this many SGD steps (with momentum) of this batch size.
  int steps = 150;
  int batch = 32;
  float learning_rate = 0.005f;  // small: nudge the weights, do not retrain
  float momentum = 0.9f;
  // Of each batch, this share is new corrections (drawn with replacement, so a handful of them
  // still fill it); the rest is replay: half earlier corrections (when there are any), half MNIST
  // training digits. Replay is what keeps the network from forgetting what it knew.
  double new_share = 0.25;

  // The recipe: which weights move, how far, and toward what. docs/feedback.md, "Choosing the
  // recipe", measures each candidate on the built-in model (bench_fine_tune_recipes): the last two
  // layers, with batch norm frozen and the replay distilled from the live model where it reads it
  // right, learned every style while losing 0.12 points of validation on average (the old recipe
  // of every layer at one rate: 0.22), kept "not a digit" better, and takes half the old CPU time.
  // The old recipe is trained_layers 0, distillation 0, batch_norm batch.
  //
  // Only the last `trained_layers` conv or dense layers learn (with the batch norms after them);
  // the ones below run as in prediction and are not backpropagated, so their features stay the
  // features the rest of the network was trained on. 0: all of them.
  int trained_layers = 2;
  // Per-layer rates: the k-th trained conv or dense layer counted from the top (k = 0 for the
  // output layer) learns at learning_rate · layer_rate_decay^k (a batch norm at its layer's rate).
  // Below 1, the early layers, whose features the others build on, move least (Howard & Ruder 2018,
  // "discriminative fine-tuning").
  float layer_rate_decay = 1.0f;
  // L2-SP (Li, Grandvalet & Davoine 2018, "Explicit inductive bias for transfer learning"): the loss
  // gains (λ/2)·‖θ − θ₀‖² over the trained weights and biases, θ₀ the live network's, so each
  // step's gradient gains λ·(θ − θ₀): a pull back toward what the network knew. 0: none.
  float pull_to_start = 0.0f;
  // Distillation on the MNIST replay (Li & Hoiem 2016, "Learning without forgetting"): those rows'
  // target is (1 − α)·onehot + α·p_live, p_live the live network's probabilities, so the candidate
  // is asked to keep the live network's whole answer, not only its top class; on the rows the live
  // network reads right only (its mistakes are learned from the label). 0: plain labels.
  float distillation = 1.0f;
  // Batch norm while fine-tuning. `batch`: as in training, each batch's own statistics, the running
  // ones moved toward them. `frozen`: the running statistics normalise and stay as they are, γ and
  // β learn (batchnorm_layer.hpp, forward_frozen). `fixed`: frozen, and γ and β stay too.
  enum class BatchNorm { batch, frozen, fixed };
  BatchNorm batch_norm = BatchNorm::frozen;
  // The guard: the candidate must not lose more than this much validation accuracy (0.003 = 0.3
  // points), and must get the new corrections right more often than the live network did. When the
  // live network already gets every one of them right there is nothing to improve: then the
  // candidate must still get them all right (it may not get worse), and validation decides.
  double max_validation_drop = 0.003;
  // A second, fixed reference for the same margin: how many validation images the model a chain of
  // fine-tunes started from read right (−1: none). The candidate may not fall more than
  // max_validation_drop below it either, so accepted rounds cannot drift down a margin each.
  long long origin_validation_correct = -1;
  // How many validation images the live network reads right, when the caller has measured it
  // already on the same images (the server remembers it from the round that made the live
  // version); −1: the guard measures it. Saves one pass over the 5,000 images, a third of a round
  // with a CNN.
  long long live_validation_correct = -1;
  std::uint64_t seed = 1;
  // Threads for the guard's evaluations (0 = one per core). 1: everything on the calling thread.
  int threads = 1;
  // Set from another thread to stop a round between steps (the server is stopping): the round
  // then throws FineTuneCancelled and changes nothing. Null: never cancelled.
  const std::atomic<bool>* cancelled = nullptr;
};

class FineTuneCancelled : public Error {
 public:
  using Error::Error;
};

// What the guard saw: accuracies before (live network) and after (candidate), as fractions.
struct GuardVerdict {
  bool accepted = false;
  std::string reason;  // why it was accepted or rejected, in a sentence a person can read
  double validation_before = 0, validation_after = 0;
  long long validation_correct_before = 0, validation_correct_after = 0;  // the same, as counts of images
  double corrections_before = 0, corrections_after = 0;  // on the new corrections
};

struct FineTuneResult {
  Network candidate;
  GuardVerdict verdict;
};

// The guard's validation set is always the same 5,000 MNIST training images, chosen by a fixed
// seed, so that every candidate, in the server or from `digits improve --feedback`, is judged on
// the same images; the fine-tune replays only the other 55,000. They are the images that training
// with `--validation 5000` sets aside (kValidationSplitSeed, trainer.hpp), so for the built-in model,
// trained that way, validation accuracy is measured on digits it has never seen.
inline constexpr std::size_t kGuardValidationImages = 5000;
inline constexpr std::uint64_t kGuardSplitSeed = kValidationSplitSeed;

// Splits MNIST's training set into (replay, validation) as above. Throws Error when it holds no
// more than 5,000 images.
std::pair<Dataset, Dataset> guard_split(const Dataset& mnist_train);
// The same, in the given set's memory (split_validation's in-place form): the server's start-up.
std::pair<Dataset, Dataset> guard_split(Dataset&& mnist_train);

// Fine-tunes a copy of `live` (never `live` itself) as FineTuneSettings describes, then judges it
// on `validation` (held out from MNIST training data, never the test set) and on `corrections`.
// `earlier` may be empty. `replay` must not be empty; `corrections` must not be empty.
// Deterministic for a given seed. Throws Error on mismatched image sizes.
FineTuneResult fine_tune_guarded(const Network& live, const Dataset& corrections, const Dataset& earlier,
                                 const Dataset& replay, const Dataset& validation, const FineTuneSettings& settings);

}  // namespace digits
