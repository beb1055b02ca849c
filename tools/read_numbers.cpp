// Numbers of 2–6 digits made from MNIST *test* digits placed side by side (gaps of several widths,
// touching and slightly overlapping pairs, a baseline that wanders and slopes, digits of
// different sizes), read by read_number (src/digits/segment.hpp) with a model, and scored: the
// whole number, each digit, and the segmentation errors by kind. docs/numbers.md gives the results.
// The digits may come from a folder of labelled images instead (--glyphs: make_digit_folders'
// fonts/ or strokes/, docs/robustness.md), placed the same way.
//
//   read_numbers --count 2000 --seed 1                 # measure the built-in model
//   read_numbers --count 50 --out numbers/             # also write the images, <number>_<index>.png
//   read_numbers --glyphs folders/fonts --count 1000   # numbers of handwriting-font digits
//   read_numbers --glyphs folders/fonts --one-hand     # … each number in one font and weight
//   read_numbers --errors wrong/                       # write the numbers read wrong, boxes drawn
//   read_numbers --show-splits                         # each digit read as two: the pieces and the whole
//
// Segmentation errors, from the true digits' x-extents and the candidates' boxes (a candidate
// belongs to the true digit that holds its box's centre):
//   merge  — a candidate's box holds the centres of two or more true digits;
//   split  — a true digit holds the centres of two or more candidates;
//   missed — a true digit holds no candidate's centre and is not inside a merge;
//   extra  — a candidate's centre is in no true digit.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "digits/builtin_model.hpp"
#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"
#include "digits/segment.hpp"

using namespace digits;
namespace fs = std::filesystem;

namespace {

struct Number {
  GrayImage image;
  std::string text;
  std::vector<std::pair<double, double>> spans;  // each true digit's ink, [x0, x1) in the image
  std::string layout;                            // "apart", "touching" or "overlapping": the closest pair's
};

// An MNIST digit's ink box (pixels > 0), as rows of bytes.
struct Glyph {
  int width, height;
  std::vector<float> pixels;
};

Glyph crop(const Dataset& data, std::size_t i) {
  const auto image = data.image(i);
  int x0 = 28, x1 = -1, y0 = 28, y1 = -1;
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x)
      if (image[static_cast<std::size_t>(y * 28 + x)] > 0) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  Glyph g{x1 - x0 + 1, y1 - y0 + 1, {}};
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) g.pixels.push_back(image[static_cast<std::size_t>(y * 28 + x)]);
  return g;
}

// A labelled image's ink box (after find_ink: white on black, paper 0), scaled by area averaging
// to 20 pixels tall like an MNIST digit's box, so the layout below treats both alike.
Glyph glyph_of(const GrayImage& image) {
  const Ink ink = find_ink(image);
  const Matrix& v = ink.values;
  int x0 = static_cast<int>(v.cols()), x1 = -1, y0 = static_cast<int>(v.rows()), y1 = -1;
  for (int y = 0; y < v.rows(); ++y)
    for (int x = 0; x < v.cols(); ++x)
      if (v(y, x) > kInkThreshold) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (x1 < 0) throw Error("a glyph image has no ink");
  const double s = 20.0 / (y1 - y0 + 1);  // output pixels per source pixel
  Glyph g{std::max(1, static_cast<int>(std::lround((x1 - x0 + 1) * s))), 20, {}};
  g.pixels.assign(static_cast<std::size_t>(g.width) * 20, 0.0f);
  std::vector<float> weight(g.pixels.size(), 0.0f);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const int gx = std::min(g.width - 1, static_cast<int>((x - x0 + 0.5) * s)), gy = std::min(19, static_cast<int>((y - y0 + 0.5) * s));
      g.pixels[static_cast<std::size_t>(gy * g.width + gx)] += v(y, x);
      weight[static_cast<std::size_t>(gy * g.width + gx)] += 1;
    }
  for (std::size_t i = 0; i < g.pixels.size(); ++i) g.pixels[i] = weight[i] > 0 ? g.pixels[i] / weight[i] : 0.0f;
  return g;
}

// Where the digits come from: MNIST test images, or a folder's labelled images.
struct Glyphs {
  std::vector<Glyph> glyphs;
  std::vector<int> labels;
  // For a folder: the glyphs of each hand, the file name between the label and the last '_'
  // (make_digit_folders' "breip_thin" for a font and weight, "strokes_thick" for a pen). Empty for
  // MNIST's test digits, which carry no writer (--one-hand needs --glyphs).
  std::vector<std::vector<std::size_t>> hands;
  std::vector<std::size_t> hand_of;  // each glyph's hand
};

