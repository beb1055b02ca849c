#include "digits/fine_tune.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "digits/error.hpp"
#include "digits/loss.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"
#include "digits/trainer.hpp"

namespace digits {

namespace {

void check_settings(const FineTuneSettings& s) {
  if (s.steps < 0) throw Error("fine-tune: steps must not be negative (got " + std::to_string(s.steps) + ")");
  if (s.batch <= 0) throw Error("fine-tune: the batch size must be positive (got " + std::to_string(s.batch) + ")");
  if (!(s.learning_rate > 0.0f) || !std::isfinite(s.learning_rate)) throw Error("fine-tune: the learning rate must be a positive number");
  if (!(s.momentum >= 0.0f && s.momentum < 1.0f)) throw Error("fine-tune: momentum must be in [0, 1)");
  if (!(s.new_share > 0.0 && s.new_share <= 1.0)) throw Error("fine-tune: new_share must be in (0, 1]");
  if (!(s.max_validation_drop >= 0.0 && s.max_validation_drop <= 1.0)) throw Error("fine-tune: max_validation_drop must be in [0, 1]");
  if (s.trained_layers < 0) throw Error("fine-tune: trained_layers must not be negative (got " + std::to_string(s.trained_layers) + ")");
  if (!(s.layer_rate_decay > 0.0f && s.layer_rate_decay <= 1.0f)) throw Error("fine-tune: layer_rate_decay must be in (0, 1]");
  if (!(s.pull_to_start >= 0.0f) || !std::isfinite(s.pull_to_start)) throw Error("fine-tune: pull_to_start must be a number ≥ 0");
  if (!(s.distillation >= 0.0f && s.distillation <= 1.0f)) throw Error("fine-tune: distillation must be in [0, 1]");
}

void check_fits(const Network& network, const Dataset& data) {
  if (data.features() != network.inputs())
    throw Error(data.name + ": images have " + std::to_string(data.features()) + " pixels but the network takes " + std::to_string(network.inputs()));
  for (std::uint8_t label : data.labels) {
    if (label >= network.classes())
      throw Error(data.name + ": label " + std::to_string(label) + " but the network has " + std::to_string(network.classes()) + " classes");
  }
}

std::string percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", 100 * fraction);
  return text;
}

std::string points(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f points", 100 * fraction);
  return text;
}

std::string right_of(const Evaluation& e) { return std::to_string(e.correct) + "/" + std::to_string(e.total); }

// One part of every batch: `count` images drawn with replacement from `source`, gathered into their
// own matrix (fixed size, so nothing is reallocated after the first step) and then copied into
// rows [offset, offset + count) of the batch.
struct BatchPart {
  const Dataset* source = nullptr;
  std::size_t count = 0, offset = 0;
  std::vector<std::size_t> indices;
  Matrix X;
  std::vector<std::uint8_t> labels;

  void draw_into(Rng& rng, float scale, Matrix& batch_X, std::vector<std::uint8_t>& batch_labels) {
    if (count == 0) return;
    indices.resize(count);
    for (std::size_t& index : indices) index = rng.below(source->size());
    gather_batch(*source, indices, scale, X, labels);
    batch_X.middleRows(static_cast<Eigen::Index>(offset), static_cast<Eigen::Index>(count)) = X;
    std::copy(labels.begin(), labels.end(), batch_labels.begin() + static_cast<std::ptrdiff_t>(offset));
  }
};

// One fine-tuning step as FineTuneSettings' recipe asks, on a batch X (batch × inputs, already
// scaled): Network::train_step's forward, loss, backward and momentum update, with four changes:
// the layers below the first trained one run as in prediction (`infer`) and are not
// backpropagated; batch norm may run with its running statistics (forward_frozen); the replay
// rows' targets may mix in the live network's probabilities; and the update has per-layer rates
// and the pull toward the live weights:
//   g = dθ + λ·(θ − θ₀);  v ← μ·v + g;  θ ← θ − η_k·v
// Allocates its workspaces on the first step only.
class RecipeStep {
 public:
  RecipeStep(Network& candidate, const Network& live, const FineTuneSettings& settings)
      : candidate_(candidate), live_(live), settings_(settings) {
    std::vector<std::size_t> weighted;  // conv and dense layers
    for (std::size_t i = 0; i < candidate.layers.size(); ++i)
      if (std::holds_alternative<DenseLayer>(candidate.layers[i]) || std::holds_alternative<Conv2dLayer>(candidate.layers[i])) weighted.push_back(i);
    const std::size_t trained = settings.trained_layers == 0 ? weighted.size() : std::min<std::size_t>(settings.trained_layers, weighted.size());
    first_trained_ = weighted[weighted.size() - trained];
    // Each trained layer's rate: η·decay^k, k counted down from the output layer; a batch norm
    // takes the rate of the layer before it.
    float rate = settings.learning_rate;
    rates_.assign(candidate.layers.size(), 0.0f);
    for (std::size_t k = weighted.size(); k-- > weighted.size() - trained;) {
      const std::size_t end = k + 1 < weighted.size() ? weighted[k + 1] : candidate.layers.size();
      for (std::size_t i = weighted[k]; i < end; ++i) rates_[i] = rate;
      rate *= settings.layer_rate_decay;
    }
    velocity_.resize(candidate.layers.size());
    for (std::size_t i = first_trained_; i < candidate.layers.size(); ++i) {
      const Parameters p = parameters(candidate.layers[i]);
      if (!p.W || !updated(i)) continue;
      velocity_[i].W1 = WeightMatrix::Zero(p.W->rows(), p.W->cols());
      velocity_[i].b1 = RowVector::Zero(p.b->size());
    }
  }

