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
// A piece's ink keeps this many pixels around its box: anti-aliasing's faint edge (piece_ink).
constexpr int kFaintMargin = 2;
// Segmentation by recognition (LeCun et al. 1998, §VI) chooses the cuts whose pieces the network
// reads with the highest joint probability, Π p(piece). Our network has no "not a digit" class to
// tell a half-digit or two digits from one digit, and is often sure of such pieces anyway, so a
// prior on shape joins the score: each piece's log-probability loses kWidePenalty per unit of
// width/height beyond kWidest. MNIST's training digits are wider than one might think (width /
// height: mean 0.96 for a 2, 95th percentile 1.25), so kWidest is 1.2, chosen by measurement
// among 1.1–1.3 with penalties 4–16, which matter little (docs/numbers.md). A flat cost per cut
// and a cost per stroke a cut crosses were measured too and did worse: the network reads the
// halves of a wide 0 as surely as two real digits, and two touching digits as surely as one.
constexpr double kWidest = 1.2, kWidePenalty = 8.0;

Box box_of(int x0, int y0, int x1, int y1) { return {x0, y0, x1 - x0 + 1, y1 - y0 + 1}; }  // inclusive corners

struct Component {
  int x0, y0, x1, y1;  // inclusive bounding box
  int pixels;
  int label;
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
    Component c{start % width, start / width, start % width, start / width, 0, label};
    labels[static_cast<std::size_t>(start)] = label;
    stack.push_back(start);
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      const int x = i % width, y = i / width;
      c.x0 = std::min(c.x0, x), c.x1 = std::max(c.x1, x), c.y0 = std::min(c.y0, y), c.y1 = std::max(c.y1, y);
      ++c.pixels;
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

// Candidate cut columns of a wide group: the lowest local minima of its column profile (the ink of
// its own components in each column, summed over three columns to ignore a pen's ragged edge), at
// least kNarrowestPiece·height from either end and from each other.
std::vector<int> cut_columns(const Group& group, int index, const Matrix& ink, const std::vector<int>& labels, const std::vector<int>& group_of) {
  const int w = group.width(), h = group.height();
  const int width = static_cast<int>(ink.cols());
  std::vector<double> column(static_cast<std::size_t>(w), 0.0);
  for (int y = group.y0; y <= group.y1; ++y) {
    for (int x = group.x0; x <= group.x1; ++x) {
      const int label = labels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)];
      if (label >= 0 && group_of[static_cast<std::size_t>(label)] == index) column[static_cast<std::size_t>(x - group.x0)] += ink(y, x);
    }
  }
  std::vector<double> profile(column.size());
  for (int x = 0; x < w; ++x) {
    profile[static_cast<std::size_t>(x)] = column[static_cast<std::size_t>(x)] + (x > 0 ? column[static_cast<std::size_t>(x - 1)] : 0.0) +
                                           (x + 1 < w ? column[static_cast<std::size_t>(x + 1)] : 0.0);
  }
  const int margin = std::max(kFewestColumns, static_cast<int>(std::ceil(kNarrowestPiece * h)));
  std::vector<int> minima;
  for (int x = margin; x <= w - margin; ++x) {
    const double v = profile[static_cast<std::size_t>(x)];
    const double left = profile[static_cast<std::size_t>(x - 1)], right = x + 1 < w ? profile[static_cast<std::size_t>(x + 1)] : v;
    if (v <= left && v <= right) minima.push_back(x);
  }
  std::stable_sort(minima.begin(), minima.end(), [&](int a, int b) { return profile[static_cast<std::size_t>(a)] < profile[static_cast<std::size_t>(b)]; });
  std::vector<int> cuts;
  for (int x : minima) {
    if (static_cast<int>(cuts.size()) == kMaxCutsPerGroup) break;
    if (std::all_of(cuts.begin(), cuts.end(), [&](int c) { return std::abs(c - x) >= margin; })) cuts.push_back(x);
  }
  std::sort(cuts.begin(), cuts.end());
  for (int& c : cuts) c += group.x0;
  return cuts;
}

