// A seeded random number generator whose every draw is specified here, so the same seed gives the
// same weights and the same shuffles with any C++ standard library (std::normal_distribution and
// std::shuffle are implementation-defined; std::mt19937_64 is not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace digits {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  // Uniform on [0, 1) with 24 random bits: every float32 value it returns is exact.
  float uniform();
  // Uniform integer in [0, n), without modulo bias.
  std::size_t below(std::size_t n);
  // Standard normal N(0, 1) by the Box–Muller transform.
  float normal();
  // Fisher–Yates shuffle of indices.
  void shuffle(std::vector<std::size_t>& indices);

  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
  bool has_spare_normal_ = false;
  float spare_normal_ = 0.0f;
};

}  // namespace digits