Glyphs glyphs_from(const Dataset& test) {
  Glyphs out;
  for (std::size_t i = 0; i < test.size(); ++i) out.glyphs.push_back(crop(test, i)), out.labels.push_back(test.labels[i]);
  return out;
}

Glyphs glyphs_from(const fs::path& dir) {
  Glyphs out;
  std::map<std::string, std::size_t> hand_index;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    if (name.size() < 3 || name[0] < '0' || name[0] > '9' || name[1] != '_') continue;  // none_ files and others: not digits
    out.glyphs.push_back(glyph_of(read_image(file)));
    out.labels.push_back(name[0] - '0');
    const std::string hand = name.substr(2, name.rfind('_') - 2);
    if (!hand_index.contains(hand)) hand_index[hand] = out.hands.size(), out.hands.emplace_back();
    out.hand_of.push_back(hand_index[hand]);
    out.hands[hand_index[hand]].push_back(out.glyphs.size() - 1);
  }
  if (out.glyphs.empty()) throw Error(dir.string() + ": no labelled digit images (<digit>_name.png)");
  return out;
}

// Bilinear sample of a glyph at (u, v) in its own pixels, 0 outside.
float sample(const Glyph& g, double u, double v) {
  u -= 0.5, v -= 0.5;
  const int x = static_cast<int>(std::floor(u)), y = static_cast<int>(std::floor(v));
  const double fx = u - x, fy = v - y;
  auto at = [&](int xx, int yy) -> double {
    if (xx < 0 || yy < 0 || xx >= g.width || yy >= g.height) return 0.0;
    return g.pixels[static_cast<std::size_t>(yy * g.width + xx)];
  };
  return static_cast<float>((1 - fy) * ((1 - fx) * at(x, y) + fx * at(x + 1, y)) + fy * ((1 - fx) * at(x, y + 1) + fx * at(x + 1, y + 1)));
}

