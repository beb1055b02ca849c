#include "digits/segment.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "digits/classes.hpp"
#include "digits/error.hpp"

namespace digits {

namespace {

// Shape rules, in units of the line's height H: the median height of the big components (those
// with at least kBigShare of the largest one's pixels), so a digit drawn 40 px or 400 px tall
// gets the same rules.
constexpr double kBigShare = 0.2;
// A component whose longer side is under 12% of H is a speck (a stray dot, noise, a JPEG ringing
// artefact): dropped and not reported.
constexpr double kSpeck = 0.12;
// Parts of one digit: two groups merge when their x-extents overlap by at least half the narrower
// one's width (a 5's detached bar over its bowl, a 7's crossbar across its stem, a broken 4's two
// strokes), and when they are at most half of H apart vertically. Between two tall parts (both at
// least 0.6 H) that width is taken as at least 0.3 H, so that a thin 1 leaning over its neighbour
// by a pixel or two is not swallowed.
constexpr double kMergeOverlap = 0.5, kNarrowestForMerge = 0.3, kTallPart = 0.6, kMergeGap = 0.5;
// A group under 40% of H tall is not a digit: a dash, a comma, a full stop. The smallest digits of
// a number written in mixed sizes stay above it (docs/numbers.md).
constexpr double kShortest = 0.4;
// A faint thin stroke beside a digit is not a digit: a group narrower than kFaintWidth·H whose
// brightest pixel is under kFaint times its neighbour's (the next group left or right, itself a
// digit's height) is set apart with the dashes. MNIST digits carry such strokes (a stray, faint
// stroke a few pixels beside the digit), and the network reads any thin upright stroke as a 1
// with p ≈ 1: on the choice seed 1, 12 of the 47 digits split in numbers read wrong were a digit
// and such a sliver beside it. Brightest against the neighbour's brightest, not the image's, so a
// photograph lit unevenly compares like with like; a drawing's strokes are all equally bright and
// never trip it. 0.8 among 0.5–0.95 (docs/numbers.md: real digits' brightest pixel is at least
// 0.89 of the brightest digit's in those numbers).
constexpr double kFaint = 0.8, kFaintWidth = 0.2;
// A group wider than kSplitAspect times its height (or H, when it is shorter than the line) may
// hold several touching digits: it gets candidate cuts. Narrower, it is read whole without asking
// the network about cuts. 0.8 by measurement (docs/numbers.md): a touching "17" is barely wider
// than tall, and a lower threshold only costs readings.
constexpr double kSplitAspect = 0.8;
// A piece of a cut group must be at least 12% of the group's height wide (a 1 is 10–20%) and at
// least kFewestColumns pixels, and hold at least 6% of the group's ink, so a cut never leaves a
// sliver for the network to read as a 1, and a dot is never cut.
constexpr double kNarrowestPiece = 0.12, kLeastInk = 0.06;
constexpr int kFewestColumns = 4;
// Cut paths (cut_paths): a path pays, beside the ink it crosses (1 a pixel of the group's
// brightest ink), kSideStep for each column it moves sideways, so that it follows a gap between
// two strokes but does not wander around a digit; each path stays within kCutBand·height of the
// column it was started from, one of the kProfileStarts lowest minima of the column profile; the
// kMaxCutsPerGroup cheapest distinct paths are kept. All chosen on seed 1 (docs/numbers.md): side
// steps of 0.05–0.8, bands of 0–0.2 (a wider band follows overlapping MNIST digits better but
// slices thick pen strokes that touch along a length), 3–12 starts, and starts on a grid as well.
constexpr double kSideStep = 0.2, kCutBand = 0.05;
constexpr int kProfileStarts = 12;
// Paths are also started where the digits' boundaries are expected: a group of width w, in a
// number whose single digits are d wide (Segmentation::digit_width: the median width of the groups
// narrower than kSplitAspect and wider than kThinnest of their height, so not 1s; kTypicalWidth·H
// when fewer than two such groups exist), holds about n = round(w / d) digits, so boundaries lie
// near w·k/n, k = 1 … n − 1. Where two digits overlap, the column profile has no minimum at their
// boundary (both digits' ink is there), so no profile start finds it. At most kMaxCutsPerGroup
// such starts; their paths join the profile's, and the kMaxCutsPerGroup cheapest of all are kept.
// kTypicalWidth chosen on seed 1 among 0.6–0.8 (docs/numbers.md; MNIST test digits' ink boxes
// average 0.79 of their height).
constexpr double kThinnest = 0.35, kTypicalWidth = 0.7;
// A piece wider than kWidestRead times its height (or H) is not read, unless it is the whole
// group: the shape prior below takes 8 · (1.5 − 1.2) = 2.4 from its score, so such a piece rarely
// wins, and reading fewer pieces pays for the expected boundaries' cuts (docs/numbers.md).
constexpr double kWidestRead = 1.5;
// A group too narrow for cuts (under kSplitAspect) is cut after all when the network reads it
// whole as "not a digit", or as a digit with probability under kUnsure, and it is at least
// kRetryAspect times its height (or H) wide: a 1 touching its neighbour makes a group narrower
// than tall that no digit fits. kUnsure is 0.8 since the calibrated built-in model of 2026-12-07,
// which reads a 0 touching a 1 as a 0 at over 50%: on the choice seed, 0.5 / 0.8 / 0.95 read
// 92.80% / 92.95% / 92.90% of the numbers whole (docs/numbers.md).
constexpr double kUnsure = 0.8, kRetryAspect = 0.4;
// A piece's ink keeps this many pixels around its box: anti-aliasing's faint edge (piece_ink).
constexpr int kFaintMargin = 2;
// Segmentation by recognition (LeCun et al. 1998, §VI) chooses the cuts whose pieces the network
// reads with the highest joint probability, Π p(piece). The network is often sure of half a digit,
// or of two digits as one, so two priors join the score:
// - shape: each piece's log-probability loses kWidePenalty per unit of width/height beyond
//   kWidest. MNIST's training digits are wider than one might think (width / height: mean 0.96 for
//   a 2, 95th percentile 1.25), so kWidest is 1.2, chosen by measurement among 0.9–1.3 with
//   penalties 4–16 (docs/numbers.md);
// - "not a digit" (a model with the eleventh class): a piece's score gains
//   kNotADigitWeight·log(1 − p(not a digit)), so a cut that leaves a piece the network calls no
//   digit (half a digit, two digits fused) loses against one that leaves digits. 12 by measurement
//   among 1–50 (3 and up are within a point of each other).
// A flat cost per cut, and a cost per stroke a cut severs, were measured too and did worse: the
// network reads the halves of a wide 0 as surely as two real digits, and two touching digits as
// surely as one.
constexpr double kWidest = 1.2, kWidePenalty = 8.0, kNotADigitWeight = 12.0;
// Among digits, a mark of a digit's height is far more likely a digit than a drawing on its own
// is: the network's "not a digit" was learnt with as many drawings that are not digits as digits,
// a prior that fits a drawing alone but not a line of digits. So a candidate at least kTallPart·H
// tall, in a reading where some other candidate is a digit, is not a digit only when
// kAmongDigits·p(not a digit) is still above its digit's probability: Bayes' rule with the odds
// of "not a digit" divided by 1/kAmongDigits. MNIST test digits the network calls no digit (an
// L-shaped 1, a 5 without its bar, a broken 3: 35 of the 53 digits missed on seed 1) are read, and
// the price is that a tall sign or letter among digits is read as a digit more often
// (docs/numbers.md: 0.1 among 0.5–0.03 on seed 1). Dashes, commas and dots are set apart by their
// height before the network sees them, and a drawing alone is read as before.
constexpr double kAmongDigits = 0.1;

Box box_of(int x0, int y0, int x1, int y1) { return {x0, y0, x1 - x0 + 1, y1 - y0 + 1}; }  // inclusive corners

struct Component {
  int x0, y0, x1, y1;  // inclusive bounding box
  int pixels;
  int label;
  float peak = 0;  // its brightest ink
  int width() const { return x1 - x0 + 1; }
  int height() const { return y1 - y0 + 1; }
};

// 8-connected components of ink brighter than kInkThreshold, by flood fill with an explicit stack
// (no recursion, so a component of millions of pixels cannot overflow the call stack). One pass:
// O(pixels). labels gets each pixel's component, −1 elsewhere.
std::vector<Component> label_components(const Matrix& ink, std::vector<int>& labels) {
  const int width = static_cast<int>(ink.cols()), height = static_cast<int>(ink.rows());
  labels.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), -1);
  std::vector<Component> components;
  std::vector<int> stack;
  for (int start = 0; start < width * height; ++start) {
    if (labels[static_cast<std::size_t>(start)] >= 0 || ink.data()[start] <= kInkThreshold) continue;
    const int label = static_cast<int>(components.size());
    Component c{start % width, start / width, start % width, start / width, 0, label, 0.0f};
    labels[static_cast<std::size_t>(start)] = label;
    stack.push_back(start);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      const int x = i % width, y = i / width;
      c.x0 = std::min(c.x0, x), c.x1 = std::max(c.x1, x), c.y0 = std::min(c.y0, y), c.y1 = std::max(c.y1, y);
      ++c.pixels;
      c.peak = std::max(c.peak, ink.data()[i]);
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int nx = x + dx, ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const int n = ny * width + nx;
          if (labels[static_cast<std::size_t>(n)] >= 0 || ink.data()[n] <= kInkThreshold) continue;
          labels[static_cast<std::size_t>(n)] = label;
          stack.push_back(n);
        }
      }
    }
    components.push_back(c);
  }
  return components;
}

