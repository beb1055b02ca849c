// Temperature scaling: see calibration.hpp for what and why.
#include "digits/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <variant>
#include <vector>

#include "digits/dense_layer.hpp"
#include "digits/error.hpp"

namespace digits {

Matrix logits_of(const Network& network, const Dataset& data, Matrix* last_layer_input) {
  constexpr std::size_t kBatch = 500;
  Matrix logits(static_cast<Eigen::Index>(data.size()), network.classes());
  Matrix X, A, B;
  std::vector<std::uint8_t> labels;
  std::vector<std::size_t> indices;
  for (std::size_t start = 0; start < data.size(); start += kBatch) {
    indices.clear();
    for (std::size_t i = start; i < std::min(data.size(), start + kBatch); ++i) indices.push_back(i);
    gather_batch(data, indices, network.input_scale, X, labels);
    const Matrix* in = &X;
    for (std::size_t l = 0; l < network.layers.size(); ++l) {
      if (last_layer_input && l + 1 == network.layers.size()) {
        if (start == 0) last_layer_input->resize(static_cast<Eigen::Index>(data.size()), in->cols());
        last_layer_input->middleRows(static_cast<Eigen::Index>(start), in->rows()) = *in;
      }
      Matrix& out = l % 2 == 0 ? A : B;
      infer(network.layers[l], *in, out);
      in = &out;
    }
    logits.middleRows(static_cast<Eigen::Index>(start), in->rows()) = *in;
  }
  return logits;
}

double logsumexp(const Matrix& logits, Eigen::Index row, double temperature) {
  const double top = logits.row(row).maxCoeff() / temperature;
  double sum = 0;
  for (Eigen::Index j = 0; j < logits.cols(); ++j) sum += std::exp(logits(row, j) / temperature - top);
  return top + std::log(sum);
}

double mean_negative_log_likelihood(const Matrix& logits, std::span<const std::uint8_t> labels, double temperature) {
  if (static_cast<std::size_t>(logits.rows()) != labels.size() || labels.empty())
    throw Error("temperature: " + std::to_string(logits.rows()) + " rows of logits for " + std::to_string(labels.size()) + " labels");
  double sum = 0;
  for (Eigen::Index i = 0; i < logits.rows(); ++i)
    sum += logsumexp(logits, i, temperature) - logits(i, labels[static_cast<std::size_t>(i)]) / temperature;
  return sum / static_cast<double>(logits.rows());
}

double fit_temperature(const Matrix& logits, std::span<const std::uint8_t> labels) {
  // Golden-section search: keep a bracket [low, high] of log T and two probes a < b inside it at
  // the golden ratio; the probe with the larger NLL cannot be next to the minimum's side it is on,
  // so the bracket shrinks past it by a factor 0.618 each step, reusing the other probe. 60 steps
  // shrink log(400) to 1e-12.
  const double golden = (std::sqrt(5.0) - 1) / 2;
  double low = std::log(0.05), high = std::log(20.0);
  double a = high - golden * (high - low), b = low + golden * (high - low);
  double fa = mean_negative_log_likelihood(logits, labels, std::exp(a));
  double fb = mean_negative_log_likelihood(logits, labels, std::exp(b));
  for (int step = 0; step < 60; ++step) {
    if (fa < fb) {
      high = b, b = a, fb = fa, a = high - golden * (high - low);
      fa = mean_negative_log_likelihood(logits, labels, std::exp(a));
    } else {
      low = a, a = b, fa = fb, b = low + golden * (high - low);
      fb = mean_negative_log_likelihood(logits, labels, std::exp(b));
    }
  }
  return std::exp((low + high) / 2);
}

void fold_temperature(Network& network, double temperature) {
  if (!(temperature > 0) || !std::isfinite(temperature)) throw Error("temperature: " + std::to_string(temperature) + " is not a positive number");
  auto* last = std::get_if<DenseLayer>(&network.layers.back());
  if (!last) throw Error("temperature: the network's last layer is not a dense layer, so its logits cannot be scaled");
  const auto scale = static_cast<float>(1 / temperature);
  last->W *= scale;  // z/T = X·(W/T) + b/T
  last->b *= scale;
  network.forget_folded();  // the batch norms folded for prediction hold a copy of the old last layer
}

double calibrate_temperature(Network& network, const Dataset& validation) {
  const Matrix logits = logits_of(network, validation);
  const double temperature = fit_temperature(logits, validation.labels);
  fold_temperature(network, temperature);
  return temperature;
}

}  // namespace digits
