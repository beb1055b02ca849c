#include "digits/trainer.hpp"

#include <chrono>
#include <future>
#include <numeric>
#include <optional>
#include <thread>

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

}  // namespace

std::vector<EpochReport> fit(Network& network, const Dataset& train, const Dataset* test,
                             const TrainingRecipe& recipe, const TrainingObserver& observer) {
  if (recipe.epochs < 0) throw Error("epochs must not be negative");
  if (recipe.batch <= 0) throw Error("the batch size must be positive");
  if (train.size() == 0) throw Error(train.name + ": no training images");
  check_fits(network, train);
  if (test) check_fits(network, *test);

  Optimizer optimizer(recipe.optimizer);
  // The shuffles' stream is distinct from the weights' stream even under the same seed.
  Rng rng(recipe.seed ^ 0x5eed5eed5eed5eedULL);
  std::vector<std::size_t> order(train.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const std::size_t batch = static_cast<std::size_t>(recipe.batch);
  const std::size_t batches = (train.size() + batch - 1) / batch;

  Matrix X;
  std::vector<std::uint8_t> labels;
  std::vector<EpochReport> reports;

  // Each epoch's report is finished by measuring accuracy on a snapshot of the weights. With more
  // than one thread that runs in the background while the next epoch trains, and is collected
  // (and reported, in order) when the next epoch ends, or after the last one.
  const int threads = resolve_threads(recipe.threads);
  const int evaluation_threads = std::max(1, threads - 1);
  std::future<EpochReport> pending;
  auto measure = [&train, test, &recipe, evaluation_threads](Network snapshot, EpochReport report) {
    if (recipe.measure_train_accuracy) report.train_accuracy = evaluate(snapshot, train, evaluation_threads).accuracy();
    if (test) report.test_accuracy = evaluate(snapshot, *test, evaluation_threads).accuracy();
    return report;
  };
  auto collect = [&] {
    if (!pending.valid()) return;
    reports.push_back(pending.get());
    if (observer.on_epoch) observer.on_epoch(reports.back());
  };

  for (int epoch = 1; epoch <= recipe.epochs; ++epoch) {
    rng.shuffle(order);
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    for (std::size_t b = 0; b < batches; ++b) {
      const std::size_t first = b * batch;
      const std::size_t count = std::min(batch, train.size() - first);
      gather_batch(train, std::span(order).subspan(first, count), network.input_scale, X, labels);
      loss_sum += network.train_step(X, labels, optimizer);
      if (observer.on_batch && (b % 50 == 49 || b + 1 == batches)) {
        const double elapsed = seconds_since(start);
        observer.on_batch({epoch, recipe.epochs, b + 1, batches, static_cast<float>(loss_sum / static_cast<double>(b + 1)),
                           elapsed > 0 ? static_cast<double>(first + count) / elapsed : 0.0});
      }
    }
    EpochReport report;
    report.epoch = epoch;
    report.seconds = seconds_since(start);
    report.loss = loss_sum / static_cast<double>(batches);
    report.samples_per_second = static_cast<double>(train.size()) / report.seconds;
    collect();
    if (threads > 1) {
      pending = std::async(std::launch::async, measure, network, report);
    } else {
      reports.push_back(measure(network, report));
      if (observer.on_epoch) observer.on_epoch(reports.back());
    }
  }
  collect();
  return reports;
}

std::vector<EpochReport> improve(Network& network, const Dataset& train, const Dataset& extra, const Dataset* test,
                                 const TrainingRecipe& recipe, const TrainingObserver& observer) {
  Dataset combined = train;
  combined.name = train.name + " + " + extra.name;
  combined.append(extra);
  return fit(network, combined, test, recipe, observer);
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
  if (network.classes() > 10) throw Error("evaluation counts at most 10 classes");
  // Each thread takes one contiguous share; predict_proba is const and keeps no state.
  const std::size_t shares = std::min<std::size_t>(static_cast<std::size_t>(resolve_threads(threads)), std::max<std::size_t>(1, data.size() / 1000));
  std::vector<std::future<Evaluation>> others;
  auto share = [&](std::size_t s) { return std::pair{data.size() * s / shares, data.size() * (s + 1) / shares}; };
  for (std::size_t s = 1; s < shares; ++s) {
    others.push_back(std::async(std::launch::async, [&, s] { return evaluate_range(network, data, share(s).first, share(s).second); }));
  }
  Evaluation result = evaluate_range(network, data, share(0).first, share(0).second);
  for (auto& other : others) {
    const Evaluation part = other.get();
    result.total += part.total;
    result.correct += part.correct;
    for (std::size_t t = 0; t < 10; ++t)
      for (std::size_t p = 0; p < 10; ++p) result.confusion[t][p] += part.confusion[t][p];
  }
  return result;
}

}  // namespace digits
