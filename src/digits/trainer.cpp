#include "digits/trainer.hpp"

#include <chrono>
#include <future>
#include <numeric>
#include <optional>
#include <thread>

#include "digits/calibration.hpp"
#include "digits/error.hpp"

namespace digits {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void check_fits(const Network& network, const Dataset& data) {
  if (data.features() != network.inputs())
    throw Error(data.name + ": images have " + std::to_string(data.features()) + " pixels but the network takes " +
                std::to_string(network.inputs()));
  for (std::uint8_t label : data.labels) {
    if (label >= network.classes())
      throw Error(data.name + ": label " + std::to_string(label) + " but the network has " + std::to_string(network.classes()) + " classes");
  }
}

// A seed for each (purpose, epoch, position): the draws never depend on threads or on where a
// run was resumed. SplitMix64's finaliser mixes the parts (Steele et al., 2014).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t purpose, std::uint64_t epoch, std::uint64_t position = 0) {
  std::uint64_t z = seed ^ (purpose * 0x9e3779b97f4a7c15ULL) ^ (epoch * 0xbf58476d1ce4e5b9ULL) ^ (position * 0x94d049bb133111ebULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

enum Purpose : std::uint64_t { kShuffle = 1, kAugment = 2, kDropout = 3, kValidation = 4 };

}  // namespace

// The order split_validation takes the images in: the first `count` become validation.
std::vector<std::size_t> validation_order(const Dataset& data, std::size_t count, std::uint64_t seed) {
  if (count >= data.size()) throw Error(data.name + ": cannot set aside " + std::to_string(count) + " of " + std::to_string(data.size()) + " images for validation");
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng(derive_seed(seed, kValidation, 0)).shuffle(order);
  return order;
}

std::pair<Dataset, Dataset> split_validation(Dataset&& data, std::size_t count, std::uint64_t seed) {
  const std::vector<std::size_t> order = validation_order(data, count, seed);
  // Row i becomes row order[i], in place: follow each cycle of the permutation with one row held
  // aside (new[j] = old[order[j]]; each row is moved once).
  const std::size_t features = static_cast<std::size_t>(data.features());
  std::vector<std::uint8_t> held(features);
  std::vector<bool> placed(order.size(), false);
  for (std::size_t start = 0; start < order.size(); ++start) {
    if (placed[start] || order[start] == start) continue;
    std::copy_n(data.pixels.begin() + static_cast<std::ptrdiff_t>(start * features), features, held.begin());
    const std::uint8_t held_label = data.labels[start];
    std::size_t j = start;
    for (;;) {
      placed[j] = true;
      const std::size_t from = order[j];
      if (from == start) {
        std::copy(held.begin(), held.end(), data.pixels.begin() + static_cast<std::ptrdiff_t>(j * features));
        data.labels[j] = held_label;
        break;
      }
      std::copy_n(data.pixels.begin() + static_cast<std::ptrdiff_t>(from * features), features, data.pixels.begin() + static_cast<std::ptrdiff_t>(j * features));
      data.labels[j] = data.labels[from];
      j = from;
    }
  }
  Dataset validation;
  validation.name = data.name + " (validation)";
  validation.rows = data.rows, validation.cols = data.cols;
  const auto cut = static_cast<std::ptrdiff_t>(count * features);
  validation.pixels.assign(data.pixels.begin(), data.pixels.begin() + cut);
  validation.labels.assign(data.labels.begin(), data.labels.begin() + static_cast<std::ptrdiff_t>(count));
  data.pixels.erase(data.pixels.begin(), data.pixels.begin() + cut);
  data.labels.erase(data.labels.begin(), data.labels.begin() + static_cast<std::ptrdiff_t>(count));
  return {std::move(validation), std::move(data)};
}

std::pair<Dataset, Dataset> split_validation(const Dataset& data, std::size_t count, std::uint64_t seed) {
  const std::vector<std::size_t> order = validation_order(data, count, seed);
  Dataset validation, rest;
  validation.name = data.name + " (validation)";
  rest.name = data.name;
  for (Dataset* d : {&validation, &rest}) d->rows = data.rows, d->cols = data.cols;
  for (std::size_t i = 0; i < order.size(); ++i) {
    Dataset& target = i < count ? validation : rest;
    const auto image = data.image(order[i]);
    target.pixels.insert(target.pixels.end(), image.begin(), image.end());
    target.labels.push_back(data.labels[order[i]]);
  }
  return {std::move(validation), std::move(rest)};
}

std::vector<EpochReport> fit(Network& network, const Dataset& train_and_validation, const Dataset* test, const TrainingRecipe& recipe,
                             TrainingState& state, const TrainingObserver& observer, const Dataset* extra) {
  if (recipe.epochs < 0) throw Error("epochs must not be negative");
  if (recipe.batch <= 0) throw Error("the batch size must be positive");
  if (train_and_validation.size() == 0) throw Error(train_and_validation.name + ": no training images");
  check_fits(network, train_and_validation);
  if (test) check_fits(network, *test);
  if (extra) check_fits(network, *extra);
  if (recipe.calibrate && recipe.validation == 0) throw Error("calibration needs a validation set to fit the temperature on");

  // Early stopping's validation set is carved from the training set, never from the test set; extra
  // images join the rest afterwards.
  Dataset carved_train, validation;
  if (recipe.validation > 0) std::tie(validation, carved_train) = split_validation(train_and_validation, recipe.validation, kValidationSplitSeed);
  const bool adding = extra && extra->size() > 0;
  if (adding) {
    if (recipe.validation == 0) carved_train = train_and_validation;
    carved_train.name = train_and_validation.name + " + " + extra->name;
    carved_train.append(*extra);
  }
  const Dataset& train = recipe.validation > 0 || adding ? carved_train : train_and_validation;

  const std::size_t batch = static_cast<std::size_t>(recipe.batch);
  const std::size_t batches = (train.size() + batch - 1) / batch;
  const bool augmenting = !recipe.augment.is_none();
  const int threads = resolve_threads(recipe.threads);
  network.set_threads(threads);  // a conv layer's shares of each batch run on these
  std::vector<std::size_t> order(train.size());

  // Each epoch's report is finished by measuring accuracy on a snapshot of the weights. With more
  // than one thread that runs in the background while the next epoch trains, and is collected
  // (and reported, in order) when the next epoch ends, or after the last one.
  const int evaluation_threads = std::max(1, threads - 1);
  struct Measured {
    EpochReport report;
    Network snapshot;
  };
  std::future<Measured> pending;
  auto measure = [&](Network snapshot, EpochReport report) {
    if (recipe.measure_train_accuracy) report.train_accuracy = evaluate(snapshot, train, evaluation_threads).accuracy();
    if (recipe.validation > 0) report.validation_accuracy = evaluate(snapshot, validation, evaluation_threads).accuracy();
    if (test && recipe.measure_test_each_epoch) report.test_accuracy = evaluate(snapshot, *test, evaluation_threads).accuracy();
    return Measured{report, std::move(snapshot)};
  };
  std::vector<EpochReport> reports;
  std::optional<Network> best;  // the weights of the best validation accuracy so far
  double best_accuracy = -1;
  int epochs_since_best = 0;
  auto collect = [&](Measured measured) {
    reports.push_back(measured.report);
    if (observer.on_epoch) observer.on_epoch(measured.report);
    if (recipe.validation == 0) return;
    if (measured.report.validation_accuracy > best_accuracy) {
      best_accuracy = measured.report.validation_accuracy;
      best = std::move(measured.snapshot);
      epochs_since_best = 0;
    } else {
      ++epochs_since_best;
    }
  };

  // Batch b's images: augmented (its rows shared among the training threads) or plain.
  auto prepare = [&](int epoch, std::size_t b, Matrix& X, std::vector<std::uint8_t>& labels) {
    const std::size_t first = b * batch, count = std::min(batch, train.size() - first);
    const auto indices = std::span<const std::size_t>(order).subspan(first, count);
    if (augmenting)  // each image's distortion depends only on (seed, epoch, its position in the epoch)
      augment_batch(train, indices, recipe.augment, derive_seed(recipe.seed, kAugment, static_cast<std::uint64_t>(epoch)),
                    network.input_scale, X, labels, first, network.pool());
    else
      gather_batch(train, indices, network.input_scale, X, labels);
  };
  Matrix X;
  std::vector<std::uint8_t> labels;
  if (recipe.label_smoothing < 0 || recipe.label_smoothing >= 1) throw Error("label smoothing must be in [0, 1)");
  if (recipe.weight_averaging < 0 || recipe.weight_averaging >= 1) throw Error("the weight-averaging decay must be in [0, 1)");
  std::optional<Network> averaged;  // the moving average of the weights, when recipe.weight_averaging > 0
  if (recipe.weight_averaging > 0) averaged.emplace(network);
  long long averaged_steps = 0;

  for (int epoch = state.epochs_done + 1; epoch <= recipe.epochs; ++epoch) {
    if (recipe.patience > 0 && epochs_since_best >= recipe.patience) break;
    // A fresh permutation each epoch, from the seed and the epoch alone.
    std::iota(order.begin(), order.end(), std::size_t{0});
    Rng(derive_seed(recipe.seed, kShuffle, static_cast<std::uint64_t>(epoch))).shuffle(order);
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    float learning_rate = recipe.optimizer.learning_rate;
    for (std::size_t b = 0; b < batches; ++b) {
      prepare(epoch, b, X, labels);
      const double progress = (epoch - 1) + static_cast<double>(b) / static_cast<double>(batches);
      learning_rate = static_cast<float>(learning_rate_at(recipe.schedule, recipe.optimizer.learning_rate, progress, recipe.epochs));
      state.optimizer.settings.learning_rate = learning_rate;
      loss_sum += network.train_step(X, labels, state.optimizer, recipe.dropout,
                                     derive_seed(recipe.seed, kDropout, static_cast<std::uint64_t>(epoch), b), recipe.label_smoothing);
      if (averaged) {
        const auto t = static_cast<float>(averaged_steps++);
        averaged->move_average_toward(network, std::min(recipe.weight_averaging, (1 + t) / (10 + t)));
      }
      if (observer.on_batch && (b % 50 == 49 || b + 1 == batches)) {
        const double elapsed = seconds_since(start);
        const std::size_t seen = std::min(train.size(), (b + 1) * batch);
        observer.on_batch({epoch, recipe.epochs, b + 1, batches, static_cast<float>(loss_sum / static_cast<double>(b + 1)),
                           elapsed > 0 ? static_cast<double>(seen) / elapsed : 0.0});
      }
    }
    state.epochs_done = epoch;
    EpochReport report;
    report.epoch = epoch;
    report.seconds = seconds_since(start);
    report.loss = loss_sum / static_cast<double>(batches);
    report.learning_rate = learning_rate;
    report.samples_per_second = static_cast<double>(train.size()) / report.seconds;
    if (pending.valid()) collect(pending.get());
    const Network& measured = averaged ? *averaged : network;
    if (threads > 1)
      pending = std::async(std::launch::async, measure, measured, report);
    else
      collect(measure(measured, report));
    if (observer.on_checkpoint) observer.on_checkpoint(network, state);
  }
  if (pending.valid()) collect(pending.get());
  if (best)
    network.copy_weights_from(*best);
  else if (averaged)
    network.copy_weights_from(*averaged);
  state.temperature = 1;
  if (recipe.calibrate) state.temperature = calibrate_temperature(network, validation);
  return reports;
}

std::vector<EpochReport> fit(Network& network, const Dataset& train, const Dataset* test, const TrainingRecipe& recipe,
                             const TrainingObserver& observer) {
  TrainingState state{Optimizer(recipe.optimizer), 0};
  return fit(network, train, test, recipe, state, observer);
}

std::vector<EpochReport> improve(Network& network, const Dataset& train, const Dataset& extra, const Dataset* test,
                                 const TrainingRecipe& recipe, const TrainingObserver& observer) {
  TrainingState state{Optimizer(recipe.optimizer), 0};
  return fit(network, train, test, recipe, state, observer, &extra);
}

double Evaluation::class_accuracy(int label) const {
  const auto& row = confusion[static_cast<std::size_t>(label)];
  const std::size_t count = std::accumulate(row.begin(), row.end(), std::size_t{0});
  return count ? static_cast<double>(row[static_cast<std::size_t>(label)]) / static_cast<double>(count) : 0.0;
}

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {

// Counts the outcomes for images [first, last) of data, in chunks of 1,000.
Evaluation evaluate_range(const Network& network, const Dataset& data, std::size_t first, std::size_t last) {
  Evaluation result;
  constexpr std::size_t kChunk = 1000;
  Matrix X;
  std::vector<std::uint8_t> labels;
  std::vector<std::size_t> indices;
  for (std::size_t begin = first; begin < last; begin += kChunk) {
    const std::size_t count = std::min(kChunk, last - begin);
    indices.resize(count);
    std::iota(indices.begin(), indices.end(), begin);
    gather_batch(data, indices, 1.0f, X, labels);  // raw pixels: predict applies the model's scale
    const std::vector<int> predicted = network.predict(X);
    for (std::size_t i = 0; i < count; ++i) {
      ++result.confusion[labels[i]][static_cast<std::size_t>(predicted[i])];
      result.correct += predicted[i] == labels[i];
    }
    result.total += count;
  }
  return result;
}

}  // namespace

Evaluation evaluate(const Network& network, const Dataset& data, int threads) {
  check_fits(network, data);
  if (network.classes() > kDigitClasses + 1) throw Error("evaluation counts at most 11 classes (the digits and \"not a digit\")");
  // Each thread takes one contiguous share; predict_proba is const and keeps no state.
  const std::size_t shares = std::min<std::size_t>(static_cast<std::size_t>(resolve_threads(threads)), std::max<std::size_t>(1, data.size() / 1000));
  std::vector<std::future<Evaluation>> others;
  auto share = [&](std::size_t s) { return std::pair{data.size() * s / shares, data.size() * (s + 1) / shares}; };
  for (std::size_t s = 1; s < shares; ++s) {
    others.push_back(std::async(std::launch::async, [&, s] { return evaluate_range(network, data, share(s).first, share(s).second); }));
  }
  Evaluation result = evaluate_range(network, data, share(0).first, share(0).second);
  result.classes = network.classes();
  for (auto& other : others) {
    const Evaluation part = other.get();
    result.total += part.total;
    result.correct += part.correct;
    for (std::size_t t = 0; t < result.confusion.size(); ++t)
      for (std::size_t p = 0; p < result.confusion.size(); ++p) result.confusion[t][p] += part.confusion[t][p];
  }
  return result;
}

}  // namespace digits