// one_hand: every digit after the first is drawn from the first one's hand (Glyphs::hands).
Number make_number(const Glyphs& source, bool one_hand, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> length_of(2, 6);
  std::uniform_int_distribution<std::size_t> pick(0, source.glyphs.size() - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int length = length_of(rng);
  const double scale = 2.0 + 2.0 * unit(rng);             // the 20-pixel MNIST digit drawn 40–80 px tall
  const double slope = (unit(rng) - 0.5) * 0.16;          // up to ±4.6° of baseline slope
  const bool dark_on_light = unit(rng) < 0.5;
  std::vector<Glyph> glyphs;
  std::vector<double> sizes, gaps;
  Number number;
  std::size_t first = 0;  // the first digit's glyph, whose hand the others share with one_hand
  for (int k = 0; k < length; ++k) {
    std::size_t i = pick(rng);  // drawn for every digit, one hand or not (the documented numbers are these draws)
    if (k == 0) first = i;
    if (one_hand && k > 0) {
      const std::vector<std::size_t>& hand = source.hands[source.hand_of[first]];
      i = hand[std::uniform_int_distribution<std::size_t>(0, hand.size() - 1)(rng)];
    }
    glyphs.push_back(source.glyphs[i]);
    number.text += static_cast<char>('0' + source.labels[i]);
    sizes.push_back(scale * (0.85 + 0.3 * unit(rng)));  // sizes vary by up to ±15% within a number
    // The gap before the next digit, in MNIST pixels: mostly apart (1–8), some touching (0 to −1),
    // some overlapping (−1 to −2.5: the boxes overlap, the strokes may or may not).
    const double r = unit(rng);
    gaps.push_back(r < 0.6 ? 1 + 7 * unit(rng) : r < 0.8 ? -unit(rng) : -1 - 1.5 * unit(rng));
  }
  double min_gap = 1e9;
  for (int k = 0; k + 1 < length; ++k) min_gap = std::min(min_gap, gaps[static_cast<std::size_t>(k)]);
  number.layout = min_gap >= 0.5 ? "apart" : min_gap >= -1 ? "touching" : "overlapping";

  // Place the glyphs: x advances by each glyph's width plus the gap; the baseline follows the slope.
  std::vector<double> lefts, tops;
  double x = 20, width = 0, lowest = 1e9, highest = -1e9;
  for (int k = 0; k < length; ++k) {
    const Glyph& g = glyphs[static_cast<std::size_t>(k)];
    const double s = sizes[static_cast<std::size_t>(k)];
    const double bottom = 20 + 28 * scale * 1.1 + slope * (x - 20) + (unit(rng) - 0.5) * 2 * scale;
    lefts.push_back(x), tops.push_back(bottom - g.height * s);
    lowest = std::min(lowest, bottom - g.height * s), highest = std::max(highest, bottom);
    number.spans.push_back({x, x + g.width * s});
    x += g.width * s + gaps[static_cast<std::size_t>(k)] * s;
    width = std::max(width, number.spans.back().second);
  }
  const double shift = 20 - lowest;
  const int W = static_cast<int>(width + 20), Hh = static_cast<int>(highest + shift + 20);
  number.image = {W, Hh, std::vector<float>(static_cast<std::size_t>(W) * static_cast<std::size_t>(Hh), 0.0f)};
  for (int k = 0; k < length; ++k) {
    const Glyph& g = glyphs[static_cast<std::size_t>(k)];
    const double s = sizes[static_cast<std::size_t>(k)], left = lefts[static_cast<std::size_t>(k)], top = tops[static_cast<std::size_t>(k)] + shift;
    for (int py = std::max(0, static_cast<int>(top)); py < std::min(Hh, static_cast<int>(top + g.height * s) + 1); ++py)
      for (int px = std::max(0, static_cast<int>(left)); px < std::min(W, static_cast<int>(left + g.width * s) + 1); ++px) {
        float& v = number.image.pixels[static_cast<std::size_t>(py) * static_cast<std::size_t>(W) + static_cast<std::size_t>(px)];
        v = std::max(v, sample(g, (px + 0.5 - left) / s, (py + 0.5 - top) / s));
      }
  }
  if (dark_on_light)
    for (float& v : number.image.pixels) v = 255.0f - v;
  return number;
}

struct Tally {
  int numbers = 0, right = 0, digits = 0, digits_right = 0;
  int merge = 0, split = 0, missed = 0, extra = 0;
  int misread = 0;             // cut right (one candidate, in no merge) but read as another digit
  int missed_not_a_digit = 0;  // of the missed: a candidate the network called "not a digit" lies there
  int wrong_cut = 0;           // numbers read wrong with at least one segmentation error (the rest: misreadings only)
};

void score(const Number& number, const NumberReading& reading, Tally& t) {
  ++t.numbers;
  t.right += reading.text() == number.text;
  const int errors_before = t.merge + t.split + t.missed + t.extra;
  const std::size_t n = number.spans.size();
  std::vector<std::vector<std::size_t>> in_digit(n);  // candidates whose centre lies in each true digit
  std::vector<bool> merged(n, false);
  for (std::size_t c = 0; c < reading.digits.size(); ++c) {
    const Box& b = reading.digits[c].box;
    const double centre = b.x + b.width / 2.0;
    int held = 0;
    for (std::size_t d = 0; d < n; ++d) {
      const double mid = (number.spans[d].first + number.spans[d].second) / 2;
      if (mid >= b.x && mid < b.x + b.width) ++held;
    }
    if (held >= 2) {
      ++t.merge;
      for (std::size_t d = 0; d < n; ++d) {
        const double mid = (number.spans[d].first + number.spans[d].second) / 2;
        if (mid >= b.x && mid < b.x + b.width) merged[d] = true;
      }
    }
    bool found = false;
    for (std::size_t d = 0; d < n && !found; ++d) {
      if (centre >= number.spans[d].first && centre < number.spans[d].second) in_digit[d].push_back(c), found = true;
    }
    if (!found) ++t.extra;
  }
  for (std::size_t d = 0; d < n; ++d) {
    ++t.digits;
    if (in_digit[d].size() >= 2) ++t.split;
    if (in_digit[d].empty() && !merged[d]) {
      ++t.missed;
      const auto inside = [&](const Box& b) {
        const double centre = b.x + b.width / 2.0;
        return centre >= number.spans[d].first && centre < number.spans[d].second;
      };
      t.missed_not_a_digit += std::any_of(reading.not_digits.begin(), reading.not_digits.end(), inside);
    }
    if (in_digit[d].size() == 1 && !merged[d]) {
      if (reading.digits[in_digit[d][0]].digit == number.text[d] - '0')
        ++t.digits_right;
      else
        ++t.misread;
    }
  }
  if (reading.text() != number.text && t.merge + t.split + t.missed + t.extra > errors_before) ++t.wrong_cut;
}

// The image with each candidate's box outlined in mid-grey (digits) or dashed (not digits), to look
// at what went wrong.
GrayImage with_boxes(GrayImage image, const NumberReading& reading) {
  const auto outline = [&](const Box& b, bool dashed) {
    const auto set = [&](int x, int y) {
      if (x >= 0 && y >= 0 && x < image.width && y < image.height && (!dashed || (x + y) % 4 < 2))
        image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x)] = 128.0f;
    };
    for (int x = b.x - 1; x <= b.x + b.width; ++x) set(x, b.y - 1), set(x, b.y + b.height);
    for (int y = b.y - 1; y <= b.y + b.height; ++y) set(b.x - 1, y), set(b.x + b.width, y);
  };
  for (const DigitCandidate& d : reading.digits) outline(d.box, false);
  for (const Box& b : reading.not_digits) outline(b, true);
  return image;
}

