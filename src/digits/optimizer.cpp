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

// One tensor's update; θ, dθ, m, v are a weight matrix or a bias row and their state.
template <typename Tensor>
void update(const OptimizerSettings& s, long long t, Tensor& theta, const Tensor& dtheta, Tensor& m, Tensor& v) {
  const float lr = s.learning_rate;
  switch (s.kind) {
    case OptimizerKind::sgd:
      theta.noalias() -= lr * dtheta;
      break;
    case OptimizerKind::momentum:
      m = s.momentum * m + dtheta;
      theta.noalias() -= lr * m;
      break;
    case OptimizerKind::nesterov:
      m = s.momentum * m + dtheta;
      theta.noalias() -= lr * (dtheta + s.momentum * m);
      break;
    case OptimizerKind::adam: {
      m = s.beta1 * m + (1.0f - s.beta1) * dtheta;
      v = s.beta2 * v + (1.0f - s.beta2) * dtheta.cwiseAbs2();
      const float correction1 = 1.0f - std::pow(s.beta1, static_cast<float>(t));
      const float correction2 = 1.0f - std::pow(s.beta2, static_cast<float>(t));
      theta.array() -= lr * (m.array() / correction1) / ((v.array() / correction2).sqrt() + s.epsilon);
      break;
    }
  }
}

}  // namespace

void Optimizer::step(std::vector<Layer>& layers) {
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
  std::size_t i = 0;  // which layer with weights
  for (Layer& layer : layers) {
    const Parameters p = parameters(layer);
    if (!p.W) continue;
    if (settings.weight_decay > 0) *p.dW += settings.weight_decay * *p.W;  // ∂/∂W of (λ/2)·‖W‖²
    update(settings, steps_taken, *p.W, *p.dW, state[i].W1, state[i].W2);
    update(settings, steps_taken, *p.b, *p.db, state[i].b1, state[i].b2);
    ++i;
  }
}

}  // namespace digits