struct Group {
  int x0, y0, x1, y1;
  std::vector<int> members;  // component labels
  int pixels = 0;
  float peak = 0;            // its brightest ink
  int width() const { return x1 - x0 + 1; }
  int height() const { return y1 - y0 + 1; }
};

bool belong_together(const Group& a, const Group& b, double H) {
  const int overlap = std::min(a.x1, b.x1) - std::max(a.x0, b.x0) + 1;
  // The floor on the narrower width is for two tall parts (a 1 beside a digit); a short part (a
  // bar, a stroke's broken end) is measured by its own width.
  const bool both_tall = std::min(a.height(), b.height()) >= kTallPart * H;
  const double narrower = std::max<double>(std::min(a.width(), b.width()), both_tall ? kNarrowestForMerge * H : 0.0);
  const int gap = std::max(a.y0, b.y0) - std::min(a.y1, b.y1) - 1;  // negative when they overlap vertically
  return overlap >= kMergeOverlap * narrower && gap <= kMergeGap * H;
}

// Candidate cuts of a wide group: paths from its top row to its bottom row that cross little ink,
// found by dynamic programming as in seam carving (Avidan & Shamir 2007) and in the "drop-fall"
// family of digit cutters. Over the group's own ink c(r, x) (0–1: its components only, scaled to
// its brightest pixel), the cheapest path to (r, x) within a band of columns [lo, hi] costs
//   M(0, x) = c(0, x),
//   M(r, x) = c(r, x) + min( M(r−1, x),  M(r−1, x∓1) + kSideStep + min(c(r−1, x), c(r, x∓1)) ),
// the last term because a diagonal step passes between those two pixels and would sever a stroke
// there for nothing. The cheapest path is M's least value in the bottom row, traced back. A path
// through a gap between two digits costs 0; one through the place where two strokes touch costs
// about a stroke's width. Paths are started from the column profile's minima (where a straight cut
// crosses least ink), each confined to kCutBand·height around its
// start; those that leave too little ink on a side or between them and another are dropped, and
// the cheapest are kept, left to right, none crossing the one before. More paths start at the
// boundaries the number's digit width predicts (kTypicalWidth). Work: O(starts · height · band)
// with at most kProfileStarts + kMaxCutsPerGroup starts, memory O(width · height).
std::vector<Cut> cut_paths(const Box& box, int index, const Matrix& ink, const std::vector<int>& labels, const std::vector<int>& group_of, double digit_width) {
  const int w = box.width, h = box.height;
  const int width = static_cast<int>(ink.cols());
  const auto at = [w](int r, int x) { return static_cast<std::size_t>(r) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x); };
  // c: the group's own ink, 0–1; inside: its pixels (above kInkThreshold).
  std::vector<float> c(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), 0.0f);
  std::vector<unsigned char> inside(c.size(), 0);
  float brightest = 0;
  for (int r = 0; r < h; ++r) {
    for (int x = 0; x < w; ++x) {
      const int label = labels[static_cast<std::size_t>(box.y + r) * static_cast<std::size_t>(width) + static_cast<std::size_t>(box.x + x)];
      if (label < 0 || group_of[static_cast<std::size_t>(label)] != index) continue;
      c[at(r, x)] = ink(box.y + r, box.x + x);
      inside[at(r, x)] = 1;
      brightest = std::max(brightest, c[at(r, x)]);
    }
  }
  if (brightest <= 0) return {};
  for (float& v : c) v /= brightest;
  // The stroke width, to say a path's cost in strokes: a stroke of width s and length L covers
  // s·L pixels, about 2L of them on its edge, so s ≈ 2·area / edge pixels.
  int area = 0, edge = 0;
  for (int r = 0; r < h; ++r) {
    for (int x = 0; x < w; ++x) {
      if (!inside[at(r, x)]) continue;
      ++area;
      edge += x == 0 || x + 1 == w || r == 0 || r + 1 == h || !inside[at(r, x - 1)] || !inside[at(r, x + 1)] || !inside[at(r - 1, x)] || !inside[at(r + 1, x)];
    }
  }
  const double stroke = std::max(1.0, 2.0 * area / std::max(1, edge));

  std::vector<double> M(c.size());
  std::vector<signed char> from(c.size(), 0);  // the step into (r, x): x' − x
  const auto cheapest = [&](int lo, int hi) {
    for (int x = lo; x <= hi; ++x) M[at(0, x)] = c[at(0, x)];
    for (int r = 1; r < h; ++r) {
      for (int x = lo; x <= hi; ++x) {
        double best = M[at(r - 1, x)];
        signed char step = 0;
        if (x > lo) {
          const double s = M[at(r - 1, x - 1)] + kSideStep + std::min(c[at(r - 1, x)], c[at(r, x - 1)]);
          if (s < best) best = s, step = -1;
        }
        if (x < hi) {
          const double s = M[at(r - 1, x + 1)] + kSideStep + std::min(c[at(r - 1, x)], c[at(r, x + 1)]);
          if (s < best) best = s, step = 1;
        }
        M[at(r, x)] = c[at(r, x)] + best;
        from[at(r, x)] = step;
      }
    }
    int x = lo;
    for (int k = lo + 1; k <= hi; ++k)
      if (M[at(h - 1, k)] < M[at(h - 1, x)]) x = k;
    Cut cut;
    cut.x.resize(static_cast<std::size_t>(h));
    cut.strokes = M[at(h - 1, x)] / stroke;
    for (int r = h - 1; r >= 0; --r) {
      cut.x[static_cast<std::size_t>(r)] = x;
      if (r > 0) x += from[at(r, x)];
    }
    return cut;
  };
  // before(r, x): the group's pixels left of column x in row r, so the ink between two paths
  // costs O(height).
  std::vector<int> before(static_cast<std::size_t>(w + 1) * static_cast<std::size_t>(h), 0);
  const auto before_at = [w](int r, int x) { return static_cast<std::size_t>(r) * static_cast<std::size_t>(w + 1) + static_cast<std::size_t>(x); };
  for (int r = 0; r < h; ++r)
    for (int x = 0; x < w; ++x) before[before_at(r, x + 1)] = before[before_at(r, x)] + inside[at(r, x)];
  const auto ink_between = [&](const std::vector<int>& a, const std::vector<int>& b) {
    int n = 0;
    for (int r = 0; r < h; ++r) {
      const int lo = std::min(a[static_cast<std::size_t>(r)], b[static_cast<std::size_t>(r)]), hi = std::max(a[static_cast<std::size_t>(r)], b[static_cast<std::size_t>(r)]);
      n += before[before_at(r, hi)] - before[before_at(r, lo)];
    }
    return n;
  };

  // Starts: the column profile's minima (the ink in each column, summed over three columns to
  // ignore a pen's ragged edge), the lowest first and a piece's width apart.
  std::vector<double> column(static_cast<std::size_t>(w), 0.0);
  for (int r = 0; r < h; ++r)
    for (int x = 0; x < w; ++x) column[static_cast<std::size_t>(x)] += c[at(r, x)];
  std::vector<double> profile(column.size());
  for (int x = 0; x < w; ++x)
    profile[static_cast<std::size_t>(x)] =
        column[static_cast<std::size_t>(x)] + (x > 0 ? column[static_cast<std::size_t>(x - 1)] : 0.0) + (x + 1 < w ? column[static_cast<std::size_t>(x + 1)] : 0.0);
  const int margin = std::max(kFewestColumns, static_cast<int>(std::ceil(kNarrowestPiece * h)));
  std::vector<int> minima;
  for (int x = margin; x <= w - margin; ++x) {
    const double v = profile[static_cast<std::size_t>(x)];
    if (v <= profile[static_cast<std::size_t>(x - 1)] && (x + 1 >= w || v <= profile[static_cast<std::size_t>(x + 1)])) minima.push_back(x);
  }
  std::stable_sort(minima.begin(), minima.end(), [&](int a, int b) { return profile[static_cast<std::size_t>(a)] < profile[static_cast<std::size_t>(b)]; });
  std::vector<int> starts;
  for (int x : minima) {
    if (static_cast<int>(starts.size()) == kProfileStarts) break;
    if (std::all_of(starts.begin(), starts.end(), [&](int s) { return std::abs(s - x) >= margin; })) starts.push_back(x);
  }

  const int band = static_cast<int>(std::lround(kCutBand * h));
  const std::vector<int> left_end(static_cast<std::size_t>(h), 0), right_end(static_cast<std::size_t>(h), w);
  const int least_ink = std::max(1, static_cast<int>(kLeastInk * area));
  std::vector<Cut> cuts;
  // Adds the path from start x to `into`, unless it leaves too little ink on a side or is, in
  // effect, a cut already in `cuts` or `into`.
  const auto consider = [&](int x, std::vector<Cut>& into) {
    Cut cut = cheapest(std::max(0, x - band), std::min(w - 1, x + band));
    if (ink_between(cut.x, left_end) < least_ink || ink_between(cut.x, right_end) < least_ink) return;
    const auto same = [&](const Cut& other) { return ink_between(cut.x, other.x) < least_ink; };
    if (std::any_of(cuts.begin(), cuts.end(), same) || std::any_of(into.begin(), into.end(), same)) return;
    into.push_back(std::move(cut));
  };
  const auto keep_cheapest = [&] {
    std::stable_sort(cuts.begin(), cuts.end(), [](const Cut& a, const Cut& b) { return a.strokes < b.strokes; });
    if (cuts.size() > static_cast<std::size_t>(kMaxCutsPerGroup)) cuts.resize(static_cast<std::size_t>(kMaxCutsPerGroup));
  };
  for (int x : starts) consider(x, cuts);
  keep_cheapest();
  // The expected boundaries (kTypicalWidth): paths from w·k/n, then the cheapest of all.
  const int n = std::clamp(static_cast<int>(std::lround(w / std::max(1.0, digit_width))), 2, kMaxCutsPerGroup + 1);
  std::vector<Cut> expected;
  for (int k = 1; k < n; ++k) {
    const int x = static_cast<int>(std::lround(static_cast<double>(k) * w / n));
    if (x >= margin && x <= w - margin) consider(x, expected);  // as the profile's starts: a narrowest piece from each edge
  }
  for (Cut& cut : expected) cuts.push_back(std::move(cut));
  keep_cheapest();
  // Left to right by their mean column.
  const auto mean = [](const Cut& cut) { return std::accumulate(cut.x.begin(), cut.x.end(), 0.0) / static_cast<double>(cut.x.size()); };
  std::stable_sort(cuts.begin(), cuts.end(), [&](const Cut& a, const Cut& b) { return mean(a) < mean(b); });
  // Paths from overlapping bands may cross; keep each one right of the one before.
  for (std::size_t k = 1; k < cuts.size(); ++k)
    for (std::size_t r = 0; r < static_cast<std::size_t>(h); ++r) cuts[k].x[r] = std::max(cuts[k].x[r], cuts[k - 1].x[r]);
  for (Cut& cut : cuts)
    for (int& x : cut.x) x += box.x;
  return cuts;
}