// Each digit the reading split in two or more (--show-splits): the true digit and its width, each
// piece's reading (digit, probability, "not a digit"'s probability, width and height), and the
// pieces joined again, read by the same network as the reader's piece spanning them would be (the
// union of the pieces' own ink), with the reader's score of each choice (segment.cpp):
// log p + 12·log(1 − p(not a digit)) − 8·max(0, width/h − 1.2). Widths and heights are in units
// of h, the height of the pieces' boxes together (the reader's H is not known here).
void show_splits(int index, const Number& number, const NumberReading& reading, const Network& network) {
  const std::size_t n = number.spans.size();
  for (std::size_t d = 0; d < n; ++d) {
    std::vector<const DigitCandidate*> in;
    for (const DigitCandidate& c : reading.digits) {
      const double centre = c.box.x + c.box.width / 2.0;
      if (centre >= number.spans[d].first && centre < number.spans[d].second) in.push_back(&c);
    }
    if (in.size() < 2) continue;
    // The pieces' own ink joined again (each image's top left is (ink_x, ink_y) in the number's).
    int top = 1 << 30, bottom = -1, x0 = 1 << 30, x1 = -1;
    for (const DigitCandidate* c : in)
      top = std::min(top, c->ink_y), bottom = std::max(bottom, c->ink_y + c->ink.height), x0 = std::min(x0, c->ink_x), x1 = std::max(x1, c->ink_x + c->ink.width);
    GrayImage joined{x1 - x0, bottom - top, std::vector<float>(static_cast<std::size_t>(x1 - x0) * static_cast<std::size_t>(bottom - top), 0.0f)};
    for (const DigitCandidate* c : in)
      for (int y = 0; y < c->ink.height; ++y)
        for (int x = 0; x < c->ink.width; ++x) {
          float& v = joined.pixels[static_cast<std::size_t>(c->ink_y + y - top) * static_cast<std::size_t>(joined.width) + static_cast<std::size_t>(c->ink_x + x - x0)];
          v = std::max(v, c->ink.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(c->ink.width) + static_cast<std::size_t>(x)]);
        }
    const Preprocessed input = fit_ink(Ink{Eigen::Map<const Matrix>(joined.pixels.data(), joined.height, joined.width), false});
    const Matrix p = network.predict_proba(Eigen::Map<const Matrix>(input.pixels.data(), 1, kInputSide * kInputSide));
    int best = 0;
    for (int k = 1; k < 10; ++k)
      if (p(0, k) > p(0, best)) best = k;
    const double nad = p.cols() > 10 ? p(0, 10) : 0.0;
    int jx0 = 1 << 30, jx1 = -1, jy0 = 1 << 30, jy1 = -1;
    for (const DigitCandidate* c : in) jx0 = std::min(jx0, c->box.x), jx1 = std::max(jx1, c->box.x + c->box.width), jy0 = std::min(jy0, c->box.y), jy1 = std::max(jy1, c->box.y + c->box.height);
    const double h = jy1 - jy0;
    const auto sc = [&](double top_p, double not_p, double w) { return std::log(std::max(top_p, 1e-30)) + 12 * std::log(std::max(1 - not_p, 1e-30)) - 8 * std::max(0.0, w / h - 1.2); };
    double pieces_score = 0;
    std::printf("split %05d %s as %s digit %zu=%c truew/h %.2f joined %d p %.3f nad %.3f score %.2f | pieces:", index, number.text.c_str(), reading.text().c_str(), d,
                number.text[d], (number.spans[d].second - number.spans[d].first) / h, best, p(0, best), nad, sc(p(0, best), nad, jx1 - jx0));
    for (const DigitCandidate* c : in) {
      const double np = c->not_a_digit_probability.value_or(0.0f);
      pieces_score += sc(c->probability, np, c->box.width);
      std::printf(" %d p %.3f nad %.3f w/h %.2f h/H %.2f;", c->digit, c->probability, np, c->box.width / h, c->box.height / h);
    }
    std::printf(" score %.2f %s\n", pieces_score, number.layout.c_str());
  }
}

