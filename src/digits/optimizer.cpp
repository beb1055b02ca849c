#include "digits/optimizer.hpp"

#include <cmath>

#include "digits/error.hpp"

namespace digits {

std::string_view optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd: return "sgd";
    case OptimizerKind::momentum: return "momentum";
    case OptimizerKind::nesterov: return "nesterov";
    case OptimizerKind::adam: return "adam";
  }
  return "unknown";
}

OptimizerKind parse_optimizer(std::string_view name) {
  for (OptimizerKind k : {OptimizerKind::sgd, OptimizerKind::momentum, OptimizerKind::nesterov, OptimizerKind::adam}) {
    if (name == optimizer_name(k)) return k;
  }
  throw Error("unknown optimizer '" + std::string(name) + "' (expected sgd, momentum, nesterov or adam)");
}

namespace {

// One stretch of one tensor's update: θ, dθ, m, v are the same elements of a weight matrix (or a
// bias row) and of its state, seen as flat vectors: every element's update needs only its own
// values, so a tensor cut into stretches updates exactly as a whole.
using Flat = Eigen::Map<Eigen::VectorXf>;
void update(const OptimizerSettings& s, long long t, float weight_decay, Flat theta, Flat dtheta, Flat m, Flat v) {
  const float lr = s.learning_rate, mu = s.momentum, lambda = weight_decay;
  // One pass over the elements for the first three (the update is limited by memory, not arithmetic);
  // g is dθ with the weight decay's λ·θ, the gradient of (λ/2)·‖θ‖², added. __restrict: the four
  // tensors never overlap, and without the promise the compiler updates one element at a time.
  float* __restrict w = theta.data();
  const float* __restrict dw = dtheta.data();
  float* __restrict velocity = m.data();
  const Eigen::Index n = theta.size();
  switch (s.kind) {
    case OptimizerKind::sgd:
      for (Eigen::Index i = 0; i < n; ++i) w[i] -= lr * (dw[i] + lambda * w[i]);
      break;
    case OptimizerKind::momentum:
      for (Eigen::Index i = 0; i < n; ++i) {
        velocity[i] = mu * velocity[i] + (dw[i] + lambda * w[i]);
        w[i] -= lr * velocity[i];
      }
      break;
    case OptimizerKind::nesterov:
      for (Eigen::Index i = 0; i < n; ++i) {
        const float g = dw[i] + lambda * w[i];
        velocity[i] = mu * velocity[i] + g;
        w[i] -= lr * (g + mu * velocity[i]);
      }
      break;
    case OptimizerKind::adam: {
      if (lambda > 0) dtheta += lambda * theta;
      m = s.beta1 * m + (1.0f - s.beta1) * dtheta;
      v = s.beta2 * v + (1.0f - s.beta2) * dtheta.cwiseAbs2();
      const float correction1 = 1.0f - std::pow(s.beta1, static_cast<float>(t));
      const float correction2 = 1.0f - std::pow(s.beta2, static_cast<float>(t));
      theta.array() -= lr * (m.array() / correction1) / ((v.array() / correction2).sqrt() + s.epsilon);
      break;
    }
  }
}

// Elements first…first+count−1 of a tensor (a matrix or a row, stored contiguously) as a flat vector.
template <typename Tensor>
Flat stretch(Tensor& tensor, Eigen::Index first, Eigen::Index count) {
  return Flat(tensor.data() + first, count);
}

}  // namespace

void Optimizer::step(std::vector<Layer>& layers, WorkerPool* pool) {
  std::size_t with_weights = 0;
  for (Layer& layer : layers) with_weights += parameters(layer).W != nullptr;
  if (state.size() != with_weights) {
    state.clear();
    for (Layer& layer : layers) {
      const Parameters p = parameters(layer);
      if (!p.W) continue;
      Moments& m = state.emplace_back();
      m.W1 = m.W2 = WeightMatrix::Zero(p.W->rows(), p.W->cols());
      m.b1 = m.b2 = RowVector::Zero(p.b->size());
    }
  }
  ++steps_taken;
  // Every tensor is cut into the same kShares stretches; the shares run on the pool's threads
  // when the network is large enough for that to pay (a few microseconds per job).
  Eigen::Index elements = 0;
  for (Layer& layer : layers)
    if (const Parameters p = parameters(layer); p.W) elements += p.W->size();
  run_tasks(elements >= kSplitElements ? pool : nullptr, kShares, [&](int share) {
    std::size_t i = 0;  // which layer with weights
    for (Layer& layer : layers) {
      const Parameters p = parameters(layer);
      if (!p.W) continue;
      Moments& moments = state[i++];
      const auto [W_first, W_count] = share_of(p.W->size(), kShares, share);
      update(settings, steps_taken, p.decay ? settings.weight_decay : 0.0f, stretch(*p.W, W_first, W_count), stretch(*p.dW, W_first, W_count),
             stretch(moments.W1, W_first, W_count), stretch(moments.W2, W_first, W_count));
      const auto [b_first, b_count] = share_of(p.b->size(), kShares, share);
      update(settings, steps_taken, 0.0f, stretch(*p.b, b_first, b_count), stretch(*p.db, b_first, b_count),  // biases: no decay
             stretch(moments.b1, b_first, b_count), stretch(moments.b2, b_first, b_count));
    }
  });
}

}  // namespace digits