// A piece's own ink as an image of its own: its group's components within the group's box between
// two bounds (in row r of the box, columns left[r] to right[r] − 1: the box's edges or cut paths)
// and the faint ink among them (below kInkThreshold, in no
// component, as preprocess would see it), cropped to the piece's box and kFaintMargin around it,
// and framed by a pixel of paper. So preprocess(ink) is exactly what the network reads; the frame
// makes the border's median 0 whatever a cut goes through, so preprocess finds black paper and
// changes no value. When the image's ink is whole levels (any 8-bit image on black paper, as the
// page draws), a PNG of it gives the same input again: the page shows and judges each digit of a
// number through the same /api/predict and /api/feedback as a single digit (docs/numbers.md).
GrayImage piece_ink(const Segmentation& seg, const Box& box, const Box& group, const std::vector<int>& left, const std::vector<int>& right, const auto& member,
                    int& ink_x, int& ink_y) {
  const Matrix& ink = seg.ink.values;
  const int width = static_cast<int>(ink.cols());
  const int x0 = std::max(group.x, box.x - kFaintMargin), x1 = std::min(group.x + group.width, box.x + box.width + kFaintMargin);
  const int y0 = std::max(group.y, box.y - kFaintMargin), y1 = std::min(group.y + group.height, box.y + box.height + kFaintMargin);
  GrayImage out{x1 - x0 + 2, y1 - y0 + 2, {}};
  out.pixels.assign(static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.height), 0.0f);
  for (int y = y0; y < y1; ++y) {
    const std::size_t r = static_cast<std::size_t>(y - group.y);
    for (int x = std::max(x0, left[r]); x < std::min(x1, right[r]); ++x) {
      const int label = seg.labels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)];
      if (label >= 0 && !member(label)) continue;
      out.pixels[static_cast<std::size_t>(y - y0 + 1) * static_cast<std::size_t>(out.width) + static_cast<std::size_t>(x - x0 + 1)] = ink(y, x);
    }
  }
  ink_x = x0 - 1, ink_y = y0 - 1;
  return out;
}

}  // namespace

