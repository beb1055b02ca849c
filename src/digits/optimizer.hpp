// Optimizers: how a step turns the gradients dW, db into new weights. Each owns its state.
#pragma once

#include <string_view>
#include <vector>

#include "digits/layer.hpp"
#include "digits/worker_pool.hpp"

namespace digits {

enum class OptimizerKind { sgd, momentum, nesterov, adam };
std::string_view optimizer_name(OptimizerKind kind);
OptimizerKind parse_optimizer(std::string_view name);

struct OptimizerSettings {
  OptimizerKind kind = OptimizerKind::sgd;
  float learning_rate = 0.005f;
  float momentum = 0.9f;     // momentum and nesterov
  float beta1 = 0.9f;        // adam
  float beta2 = 0.999f;      // adam
  float epsilon = 1e-8f;     // adam
  float weight_decay = 0;    // L2: λ in loss + (λ/2)·Σ W², so each weight's gradient gains λ·W (biases and batch norm's γ, β are not decayed)
};

class Optimizer {
 public:
  explicit Optimizer(OptimizerSettings settings) : settings(settings) {}

  // Updates W and b of every layer that has them (dense and conv; γ and β of batch norm) from its dW and db (for θ
  // standing for either):
  //   sgd:       θ ← θ − η·dθ
  //   momentum:  v ← μ·v + dθ;          θ ← θ − η·v
  //   nesterov:  v ← μ·v + dθ;          θ ← θ − η·(dθ + μ·v)          (Sutskever et al., 2013, in the
  //              reparametrised form of Bengio et al., 2013, that PyTorch uses: θ is the look-ahead point)
  //   adam:      t ← t + 1 (once per step, not per tensor)
  //              m ← β₁·m + (1−β₁)·dθ;  v ← β₂·v + (1−β₂)·dθ²
  //              θ ← θ − η·m̂ / (√v̂ + ε),  m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)   (Kingma & Ba, 2015)
  // With weight decay, dθ is first replaced by dθ + λ·θ for the weights (in `update`): dense and
  // conv W; not biases, nor batch norm's γ and β (layer.hpp, Parameters, says why). L2, coupled,
  // so under Adam it is divided by √v̂ too (not AdamW's decoupled decay); the reported loss leaves
  // the (λ/2)·Σ W² penalty out.
  // The updates run on `pool`'s threads, when given one, for networks of kSplitElements weights
  // or more; each element's update is the same wherever it runs.
  void step(std::vector<Layer>& layers, WorkerPool* pool = nullptr);
  static constexpr int kShares = 4;
  static constexpr Eigen::Index kSplitElements = 200'000;

  OptimizerSettings settings;
  long long steps_taken = 0;

  // The running moments of each layer with weights, in order; empty until the first step. Saved in checkpoints so that
  // training resumes exactly where it stopped.
  struct Moments {
    WeightMatrix W1, W2;  // first and second moments (momentum uses only the first: the velocity)
    RowVector b1, b2;
  };
  std::vector<Moments> state;
};

}  // namespace digits
