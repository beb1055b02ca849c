// The output of the network: softmax fused with cross-entropy.
#pragma once

#include <cstdint>
#include <span>

#include "digits/tensor.hpp"

namespace digits {

// P = softmax(Z), row by row: P_ij = exp(Z_ij − max_k Z_ik) / Σ_k exp(Z_ik − max_k Z_ik).
// Subtracting the row max changes nothing mathematically and keeps exp from overflowing: float32
// exp overflows past 88.7, which raw-pixel logits pass (the ancestor's unshifted softmax, run in
// float32, turns to inf/inf = NaN; in its float64 the limit is 709.8, which it rarely reached).
// Z, P: (batch × classes); P may alias Z.
void softmax(const Matrix& Z, Matrix& P);

// Mean cross-entropy of the batch, L = −(1/batch) Σ_i log P_{i,y_i}, and its gradient with
// respect to the logits, which is where fusing pays off:
//   dZ = (P − Y) / batch          (batch × classes), Y the one-hot labels.
// This is the only place the 1/batch of the mean appears. Derivation: docs/how-it-works.md.
// Z: (batch × classes) logits; labels: batch entries in [0, classes).
//
// With label smoothing ε > 0 (Szegedy et al. 2016, "Rethinking the Inception architecture", §7)
// the target is no longer one-hot but Y = (1 − ε)·onehot(y) + ε/K for K classes: the network is
// asked for 1 − ε + ε/K on the right class, never for a certainty it can only approach by growing
// its logits without end. The loss is then L = −(1/batch) Σ_i Σ_k Y_ik log P_ik, and the gradient
// keeps its form, dZ = (P − Y) / batch. With ε = 0 this is exactly the one-hot loss above.
float softmax_cross_entropy(const Matrix& Z, std::span<const std::uint8_t> labels, Matrix& P, Matrix& dZ,
                            float label_smoothing = 0);

}  // namespace digits
