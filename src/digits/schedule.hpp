// Learning-rate schedules: how the step size changes over training.
#pragma once

#include <string>
#include <string_view>

namespace digits {

struct Schedule {
  enum class Kind { constant, step, cosine };
  Kind kind = Kind::constant;
  double warmup_epochs = 0;    // linear ramp from 0 to the base rate over these epochs
  double step_every = 10;      // step: multiply by step_factor every step_every epochs
  double step_factor = 0.5;
  double final_fraction = 0;   // cosine: the rate at the end, as a fraction of the base
};

// The rate at `progress` epochs into training (fractional: 2.5 is half-way through epoch 3) of
// `total_epochs`, for the base rate η:
//   warm-up (progress < w):  η · progress / w
//   constant:                η
//   step:                    η · factor^⌊(progress − w) / every⌋
//   cosine:                  η · (f + (1 − f) · ½ (1 + cos(π · (progress − w) / (total − w))))   (Loshchilov & Hutter, 2017)
double learning_rate_at(const Schedule& schedule, double base, double progress, int total_epochs);

// "constant", "step:EVERY:FACTOR", "cosine" or "cosine:FINAL", each optionally followed by
// ",warmup:EPOCHS". Throws Error naming the part it cannot read.
Schedule parse_schedule(std::string_view text);
std::string describe(const Schedule& schedule);

}  // namespace digits