// A piece's own ink as an image of its own: its group's components within `piece` (the group's
// rows, the columns between two cuts) and the faint ink among them (below kInkThreshold, in no
// component, as preprocess would see it), cropped to the piece's box and kFaintMargin around it,
// and framed by a pixel of paper. So preprocess(ink) is exactly what the network reads; the frame
// makes the border's median 0 whatever a cut goes through, so preprocess finds black paper and
// changes no value. When the image's ink is whole levels (any 8-bit image on black paper, as the
// page draws), a PNG of it gives the same input again: the page shows and judges each digit of a
// number through the same /api/predict and /api/feedback as a single digit (docs/numbers.md).
GrayImage piece_ink(const Segmentation& seg, const Box& box, const Box& piece, const auto& member, int& ink_x, int& ink_y) {
  const Matrix& ink = seg.ink.values;
  const int width = static_cast<int>(ink.cols());
  const int x0 = std::max(piece.x, box.x - kFaintMargin), x1 = std::min(piece.x + piece.width, box.x + box.width + kFaintMargin);
  const int y0 = std::max(piece.y, box.y - kFaintMargin), y1 = std::min(piece.y + piece.height, box.y + box.height + kFaintMargin);
  GrayImage out{x1 - x0 + 2, y1 - y0 + 2, {}};
  out.pixels.assign(static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.height), 0.0f);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
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
    groups.push_back({c.x0, c.y0, c.x1, c.y1, {c.label}, c.pixels});
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
        groups.erase(groups.begin() + static_cast<std::ptrdiff_t>(j));
        merged = true;
      }
    }
  }
  // Left to right by the centre of the box, which keeps the order on a line that slopes a little.
  std::sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) { return a.x0 + a.x1 < b.x0 + b.x1; });

  for (const Group& g : groups) {
    const Box box = box_of(g.x0, g.y0, g.x1, g.y1);
    if (g.height() < kShortest * H) {
      result.not_digits.push_back(box);
      continue;
    }
    const int index = static_cast<int>(result.groups.size());
    for (int label : g.members) result.group_of[static_cast<std::size_t>(label)] = index;
    InkGroup out{box, g.members, {}};
    if (g.width() > kSplitAspect * std::max<double>(g.height(), H)) out.cuts = cut_columns(g, index, ink, result.labels, result.group_of);
    result.groups.push_back(std::move(out));
  }
  return result;
}