  // `distilled`: rows [first, first + count) of the batch are MNIST replay, whose targets mix in
  // the live network's probabilities when settings.distillation > 0.
  void run(const Matrix& X, std::span<const std::uint8_t> labels, std::size_t distilled_first, std::size_t distilled_count) {
    std::vector<Layer>& layers = candidate_.layers;
    // Forward. Below the first trained layer, as in prediction, ping-ponging between two buffers.
    const Matrix* A = &X;
    for (std::size_t i = 0; i < first_trained_; ++i) {
      Matrix& out = frozen_[i % 2];
      infer(layers[i], *A, out);
      A = &out;
    }
    for (std::size_t i = first_trained_; i < layers.size(); ++i) {
      if (BatchNormLayer* bn = std::get_if<BatchNormLayer>(&layers[i]); bn && settings_.batch_norm != FineTuneSettings::BatchNorm::batch)
        A = &bn->forward_frozen(*A);
      else
        A = &forward(layers[i], *A, candidate_.pool());
    }
    softmax_cross_entropy(*A, labels, P_, dZ_);
    // Distillation: target T = (1 − α)·Y + α·P_live, so dZ = (P − T)/batch = (P − Y)/batch + α·(Y − P_live)/batch.
    // Only on the rows the live network reads right: its mistakes are not worth keeping, and a
    // weak live network (one that reads little right) then still learns MNIST from the replay.
    if (settings_.distillation > 0 && distilled_count > 0) {
      const auto rows = [&](const Matrix& M) { return M.middleRows(static_cast<Eigen::Index>(distilled_first), static_cast<Eigen::Index>(distilled_count)); };
      live_probabilities(rows(X));
      const float alpha_over_batch = settings_.distillation / static_cast<float>(X.rows());
      for (std::size_t r = 0; r < distilled_count; ++r) {
        const auto row = static_cast<Eigen::Index>(distilled_first + r);
        Eigen::Index live_answer = 0;
        teacher_.row(static_cast<Eigen::Index>(r)).maxCoeff(&live_answer);
        if (live_answer != labels[distilled_first + r]) continue;
        dZ_.row(row) -= alpha_over_batch * teacher_.row(static_cast<Eigen::Index>(r));
        dZ_(row, labels[distilled_first + r]) += alpha_over_batch;
      }
    }
    // Backward, down to the first trained layer.
    const Matrix* dA = &dZ_;
    for (std::size_t i = layers.size(); i-- > first_trained_;) {
      const bool compute_dX = i > first_trained_;
      if (BatchNormLayer* bn = std::get_if<BatchNormLayer>(&layers[i]); bn && settings_.batch_norm != FineTuneSettings::BatchNorm::batch)
        dA = &bn->backward_frozen(*dA, compute_dX);
      else
        dA = &backward(layers[i], *dA, compute_dX, candidate_.pool());
    }
    // The update, with the pull toward the live weights θ₀.
    const float mu = settings_.momentum, lambda = settings_.pull_to_start;
    for (std::size_t i = first_trained_; i < layers.size(); ++i) {
      const Parameters p = parameters(layers[i]);
      if (!p.W || !updated(i)) continue;
      const ConstParameters start = parameters(live_.layers[i]);
      Moments& v = velocity_[i];
      momentum_step(p.W->data(), p.dW->data(), start.W->data(), v.W1.data(), p.W->size(), mu, lambda, rates_[i]);
      momentum_step(p.b->data(), p.db->data(), start.b->data(), v.b1.data(), p.b->size(), mu, lambda, rates_[i]);
    }
  }

 private:
  using Moments = Optimizer::Moments;