std::string NumberReading::text() const {
  std::string text;
  for (const DigitCandidate& d : digits) text += static_cast<char>('0' + d.digit);
  return text;
}

bool looks_like_a_digit(std::span<const float> probabilities) { return !read_classes(probabilities).not_a_digit; }

Segmentation segment(const GrayImage& image) {
  Segmentation result;
  result.ink = find_ink(image);
  const Matrix& ink = result.ink.values;
  std::vector<Component> components = label_components(ink, result.labels);
  if (components.empty()) throw Error("the image is empty: no ink brighter than 10% of full scale");
  result.group_of.assign(components.size(), -1);

  // The largest kMaxComponents by pixels; the rest are noise whatever they are.
  const auto by_size = [](const Component& a, const Component& b) { return a.pixels != b.pixels ? a.pixels > b.pixels : a.label < b.label; };
  if (components.size() > static_cast<std::size_t>(kMaxComponents)) {
    std::nth_element(components.begin(), components.begin() + kMaxComponents, components.end(), by_size);
    components.resize(static_cast<std::size_t>(kMaxComponents));
  }
  std::sort(components.begin(), components.end(), by_size);

  // H: the median height of the big components.
  std::vector<int> heights;
  for (const Component& c : components) {
    if (c.pixels >= kBigShare * components.front().pixels) heights.push_back(c.height());
  }
  std::nth_element(heights.begin(), heights.begin() + static_cast<std::ptrdiff_t>(heights.size() / 2), heights.end());
  const double H = heights[heights.size() / 2];
  result.line_height = H;

  std::vector<Group> groups;
  for (const Component& c : components) {
    if (std::max(c.width(), c.height()) < kSpeck * H) continue;
    groups.push_back({c.x0, c.y0, c.x1, c.y1, {c.label}, c.pixels, c.peak});
  }
  // Merge until nothing more belongs together (at most kMaxComponents rounds of n² checks).
  for (bool merged = true; merged;) {
    merged = false;
    for (std::size_t i = 0; i < groups.size() && !merged; ++i) {
      for (std::size_t j = i + 1; j < groups.size() && !merged; ++j) {
        if (!belong_together(groups[i], groups[j], H)) continue;
        Group& a = groups[i];
        const Group& b = groups[j];
        a.x0 = std::min(a.x0, b.x0), a.y0 = std::min(a.y0, b.y0), a.x1 = std::max(a.x1, b.x1), a.y1 = std::max(a.y1, b.y1);
        a.members.insert(a.members.end(), b.members.begin(), b.members.end());
        a.pixels += b.pixels;
        a.peak = std::max(a.peak, b.peak);
        groups.erase(groups.begin() + static_cast<std::ptrdiff_t>(j));
        merged = true;
      }
    }
  }
  // Left to right by the centre of the box, which keeps the order on a line that slopes a little.
  std::sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) { return a.x0 + a.x1 < b.x0 + b.x1; });

  // The width of one digit (kTypicalWidth): the median of the groups that look like one each.
  std::vector<int> widths;
  for (const Group& g : groups) {
    const double tall = std::max<double>(g.height(), H);
    if (g.height() >= kShortest * H && g.width() <= kSplitAspect * tall && g.width() >= kThinnest * tall) widths.push_back(g.width());
  }
  if (widths.size() >= 2) {
    std::nth_element(widths.begin(), widths.begin() + static_cast<std::ptrdiff_t>(widths.size() / 2), widths.end());
    result.digit_width = widths[widths.size() / 2];
  } else {
    result.digit_width = kTypicalWidth * H;
  }

  // kFaint: a thin group much fainter than a neighbour that is a digit's height.
  const auto faint = [&](std::size_t k) {
    const Group& g = groups[k];
    if (g.width() >= kFaintWidth * H) return false;
    const auto outshines = [&](std::size_t j) { return j < groups.size() && groups[j].height() >= kShortest * H && g.peak < kFaint * groups[j].peak; };
    return (k > 0 && outshines(k - 1)) || outshines(k + 1);
  };
  for (std::size_t k = 0; k < groups.size(); ++k) {
    const Group& g = groups[k];
    const Box box = box_of(g.x0, g.y0, g.x1, g.y1);
    if (g.height() < kShortest * H || faint(k)) {
      result.not_digits.push_back(box);
      continue;
    }
    const int index = static_cast<int>(result.groups.size());
    for (int label : g.members) result.group_of[static_cast<std::size_t>(label)] = index;
    InkGroup out{box, g.members, {}};
    if (g.width() > kSplitAspect * std::max<double>(g.height(), H)) out.cuts = cut_paths(box, index, ink, result.labels, result.group_of, result.digit_width);
    result.groups.push_back(std::move(out));
  }
  return result;
}

