// Reading a whole number: ink → connected components → merged or cut into digit candidates (cuts
// scored by the network itself) → each candidate through preprocess's own steps (fit_ink) → the
// network → left to right. One digit is the case of one candidate, not a second path.
// docs/how-it-works.md, "Reading a number", gives the reasons; docs/numbers.md the measurements.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "digits/image.hpp"
#include "digits/network.hpp"
#include "digits/preprocess.hpp"

namespace digits {

struct Box {
  int x = 0, y = 0, width = 0, height = 0;  // in the image's pixels, (x, y) the top left
};

// Bounds on the work, whatever the image (the decoder's limits bound its pixels; these bound what
// follows the one linear pass that labels components):
// - components kept after specks are dropped, the largest by ink first: 20 digits, some broken in
//   two or three, their punctuation, with room to spare; a thousand dots cost one labelling pass
//   and a sort, never a thousand network readings;
// - cuts tried in one group: 6 allow up to 7 touching digits in one stroke and cost at most
//   (6+2)(6+1)/2 = 28 pieces read by the network (fewer: pieces too wide for one digit are not
//   read); finding them costs at most 12 + 6 passes of dynamic programming (the profile's minima
//   and the expected boundaries), each over a band of a tenth of the group's height (segment.cpp).
inline constexpr int kMaxComponents = 64;
inline constexpr int kMaxCutsPerGroup = 6;

// One candidate read as a digit.
struct DigitCandidate {
  Box box;                              // the bounding box of its ink
  int digit = 0;                        // the most probable digit
  float probability = 0;                // its probability
  std::array<float, 10> probabilities{};  // the ten digits' (of the eleven-way softmax, for a model with "not a digit")
  std::optional<float> not_a_digit_probability;  // empty for a model without "not a digit"
  bool is_digit = true;                 // what looks_like_a_digit said (among digits: segment.cpp's kAmongDigits)
  // Its own ink, white on black, as an image of its own whose top left is (ink_x, ink_y) in the
  // read image (which may be outside it by the pixel of paper framing it): preprocess(ink) is
  // exactly the input the network read, and so is preprocess of an 8-bit PNG of it when the
  // image's ink is whole levels (an 8-bit image on black paper, as the page draws).
  GrayImage ink;
  int ink_x = 0, ink_y = 0;
};

struct NumberReading {
  std::vector<DigitCandidate> digits;  // the candidates read as digits, left to right
  std::vector<Box> not_digits;         // dashes, commas, dots, faint strays, and candidates the network says are not digits; left to right
  bool inverted = false;               // the image was dark ink on light paper
  std::string text() const;            // the digits, left to right: "2026"
};

// Given a candidate's probabilities (all the network's: 10, or 11 with "not a digit", classes.hpp),
// is it a digit? For a model of ten classes every candidate that reaches the network is: the shape
// rules in segment.cpp already drop dashes, commas and dots, and no rule on the probabilities of a
// ten-class model has been measured to separate the rest (docs/numbers.md). A model with the
// eleventh class answers here: not a digit when that class is the most probable (read_classes).
bool looks_like_a_digit(std::span<const float> probabilities);

// Reads every digit in the image, left to right. The network must read 10 classes (or 11, the
// eleventh "not a digit") from 28×28 inputs, as preprocess makes them. Throws Error for an image
// with no pixels or no ink, as preprocess does.
NumberReading read_number(const Network& network, const GrayImage& image);

// --- the geometry alone, without the network (for tests and for the measurements) ---

// A candidate cut through a group: a path from the group's top row to its bottom row, moving at
// most one column a row, that crosses as little ink as it can (docs/how-it-works.md, "Reading a
// number", step 6). x[r] is the image column where the right side begins on the group's row r
// (image y = box.y + r): pixels left of it are the left piece's, the rest the right piece's.
struct Cut {
  std::vector<int> x;  // (box.height) columns, one a row
  double strokes = 0;  // the ink it severs, in stroke widths: about the number of strokes it crosses
};

// A group of components taken as one or more digits, and the cuts that may divide it.
struct InkGroup {
  Box box;
  std::vector<int> components;  // labels of the components it holds
  std::vector<Cut> cuts;        // candidate cuts, left to right, none crossing another; empty: read whole
};

struct Segmentation {
  Ink ink;                       // find_ink's result
  std::vector<int> labels;       // (height × width) row-major: the component of each pixel, −1 for paper and faint ink
  std::vector<int> group_of;     // for each component label, the index of its group in `groups`, −1 for none
  std::vector<InkGroup> groups;  // left to right
  std::vector<Box> not_digits;   // dashes, commas, dots and faint thin strokes beside a digit, left to right
  double line_height = 0;        // H: the median height of the big components, the unit of the shape rules
  double digit_width = 0;        // the median width of the groups that look like one digit each (or 0.7 H): where cuts are expected
};

// Components (8-connected pixels brighter than kInkThreshold), specks dropped, parts of one digit
// merged, dashes, commas, dots and faint strays set apart, and candidate cuts in groups wide
// enough to hold more than one digit. Throws Error as find_ink and fit_ink do (no pixels, no ink).
Segmentation segment(const GrayImage& image);

// The candidate cuts of the group seg.groups[group], whatever its width: what segment() gives a
// group wider than kSplitAspect of its height, and what read_number tries in a narrower group it
// reads as no digit or unsurely. Left to right, none crossing another; empty when no cut leaves
// enough ink on both sides. Throws Error for a group that is not in seg.
std::vector<Cut> candidate_cuts(const Segmentation& seg, int group);

// A piece of a cut group: its ink between two of its bounds (the group's left edge, its cuts left
// to right, its right edge).
struct CutPiece {
  int from = 0, to = 0;  // the bounds: 0 the left edge, k the k-th cut, cuts + 1 the right edge
  Box box;               // the bounding box of its ink; empty when not read
  // false: the reader never reads it: no ink, or, unless it is the whole group, narrower than 12%
  // of the group's height, with under 6% of its ink, or wider than 1.5 times its height (or the
  // line's), as segment.cpp's kNarrowestPiece, kLeastInk and kWidestRead say.
  bool read = false;
  GrayImage ink;  // as DigitCandidate's: fit_ink of it is what the network reads; empty when not read
  int ink_x = 0, ink_y = 0;
};

// Every piece of the group seg.groups[group] cut by `cuts` (candidate_cuts, or the group's own),
// in the order the reader makes them: (0, 1), (0, 2) … (0, n − 1), (1, 2) …, the whole group being
// (0, cuts + 1). read_number reads exactly the pieces marked read; the tools use it to see what the
// reader sees (make_digit_folders' neg_cuts). Throws Error for a group not in seg or a cut that
// is not one column a row of the group, within its box.
std::vector<CutPiece> cut_pieces(const Segmentation& seg, int group, std::span<const Cut> cuts);

}  // namespace digits