  // One tensor's momentum step with the pull toward θ₀: v ← μ·v + (dθ + λ·(θ − θ₀)), θ ← θ − rate·v.
  // Written element by element in the very form of optimizer.cpp's momentum update, so that with
  // λ = 0 the compiler makes the same arithmetic of it (the same fused multiply-adds) and the old
  // recipe takes Network::train_step's step bit for bit, whatever the optimisation level.
  static void momentum_step(float* __restrict w, const float* __restrict dw, const float* __restrict w0, float* __restrict velocity, Eigen::Index n,
                            float mu, float lambda, float rate) {
    for (Eigen::Index k = 0; k < n; ++k) {
      velocity[k] = mu * velocity[k] + (dw[k] + lambda * (w[k] - w0[k]));
      w[k] -= rate * velocity[k];
    }
  }

  // Whether layer i's parameters change: every trained layer's, but batch norm's γ and β when fixed.
  bool updated(std::size_t i) const {
    return i >= first_trained_ && !(std::holds_alternative<BatchNormLayer>(candidate_.layers[i]) && settings_.batch_norm == FineTuneSettings::BatchNorm::fixed);
  }

  // teacher_ = the live network's probabilities for scaled images X, as predict_proba gives them
  // for the same images unscaled.
  void live_probabilities(const Eigen::Ref<const Matrix>& X) {
    teacher_ = X;
    for (const Layer& layer : live_.layers) {
      infer(layer, teacher_, teacher_next_);
      std::swap(teacher_, teacher_next_);
    }
    softmax(teacher_, teacher_);
  }

  Network& candidate_;
  const Network& live_;
  const FineTuneSettings& settings_;
  std::size_t first_trained_ = 0;
  std::vector<float> rates_;         // per layer: its η, 0 below the first trained one
  std::vector<Moments> velocity_;    // per layer: v of W and b (W1, b1), empty for those not updated
  std::array<Matrix, 2> frozen_;     // the frozen layers' outputs
  Matrix P_, dZ_, teacher_, teacher_next_;
};

GuardVerdict judge(const Network& live, const Network& candidate, const Dataset& corrections, const Dataset& validation,
                   const FineTuneSettings& settings) {
  Evaluation validation_before;
  if (settings.live_validation_correct >= 0) {
    validation_before.total = validation.size();
    validation_before.correct = static_cast<std::size_t>(settings.live_validation_correct);
  } else {
    validation_before = evaluate(live, validation, settings.threads);
  }
  const Evaluation validation_after = evaluate(candidate, validation, settings.threads);
  const Evaluation corrections_before = evaluate(live, corrections, settings.threads);
  const Evaluation corrections_after = evaluate(candidate, corrections, settings.threads);

  GuardVerdict verdict;
  verdict.validation_before = validation_before.accuracy();
  verdict.validation_after = validation_after.accuracy();
  verdict.validation_correct_before = static_cast<long long>(validation_before.correct);
  verdict.validation_correct_after = static_cast<long long>(validation_after.correct);
  verdict.corrections_before = corrections_before.accuracy();
  verdict.corrections_after = corrections_after.accuracy();

  // Counted in images, not compared as floats: with 5,000 validation images and a 0.3-point
  // margin, the candidate may read at most 15 fewer of them right.
  const auto allowed_loss = static_cast<long long>(std::floor(settings.max_validation_drop * static_cast<double>(validation.size()) + 1e-9));
  const long long lost = static_cast<long long>(validation_before.correct) - static_cast<long long>(validation_after.correct);
  const bool validation_holds = lost <= allowed_loss;
  const long long origin = settings.origin_validation_correct;
  const bool origin_holds = origin < 0 || origin - static_cast<long long>(validation_after.correct) <= allowed_loss;
  // "Improves": more of the new corrections right than the live network. When the live network
  // already reads them all, nothing can improve; the candidate must still read them all.
  const bool all_right_before = corrections_before.correct == corrections_before.total;
  const bool corrections_improve = all_right_before ? corrections_after.correct == corrections_after.total
                                                    : corrections_after.correct > corrections_before.correct;

  std::vector<std::string> problems;
  if (!validation_holds)
    problems.push_back("validation accuracy fell from " + percent(verdict.validation_before) + " to " + percent(verdict.validation_after) +
                       ", more than the allowed " + points(settings.max_validation_drop));
  else if (!origin_holds)  // a fall from the live network says it already; this is the slow drift
    problems.push_back("validation accuracy " + percent(verdict.validation_after) + " would be more than " + points(settings.max_validation_drop) +
                       " below the starting model's " + percent(static_cast<double>(origin) / static_cast<double>(validation.size())));
  if (!corrections_improve) {
    if (all_right_before)
      problems.push_back("the live model already read all " + std::to_string(corrections_before.total) + " new judgements right and the candidate reads only " +
                         right_of(corrections_after));
    else
      problems.push_back("the new corrections are not read right more often: " + right_of(corrections_before) + " before, " + right_of(corrections_after) + " after");
  }
  verdict.accepted = problems.empty();
  if (verdict.accepted) {
    verdict.reason = "accepted: the new corrections went from " + right_of(corrections_before) + " to " + right_of(corrections_after) +
                     " right, and validation accuracy from " + percent(verdict.validation_before) + " to " + percent(verdict.validation_after) +
                     " (allowed drop " + points(settings.max_validation_drop) + ")";
  } else {
    verdict.reason = "rejected: " + problems.front();
    for (std::size_t i = 1; i < problems.size(); ++i) verdict.reason += "; and " + problems[i];
  }
  return verdict;
}

}  // namespace