std::vector<Cut> candidate_cuts(const Segmentation& seg, int group) {
  if (group < 0 || static_cast<std::size_t>(group) >= seg.groups.size()) throw Error("candidate_cuts: no group " + std::to_string(group));
  return cut_paths(seg.groups[static_cast<std::size_t>(group)].box, group, seg.ink.values, seg.labels, seg.group_of, seg.digit_width);
}

std::vector<CutPiece> cut_pieces(const Segmentation& seg, int g, std::span<const Cut> cuts) {
  if (g < 0 || static_cast<std::size_t>(g) >= seg.groups.size()) throw Error("cut_pieces: no group " + std::to_string(g));
  const InkGroup& group = seg.groups[static_cast<std::size_t>(g)];
  const int width = static_cast<int>(seg.ink.values.cols());
  std::vector<std::vector<int>> bounds;
  bounds.push_back(std::vector<int>(static_cast<std::size_t>(group.box.height), group.box.x));
  for (const Cut& cut : cuts) {
    if (cut.x.size() != static_cast<std::size_t>(group.box.height)) throw Error("cut_pieces: a cut of " + std::to_string(cut.x.size()) + " rows for a group of " + std::to_string(group.box.height));
    if (std::any_of(cut.x.begin(), cut.x.end(), [&](int x) { return x < group.box.x || x > group.box.x + group.box.width; })) throw Error("cut_pieces: a cut outside its group");
    bounds.push_back(cut.x);
  }
  bounds.push_back(std::vector<int>(static_cast<std::size_t>(group.box.height), group.box.x + group.box.width));
  const auto member = [&](int label) { return label >= 0 && seg.group_of[static_cast<std::size_t>(label)] == g; };
  int group_pixels = 0;
  for (int y = group.box.y; y < group.box.y + group.box.height; ++y)
    for (int x = group.box.x; x < group.box.x + group.box.width; ++x)
      group_pixels += member(seg.labels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]);
  const int n = static_cast<int>(bounds.size());
  std::vector<CutPiece> pieces;
  for (int i = 0; i + 1 < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      const bool whole = i == 0 && j + 1 == n;
      const std::vector<int>& left_of = bounds[static_cast<std::size_t>(i)];
      const std::vector<int>& right_of = bounds[static_cast<std::size_t>(j)];
      // The piece's box: its group's components between the two bounds.
      int left = group.box.x + group.box.width, right = -1, top = group.box.y + group.box.height, bottom = -1, pixels = 0;
      for (int y = group.box.y; y < group.box.y + group.box.height; ++y) {
        const std::size_t r = static_cast<std::size_t>(y - group.box.y);
        for (int x = left_of[r]; x < right_of[r]; ++x) {
          if (!member(seg.labels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)])) continue;
          ++pixels;
          left = std::min(left, x), right = std::max(right, x), top = std::min(top, y), bottom = std::max(bottom, y);
        }
      }
      CutPiece p;
      p.from = i, p.to = j;
      const int piece_width = right - left + 1;
      if (pixels > 0 && (whole || (piece_width >= kNarrowestPiece * group.box.height && pixels >= kLeastInk * group_pixels &&
                                   piece_width <= kWidestRead * std::max<double>(group.box.height, seg.line_height)))) {
        p.box = box_of(left, top, right, bottom);
        p.ink = piece_ink(seg, p.box, group.box, left_of, right_of, member, p.ink_x, p.ink_y);
        p.read = true;
      }
      pieces.push_back(std::move(p));
    }
  }
  return pieces;
}

