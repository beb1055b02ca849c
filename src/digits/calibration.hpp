// Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one number T > 0
// that divides every logit before the softmax, p = softmax(z / T), chosen on held-out images so that
// the probabilities a network shows mean what they say.
//
// Why a network needs it: a probability of 90% should be right nine times in ten. Label smoothing
// (loss.hpp) trains toward 0.91 instead of 1 for the right class, so a network trained with it says
// about 90% even for digits it reads right 99.6% of the time: its probabilities are too modest, and
// whatever reads them (the page's bars, the "sure" threshold of 70%, the number reader's scores,
// which multiply one probability per digit) is misled. T < 1 sharpens them again, T > 1 softens an
// over-confident network. Dividing by T never changes which class is the largest, so accuracy stays.
//
// T is fit by least negative log-likelihood on a validation set, then folded into the last layer:
// z / T = X·(W / T) + b / T, so the saved model needs no new field and every path (CLI, server,
// page) shows the calibrated probabilities. docs/how-it-works.md §9 works an example by hand.
#pragma once

#include <cstdint>
#include <span>

#include "digits/dataset.hpp"
#include "digits/network.hpp"
#include "digits/tensor.hpp"

namespace digits {

// The logits z (n × classes): every layer as prediction runs it, but not the softmax. With
// last_layer_input, also what the last layer read (n × its inputs): the features a tool can train
// another output on (tools/not_a_digit.cpp).
Matrix logits_of(const Network& network, const Dataset& data, Matrix* last_layer_input = nullptr);

// log Σⱼ e^{z_ij / T} for row i, the row's largest term taken out first (e^z overflows float at 89).
double logsumexp(const Matrix& logits, Eigen::Index row, double temperature);

// Mean negative log-likelihood of the labels at temperature T: mean over i of logsumexp(zᵢ/T) − z_{i,yᵢ}/T.
double mean_negative_log_likelihood(const Matrix& logits, std::span<const std::uint8_t> labels, double temperature);

// The T of least mean NLL, in [0.05, 20]. The NLL is convex in 1/T (a logsumexp of functions linear
// in 1/T, minus one linear in it), so golden-section search on log T finds the minimum.
double fit_temperature(const Matrix& logits, std::span<const std::uint8_t> labels);

// Divides the network's logits by T for good: the last layer's weights and biases are divided by it.
// Throws Error if the last layer is not a dense layer (no layer kind but dense ends a network today).
void fold_temperature(Network& network, double temperature);

// fit_temperature on `validation`'s logits, then fold_temperature. Returns T.
double calibrate_temperature(Network& network, const Dataset& validation);

}  // namespace digits