void print(const char* name, const Tally& t) {
  std::printf(
      "%-12s %5d numbers: whole number %6.2f%%, digits %6.2f%% of %d; segmentation errors: merge %d, split %d, missed %d (%d not a digit), extra %d; misread %d; "
      "numbers wrong: %d cut wrong, %d misread only\n",
      name, t.numbers, 100.0 * t.right / std::max(1, t.numbers), 100.0 * t.digits_right / std::max(1, t.digits), t.digits, t.merge, t.split, t.missed,
      t.missed_not_a_digit, t.extra, t.misread, t.wrong_cut, t.numbers - t.right - t.wrong_cut);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Read numbers made of MNIST test digits placed side by side, and score the readings"};
  int count = 1000;
  std::uint64_t seed = 1;
  std::string model_path, out, errors, data = "data/mnist", glyph_dir;
  bool show = false, show_split = false, one_hand = false;
  app.add_option("--count", count, "Numbers to make")->check(CLI::Range(1, 1000000));
  app.add_option("--seed", seed, "Seed of the numbers");
  app.add_option("--model", model_path, "Model file (default: the built-in model)");
  app.add_option("--data", data, "MNIST folder (its t10k files are used)");
  app.add_option("--glyphs", glyph_dir, "Take the digits from this folder of labelled images (<digit>_name.png) instead of MNIST test");
  app.add_flag("--one-hand", one_hand, "With --glyphs: each number's digits from one hand (the file name between the label and the last '_': a font and weight, a pen)")->needs("--glyphs");
  app.add_option("--out", out, "Also write each image as <number>_<index>.png in this folder");
  app.add_flag("--show-errors", show, "Print each number read wrong");
  app.add_flag("--show-splits", show_split, "Print each digit read as two or more: the pieces' readings and the joined pieces' reading");
  app.add_option("--errors", errors, "Write each number read wrong, its candidates' boxes drawn in grey, as <number>_as_<reading>_<index>.png in this folder");
  CLI11_PARSE(app, argc, argv);
  try {
    const Model model = model_path.empty() ? parse_model(builtin_model_bytes(), "the built-in model") : load_model(model_path);
    const Glyphs source = glyph_dir.empty()
                              ? glyphs_from(read_idx(fs::path(data) / "t10k-images-idx3-ubyte", fs::path(data) / "t10k-labels-idx1-ubyte", "MNIST test"))
                              : glyphs_from(fs::path(glyph_dir));
    if (!out.empty()) fs::create_directories(out);
    if (!errors.empty()) fs::create_directories(errors);
    std::mt19937_64 rng(seed);
    Tally all, apart, touching, overlapping;
    std::vector<Tally> by_length(7);
    double six_seconds = 0;
    int sixes = 0;
    for (int i = 0; i < count; ++i) {
      const Number number = make_number(source, one_hand, rng);
      const std::clock_t start = std::clock();
      const NumberReading reading = read_number(model.network, number.image);
      const double seconds = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
      if (number.text.size() == 6) six_seconds += seconds, ++sixes;
      score(number, reading, all);
      score(number, reading, number.layout == "apart" ? apart : number.layout == "touching" ? touching : overlapping);
      score(number, reading, by_length[number.text.size()]);
      if (show && reading.text() != number.text) std::printf("%05d: %s read as %s (%s)\n", i, number.text.c_str(), reading.text().c_str(), number.layout.c_str());
      if (show_split) show_splits(i, number, reading, model.network);
      if (!errors.empty() && reading.text() != number.text) write_png(fs::path(errors) / (number.text + "_as_" + reading.text() + "_" + std::to_string(i) + ".png"), with_boxes(number.image, reading));
      if (!out.empty()) {
        char name[64];
        std::snprintf(name, sizeof name, "%s_%05d.png", number.text.c_str(), i);
        write_png(fs::path(out) / name, number.image);
      }
    }
    print("all", all);
    print("apart", apart);
    print("touching", touching);
    print("overlapping", overlapping);
    for (int length = 2; length <= 6; ++length) print((std::to_string(length) + " digits").c_str(), by_length[static_cast<std::size_t>(length)]);
    if (sixes) std::printf("6-digit numbers: %.2f ms of CPU each on average (%d numbers)\n", 1000 * six_seconds / sixes, sixes);
  } catch (const Error& e) {
    std::fprintf(stderr, "read_numbers: %s\n", e.what());
    return 1;
  }
  return 0;
}