NumberReading read_number(const Network& network, const GrayImage& image) {
  if (network.inputs() != kInputSide * kInputSide || (network.classes() != kDigitClasses && !has_not_a_digit(network.classes())))
    throw Error("reading a number needs a network of 784 inputs and 10 classes (or 11, with \"not a digit\"), not " + std::to_string(network.inputs()) + " and " +
                std::to_string(network.classes()));
  const Segmentation seg = segment(image);
  const std::size_t groups = seg.groups.size();

  // A piece of a group (cut_pieces) and, once read, the network's probabilities for it.
  struct Piece : CutPiece {
    std::vector<float> probabilities;  // the network's, all its classes
  };
  std::vector<std::vector<Cut>> cuts(groups);
  std::vector<std::vector<Piece>> pieces(groups);
  // Adds the group's pieces not made yet, and their inputs to the batch.
  std::vector<float> batch;
  std::vector<std::pair<std::size_t, std::size_t>> in_batch;  // (group, piece) of each row
  const auto add_pieces = [&](std::size_t g) {
    std::vector<Piece> old = std::move(pieces[g]);
    pieces[g].clear();
    for (CutPiece& made : cut_pieces(seg, static_cast<int>(g), cuts[g])) {
      const bool whole = made.from == 0 && made.to == static_cast<int>(cuts[g].size()) + 1;
      if (whole && !old.empty()) {  // read before the group was cut
        pieces[g].push_back(std::move(old.front()));
        pieces[g].back().from = made.from, pieces[g].back().to = made.to;
        continue;
      }
      Piece p{std::move(made), {}};
      if (p.read) {
        in_batch.emplace_back(g, pieces[g].size());
        // Steps 3–4 only: the piece's ink is find_ink's already, on paper of 0. preprocess(p.ink)
        // gives the same for a drawing, but its gate between drawings and photographs (a share
        // of the pixels at the border's level) sends a tight crop of a thick digit, mostly ink,
        // down the photograph path, which can find no ink in it at all.
        const Preprocessed input = fit_ink(Ink{Eigen::Map<const Matrix>(p.ink.pixels.data(), p.ink.height, p.ink.width), false});
        batch.insert(batch.end(), input.pixels.begin(), input.pixels.end());
      }
      pieces[g].push_back(std::move(p));
    }
  };
  const auto read_batch = [&] {
    const Eigen::Index rows = static_cast<Eigen::Index>(in_batch.size());
    if (rows == 0) return;
    const Matrix probabilities = network.predict_proba(Eigen::Map<const Matrix>(batch.data(), rows, kInputSide * kInputSide));
    for (Eigen::Index k = 0; k < rows; ++k) {
      Piece& p = pieces[in_batch[static_cast<std::size_t>(k)].first][in_batch[static_cast<std::size_t>(k)].second];
      p.probabilities.assign(&probabilities(k, 0), &probabilities(k, 0) + probabilities.cols());
    }
    batch.clear();
    in_batch.clear();
  };

  // Round one: every group whole, and the pieces of the wide ones' cuts.
  for (std::size_t g = 0; g < groups; ++g) {
    cuts[g] = seg.groups[g].cuts;
    add_pieces(g);
  }
  read_batch();
  // Round two: a group too narrow to have been cut that the network reads as no digit, or
  // unsurely, may be two digits that touch (a 1 against its neighbour): its cuts are tried too.
  // Such a group had no cuts, so its one piece, the whole, was read in round one.
  for (std::size_t g = 0; g < groups; ++g) {
    const InkGroup& group = seg.groups[g];
    if (!cuts[g].empty() || group.box.width < kRetryAspect * std::max<double>(group.box.height, seg.line_height)) continue;
    const ClassReading whole = read_classes(pieces[g].front().probabilities);
    if (!whole.not_a_digit && whole.probability >= kUnsure) continue;
    cuts[g] = candidate_cuts(seg, static_cast<int>(g));
    if (!cuts[g].empty()) add_pieces(g);
  }
  read_batch();

  NumberReading result;
  result.inverted = seg.ink.inverted;
  result.not_digits = seg.not_digits;
  std::vector<DigitCandidate> candidates;  // every group's chosen pieces, left to right
  for (std::size_t g = 0; g < groups; ++g) {
    const int n = static_cast<int>(cuts[g].size()) + 2;
    // score(piece): log p(piece) + the shape prior; best[j]: the best sum of scores of pieces that
    // cover the group from bound 0 to bound j, reached from back[j]. Dynamic programming over at
    // most kMaxCutsPerGroup + 2 bounds.
    const double none = -std::numeric_limits<double>::infinity();
    std::vector<std::vector<const Piece*>> at(static_cast<std::size_t>(n), std::vector<const Piece*>(static_cast<std::size_t>(n), nullptr));
    for (const Piece& p : pieces[g]) at[static_cast<std::size_t>(p.from)][static_cast<std::size_t>(p.to)] = &p;
    const auto score = [&](const Piece* p) {
      if (!p || !p->read) return none;
      const double aspect = static_cast<double>(p->box.width) / std::max<double>(seg.groups[g].box.height, seg.line_height);
      // The most probable digit's probability, never "not a digit"'s, and the probability that it
      // is a digit at all, weighted: the cuts that win are those that make digits (kNotADigitWeight).
      const double top = *std::max_element(p->probabilities.begin(), p->probabilities.begin() + kDigitClasses);
      const double not_a_digit = has_not_a_digit(static_cast<int>(p->probabilities.size())) ? p->probabilities[kNotADigit] : 0.0;
      return std::log(std::max(top, 1e-30)) + kNotADigitWeight * std::log(std::max(1.0 - not_a_digit, 1e-30)) - kWidePenalty * std::max(0.0, aspect - kWidest);
    };
    std::vector<double> best(static_cast<std::size_t>(n), none);
    std::vector<int> back(static_cast<std::size_t>(n), -1);
    best[0] = 0;
    for (int j = 1; j < n; ++j) {
      for (int i = 0; i < j; ++i) {
        const double s = best[static_cast<std::size_t>(i)] + score(at[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
        if (s > best[static_cast<std::size_t>(j)]) best[static_cast<std::size_t>(j)] = s, back[static_cast<std::size_t>(j)] = i;
      }
    }
    // The whole group is always a piece that was read, so best[n − 1] is finite.
    std::vector<const Piece*> chosen;
    for (int j = n - 1; j > 0; j = back[static_cast<std::size_t>(j)]) chosen.push_back(at[static_cast<std::size_t>(back[static_cast<std::size_t>(j)])][static_cast<std::size_t>(j)]);
    std::reverse(chosen.begin(), chosen.end());
    for (const Piece* p : chosen) {
      DigitCandidate d;
      d.box = p->box;
      d.ink = p->ink;
      d.ink_x = p->ink_x, d.ink_y = p->ink_y;
      const std::span<const float> all(p->probabilities);
      for (int c = 0; c < kDigitClasses; ++c) d.probabilities[static_cast<std::size_t>(c)] = all[static_cast<std::size_t>(c)];
      const ClassReading classes = read_classes(all);
      d.digit = classes.digit;
      d.probability = classes.probability;
      d.not_a_digit_probability = classes.not_a_digit_probability;
      d.is_digit = looks_like_a_digit(all);
      candidates.push_back(std::move(d));
    }
  }
  // kAmongDigits: a tall candidate the network calls no digit, beside one it reads as a digit.
  const long digits = std::count_if(candidates.begin(), candidates.end(), [](const DigitCandidate& d) { return d.is_digit; });
  for (DigitCandidate& d : candidates) {
    if (!d.is_digit && digits > 0 && d.box.height >= kTallPart * seg.line_height && d.not_a_digit_probability)
      d.is_digit = kAmongDigits * *d.not_a_digit_probability <= d.probability;
    if (d.is_digit) {
      result.digits.push_back(std::move(d));
    } else {
      result.not_digits.push_back(d.box);
    }
  }
  std::sort(result.not_digits.begin(), result.not_digits.end(), [](const Box& a, const Box& b) { return 2 * a.x + a.width < 2 * b.x + b.width; });
  return result;
}

}  // namespace digits