NumberReading read_number(const Network& network, const GrayImage& image) {
  if (network.inputs() != kInputSide * kInputSide || (network.classes() != kDigitClasses && !has_not_a_digit(network.classes())))
    throw Error("reading a number needs a network of 784 inputs and 10 classes (or 11, with \"not a digit\"), not " + std::to_string(network.inputs()) + " and " +
                std::to_string(network.classes()));
  const Segmentation seg = segment(image);
  const Matrix& ink = seg.ink.values;
  const int width = static_cast<int>(ink.cols());

  // Every piece of every group, [points[i], points[j]) for i < j, read in one batch.
  struct Piece {
    std::size_t group;
    int from, to;  // indices into the group's points
    Box box;
    int pixels;
    int row = -1;  // its row in the batch; −1: not read (empty or too thin)
    GrayImage ink;  // what the network read, through preprocess (piece_ink)
    int ink_x = 0, ink_y = 0;
  };
  std::vector<std::vector<int>> points(seg.groups.size());
  std::vector<Piece> pieces;
  std::vector<float> batch;
  for (std::size_t g = 0; g < seg.groups.size(); ++g) {
    const InkGroup& group = seg.groups[g];
    points[g].push_back(group.box.x);
    points[g].insert(points[g].end(), group.cuts.begin(), group.cuts.end());
    points[g].push_back(group.box.x + group.box.width);
    const auto member = [&](int label) { return label >= 0 && seg.group_of[static_cast<std::size_t>(label)] == static_cast<int>(g); };
    int group_pixels = 0;
    for (int y = group.box.y; y < group.box.y + group.box.height; ++y)
      for (int x = group.box.x; x < group.box.x + group.box.width; ++x)
        group_pixels += member(seg.labels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]);
    for (int i = 0; i + 1 < static_cast<int>(points[g].size()); ++i) {
      for (int j = i + 1; j < static_cast<int>(points[g].size()); ++j) {
        const int x0 = points[g][static_cast<std::size_t>(i)], x1 = points[g][static_cast<std::size_t>(j)];
        // The piece's box: its group's components in columns [x0, x1).
        int left = x1, right = -1, top = group.box.y + group.box.height, bottom = -1, pixels = 0;
        for (int y = group.box.y; y < group.box.y + group.box.height; ++y) {
          for (int x = x0; x < x1; ++x) {
            if (!member(seg.labels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)])) continue;
            ++pixels;
            left = std::min(left, x), right = std::max(right, x), top = std::min(top, y), bottom = std::max(bottom, y);
          }
        }
        Piece p{g, i, j, {}, pixels, -1, {}, 0, 0};
        const bool whole = i == 0 && j + 1 == static_cast<int>(points[g].size());
        if (pixels > 0 && (whole || (right - left + 1 >= kNarrowestPiece * group.box.height && pixels >= kLeastInk * group_pixels))) {
          p.box = box_of(left, top, right, bottom);
          p.ink = piece_ink(seg, p.box, {x0, group.box.y, x1 - x0, group.box.height}, member, p.ink_x, p.ink_y);
          p.row = static_cast<int>(batch.size() / (kInputSide * kInputSide));
          const Preprocessed input = preprocess(p.ink);
          batch.insert(batch.end(), input.pixels.begin(), input.pixels.end());
        }
        pieces.push_back(p);
      }
    }
  }
  const Eigen::Index rows = static_cast<Eigen::Index>(batch.size() / (kInputSide * kInputSide));
  const Matrix probabilities = rows ? network.predict_proba(Eigen::Map<const Matrix>(batch.data(), rows, kInputSide * kInputSide)) : Matrix();

  NumberReading result;
  result.inverted = seg.ink.inverted;
  result.not_digits = seg.not_digits;
  std::size_t first = 0;  // the group's first piece in `pieces`
  for (std::size_t g = 0; g < seg.groups.size(); ++g) {
    const int n = static_cast<int>(points[g].size());
    // score[i][j]: log p(piece) + the shape prior; best[j]: the best sum of scores of pieces that
    // cover the group from points[0] to points[j], reached from back[j]. Dynamic programming over
    // at most kMaxCutsPerGroup + 2 points.
    const double none = -std::numeric_limits<double>::infinity();
    std::vector<std::vector<const Piece*>> at(static_cast<std::size_t>(n), std::vector<const Piece*>(static_cast<std::size_t>(n), nullptr));
    std::size_t k = first;
    for (; k < pieces.size() && pieces[k].group == g; ++k) at[static_cast<std::size_t>(pieces[k].from)][static_cast<std::size_t>(pieces[k].to)] = &pieces[k];
    first = k;
    const auto score = [&](const Piece* p) {
      if (!p || p->row < 0) return none;
      const double aspect = static_cast<double>(p->box.width) / std::max<double>(seg.groups[g].box.height, seg.line_height);
      // The most probable digit's probability, never "not a digit"'s: the cuts that win are those
      // that make digits, and a piece sure to be no digit scores low (with ten classes, the top one).
      const double top = probabilities.row(p->row).head(kDigitClasses).maxCoeff();
      return std::log(std::max(top, 1e-30)) - kWidePenalty * std::max(0.0, aspect - kWidest);
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
      const std::span<const float> all(&probabilities(p->row, 0), static_cast<std::size_t>(probabilities.cols()));
      for (int c = 0; c < kDigitClasses; ++c) d.probabilities[static_cast<std::size_t>(c)] = all[static_cast<std::size_t>(c)];
      const ClassReading classes = read_classes(all);
      d.digit = classes.digit;
      d.probability = classes.probability;
      d.not_a_digit_probability = classes.not_a_digit_probability;
      d.is_digit = looks_like_a_digit(all);
      if (d.is_digit) {
        result.digits.push_back(d);
      } else {
        result.not_digits.push_back(d.box);
      }
    }
  }
  std::sort(result.not_digits.begin(), result.not_digits.end(), [](const Box& a, const Box& b) { return 2 * a.x + a.width < 2 * b.x + b.width; });
  return result;
}

}  // namespace digits
