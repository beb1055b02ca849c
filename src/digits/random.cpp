#include "digits/random.hpp"

#include <cmath>
#include <numbers>

namespace digits {

float Rng::uniform() { return static_cast<float>(engine_() >> 40) * 0x1.0p-24f; }

std::size_t Rng::below(std::size_t n) {
  // Reject the top sliver of the 64-bit range that would make some remainders more likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t draw;
  do {
    draw = engine_();
  } while (draw >= limit);
  return static_cast<std::size_t>(draw % n);
}

float Rng::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  // Box–Muller: for u1, u2 uniform on (0, 1], r = √(−2 ln u1) and θ = 2π u2 give two independent
  // normals r·cos θ and r·sin θ. Computed in double so the tails are right.
  const double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_normal_ = static_cast<float>(r * std::sin(theta));
  has_spare_normal_ = true;
  return static_cast<float>(r * std::cos(theta));
}

void Rng::shuffle(std::vector<std::size_t>& indices) {
  for (std::size_t i = indices.size(); i > 1; --i) {
    std::swap(indices[i - 1], indices[below(i)]);
  }
}

}  // namespace digits