std::pair<Dataset, Dataset> guard_split(const Dataset& mnist_train) {
  auto [validation, replay] = split_validation(mnist_train, kGuardValidationImages, kGuardSplitSeed);
  validation.name = mnist_train.name + " (guard validation)";
  replay.name = mnist_train.name + " (replay)";
  return {std::move(replay), std::move(validation)};
}

std::pair<Dataset, Dataset> guard_split(Dataset&& mnist_train) {
  const std::string name = mnist_train.name;
  auto [validation, replay] = split_validation(std::move(mnist_train), kGuardValidationImages, kGuardSplitSeed);
  validation.name = name + " (guard validation)";
  replay.name = name + " (replay)";
  return {std::move(replay), std::move(validation)};
}

FineTuneResult fine_tune_guarded(const Network& live, const Dataset& corrections, const Dataset& earlier, const Dataset& replay,
                                 const Dataset& validation, const FineTuneSettings& settings) {
  check_settings(settings);
  if (corrections.size() == 0) throw Error("fine-tune: no new corrections to learn from");
  if (replay.size() == 0) throw Error("fine-tune: the replay set is empty (it keeps the network from forgetting)");
  if (validation.size() == 0) throw Error("fine-tune: the validation set is empty (the guard needs one)");
  if (settings.live_validation_correct > static_cast<long long>(validation.size()))
    throw Error("fine-tune: the live network cannot read " + std::to_string(settings.live_validation_correct) + " of " +
                std::to_string(validation.size()) + " validation images right");
  for (const Dataset* data : {&corrections, &earlier, &replay, &validation}) check_fits(live, *data);

  // Each batch: new corrections first, then earlier corrections, then MNIST replay. With 32 and
  // new_share 0.25: 8 new, 12 earlier, 12 MNIST (or 24 MNIST when there are no earlier ones).
  const auto batch = static_cast<std::size_t>(settings.batch);
  const std::size_t new_count = std::clamp<std::size_t>(static_cast<std::size_t>(std::lround(settings.new_share * static_cast<double>(batch))), 1, batch);
  const std::size_t rest = batch - new_count;
  const std::size_t earlier_count = earlier.size() > 0 ? rest / 2 : 0;
  std::array<BatchPart, 3> parts;
  auto plan = [&](BatchPart& part, const Dataset& source, std::size_t count, std::size_t offset) {
    part.source = &source;
    part.count = count;
    part.offset = offset;
  };
  plan(parts[0], corrections, new_count, 0);
  plan(parts[1], earlier, earlier_count, new_count);
  plan(parts[2], replay, rest - earlier_count, new_count + earlier_count);

  // The copy is all that changes. SGD with momentum, as in optimizer.hpp:
  //   v ← μ·v + dθ;  θ ← θ − η·v
  // from zero velocity, with a small η: a nudge, not a retraining; RecipeStep adds the recipe.
  FineTuneResult result{live, {}};
  Network& candidate = result.candidate;
  candidate.forget_folded();  // the copy shares the live network's folded layers; its own weights are about to change
  RecipeStep step_of(candidate, live, settings);
  Rng rng(settings.seed);
  Matrix X(static_cast<Eigen::Index>(batch), candidate.inputs());
  std::vector<std::uint8_t> labels(batch);
  auto stop_if_cancelled = [&] {
    if (settings.cancelled && settings.cancelled->load()) throw FineTuneCancelled("fine-tune: cancelled");
  };
  for (int step = 0; step < settings.steps; ++step) {
    stop_if_cancelled();
    for (BatchPart& part : parts) part.draw_into(rng, candidate.input_scale, X, labels);
    step_of.run(X, labels, parts[2].offset, parts[2].count);
  }
  stop_if_cancelled();
  candidate.fold_for_prediction();  // the guard reads 5,000 images with it

  result.verdict = judge(live, candidate, corrections, validation, settings);
  return result;
}

}  // namespace digits
