#include "digits/trainer.hpp"

#include <chrono>
#include <numeric>

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
    if (recipe.measure_train_accuracy) report.train_accuracy = evaluate(network, train).accuracy();
    if (test) report.test_accuracy = evaluate(network, *test).accuracy();
    reports.push_back(report);
    if (observer.on_epoch) observer.on_epoch(report);
  }
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

Evaluation evaluate(const Network& network, const Dataset& data) {
  check_fits(network, data);
  if (network.classes() > 10) throw Error("evaluation counts at most 10 classes");
  Evaluation result;
  constexpr std::size_t kChunk = 2000;
  Matrix X;
  std::vector<std::uint8_t> labels;
  std::vector<std::size_t> indices;
  for (std::size_t first = 0; first < data.size(); first += kChunk) {
    const std::size_t count = std::min(kChunk, data.size() - first);
    indices.resize(count);
    std::iota(indices.begin(), indices.end(), first);
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

}  // namespace digits
