// Data augmentation on the fly: every time training sees a digit it sees a slightly different one —
// moved, turned, scaled, slanted, elastically bent, its strokes thinner or thicker — so a dense
// network learns the shapes rather than the pixels. Seeded: the same seed gives the same images.
// What each transform does, the defaults and a picture: docs/augmentation.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/random.hpp"
#include "digits/tensor.hpp"
#include "digits/worker_pool.hpp"

namespace digits {

// How strong each transform may be. Every image draws its own amounts uniformly within these limits.
// The defaults are Simard et al.'s elastic distortion (α = 34, σ = 4 on 28×28; "Best practices for
// convolutional neural networks applied to visual document analysis", ICDAR 2003) with a modest
// affine part, in the range Cireşan et al. (2010) used to train plain MLPs on MNIST.
struct AugmentSettings {
  float max_shift = 2.0f;               // pixels, each axis
  float max_rotation_degrees = 12.0f;   // ±, about the image centre
  float max_scale = 0.12f;              // the digit's size times 1 ± this (same factor both axes)
  float max_shear = 0.15f;              // slant: x moves by up to ±this · (y − centre)
  // Width against height: x is scaled by a factor drawn log-uniformly in [1/(1 + this), 1 + this],
  // so a digit comes out as narrow or as wide as people draw them (MNIST keeps each writer's
  // proportions; docs/robustness.md, "narrow" and "wide"). 0 = off, and then no draw is made, so
  // the other transforms' draws stay what they were before this existed.
  float max_aspect = 0.0f;
  // Share of images whose width changes. Below 1, most images keep MNIST's proportions and a few
  // are narrowed or widened strongly; 1 makes no extra draw (every image's width changes).
  float aspect_probability = 1.0f;
  float elastic_alpha = 34.0f;          // α: strength of the elastic displacement, pixels; 0 = off
  float elastic_sigma = 4.0f;           // σ: smoothness of the displacement field, pixels
  float elastic_probability = 0.5f;     // share of images that get the elastic distortion
  float thickness_probability = 0.3f;   // share of images whose strokes are dilated or eroded one step

  // Changes nothing: every limit and probability 0.
  static AugmentSettings none();
  // True when augment changes nothing (every limit 0, or the transforms switched off by probability 0).
  bool is_none() const;
  bool operator==(const AugmentSettings&) const = default;
};

// Reads the --augment flag:
//   none                       no augmentation
//   default                    AugmentSettings{}
//   shift=2,rotate=10,…        only the transforms listed; start the list with `default,` to
//                              change some defaults and keep the rest ("default,elastic=0")
// Keys: shift=PIXELS  rotate=DEGREES  scale=FRACTION  shear=FRACTION
//       aspect=FRACTION[:PROBABILITY] (every image if no probability is given)
//       elastic=ALPHA:SIGMA[:PROBABILITY] (elastic=0 turns it off; probability 0.5 if not given)
//       thickness=PROBABILITY
// Throws Error naming the part it cannot read or the value out of range.
AugmentSettings parse_augment(std::string_view spec);
// The settings as parse_augment reads them back: "none" or "shift=2,rotate=12,…".
std::string describe(const AugmentSettings& settings);
// Throws Error unless every limit is finite and in range (shift ≤ 8, rotation ≤ 180°, scale < 1,
// shear ≤ 1, aspect ≤ 3, 0 < σ ≤ 10 when α > 0, probabilities in [0, 1]).
void validate(const AugmentSettings& settings);

// One augmented image. image and out: rows·cols pixels, row-major, 0 = background, 0–255.
// The digit stays in the frame: no ink (≥ half a grey level) lands on the outer pixel unless the
// original's did; to keep it so, the shift may be narrowed (or, rarely, exceed max_shift by a
// pixel) and the scale reduced.
// The float version writes unrounded values (0–255); the uint8 version rounds them.
// With AugmentSettings::none() out equals image exactly. Draws from rng; allocates nothing after
// the first call on a thread (its scratch is thread_local), so threads may call it concurrently,
// each with its own Rng. Throws Error if the settings are invalid or the sizes disagree.
void augment(std::span<const std::uint8_t> image, int rows, int cols, const AugmentSettings& settings, Rng& rng,
             std::span<float> out);
void augment(std::span<const std::uint8_t> image, int rows, int cols, const AugmentSettings& settings, Rng& rng,
             std::span<std::uint8_t> out);

// The seed of the image at `position`: seed ^ splitmix64(position).
std::uint64_t augment_seed(std::uint64_t seed, std::size_t position);

// gather_batch with augmentation: X (indices.size() × features) gets the augmented images times
// scale, labels their labels (augmentation keeps the label). Row r is augment(...) with
// Rng(augment_seed(seed, first_position + r)), so every row depends only on (seed, its position,
// its image) — never on threads, batch size or the order of calls. Give the trainer's positions
// in the epoch (first_position = the batch's offset) and a seed per epoch, and splitting a batch,
// changing the batch size or running on another thread gives the same images. With a pool, the
// rows are shared among its threads.
void augment_batch(const Dataset& data, std::span<const std::size_t> indices, const AugmentSettings& settings,
                   std::uint64_t seed, float scale, Matrix& X, std::vector<std::uint8_t>& labels,
                   std::size_t first_position = 0, WorkerPool* pool = nullptr);

}  // namespace digits
