// make_digit_folders: writes folders of labelled digit images that are not MNIST's, drawn the way
// people hand them to the app (large or small, anywhere on a big canvas, slanted, thin or thick,
// either polarity), for `digits evaluate --images`, and folders of things that are not digits, for
// tools/not_a_digit. See docs/robustness.md.
//
//   fonts/          digits from handwriting-style TrueType/OpenType fonts of Debian packages
//   strokes/        synthetic pen strokes, jittered
//   mnist_placed/   MNIST test digits placed exactly the same way: the control group
//   pen_stylus/, pen_marker/, narrow/, wide/, slant/, broken/, doubled/, overshoot/, touching/,
//   lowres/, photo/ one folder for each way people draw (issue 20, item 3), from MNIST test digits,
//                   the pen strokes and the fonts in turn (kVariations)
//   neg_*/          things that are not digits: letters, signs, scribbles, crossings-out, pieces of
//                   strokes, blobs, near-empty paper, fused pairs of digits, doodles (pictures drawn
//                   with the digits' pen strokes), pieces of MNIST training and pen-stroke digits cut
//                   by the number reader's own candidate cuts (issue 20, item 5; issue 21; kNegatives)
//   heldout_*/      more of them from other fonts and other generators, never to be trained on
//
// Every digit image goes through one path: a coverage bitmap of the digit (0 paper, 1 ink) at its
// final height → its stroke width set (fonts, MNIST: by a signed distance field; strokes: by the
// pen) → sheared and put at a random place on the canvas → paper and ink levels. So the first three
// folders differ only in where the digit's shape comes from, and the gap between them is the price
// of shapes the model did not train on; each variation folder then pushes one thing further.
// Images depend only on --seed, the folder, the digit and the image's number, so `--only`,
// `--per-digit` and `--negatives` do not change the images they share.
#include <stb_image_write.h>
#include <stb_truetype.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/random.hpp"
#include "digits/segment.hpp"
#include "digits/trainer.hpp"

namespace fs = std::filesystem;
using digits::Error;
using digits::GrayImage;
using digits::Rng;

namespace {

constexpr double pi = std::numbers::pi;

// A digit as ink coverage: 0 paper, 1 ink; height rows of width values.
struct Coverage {
  int width = 0, height = 0;
  std::vector<float> values;

  Coverage(int w, int h) : width(w), height(h), values(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), 0.0f) {}
  float& at(int x, int y) { return values[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
  float at(int x, int y) const { return values[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
  // Bilinear, with paper outside; (x, y) in pixel-centre coordinates (pixel i's centre is i).
  float sample(double x, double y) const {
    const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
    const double fx = x - x0, fy = y - y0;
    auto value = [&](int u, int v) { return (u < 0 || v < 0 || u >= width || v >= height) ? 0.0 : static_cast<double>(at(u, v)); };
    return static_cast<float>((1 - fy) * ((1 - fx) * value(x0, y0) + fx * value(x0 + 1, y0)) +
                              fy * ((1 - fx) * value(x0, y0 + 1) + fx * value(x0 + 1, y0 + 1)));
  }
};

double uniform(Rng& rng, double low, double high) { return low + (high - low) * static_cast<double>(rng.uniform()); }

// splitmix64's finaliser: independent seeds from (seed, folder, digit, number).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
std::uint64_t image_seed(std::uint64_t seed, int folder, int digit, int number) {
  return mix(mix(mix(seed) ^ static_cast<std::uint64_t>(folder)) ^ static_cast<std::uint64_t>(digit * 100003 + number));
}

// ---- how a digit is drawn: the same random choices for every folder ----

struct Look {
  int canvas_width = 0, canvas_height = 0;
  double height = 0;           // the digit's height in pixels
  double stroke = 0;           // stroke width as a fraction of the height
  const char* weight = "";     // thin, medium or thick: in the file name, to tell them apart
  double shear = 0;            // x moves by shear·(rise): positive slants to the right
  double paper = 0, ink = 255;
  double left_fraction = 0, top_fraction = 0;  // where the digit sits within the room left over
};

Look random_look(Rng& rng) {
  Look look;
  look.canvas_width = static_cast<int>(uniform(rng, 300, 800));
  look.canvas_height = rng.below(3) == 0 ? look.canvas_width : static_cast<int>(uniform(rng, 300, 800));
  look.height = uniform(rng, 0.15, 0.6) * std::min(look.canvas_width, look.canvas_height);
  // Thin (a fine pen on a big canvas), medium (MNIST's own, about 10–15%) and thick (a marker).
  switch (rng.below(3)) {
    case 0: look.stroke = uniform(rng, 0.02, 0.045), look.weight = "thin"; break;
    case 1: look.stroke = uniform(rng, 0.06, 0.12), look.weight = "medium"; break;
    default: look.stroke = uniform(rng, 0.12, 0.18), look.weight = "thick"; break;
  }
  look.shear = uniform(rng, -0.3, 0.3);
  if (rng.below(2) == 0) {  // dark ink on light paper
    look.paper = uniform(rng, 200, 255), look.ink = uniform(rng, 0, 60);
  } else {
    look.paper = uniform(rng, 0, 40), look.ink = uniform(rng, 190, 255);
  }
  look.left_fraction = uniform(rng, 0, 1), look.top_fraction = uniform(rng, 0, 1);
  return look;
}

double stroke_pixels(const Look& look) { return std::max(1.5, look.stroke * look.height); }

// The largest digit height that fits the canvas for a digit `aspect` (width / height) wide,
// sheared and thickened, with a margin of 2% of the shorter side.
void fit_height(Look& look, double aspect) {
  const double margin = 0.02 * std::min(look.canvas_width, look.canvas_height) + 2;
  const double by_width = (look.canvas_width - 2 * margin) / (aspect + std::abs(look.shear) + look.stroke);
  const double by_height = (look.canvas_height - 2 * margin) / (1 + look.stroke);
  look.height = std::min({look.height, by_width, by_height});
}

// Puts the glyph on a canvas: sheared about its middle row, at a random free place, in the look's
// paper and ink levels. Bilinear resampling keeps the edges anti-aliased.
GrayImage place_at(const Coverage& glyph, const Look& look, double left, double top);

GrayImage place(const Coverage& glyph, const Look& look) {
  const double reach = std::abs(look.shear) * glyph.height / 2;  // how far the shear moves the top and bottom rows
  const double margin = 0.02 * std::min(look.canvas_width, look.canvas_height);
  const double room_x = std::max(0.0, look.canvas_width - 2 * margin - (glyph.width + 2 * reach));
  const double room_y = std::max(0.0, look.canvas_height - 2 * margin - glyph.height);
  const double left = margin + reach + look.left_fraction * room_x, top = margin + look.top_fraction * room_y;
  return place_at(glyph, look, left, top);
}

// Puts the glyph's top-left corner at (left, top) of a canvas of the look's size and levels, sheared
// about its middle row; what falls outside the canvas is cut off.
GrayImage place_at(const Coverage& glyph, const Look& look, double left, double top) {
  GrayImage canvas{look.canvas_width, look.canvas_height,
                   std::vector<float>(static_cast<std::size_t>(look.canvas_width) * static_cast<std::size_t>(look.canvas_height), static_cast<float>(look.paper))};
  const double reach = std::abs(look.shear) * glyph.height / 2;
  const int x0 = std::max(0, static_cast<int>(left - reach) - 1), x1 = std::min(look.canvas_width - 1, static_cast<int>(left + glyph.width + reach) + 1);
  const int y0 = std::max(0, static_cast<int>(top) - 1), y1 = std::min(look.canvas_height - 1, static_cast<int>(top + glyph.height) + 1);
  for (int y = y0; y <= y1; ++y) {
    const double gy = y - top;
    const double offset = look.shear * (glyph.height / 2.0 - gy);
    for (int x = x0; x <= x1; ++x) {
      const float c = glyph.sample(x - left - offset, gy);
      if (c <= 0) continue;
      float& v = canvas.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(look.canvas_width) + static_cast<std::size_t>(x)];
      v = static_cast<float>(look.paper + (look.ink - look.paper) * std::min(1.0f, c));
    }
  }
  return canvas;
}

// ---- stroke width by a signed distance field ----

// Squared Euclidean distance transform, exact (Felzenszwalb & Huttenlocher, "Distance Transforms
// of Sampled Functions", 2012): f is 0 on the feature pixels and kFar elsewhere; returns, per
// pixel, the squared distance to the nearest feature pixel. Rows, then columns: each 1-D pass is
// the lower envelope of the parabolas (q − p)² + f(p).
constexpr double kFar = 1e20;

void distance_1d(const std::vector<double>& f, std::vector<double>& d, std::vector<int>& v, std::vector<double>& z, int n) {
  int k = 0;
  v[0] = 0, z[0] = -kFar, z[1] = kFar;
  for (int q = 1; q < n; ++q) {
    auto meet = [&](int p) { return ((f[static_cast<std::size_t>(q)] + q * q) - (f[static_cast<std::size_t>(p)] + p * p)) / (2.0 * q - 2.0 * p); };
    double s = meet(v[static_cast<std::size_t>(k)]);
    while (s <= z[static_cast<std::size_t>(k)]) s = meet(v[static_cast<std::size_t>(--k)]);
    ++k;
    v[static_cast<std::size_t>(k)] = q, z[static_cast<std::size_t>(k)] = s, z[static_cast<std::size_t>(k) + 1] = kFar;
  }
  k = 0;
  for (int q = 0; q < n; ++q) {
    while (z[static_cast<std::size_t>(k) + 1] < q) ++k;
    const int p = v[static_cast<std::size_t>(k)];
    d[static_cast<std::size_t>(q)] = (q - p) * (q - p) + f[static_cast<std::size_t>(p)];
  }
}

std::vector<double> squared_distances(std::vector<double> image, int width, int height) {
  const std::size_t n = static_cast<std::size_t>(std::max(width, height));
  std::vector<double> f(n), d(n), z(n + 1);
  std::vector<int> v(n);
  auto index = [&](int x, int y) { return static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x); };
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) f[static_cast<std::size_t>(x)] = image[index(x, y)];
    distance_1d(f, d, v, z, width);
    for (int x = 0; x < width; ++x) image[index(x, y)] = d[static_cast<std::size_t>(x)];
  }
  for (int x = 0; x < width; ++x) {
    for (int y = 0; y < height; ++y) f[static_cast<std::size_t>(y)] = image[index(x, y)];
    distance_1d(f, d, v, z, height);
    for (int y = 0; y < height; ++y) image[index(x, y)] = d[static_cast<std::size_t>(y)];
  }
  return image;
}

// One pass of Zhang & Suen's thinning ("A fast parallel algorithm for thinning digital patterns",
// CACM 1984): removes the ink pixels on the outline that are neither line ends nor bridges, first
// those facing south-east, then those facing north-west, so a stroke loses about one pixel on each
// side and never breaks; repeated until nothing changes, it leaves the one-pixel skeleton.
// mask is width × height with a one-pixel border of paper; returns whether anything changed.
bool thin_once(std::vector<unsigned char>& mask, int width, int height) {
  bool changed = false;
  std::vector<std::size_t> remove;
  for (int step = 0; step < 2; ++step) {
    remove.clear();
    for (int y = 1; y + 1 < height; ++y) {
      for (int x = 1; x + 1 < width; ++x) {
        auto at = [&](int dx, int dy) { return mask[static_cast<std::size_t>(y + dy) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x + dx)] != 0; };
        if (!at(0, 0)) continue;
        // The neighbours clockwise from north: P2 … P9.
        const bool p[8] = {at(0, -1), at(1, -1), at(1, 0), at(1, 1), at(0, 1), at(-1, 1), at(-1, 0), at(-1, -1)};
        int neighbours = 0, rises = 0;
        for (int k = 0; k < 8; ++k) neighbours += p[k], rises += !p[k] && p[(k + 1) % 8];
        if (neighbours < 2 || neighbours > 6 || rises != 1) continue;
        const bool facing = step == 0 ? !(p[0] && p[2] && p[4]) && !(p[2] && p[4] && p[6]) : !(p[0] && p[2] && p[6]) && !(p[0] && p[4] && p[6]);
        if (facing) remove.push_back(static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x));
      }
    }
    for (std::size_t i : remove) mask[i] = 0;
    changed = changed || !remove.empty();
  }
  return changed;
}

// The distance from each pixel centre to the outline of the mask's ink, signed: positive on paper.
// The outline lies half a pixel from the centres on either side of it.
std::vector<double> signed_distances(const std::vector<unsigned char>& mask, int width, int height) {
  std::vector<double> to_ink(mask.size()), to_paper(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) to_ink[i] = mask[i] ? 0 : kFar, to_paper[i] = mask[i] ? kFar : 0;
  to_ink = squared_distances(std::move(to_ink), width, height);
  to_paper = squared_distances(std::move(to_paper), width, height);
  std::vector<double> s(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) s[i] = mask[i] ? 0.5 - std::sqrt(to_paper[i]) : std::sqrt(to_ink[i]) - 0.5;
  return s;
}

// Redraws the glyph with strokes `width` pixels wide. The present width w is 4 × the mean distance
// from an ink pixel's centre to the outline (across a stroke of width w that distance runs evenly
// from 0 to w/2). Thicker: the outline moves out by δ = (width − w)/2 along the signed distance s,
// and the new coverage is clamp(δ − s + ½, 0, 1), an anti-aliased edge. Thinner: the glyph is
// thinned to its one-pixel skeleton and redrawn around it with a round pen, coverage
// clamp(width/2 + ½ − d, 0, 1) for d the distance to the skeleton: as a fine pen would have drawn
// it, where eroding the outline would erase hairlines and leave blobs at the joints.
Coverage set_stroke_width(const Coverage& glyph, double width) {
  const int pad = static_cast<int>(std::ceil(width / 2)) + 2;
  const int w = glyph.width + 2 * pad, h = glyph.height + 2 * pad;
  std::vector<unsigned char> mask(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), 0);
  for (int y = 0; y < glyph.height; ++y) {
    for (int x = 0; x < glyph.width; ++x) mask[static_cast<std::size_t>(y + pad) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x + pad)] = glyph.at(x, y) >= 0.5f;
  }
  auto present_width = [&](const std::vector<double>& s) {
    double inside = 0;
    std::size_t ink_pixels = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (mask[i]) inside += 0.5 - s[i], ++ink_pixels;
    }
    return ink_pixels ? 4 * inside / static_cast<double>(ink_pixels) : 0.0;
  };
  std::vector<double> s = signed_distances(mask, w, h);
  const double present = present_width(s);
  Coverage result(w, h);
  if (present == 0) return result;
  if (width >= present) {
    const double delta = (width - present) / 2;
    for (std::size_t i = 0; i < s.size(); ++i) result.values[i] = static_cast<float>(std::clamp(delta - s[i] + 0.5, 0.0, 1.0));
    return result;
  }
  while (thin_once(mask, w, h)) {
  }
  std::vector<double> to_skeleton(mask.size());
  for (std::size_t i = 0; i < mask.size(); ++i) to_skeleton[i] = mask[i] ? 0 : kFar;
  to_skeleton = squared_distances(std::move(to_skeleton), w, h);
  for (std::size_t i = 0; i < s.size(); ++i) result.values[i] = static_cast<float>(std::clamp(width / 2 + 0.5 - std::sqrt(to_skeleton[i]), 0.0, 1.0));
  return result;
}

// ---- fonts ----

struct Font {
  std::string family, file;
  std::vector<unsigned char> bytes;
  stbtt_fontinfo info{};
};

// Handwriting-style fonts of Debian packages, by the folder their package installs them in.
// (fonts-femkeklaver is left out: stb_truetype draws its digits hollow, as outlines.)
struct FontFamily {
  const char* name;
  const char* package;
  const char* folder;  // under /usr/share/fonts
};
constexpr FontFamily kFontFamilies[] = {
    {"dkg", "fonts-dkg-handwriting", "truetype/fifthhorseman"},
    {"breip", "fonts-breip", "truetype/breip"},
    {"humorsans", "fonts-humor-sans", "truetype/humor-sans"},
    {"comicneue", "fonts-comic-neue", "opentype/comic-neue"},
    {"klee", "fonts-klee", "truetype/klee"},
    {"kristi", "fonts-kristi", "truetype/kristi"},
    {"bwht", "fonts-bwht", "opentype/bwht"},
    {"dancingscript", "fonts-dancingscript", "opentype/dancingscript"},
    {"ecolier", "fonts-ecolier-court", "truetype/ecolier-court"},
};

// Every font file of the family that has all ten digits, sorted by name.
std::vector<Font> load_family(const FontFamily& family, const fs::path& fonts_root) {
  std::vector<Font> fonts;
  std::error_code ec;
  const fs::path dir = fonts_root / family.folder;
  if (!fs::is_directory(dir, ec)) return fonts;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string extension = entry.path().extension().string();
    if (extension == ".ttf" || extension == ".otf" || extension == ".TTF" || extension == ".OTF") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    Font font{family.name, file.string(), {}, {}};
    std::ifstream in(file, std::ios::binary);
    font.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    const int offset = font.bytes.empty() ? -1 : stbtt_GetFontOffsetForIndex(font.bytes.data(), 0);
    if (offset < 0 || !stbtt_InitFont(&font.info, font.bytes.data(), offset)) {
      std::fprintf(stderr, "make_digit_folders: %s: not a font stb_truetype can read; skipped\n", font.file.c_str());
      continue;
    }
    bool all_digits = true;
    for (int digit = 0; digit < 10; ++digit) {
      int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
      stbtt_GetCodepointBitmapBox(&font.info, '0' + digit, 1, 1, &x0, &y0, &x1, &y1);
      if (stbtt_FindGlyphIndex(&font.info, '0' + digit) == 0 || y1 <= y0 || x1 <= x0) all_digits = false;
    }
    if (!all_digits) {
      std::fprintf(stderr, "make_digit_folders: %s: lacks some digit; skipped\n", font.file.c_str());
      continue;
    }
    fonts.push_back(std::move(font));  // info points into bytes, whose buffer a move keeps
  }
  return fonts;
}

double font_aspect(const Font& font, int digit) {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  stbtt_GetCodepointBitmapBox(&font.info, '0' + digit, 1, 1, &x0, &y0, &x1, &y1);
  return static_cast<double>(x1 - x0) / (y1 - y0);
}

// The digit's glyph rasterised (anti-aliased by stb_truetype) so its ink is `height` pixels tall.
// x_scale widens (> 1) or narrows (< 1) it.
Coverage font_glyph(const Font& font, int digit, double height, double x_scale = 1) {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  stbtt_GetCodepointBitmapBox(&font.info, '0' + digit, 1, 1, &x0, &y0, &x1, &y1);
  const float scale = static_cast<float>(height / (y1 - y0));
  int w = 0, h = 0;
  unsigned char* bitmap = stbtt_GetCodepointBitmap(&font.info, scale * static_cast<float>(x_scale), scale, '0' + digit, &w, &h, nullptr, nullptr);
  if (!bitmap) throw Error(font.file + ": stb_truetype could not rasterise digit " + std::to_string(digit));
  Coverage glyph(w, h);
  for (std::size_t i = 0; i < glyph.values.size(); ++i) glyph.values[i] = bitmap[i] / 255.0f;
  stbtt_FreeBitmap(bitmap, nullptr);
  return glyph;
}

// ---- MNIST, upscaled ----

struct InkBox {
  int left, top, right, bottom;  // inclusive
};

InkBox mnist_box(std::span<const std::uint8_t> image) {
  InkBox box{28, 28, -1, -1};
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) {
      if (image[static_cast<std::size_t>(y * 28 + x)] < 26) continue;  // 10%: MNIST's anti-aliasing fringe is not the digit
      box.left = std::min(box.left, x), box.right = std::max(box.right, x), box.top = std::min(box.top, y), box.bottom = std::max(box.bottom, y);
    }
  }
  return box;
}

// The MNIST image's ink width over its height (mnist_box).
double mnist_aspect(std::span<const std::uint8_t> image) {
  const InkBox box = mnist_box(image);
  return static_cast<double>(box.right - box.left + 1) / (box.bottom - box.top + 1);
}

// The MNIST digit's ink box scaled by bilinear interpolation so it is `height` pixels tall (and
// x_scale times as wide as that keeps it).
Coverage mnist_glyph(std::span<const std::uint8_t> image, double height, double x_scale = 1) {
  const InkBox box = mnist_box(image);
  const double k = height / (box.bottom - box.top + 1);
  const int w = static_cast<int>(std::ceil((box.right - box.left + 1) * k * x_scale)), h = static_cast<int>(std::ceil(height));
  Coverage source(28, 28);
  for (std::size_t i = 0; i < source.values.size(); ++i) source.values[i] = image[i] / 255.0f;
  Coverage glyph(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) glyph.at(x, y) = source.sample(box.left - 0.5 + (x + 0.5) / (k * x_scale), box.top - 0.5 + (y + 0.5) / k);
  }
  return glyph;
}

// ---- pen strokes ----

struct Point {
  double x, y;  // in a unit box, (0, 0) top left, y down
};
using Stroke = std::vector<Point>;

Stroke arc(double cx, double cy, double rx, double ry, double from, double to, int steps = 48) {
  Stroke s;
  for (int i = 0; i <= steps; ++i) {
    const double t = from + (to - from) * i / steps;
    s.push_back({cx + rx * std::cos(t), cy + ry * std::sin(t)});
  }
  return s;
}

// A polyline through the points, cut into short pieces so the jitter can bend it.
Stroke polyline(std::initializer_list<Point> points) {
  Stroke s;
  const std::vector<Point> p(points);
  for (std::size_t k = 0; k + 1 < p.size(); ++k) {
    const int pieces = std::max(1, static_cast<int>(std::hypot(p[k + 1].x - p[k].x, p[k + 1].y - p[k].y) / 0.03));
    for (int i = 0; i < pieces; ++i) s.push_back({p[k].x + (p[k + 1].x - p[k].x) * i / pieces, p[k].y + (p[k + 1].y - p[k].y) * i / pieces});
  }
  s.push_back(p.back());
  return s;
}

Stroke joined(Stroke a, const Stroke& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The shapes people write, with the common variants (a 1 with or without flag and foot, a 7 with or
// without a bar, an open or closed 4, a flat-topped 3, …), each with its proportions drawn at random.
std::vector<Stroke> digit_strokes(int digit, Rng& rng) {
  auto u = [&](double low, double high) { return uniform(rng, low, high); };
  const int variant = static_cast<int>(rng.below(3));
  switch (digit) {
    case 0: {
      const double start = -pi / 2 + u(-0.4, 0.4);
      return {arc(0.5, 0.5, u(0.28, 0.42), 0.47, start, start + 2 * pi + u(0.0, 0.35), 64)};
    }
    case 1: {
      if (variant == 0) return {polyline({{0.5, 0.03}, {0.5, 0.97}})};
      std::vector<Stroke> s = {polyline({{u(0.2, 0.35), u(0.18, 0.3)}, {0.55, 0.03}, {0.55, 0.97}})};
      if (variant == 2) s.push_back(polyline({{0.3, 0.97}, {0.8, 0.97}}));
      return s;
    }
    case 2: {
      const double bottom_left = u(0.08, 0.2);
      Stroke s = arc(0.5, 0.3, 0.33, 0.27, pi * u(0.95, 1.15), 2.25 * pi);
      if (variant == 0) {  // a small loop where the diagonal meets the base
        s = joined(s, polyline({{bottom_left + 0.05, 0.9}, {bottom_left + 0.12, 0.84}, {bottom_left + 0.08, 0.97}, {0.88, u(0.9, 0.97)}}));
      } else {
        s = joined(s, polyline({{bottom_left, 0.97}, {0.88, u(0.9, 0.97)}}));
      }
      return {s};
    }
    case 3:
      if (variant == 0)
        return {joined(polyline({{0.18, 0.04}, {0.8, 0.04}, {0.42, 0.43}}), arc(0.5, 0.7, 0.36, 0.27, -0.6 * pi, 0.85 * pi))};
      return {joined(arc(0.5, 0.27, 0.31, 0.23, -0.85 * pi, 0.5 * pi), arc(0.5, 0.73, u(0.33, 0.38), 0.25, -0.5 * pi, 0.85 * pi))};
    case 4: {
      const double bar = u(0.58, 0.72);
      if (variant == 0) return {polyline({{0.22, 0.03}, {0.14, bar}, {0.9, bar}}), polyline({{0.66, u(0.03, 0.3)}, {0.66, 0.97}})};
      return {polyline({{0.68, 0.97}, {0.68, 0.03}, {0.1, bar}, {0.92, bar}})};
    }
    case 5: {
      const double ry = u(0.24, 0.3);
      return {polyline({{0.84, 0.04}, {0.3, 0.04}}),
              joined(polyline({{0.3, 0.04}, {0.27, 0.45}}), arc(0.5, 0.97 - ry, 0.33, ry, -0.75 * pi, 0.8 * pi))};
    }
    case 6: {
      const double r = u(0.22, 0.28);
      return {joined(arc(0.75, 0.62, 0.5, 0.58, -0.55 * pi, -pi, 32), arc(0.5, 0.97 - r, 0.26, r, pi, -pi, 64))};
    }
    case 7: {
      std::vector<Stroke> s = {polyline({{0.12, variant == 2 ? 0.16 : 0.06}, {0.12, 0.06}, {0.88, 0.06}, {u(0.3, 0.5), 0.97}})};
      if (variant == 1) s.push_back(polyline({{0.38, 0.5}, {0.8, 0.5}}));
      return s;
    }
    case 8: {
      const double middle = u(0.42, 0.5);
      return {arc(0.5, middle / 2, 0.24, middle / 2, pi / 2, 2.5 * pi), arc(0.5, (middle + 0.97) / 2, 0.3, (0.97 - middle) / 2, -pi / 2, 1.5 * pi)};
    }
    default: {  // 9
      const double ry = u(0.2, 0.26);
      Stroke loop = arc(0.45, 0.03 + ry, 0.28, ry, 0, 2 * pi);
      if (variant == 0) return {joined(loop, joined(polyline({{0.73, 0.03 + ry}, {0.72, 0.8}}), arc(0.5, 0.8, 0.22, 0.17, 0, 0.8 * pi, 16)))};
      return {joined(loop, polyline({{0.73, 0.03 + ry}, {u(0.62, 0.74), 0.97}}))};
    }
  }
}

// Handwriting's unsteadiness: a small rotation and stretch of the whole digit, a shift of each
// stroke, and a slow wobble along every stroke.
void jitter(std::vector<Stroke>& strokes, Rng& rng) {
  const double angle = uniform(rng, -0.15, 0.15), sx = uniform(rng, 0.85, 1.1), sy = uniform(rng, 0.9, 1.05);
  for (Stroke& stroke : strokes) {
    const double shift_x = uniform(rng, -0.025, 0.025), shift_y = uniform(rng, -0.025, 0.025);
    const double amplitude = uniform(rng, 0.005, 0.025), frequency = uniform(rng, 1.5, 4), phase_x = uniform(rng, 0, 2 * pi), phase_y = uniform(rng, 0, 2 * pi);
    double along = 0;
    for (std::size_t k = 0; k < stroke.size(); ++k) {
      if (k > 0) along += std::hypot(stroke[k].x - stroke[k - 1].x, stroke[k].y - stroke[k - 1].y);
      const double x = (stroke[k].x - 0.5) * sx, y = (stroke[k].y - 0.5) * sy;
      stroke[k] = {0.5 + x * std::cos(angle) - y * std::sin(angle) + shift_x + amplitude * std::sin(2 * pi * frequency * along + phase_x),
                   0.5 + x * std::sin(angle) + y * std::cos(angle) + shift_y + amplitude * std::sin(2 * pi * frequency * along + phase_y)};
    }
  }
}

// A segment from a to b (pixel coordinates) drawn with an anti-aliased round pen of the radius:
// coverage clamp(radius + ½ − d, 0, 1) for d the distance from the pixel's centre to the segment.
void draw_segment(Coverage& glyph, Point a, Point b, double radius) {
  const int x0 = std::max(0, static_cast<int>(std::min(a.x, b.x) - radius - 1)), x1 = std::min(glyph.width - 1, static_cast<int>(std::max(a.x, b.x) + radius + 1));
  const int y0 = std::max(0, static_cast<int>(std::min(a.y, b.y) - radius - 1)), y1 = std::min(glyph.height - 1, static_cast<int>(std::max(a.y, b.y) + radius + 1));
  const double dx = b.x - a.x, dy = b.y - a.y, length2 = std::max(dx * dx + dy * dy, 1e-12);
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      const double px = x + 0.5, py = y + 0.5;
      const double t = std::clamp(((px - a.x) * dx + (py - a.y) * dy) / length2, 0.0, 1.0);
      const double distance = std::hypot(px - (a.x + t * dx), py - (a.y + t * dy));
      glyph.at(x, y) = std::max(glyph.at(x, y), static_cast<float>(std::clamp(radius + 0.5 - distance, 0.0, 1.0)));
    }
  }
}

// The strokes scaled so their ink is `height` tall and `narrowing` times as wide as drawn, drawn
// with an anti-aliased round pen `pen` pixels wide. (As tests/support/strokes.hpp draws.)
Coverage stroke_glyph(const std::vector<Stroke>& strokes, double narrowing, double height, double pen) {
  double left = 1e9, right = -1e9, top = 1e9, bottom = -1e9;
  for (const Stroke& s : strokes) {
    for (const Point& p : s) left = std::min(left, p.x), right = std::max(right, p.x), top = std::min(top, p.y), bottom = std::max(bottom, p.y);
  }
  // The pen's round ends add pen/2 above and below: the centre line spans height − pen.
  const double k = std::max(1.0, height - pen) / (bottom - top), radius = pen / 2, pad = radius + 2;
  Coverage glyph(static_cast<int>(std::ceil((right - left) * k * narrowing + 2 * pad)), static_cast<int>(std::ceil((bottom - top) * k + 2 * pad)));
  for (const Stroke& stroke : strokes) {
    for (std::size_t i = 0; i + 1 < stroke.size(); ++i) {
      draw_segment(glyph, {pad + (stroke[i].x - left) * k * narrowing, pad + (stroke[i].y - top) * k},
                   {pad + (stroke[i + 1].x - left) * k * narrowing, pad + (stroke[i + 1].y - top) * k}, radius);
    }
  }
  return glyph;
}

// ---- skeletons: the strokes' centre lines, to break, double or extend them ----

// A binary image: 1 ink, 0 paper.
struct Mask {
  int width = 0, height = 0;
  std::vector<unsigned char> values;

  Mask(int w, int h) : width(w), height(h), values(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), 0) {}
  unsigned char& at(int x, int y) { return values[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
  unsigned char at(int x, int y) const { return values[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
  bool inside(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
};

// The glyph's ink (coverage ≥ ½) thinned to its one-pixel skeleton (Zhang–Suen, as set_stroke_width
// thins), `pad` pixels of paper added on every side.
Mask skeleton_of(const Coverage& glyph, int pad) {
  Mask mask(glyph.width + 2 * pad, glyph.height + 2 * pad);
  for (int y = 0; y < glyph.height; ++y) {
    for (int x = 0; x < glyph.width; ++x) mask.at(x + pad, y + pad) = glyph.at(x, y) >= 0.5f;
  }
  while (thin_once(mask.values, mask.width, mask.height)) {
  }
  return mask;
}

// The skeleton drawn with a round pen `pen` pixels wide: coverage clamp(pen/2 + ½ − d, 0, 1) for d
// the distance to the nearest skeleton pixel, as set_stroke_width redraws a thinned glyph.
Coverage pen_around(const Mask& skeleton, double pen) {
  std::vector<double> to_skeleton(skeleton.values.size());
  for (std::size_t i = 0; i < to_skeleton.size(); ++i) to_skeleton[i] = skeleton.values[i] ? 0 : kFar;
  to_skeleton = squared_distances(std::move(to_skeleton), skeleton.width, skeleton.height);
  Coverage result(skeleton.width, skeleton.height);
  for (std::size_t i = 0; i < to_skeleton.size(); ++i) result.values[i] = static_cast<float>(std::clamp(pen / 2 + 0.5 - std::sqrt(to_skeleton[i]), 0.0, 1.0));
  return result;
}

std::vector<std::pair<int, int>> ink_pixels(const Mask& mask) {
  std::vector<std::pair<int, int>> pixels;
  for (int y = 0; y < mask.height; ++y) {
    for (int x = 0; x < mask.width; ++x) {
      if (mask.at(x, y)) pixels.emplace_back(x, y);
    }
  }
  return pixels;
}

int neighbours(const Mask& mask, int x, int y) {
  int count = 0;
  for (int dy = -1; dy <= 1; ++dy) {
    for (int dx = -1; dx <= 1; ++dx) count += (dx || dy) && mask.inside(x + dx, y + dy) && mask.at(x + dx, y + dy);
  }
  return count;
}

// Broken strokes: the pen lifted for a moment. 1–3 gaps: the skeleton erased within `radius` of
// points on it (a cut that would leave less than 60% of the skeleton is not made).
void break_strokes(Mask& skeleton, double radius, Rng& rng) {
  const auto pixels = ink_pixels(skeleton);
  if (pixels.empty()) return;
  const int cuts = 1 + static_cast<int>(rng.below(3));
  std::size_t left = pixels.size();
  for (int cut = 0; cut < cuts; ++cut) {
    const auto [cx, cy] = pixels[rng.below(pixels.size())];
    std::vector<std::pair<int, int>> erased;
    for (const auto& [x, y] : pixels) {
      if (skeleton.at(x, y) && std::hypot(x - cx, y - cy) <= radius) erased.emplace_back(x, y);
    }
    if (left - erased.size() < pixels.size() * 6 / 10) continue;
    for (const auto& [x, y] : erased) skeleton.at(x, y) = 0;
    left -= erased.size();
  }
}

// Doubled strokes: the digit, or the part of it on one side of a random line, traced again
// `offset` pixels away in a random direction.
void double_strokes(Mask& skeleton, double offset, Rng& rng) {
  const auto pixels = ink_pixels(skeleton);
  if (pixels.empty()) return;
  const double angle = uniform(rng, 0, 2 * pi);
  const int dx = static_cast<int>(std::lround(offset * std::cos(angle))), dy = static_cast<int>(std::lround(offset * std::sin(angle)));
  const bool part = rng.below(2) == 0;
  const auto [cx, cy] = pixels[rng.below(pixels.size())];
  const double side = uniform(rng, 0, 2 * pi);
  for (const auto& [x, y] : pixels) {
    if (part && (x - cx) * std::cos(side) + (y - cy) * std::sin(side) < 0) continue;
    // A line of pixels from (x, y) to its copy would fill the gap; only the copy is drawn.
    if (skeleton.inside(x + dx, y + dy)) skeleton.at(x + dx, y + dy) = 1;
  }
}

// Overshooting strokes: 1–2 of the stroke ends carried on straight, `length` pixels beyond where the
// digit ends, in the direction the stroke was going (from the pixel `back` steps before the end).
// A digit with no ends (0, 8) overshoots where its skeleton is followed from a random pixel.
void overshoot_strokes(Mask& skeleton, double length, Rng& rng) {
  const auto pixels = ink_pixels(skeleton);
  if (pixels.empty()) return;
  std::vector<std::pair<int, int>> ends;
  for (const auto& [x, y] : pixels) {
    if (neighbours(skeleton, x, y) == 1) ends.emplace_back(x, y);
  }
  if (ends.empty()) ends.push_back(pixels[rng.below(pixels.size())]);
  const int count = std::min<int>(static_cast<int>(ends.size()), 1 + static_cast<int>(rng.below(2)));
  for (int k = 0; k < count; ++k) {
    const std::size_t pick = rng.below(ends.size());
    const auto [ex, ey] = ends[pick];
    ends.erase(ends.begin() + static_cast<std::ptrdiff_t>(pick));
    // Walk back along the skeleton, never revisiting a pixel.
    const int back = std::max(4, static_cast<int>(length / 3));
    int x = ex, y = ey;
    std::vector<std::pair<int, int>> seen = {{x, y}};
    for (int step = 0; step < back; ++step) {
      bool moved = false;
      for (int dy = -1; dy <= 1 && !moved; ++dy) {
        for (int dx = -1; dx <= 1 && !moved; ++dx) {
          if ((!dx && !dy) || !skeleton.inside(x + dx, y + dy) || !skeleton.at(x + dx, y + dy)) continue;
          if (std::find(seen.begin(), seen.end(), std::make_pair(x + dx, y + dy)) != seen.end()) continue;
          x += dx, y += dy, moved = true;
          seen.emplace_back(x, y);
        }
      }
      if (!moved) break;
    }
    double ux = ex - x, uy = ey - y;
    const double norm = std::hypot(ux, uy);
    if (norm < 1) continue;
    ux /= norm, uy /= norm;
    for (double t = 0; t <= length; t += 0.5) {
      const int px = static_cast<int>(std::lround(ex + ux * t)), py = static_cast<int>(std::lround(ey + uy * t));
      if (skeleton.inside(px, py)) skeleton.at(px, py) = 1;
    }
  }
}

// ---- the digit folders for each way people draw (issue 20, item 3) ----

// Where a variation folder's digit comes from, in turn: an MNIST test digit, the synthetic pen
// strokes, a handwriting font (never an MNIST training digit: these folders measure).
struct Sources {
  std::vector<std::vector<Font>> families;             // empty: no fonts installed
  const digits::Dataset* mnist = nullptr;              // MNIST's test set
  std::vector<std::vector<std::size_t>> mnist_by_digit;  // its indices of each digit
};

struct Source {
  enum Kind { kMnist, kPen, kFont } kind = kPen;
  std::size_t mnist_index = 0;
  const Font* font = nullptr;
  std::vector<Stroke> strokes;
  std::string name;  // in the file name: mnist1234, strokes, kristi
};

Source pick_source(const Sources& sources, int digit, int number, Rng& rng) {
  Source source;
  const int kinds = sources.families.empty() ? 2 : 3;
  switch (number % kinds) {
    case 0: {
      const auto& indices = sources.mnist_by_digit[static_cast<std::size_t>(digit)];
      source.kind = Source::kMnist, source.mnist_index = indices[rng.below(indices.size())];
      source.name = "mnist" + std::to_string(source.mnist_index);
      break;
    }
    case 1:
      source.kind = Source::kPen, source.strokes = digit_strokes(digit, rng), source.name = "strokes";
      jitter(source.strokes, rng);
      break;
    default: {
      const auto& family = sources.families[static_cast<std::size_t>(number / kinds) % sources.families.size()];
      source.kind = Source::kFont, source.font = &family[rng.below(family.size())], source.name = source.font->family;
    }
  }
  return source;
}

struct Extent {
  double left = 1e9, right = -1e9, top = 1e9, bottom = -1e9;
  double width() const { return right - left; }
  double height() const { return bottom - top; }
};
Extent extent(const std::vector<Stroke>& strokes) {
  Extent e;
  for (const Stroke& s : strokes) {
    for (const Point& p : s) e.left = std::min(e.left, p.x), e.right = std::max(e.right, p.x), e.top = std::min(e.top, p.y), e.bottom = std::max(e.bottom, p.y);
  }
  return e;
}

// A digit in the look's pen, the look's height fitted to the digit's aspect: how mnist_placed,
// strokes and neg_cuts draw theirs. An MNIST image, or pen strokes `narrowing` times as wide as drawn.
Coverage placed_mnist_glyph(std::span<const std::uint8_t> image, Look& look) {
  fit_height(look, mnist_aspect(image));
  return set_stroke_width(mnist_glyph(image, look.height), stroke_pixels(look));
}
Coverage placed_stroke_glyph(const std::vector<Stroke>& strokes, double narrowing, Look& look) {
  const Extent e = extent(strokes);
  fit_height(look, narrowing * e.width() / e.height());
  return stroke_glyph(strokes, narrowing, look.height, stroke_pixels(look));
}

// The digit's ink width over its height, as its source draws it.
double source_aspect(const Source& source, const Sources& sources, int digit) {
  switch (source.kind) {
    case Source::kMnist: return mnist_aspect(sources.mnist->image(source.mnist_index));
    case Source::kPen: {
      const Extent e = extent(source.strokes);
      return e.width() / e.height();
    }
    default:
      return font_aspect(*source.font, digit);
  }
}

// The digit `height` pixels tall and x_scale times as wide as its source draws it, in its source's
// own stroke width (the strokes with a pen a tenth of the height): set_stroke_width or the skeleton
// functions then give it the folder's pen.
Coverage source_shape(const Source& source, const Sources& sources, int digit, double height, double x_scale) {
  switch (source.kind) {
    case Source::kMnist: return mnist_glyph(sources.mnist->image(source.mnist_index), height, x_scale);
    case Source::kPen: return stroke_glyph(source.strokes, x_scale, height, std::max(2.0, 0.1 * height));
    default: return font_glyph(*source.font, digit, height, x_scale);
  }
}

// A variation folder's plain look, which each folder then pushes one way: a canvas 300–600 px a
// side (a third of them square), the digit 30–70% of its shorter side, a medium pen (6–12% of the
// height), a mild slant (shear ±0.15), dark ink on light paper or the reverse.
Look plain_look(Rng& rng) {
  Look look;
  look.canvas_width = static_cast<int>(uniform(rng, 300, 600));
  look.canvas_height = rng.below(3) == 0 ? look.canvas_width : static_cast<int>(uniform(rng, 300, 600));
  look.height = uniform(rng, 0.3, 0.7) * std::min(look.canvas_width, look.canvas_height);
  look.stroke = uniform(rng, 0.06, 0.12), look.weight = "medium";
  look.shear = uniform(rng, -0.15, 0.15);
  if (rng.below(2) == 0) {
    look.paper = uniform(rng, 200, 255), look.ink = uniform(rng, 0, 60);
  } else {
    look.paper = uniform(rng, 0, 40), look.ink = uniform(rng, 190, 255);
  }
  look.left_fraction = uniform(rng, 0, 1), look.top_fraction = uniform(rng, 0, 1);
  return look;
}

// The first and last rows and columns with coverage ≥ ½.
InkBox ink_box(const Coverage& glyph) {
  InkBox box{glyph.width, glyph.height, -1, -1};
  for (int y = 0; y < glyph.height; ++y) {
    for (int x = 0; x < glyph.width; ++x) {
      if (glyph.at(x, y) < 0.5f) continue;
      box.left = std::min(box.left, x), box.right = std::max(box.right, x), box.top = std::min(box.top, y), box.bottom = std::max(box.bottom, y);
    }
  }
  return box;
}

GrayImage blank(int width, int height, double level) {
  return GrayImage{width, height, std::vector<float>(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), static_cast<float>(level))};
}

// Scales an image up by an integer factor: nearest neighbour (blocky, as a small bitmap zoomed) or
// bilinear (blurred, as a browser smooths it).
GrayImage upscale(const GrayImage& small, int factor, bool nearest) {
  GrayImage big = blank(small.width * factor, small.height * factor, 0);
  Coverage source(small.width, small.height);
  source.values = small.pixels;
  for (int y = 0; y < big.height; ++y) {
    for (int x = 0; x < big.width; ++x) {
      float v = 0;
      if (nearest) {
        v = small.at(x / factor, y / factor);
      } else {  // bilinear, clamped at the border (not paper: the sample would darken the edge)
        const double sx = std::clamp((x + 0.5) / factor - 0.5, 0.0, small.width - 1.0), sy = std::clamp((y + 0.5) / factor - 0.5, 0.0, small.height - 1.0);
        v = source.sample(sx, sy);
      }
      big.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(big.width) + static_cast<std::size_t>(x)] = v;
    }
  }
  return big;
}

// A photograph of paper: the light falls off across the page (a linear gradient of 10–40% in a
// random direction) and towards the corners (up to 20%), sometimes with a soft shadow across it;
// ink and paper both reflect it. Then the camera: a slight blur (half of them), sensor noise
// (Gaussian, σ 2–8 levels). Returns the gradient, for the file name.
double photograph(GrayImage& image, Rng& rng) {
  const double direction = uniform(rng, 0, 2 * pi), gradient = uniform(rng, 0.1, 0.4), vignette = uniform(rng, 0, 0.2);
  const bool shadow = rng.below(3) == 0;
  const double shadow_angle = uniform(rng, 0, 2 * pi), shadow_depth = uniform(rng, 0.1, 0.3), shadow_at = uniform(rng, -0.3, 0.3), shadow_soft = uniform(rng, 0.02, 0.15);
  const double cx = image.width / 2.0, cy = image.height / 2.0, half_diagonal = std::hypot(cx, cy);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double u = (x - cx) / half_diagonal, v = (y - cy) / half_diagonal;  // within the unit disc
      const double along = (u * std::cos(direction) + v * std::sin(direction) + 1) / 2;  // 0–1 across the page
      double light = 1 - gradient * along - vignette * (u * u + v * v);
      if (shadow) light -= shadow_depth / (1 + std::exp(-((u * std::cos(shadow_angle) + v * std::sin(shadow_angle)) - shadow_at) / shadow_soft));
      float& p = image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x)];
      p = static_cast<float>(p * std::max(0.05, light));
    }
  }
  if (rng.below(2) == 0) {  // a 3×3 box blur: a lens slightly out of focus
    const GrayImage sharp = image;
    for (int y = 1; y + 1 < image.height; ++y) {
      for (int x = 1; x + 1 < image.width; ++x) {
        float sum = 0;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) sum += sharp.at(x + dx, y + dy);
        }
        image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x)] = sum / 9;
      }
    }
  }
  const double sigma = uniform(rng, 2, 8);
  for (float& p : image.pixels) p = std::clamp(static_cast<float>(p + sigma * rng.normal()), 0.0f, 255.0f);
  return gradient;
}

// Writes a JPEG of the given quality (stb_image_write's baseline encoder).
void write_jpeg(const fs::path& path, const GrayImage& image, int quality) {
  std::vector<unsigned char> bytes(image.pixels.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(std::lround(std::clamp(image.pixels[i], 0.0f, 255.0f)));
  std::string jpeg;
  auto append = [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size)); };
  if (!stbi_write_jpg_to_func(append, &jpeg, image.width, image.height, 1, bytes.data(), quality)) throw Error(path.string() + ": cannot encode the JPEG");
  std::ofstream out(path, std::ios::binary);
  out.write(jpeg.data(), static_cast<std::streamsize>(jpeg.size()));
  if (!out.flush()) throw Error(path.string() + ": cannot write");
}

struct Variation {
  int id;            // seeds the folder's images
  const char* name;  // the folder
  const char* what;  // for --help and the summary line
};
constexpr Variation kVariations[] = {
    {4, "pen_stylus", "a thin stylus: a pen 0.6–2.5% of the digit's height (at least 1 px), the digit 40–75% of the canvas"},
    {5, "pen_marker", "a thick marker: a pen 18–30% of the digit's height"},
    {6, "narrow", "narrow digits: 0.35–0.6 times as wide as drawn"},
    {7, "wide", "wide digits, stretched towards their box: 1.4–3 times as wide as drawn, to an aspect of 0.9–1.5"},
    {8, "slant", "strong slant: a shear of 0.35–0.7, to the right or to the left"},
    {9, "broken", "broken strokes: 1–3 gaps where the pen lifted"},
    {10, "doubled", "doubled strokes: the digit or part of it traced twice, 1.2–2.5 pen widths apart"},
    {11, "overshoot", "overshooting strokes: 1–2 stroke ends carried on 10–25% of the height"},
    {12, "touching", "digits that touch the box: filling a square canvas's height, running 0–8% over its edges"},
    {13, "lowres", "low-resolution sources: drawn 8–16 px tall on a canvas of 12–24 px, scaled up 10–30× (nearest or bilinear)"},
    {14, "photo", "paper photographs: dark ink on gray paper under uneven light, blur, noise, JPEG quality 35–85"},
};

// Writes one image of a variation folder into dir: <digit>_<source>_<number>.png (.jpg for photos).
void variation_image(const Variation& variation, const Sources& sources, int digit, int number, std::uint64_t seed, const fs::path& dir) {
  Rng rng(image_seed(seed, variation.id, digit, number));
  const Source source = pick_source(sources, digit, number, rng);
  const double aspect = source_aspect(source, sources, digit);
  Look look = plain_look(rng);
  const std::string name = variation.name;
  char file[96];
  std::snprintf(file, sizeof file, "%d_%s_%04d", digit, source.name.c_str(), number);
  double x_scale = 1, pen_fraction = look.stroke, min_pen = 1.5;
  if (name == "pen_stylus") {
    pen_fraction = uniform(rng, 0.006, 0.025), min_pen = 1.0;
    look.height = uniform(rng, 0.4, 0.75) * std::min(look.canvas_width, look.canvas_height);
  } else if (name == "pen_marker") {
    pen_fraction = uniform(rng, 0.18, 0.3);
  } else if (name == "narrow") {
    x_scale = uniform(rng, 0.35, 0.6);
  } else if (name == "wide") {
    x_scale = std::clamp(uniform(rng, 0.9, 1.5) / aspect, 1.4, 3.0);
  } else if (name == "slant") {
    look.shear = (rng.below(2) == 0 ? 1 : -1) * uniform(rng, 0.35, 0.7);
  } else if (name == "broken" || name == "doubled" || name == "overshoot") {
    pen_fraction = uniform(rng, 0.03, 0.08);  // a pen thin enough for the fault to show
  } else if (name == "photo") {
    look.paper = uniform(rng, 150, 235), look.ink = uniform(rng, 15, 80);  // photographs are of dark ink on paper
    look.canvas_width = static_cast<int>(uniform(rng, 400, 800)), look.canvas_height = static_cast<int>(uniform(rng, 400, 800));
    look.height = uniform(rng, 0.25, 0.6) * std::min(look.canvas_width, look.canvas_height);
  }
  look.stroke = pen_fraction;

  if (name == "lowres") {
    // Drawn 8× larger than the small image and area-averaged down to it, as a scanner or a small
    // canvas would anti-alias it; then stored in 8 bits and scaled up.
    constexpr int kSuper = 8;
    const int side = 12 + static_cast<int>(rng.below(13));
    look.canvas_width = look.canvas_height = side * kSuper;
    look.height = std::min(uniform(rng, 8, 16), side - 2.0) * kSuper;
    look.shear = uniform(rng, -0.1, 0.1);
    fit_height(look, aspect);
    const double pen = std::max(1.0 * kSuper, uniform(rng, 0.1, 0.18) * look.height);
    const GrayImage fine = place(set_stroke_width(source_shape(source, sources, digit, look.height, 1), pen), look);
    GrayImage small = blank(side, side, 0);
    for (int y = 0; y < side * kSuper; ++y) {
      for (int x = 0; x < side * kSuper; ++x) small.pixels[static_cast<std::size_t>(y / kSuper * side + x / kSuper)] += fine.at(x, y) / (kSuper * kSuper);
    }
    for (float& v : small.pixels) v = std::round(v);  // an 8-bit image
    const int factor = std::max(10, static_cast<int>(uniform(rng, 200, 450) / side));
    digits::write_png(dir / (std::string(file) + ".png"), upscale(small, std::min(factor, 30), rng.below(2) == 0));
    return;
  }
  if (name == "touching") {
    const int side = static_cast<int>(uniform(rng, 280, 500));
    look.canvas_width = look.canvas_height = side;
    look.shear = uniform(rng, -0.1, 0.1);
    const double overflow = uniform(rng, 1.0, 1.08);
    const Coverage glyph = set_stroke_width(source_shape(source, sources, digit, side * overflow * (1 - look.stroke), 1), std::max(1.5, look.stroke * side));
    const InkBox box = ink_box(glyph);
    const double ink_width = box.right - box.left + 1, ink_height = box.bottom - box.top + 1;
    // Top and bottom run over by `overflow` shared at random; a digit narrower than the canvas
    // sits anywhere across it, a wider one runs over its sides too.
    const double top = -box.top - uniform(rng, 0, 1) * std::max(0.0, ink_height - side);
    const double left = ink_width < side ? -box.left + uniform(rng, 0, 1) * (side - ink_width) : -box.left - uniform(rng, 0, 1) * (ink_width - side);
    digits::write_png(dir / (std::string(file) + ".png"), place_at(glyph, look, left, top));
    return;
  }

  fit_height(look, aspect * x_scale);
  if (name == "overshoot") look.height /= 1.3;  // room for the ends carried on
  const double pen = std::max(min_pen, pen_fraction * look.height);
  const Coverage shape = source_shape(source, sources, digit, look.height, x_scale);
  Coverage glyph(0, 0);
  if (name == "broken" || name == "doubled" || name == "overshoot") {
    const double reach = name == "overshoot" ? 0.25 * look.height : name == "doubled" ? 2.5 * pen + 1 : 0;
    Mask skeleton = skeleton_of(shape, static_cast<int>(std::ceil(reach + pen / 2)) + 2);
    if (name == "broken") break_strokes(skeleton, pen / 2 + uniform(rng, 0.03, 0.08) * look.height + 1, rng);
    if (name == "doubled") double_strokes(skeleton, uniform(rng, 1.2, 2.5) * pen + 1, rng);
    if (name == "overshoot") overshoot_strokes(skeleton, uniform(rng, 0.1, 0.25) * look.height, rng);
    glyph = pen_around(skeleton, pen);
  } else {
    glyph = set_stroke_width(shape, pen);
  }
  GrayImage image = place(glyph, look);
  if (name == "photo") {
    // <digit>_<source>_light<falloff %>_<number>.jpg: how uneven the light is says most of how hard it is
    const double gradient = photograph(image, rng);
    std::snprintf(file, sizeof file, "%d_%s_light%02d_%04d", digit, source.name.c_str(), static_cast<int>(std::lround(100 * gradient)), number);
    write_jpeg(dir / (std::string(file) + ".jpg"), image, 35 + static_cast<int>(rng.below(51)));
    return;
  }
  digits::write_png(dir / (std::string(file) + ".png"), image);
}

// ---- things that are not digits (issue 20, item 5) ----
//
// Each negative is drawn like a robustness image (random_look: canvas, size, pen weight, slant,
// polarity) so that only its shape tells it from a digit. Two sets: the generators and fonts one
// may train an eleventh class on, and a held-out set of other fonts and other generators, to
// measure on without having tuned to one's own negatives.

// Letters and signs that are not digits. Left out, because a hand draws them as a digit or nearly:
// O o Q D U u (0); I l i j J | ! / \ ( ) [ ] { } (1); Z z ? (2); S s $ § (5); G b (6); B & (8);
// g q a y (9); and marks too small to be anything once scaled to fill the box: . , : ; ' " ` - _.
constexpr const char* kLetters = "ACEFHKLMNPRTVWXYcdefhkmnprtvwx";
constexpr std::uint32_t kSigns[] = {'+', '=', '#', '%', '@', '*', '<', '>', '~', '^', 0xD7 /* × */, 0xF7 /* ÷ */, 0xB1 /* ± */, 0x20AC /* € */, 0xA3 /* £ */};

// The families whose letters and signs a trained rejecter may see, and the held-out ones.
constexpr const char* kTrainFamilies[] = {"dkg", "breip", "humorsans", "comicneue", "klee", "bwht"};
constexpr const char* kHeldOutFamilies[] = {"kristi", "dancingscript", "ecolier"};

bool has_glyph(const Font& font, std::uint32_t codepoint) {
  if (stbtt_FindGlyphIndex(&font.info, static_cast<int>(codepoint)) == 0) return false;
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  stbtt_GetCodepointBitmapBox(&font.info, static_cast<int>(codepoint), 1, 1, &x0, &y0, &x1, &y1);
  return x1 > x0 && y1 > y0;
}

// A character at the font's size for a line `em` pixels high (ascent − descent), so a lowercase
// letter stays smaller than a capital; nullopt if the font lacks it.
std::optional<Coverage> character_glyph(const Font& font, std::uint32_t codepoint, double em) {
  if (!has_glyph(font, codepoint)) return std::nullopt;
  const float scale = stbtt_ScaleForPixelHeight(&font.info, static_cast<float>(em));
  int w = 0, h = 0;
  unsigned char* bitmap = stbtt_GetCodepointBitmap(&font.info, scale, scale, static_cast<int>(codepoint), &w, &h, nullptr, nullptr);
  if (!bitmap || w <= 0 || h <= 0) {
    if (bitmap) stbtt_FreeBitmap(bitmap, nullptr);
    return std::nullopt;
  }
  Coverage glyph(w, h);
  for (std::size_t i = 0; i < glyph.values.size(); ++i) glyph.values[i] = bitmap[i] / 255.0f;
  stbtt_FreeBitmap(bitmap, nullptr);
  return glyph;
}

std::string codepoint_name(std::uint32_t codepoint) {
  if ((codepoint >= 'A' && codepoint <= 'Z') || (codepoint >= 'a' && codepoint <= 'z')) return std::string(1, static_cast<char>(codepoint));
  char text[16];
  std::snprintf(text, sizeof text, "u%04X", codepoint);
  return text;
}

// Paths in a unit box drawn with a round pen so that their longer side is `size` pixels.
Coverage path_glyph(const std::vector<Stroke>& strokes, double size, double pen) {
  const Extent e = extent(strokes);
  const double k = std::max(1.0, size - pen) / std::max({e.width(), e.height(), 1e-6}), radius = pen / 2, pad = radius + 2;
  Coverage glyph(static_cast<int>(std::ceil(e.width() * k + 2 * pad)), static_cast<int>(std::ceil(e.height() * k + 2 * pad)));
  for (const Stroke& stroke : strokes) {
    for (std::size_t i = 0; i + 1 < stroke.size(); ++i)
      draw_segment(glyph, {pad + (stroke[i].x - e.left) * k, pad + (stroke[i].y - e.top) * k}, {pad + (stroke[i + 1].x - e.left) * k, pad + (stroke[i + 1].y - e.top) * k}, radius);
    if (stroke.size() == 1) draw_segment(glyph, {pad + (stroke[0].x - e.left) * k, pad + (stroke[0].y - e.top) * k}, {pad + (stroke[0].x - e.left) * k, pad + (stroke[0].y - e.top) * k}, radius);
  }
  return glyph;
}

// Shrinks the look's size until a glyph `aspect` wide (width / height) fits its canvas, as
// fit_height does for digits, with `size` the longer side.
double fit_size(const Look& look, double aspect) {
  const double margin = 0.02 * std::min(look.canvas_width, look.canvas_height) + 2;
  const double width_room = (look.canvas_width - 2 * margin), height_room = (look.canvas_height - 2 * margin);
  const double w = aspect >= 1 ? 1 : aspect, h = aspect >= 1 ? 1 / aspect : 1;  // per unit of the longer side
  return std::min({look.height, width_room / (w + h * std::abs(look.shear) + look.stroke), height_room / (h + look.stroke)});
}

// A scribble: a pen wandering with momentum, its turning rate itself a random walk, kept in the box
// by steering back towards the middle; 1–2 strokes of 60–260 steps of 0.02.
std::vector<Stroke> scribble(Rng& rng) {
  std::vector<Stroke> strokes(1 + rng.below(2));
  for (Stroke& s : strokes) {
    Point p{uniform(rng, 0.2, 0.8), uniform(rng, 0.2, 0.8)};
    double heading = uniform(rng, 0, 2 * pi), turn = uniform(rng, -0.3, 0.3);
    const int steps = 60 + static_cast<int>(rng.below(200));
    for (int i = 0; i < steps; ++i) {
      s.push_back(p);
      turn = std::clamp(turn + 0.08 * rng.normal(), -0.45, 0.45);
      heading += turn;
      const double to_middle = std::atan2(0.5 - p.y, 0.5 - p.x);
      if (std::hypot(p.x - 0.5, p.y - 0.5) > 0.45) heading += 0.3 * std::remainder(to_middle - heading, 2 * pi);
      p = {p.x + 0.02 * std::cos(heading), p.y + 0.02 * std::sin(heading)};
    }
  }
  return strokes;
}

// A crossing-out: a zigzag of 4–14 strokes back and forth at a random angle, sometimes with a cross
// over it; or (a third of them) a pen-stroke digit scratched over until hidden. The file says which.
std::vector<Stroke> crossout(Rng& rng, std::string& kind) {
  std::vector<Stroke> strokes;
  const int style = static_cast<int>(rng.below(3));
  if (style == 2) {
    const int digit = static_cast<int>(rng.below(10));
    strokes = digit_strokes(digit, rng);
    jitter(strokes, rng);
    kind = "scratched" + std::to_string(digit);
  } else {
    kind = style == 0 ? "zigzag" : "zigzagcross";
  }
  const double angle = uniform(rng, -0.6, 0.6) + (rng.below(2) ? pi / 2 : 0), across = uniform(rng, 0.5, 1.0);
  const int turns = 4 + static_cast<int>(rng.below(11));
  Stroke zigzag;
  for (int k = 0; k <= turns; ++k) {
    const double along = -0.5 + static_cast<double>(k) / turns + uniform(rng, -0.03, 0.03), side = (k % 2 ? 0.5 : -0.5) * across + uniform(rng, -0.06, 0.06);
    zigzag.push_back({0.5 + along * std::cos(angle) - side * std::sin(angle), 0.5 + along * std::sin(angle) + side * std::cos(angle)});
  }
  Stroke fine;  // cut into short pieces, so the jitter can bend them
  for (std::size_t k = 0; k + 1 < zigzag.size(); ++k) {
    for (int i = 0; i < 10; ++i) fine.push_back({zigzag[k].x + (zigzag[k + 1].x - zigzag[k].x) * i / 10, zigzag[k].y + (zigzag[k + 1].y - zigzag[k].y) * i / 10});
  }
  fine.push_back(zigzag.back());
  strokes.push_back(fine);
  if (style == 1) {
    strokes.push_back(polyline({{0.1, 0.1}, {0.9, 0.9}}));
    strokes.push_back(polyline({{0.9, 0.1}, {0.1, 0.9}}));
  }
  if (style != 2) jitter(strokes, rng);
  return strokes;
}

// The largest distance of a path's points from the chord between its ends, over the chord's length.
double bend(const Stroke& s) {
  const Point a = s.front(), b = s.back();
  const double chord = std::max(std::hypot(b.x - a.x, b.y - a.y), 1e-9);
  double most = 0;
  for (const Point& p : s) most = std::max(most, std::abs((b.x - a.x) * (a.y - p.y) - (a.x - p.x) * (b.y - a.y)) / chord);
  return most / chord;
}

// A single stroke cut from a pen-stroke digit: 20–50% of one of its strokes. A piece that is nearly
// straight or a shallow arc (bent by less than 30% of its length) is a 1 whatever the intent, so it
// is drawn again.
Stroke digit_piece(Rng& rng, int& digit) {
  for (int attempt = 0;; ++attempt) {
    digit = static_cast<int>(rng.below(10));
    std::vector<Stroke> strokes = digit_strokes(digit, rng);
    jitter(strokes, rng);
    const Stroke& whole = strokes[rng.below(strokes.size())];
    const std::size_t length = std::max<std::size_t>(2, static_cast<std::size_t>(whole.size() * uniform(rng, 0.2, 0.5)));
    if (whole.size() < length + 1) continue;
    const std::size_t start = rng.below(whole.size() - length + 1);
    Stroke piece(whole.begin() + static_cast<std::ptrdiff_t>(start), whole.begin() + static_cast<std::ptrdiff_t>(start + length));
    if (bend(piece) >= 0.3 || attempt >= 50) return piece;
  }
}

// Two pen-stroke digits side by side, touching or overlapping by up to a third of a digit's width,
// or just apart: a number's digits fused into one shape. The number reader cuts a group by asking
// the network which pieces are digits (segment.cpp), and a network that reads two fused digits
// as one, surely, keeps them whole (docs/numbers.md).
std::vector<Stroke> fused_pair(Rng& rng, std::string& kind) {
  const int first = static_cast<int>(rng.below(10)), second = static_cast<int>(rng.below(10));
  const double width = uniform(rng, 0.5, 0.7), overlap = uniform(rng, 0.05, 0.35);
  std::vector<Stroke> strokes;
  for (int k = 0; k < 2; ++k) {
    std::vector<Stroke> digit = digit_strokes(k == 0 ? first : second, rng);
    jitter(digit, rng);
    const double left = k * width * (1 - overlap);
    for (Stroke& stroke : digit)
      for (Point& point : stroke) point.x = left + point.x * width;
    strokes.insert(strokes.end(), digit.begin(), digit.end());
  }
  kind = "pair" + std::to_string(first) + std::to_string(second);
  return strokes;
}

// Doodles: pictures people draw on a digit pad, with the digits' pen strokes, so that a network
// learns that a pen-drawn picture is not a digit: a house, a sun, a cloud, a flower, a stick figure,
// a tree, a fish, a wave (wavy, looped or zigzag, 3–6 periods), a grid, a steamship, a car, a
// hatched patch. Each with its proportions, counts (rays, petals, bumps, lines) and a turn of ±20°
// drawn at random, mirrored where a picture has a facing, then jittered like the digits. Left out,
// to keep the held-out measure held out: heldout_shapes' kinds (triangles, squares, stars, arrows,
// hearts, spirals, ticks, faces) alone; and, because a hand draws them as digits or nearly, a plain
// circle or oval (0), a single line (1), a hook (7), S and Z curves (5, 2), a crescent moon (C, a
// 0 left open), a lightning bolt (a zigzag of two turns: a Z, or a 4 written fast), a sailing boat
// (its sail is a triangle), a cloud bumpy all round (a wobbly 0), and a flower or a tree on a bare
// stem (a head on a stem is a 9).
std::vector<Stroke> doodle(Rng& rng, std::string& kind) {
  auto u = [&](double low, double high) { return uniform(rng, low, high); };
  // A closed loop, started anywhere and overshooting a little, as a hand closes a circle.
  auto loop = [&](double cx, double cy, double rx, double ry) {
    const double start = u(0, 2 * pi);
    return arc(cx, cy, rx, ry, start, start + 2 * pi + u(0, 0.25), 48);
  };
  std::vector<Stroke> strokes;
  bool facing = false;  // a picture with a left and a right: mirrored half the time
  switch (rng.below(12)) {
    case 0: {  // a house: walls, a roof with eaves, a door, maybe a window and a chimney
      kind = "house";
      const double w = u(0.5, 0.8), left = 0.5 - w / 2, right = 0.5 + w / 2, eaves = u(0.38, 0.55), eave = u(0, 0.08);
      strokes.push_back(polyline({{left, eaves}, {left, 0.95}, {right, 0.95}, {right, eaves}, {left, eaves}}));
      strokes.push_back(polyline({{left - eave, eaves + eave * 0.5}, {0.5 + u(-0.05, 0.05), u(0.05, 0.18)}, {right + eave, eaves + eave * 0.5}}));
      const double door = u(0.1, 0.16) * w / 0.6, door_x = u(left + 0.08, right - 0.08 - door), door_top = u(0.66, 0.78);
      strokes.push_back(polyline({{door_x, 0.95}, {door_x, door_top}, {door_x + door, door_top}, {door_x + door, 0.95}}));
      if (rng.below(3) != 0) {  // a window with its cross, on the other side of the door
        const double side = u(0.1, 0.14), window_x = door_x + door / 2 < 0.5 ? u(0.55, right - side - 0.04) : u(left + 0.04, 0.45 - side), window_y = u(eaves + 0.06, 0.72 - side);
        strokes.push_back(polyline({{window_x, window_y}, {window_x + side, window_y}, {window_x + side, window_y + side}, {window_x, window_y + side}, {window_x, window_y}}));
        strokes.push_back(polyline({{window_x + side / 2, window_y}, {window_x + side / 2, window_y + side}}));
        strokes.push_back(polyline({{window_x, window_y + side / 2}, {window_x + side, window_y + side / 2}}));
      }
      if (rng.below(2) == 0) {  // a chimney on the right slope
        const double x = 0.5 + u(0.12, 0.2) * w / 0.6, rise = eaves - 0.1;
        strokes.push_back(polyline({{x, eaves - 0.55 * rise}, {x, eaves - 0.85 * rise}, {x + 0.07, eaves - 0.85 * rise}, {x + 0.07, eaves - 0.45 * rise}}));
      }
      facing = true;
      break;
    }
    case 1: {  // a sun: a disc's outline and 7–14 rays, apart from it or touching it
      kind = "sun";
      const double r = u(0.15, 0.25), gap = rng.below(2) ? u(0.02, 0.06) : 0, length = u(0.12, 0.22);
      strokes.push_back(loop(0.5, 0.5, r, r * u(0.9, 1.1)));
      const int rays = 7 + static_cast<int>(rng.below(8));
      const double start = u(0, 2 * pi);
      for (int k = 0; k < rays; ++k) {
        const double t = start + 2 * pi * k / rays + u(-0.1, 0.1), l = length * u(0.8, 1.2);
        strokes.push_back(polyline({{0.5 + (r + gap) * std::cos(t), 0.5 + (r + gap) * std::sin(t)}, {0.5 + (r + gap + l) * std::cos(t), 0.5 + (r + gap + l) * std::sin(t)}}));
      }
      break;
    }
    case 2: {  // a cloud: 3–6 bumps along the top of an oval twice as wide as high, over a flat base
      // (A cloud bumpy all round is a wobbly 0.)
      kind = "cloud";
      const int bumps = 3 + static_cast<int>(rng.below(4));
      const double rx = 0.45, ry = u(0.18, 0.26);
      // The oval's top from its left end to its right end, cut into bumps: each a half-ellipse
      // bulging out across its chord.
      Stroke outline;
      for (int k = 0; k < bumps; ++k) {
        const double a = pi + pi * k / bumps, b = pi + pi * (k + 1) / bumps;
        const Point p{0.5 + rx * std::cos(a), 0.5 + ry * std::sin(a)}, q{0.5 + rx * std::cos(b), 0.5 + ry * std::sin(b)};
        const double mx = (p.x + q.x) / 2, my = (p.y + q.y) / 2, half = std::hypot(q.x - p.x, q.y - p.y) / 2, bulge = u(0.9, 1.3);
        const double ux = (q.x - p.x) / (2 * half), uy = (q.y - p.y) / (2 * half);  // along the chord; outward is (uy, −ux)
        for (int i = 0; i <= 12; ++i) {
          const double t = pi - pi * i / 12;
          outline.push_back({mx + half * std::cos(t) * ux + bulge * half * std::sin(t) * uy, my + half * std::cos(t) * uy - bulge * half * std::sin(t) * ux});
        }
      }
      strokes.push_back(joined(outline, polyline({outline.back(), outline.front()})));
      break;
    }
    case 3: {  // a flower seen from above: a centre and 5–8 petals around it (no stem: a head on a stem is a 9)
      kind = "flower";
      const double r = u(0.06, 0.1), petal = u(0.14, 0.22), width = u(0.05, 0.09);
      strokes.push_back(loop(0.5, 0.5, r, r));
      const int petals = 5 + static_cast<int>(rng.below(4));
      const double start = u(0, 2 * pi);
      for (int k = 0; k < petals; ++k) {
        const double t = start + 2 * pi * k / petals, d = r + petal / 2;
        Stroke s = arc(0, 0, petal / 2, width, 0, 2 * pi, 32);  // an ellipse along x, turned to point out
        for (Point& p : s) p = {0.5 + d * std::cos(t) + p.x * std::cos(t) - p.y * std::sin(t), 0.5 + d * std::sin(t) + p.x * std::sin(t) + p.y * std::cos(t)};
        strokes.push_back(s);
      }
      break;
    }
    case 4: {  // a stick figure: a head, a body, two arms, two legs
      kind = "stickfigure";
      const double head = u(0.08, 0.12), neck = 0.05 + 2 * head, hips = u(0.55, 0.65), shoulders = neck + u(0.05, 0.1);
      strokes.push_back(loop(0.5, 0.05 + head, head * u(0.8, 1.0), head));
      strokes.push_back(polyline({{0.5, neck}, {0.5, hips}}));
      for (double side : {-1.0, 1.0}) {
        const double reach = u(0.22, 0.38), lift = u(-0.2, 0.25);  // arms out, up or down
        strokes.push_back(polyline({{0.5, shoulders}, {0.5 + side * reach, shoulders + lift}}));
        strokes.push_back(polyline({{0.5, hips}, {0.5 + side * u(0.12, 0.25), 0.97}}));
      }
      break;
    }
    case 5: {  // a tree: a trunk of two lines, maybe branching into a bumpy crown, on a line of ground
      kind = "tree";
      const double trunk = u(0.05, 0.08), crown_y = u(0.32, 0.4), crown_rx = u(0.3, 0.45), crown_ry = u(0.22, 0.3), base = 0.93;
      strokes.push_back(polyline({{0.5 - trunk, base}, {0.5 - trunk * 0.8, crown_y + crown_ry * 0.6}}));
      strokes.push_back(polyline({{0.5 + trunk, base}, {0.5 + trunk * 0.8, crown_y + crown_ry * 0.6}}));
      Stroke crown;
      const int bumps = 6 + static_cast<int>(rng.below(4));
      const double start = u(0, 2 * pi);
      for (int i = 0; i <= 96; ++i) {  // r(θ) = 1 + a·|sin(bumps·θ/2)|: scallops
        const double t = start + 2 * pi * i / 96, r = 0.8 + 0.2 * std::abs(std::sin(bumps * (t - start) / 2));
        crown.push_back({0.5 + crown_rx * r * std::cos(t), crown_y + crown_ry * r * std::sin(t)});
      }
      strokes.push_back(crown);
      if (rng.below(2) == 0) {  // branches up into the crown
        strokes.push_back(polyline({{0.5, crown_y + crown_ry * 0.5}, {0.5 - crown_rx * 0.4, crown_y - crown_ry * 0.2}}));
        strokes.push_back(polyline({{0.5, crown_y + crown_ry * 0.3}, {0.5 + crown_rx * 0.35, crown_y - crown_ry * 0.3}}));
      }
      strokes.push_back(polyline({{0.5 - u(0.2, 0.4), base + 0.04}, {0.5 + u(0.2, 0.4), base + 0.04}}));  // without the ground, a crown on a trunk is a 9
      break;
    }
    case 6: {  // a fish: two curves from the nose crossing into a tail, an eye, maybe a fin
      kind = "fish";
      const double h = u(0.18, 0.28), tail = u(0.15, 0.25), cross = u(0.7, 0.78);
      // The upper curve from the nose over the back to the tail's lower tip, the lower one to its upper tip.
      Stroke upper = arc(cross / 2 + 0.02, 0.5, cross / 2, h, pi, 2 * pi, 32), lower = arc(cross / 2 + 0.02, 0.5, cross / 2, h, pi, 0, 32);
      strokes.push_back(joined(upper, polyline({upper.back(), {cross + 0.02 + tail, 0.5 + tail * 0.9}})));
      strokes.push_back(joined(lower, polyline({lower.back(), {cross + 0.02 + tail, 0.5 - tail * 0.9}})));
      strokes.push_back(polyline({{cross + 0.02 + tail, 0.5 - tail * 0.9}, {cross + 0.02 + tail, 0.5 + tail * 0.9}}));
      strokes.push_back(loop(0.2, 0.5 - h * 0.3, 0.025, 0.025));  // the eye
      if (rng.below(2) == 0) strokes.push_back(polyline({{0.4, 0.5 - h * 0.95}, {0.5, 0.5 - h * 1.4}, {0.58, 0.5 - h * 0.9}}));
      facing = true;
      break;
    }
    case 7: {  // a wave across: wavy, looped or zigzag, 3–6 periods
      const int periods = 3 + static_cast<int>(rng.below(4)), style = static_cast<int>(rng.below(3));
      kind = style == 0 ? "wavy" : style == 1 ? "loops" : "zigzagline";
      const double amplitude = u(0.05, 0.12);
      Stroke s;
      for (int i = 0; i <= 40 * periods; ++i) {
        const double t = 2 * pi * periods * i / (40 * periods), x = 0.05 + 0.9 * i / (40 * periods);
        if (style == 0) s.push_back({x, 0.5 + amplitude * std::sin(t)});
        // A prolate cycloid: a point on a wheel rolling along x, outside its rim, draws a loop each turn.
        if (style == 1) s.push_back({x - 0.9 / periods * 0.35 * std::sin(t), 0.5 - amplitude * std::cos(t)});
        if (style == 2) s.push_back({x, 0.5 + amplitude * (2 / pi) * std::asin(std::sin(t))});  // a triangle wave
      }
      strokes.push_back(s);
      break;
    }
    case 8: {  // a grid: 3–6 lines across and 3–6 down, unevenly spaced
      kind = "grid";
      const int across = 3 + static_cast<int>(rng.below(4)), down = 3 + static_cast<int>(rng.below(4));
      for (int k = 0; k < across; ++k) {
        const double y = 0.1 + 0.8 * (k + u(-0.2, 0.2)) / (across - 1);
        strokes.push_back(polyline({{u(0.02, 0.1), y + u(-0.03, 0.03)}, {u(0.9, 0.98), y + u(-0.03, 0.03)}}));
      }
      for (int k = 0; k < down; ++k) {
        const double x = 0.1 + 0.8 * (k + u(-0.2, 0.2)) / (down - 1);
        strokes.push_back(polyline({{x + u(-0.03, 0.03), u(0.02, 0.1)}, {x + u(-0.03, 0.03), u(0.9, 0.98)}}));
      }
      break;
    }
    case 9: {  // a steamship: a hull, a deckhouse, 1–2 funnels with puffs of smoke, maybe waves under it
      // (No sailing boat: its sail is one of heldout_shapes' triangles.)
      kind = "ship";
      const double deck = u(0.55, 0.62), keel = deck + u(0.15, 0.2), house = deck - u(0.1, 0.16), bow = u(0.0, 0.06);
      strokes.push_back(polyline({{0.03, deck - bow}, {0.97, deck - bow * 2}, {u(0.8, 0.88), keel}, {u(0.12, 0.2), keel}, {0.03, deck - bow}}));
      const double house_left = u(0.2, 0.3), house_right = u(0.6, 0.72);
      strokes.push_back(polyline({{house_left, deck - bow}, {house_left, house}, {house_right, house}, {house_right, deck - bow * 1.5}}));
      const int funnels = 1 + static_cast<int>(rng.below(2));
      for (int k = 0; k < funnels; ++k) {
        const double x = house_left + (house_right - house_left) * (k + 1) / (funnels + 1) - 0.04, top = house - u(0.12, 0.18);
        strokes.push_back(polyline({{x, house}, {x, top}, {x + 0.08, top}, {x + 0.08, house}}));
        for (int puff = 0; puff < 2 + static_cast<int>(rng.below(2)); ++puff) {
          const double r = 0.03 + 0.012 * puff;
          strokes.push_back(loop(x + 0.04 - (puff + 1) * 0.07, top - 0.05 - puff * 0.05, r, r * 0.8));
        }
      }
      if (rng.below(2) == 0) {
        Stroke water;
        for (int i = 0; i <= 80; ++i) water.push_back({0.02 + 0.96 * i / 80, keel + 0.06 + 0.025 * std::sin(2 * pi * 4 * i / 80)});
        strokes.push_back(water);
      }
      facing = true;
      break;
    }
    case 10: {  // a car from the side: body and cabin in one outline, two wheels, a window post
      kind = "car";
      const double sill = u(0.62, 0.7), belt = sill - u(0.15, 0.22), roof = belt - u(0.15, 0.22), wheel = u(0.09, 0.13);
      const double front = u(0.72, 0.82), back = u(0.2, 0.3);
      strokes.push_back(polyline({{0.03, sill}, {0.03, belt}, {back, belt - 0.02}, {back + 0.08, roof}, {front - 0.08, roof}, {front, belt}, {0.97, belt + 0.04}, {0.97, sill}, {0.03, sill}}));
      strokes.push_back(loop(0.25, sill + 0.01, wheel, wheel));
      strokes.push_back(loop(0.75, sill + 0.01, wheel, wheel));
      strokes.push_back(polyline({{(back + front) / 2, roof}, {(back + front) / 2, belt}}));
      facing = true;
      break;
    }
    default: {  // a hatched patch: parallel lines, often crossed by more, clipped to a lumpy region, maybe outlined
      kind = "hatch";
      const double rx = u(0.3, 0.45), ry = u(0.3, 0.45), a2 = u(-0.15, 0.15), a3 = u(-0.1, 0.1), p2 = u(0, 2 * pi), p3 = u(0, 2 * pi);
      auto radius = [&](double t) { return 1 + a2 * std::cos(2 * t + p2) + a3 * std::cos(3 * t + p3); };
      auto inside = [&](Point p) {
        const double dx = (p.x - 0.5) / rx, dy = (p.y - 0.5) / ry;
        return std::hypot(dx, dy) <= radius(std::atan2(dy, dx));
      };
      const int directions = rng.below(3) == 0 ? 1 : 2;
      const double spacing = u(0.07, 0.12);
      double angle = u(0, pi);
      for (int d = 0; d < directions; ++d, angle += u(0.35, 0.65) * pi) {
        const double ux = std::cos(angle), uy = std::sin(angle);
        for (double s = -0.6; s <= 0.6; s += spacing) {  // each line sampled across the box, kept where inside
          Stroke piece;
          for (int i = 0; i <= 60; ++i) {
            const double t = -0.6 + 1.2 * i / 60;
            const Point p{0.5 + t * ux - s * uy, 0.5 + t * uy + s * ux};
            if (inside(p)) {
              piece.push_back(p);
            } else if (piece.size() > 1) {
              strokes.push_back(piece), piece.clear();
            } else {
              piece.clear();
            }
          }
          if (piece.size() > 1) strokes.push_back(piece);
        }
      }
      if (rng.below(2) == 0) {
        Stroke outline;
        for (int i = 0; i <= 64; ++i) {
          const double t = 2 * pi * i / 64, r = radius(t);
          outline.push_back({0.5 + rx * r * std::cos(t), 0.5 + ry * r * std::sin(t)});
        }
        strokes.push_back(outline);
      }
    }
  }
  if (facing && rng.below(2) == 0) {
    for (Stroke& s : strokes)
      for (Point& p : s) p.x = 1 - p.x;
  }
  const double turn = u(-0.35, 0.35);  // ±20°
  for (Stroke& s : strokes)
    for (Point& p : s) p = {0.5 + (p.x - 0.5) * std::cos(turn) - (p.y - 0.5) * std::sin(turn), 0.5 + (p.x - 0.5) * std::sin(turn) + (p.y - 0.5) * std::cos(turn)};
  jitter(strokes, rng);
  return strokes;
}

// Held-out shapes, another generator: a triangle, a square, a five-pointed star, an arrow, a heart,
// a spiral, a tick, a smiling face. (No plain circle, a 0; no plain line, a 1.)
std::vector<Stroke> shape(Rng& rng, std::string& kind) {
  auto u = [&](double low, double high) { return uniform(rng, low, high); };
  std::vector<Stroke> strokes;
  switch (rng.below(8)) {
    case 0: kind = "triangle", strokes = {polyline({{0.5, 0.05}, {0.95, 0.9}, {0.05, 0.9}, {0.5, 0.05}})}; break;
    case 1: {
      const double w = u(0.5, 0.9);
      kind = "square", strokes = {polyline({{0.5 - w / 2, 0.1}, {0.5 + w / 2, 0.1}, {0.5 + w / 2, 0.9}, {0.5 - w / 2, 0.9}, {0.5 - w / 2, 0.1}})};
      break;
    }
    case 2: {
      kind = "star";
      Stroke s;
      for (int k = 0; k <= 5; ++k) {
        const double t = -pi / 2 + k * 4 * pi / 5;
        s.push_back({0.5 + 0.45 * std::cos(t), 0.5 + 0.45 * std::sin(t)});
      }
      Stroke fine;
      for (std::size_t k = 0; k + 1 < s.size(); ++k) {
        const Stroke piece = polyline({s[k], s[k + 1]});
        fine.insert(fine.end(), piece.begin(), piece.end());
      }
      strokes = {fine};
      break;
    }
    case 3: {
      kind = "arrow";
      const double head = u(0.2, 0.35);
      strokes = {polyline({{0.05, 0.5}, {0.95, 0.5}}), polyline({{0.95 - head, 0.5 - head}, {0.95, 0.5}, {0.95 - head, 0.5 + head}})};
      const double turn = u(0, 2 * pi);
      for (Stroke& s : strokes) {
        for (Point& p : s) p = {0.5 + (p.x - 0.5) * std::cos(turn) - (p.y - 0.5) * std::sin(turn), 0.5 + (p.x - 0.5) * std::sin(turn) + (p.y - 0.5) * std::cos(turn)};
      }
      break;
    }
    case 4: {
      kind = "heart";
      Stroke s;
      for (int i = 0; i <= 96; ++i) {  // x = 16 sin³t, y = 13 cos t − 5 cos 2t − 2 cos 3t − cos 4t
        const double t = 2 * pi * i / 96;
        s.push_back({0.5 + 0.028 * 16 * std::pow(std::sin(t), 3), 0.5 - 0.028 * (13 * std::cos(t) - 5 * std::cos(2 * t) - 2 * std::cos(3 * t) - std::cos(4 * t))});
      }
      strokes = {s};
      break;
    }
    case 5: {
      kind = "spiral";
      Stroke s;
      const double turns = u(2, 3.5), start = u(0, 2 * pi);
      for (int i = 0; i <= 160; ++i) {
        const double t = turns * 2 * pi * i / 160, r = 0.45 * i / 160;
        s.push_back({0.5 + r * std::cos(start + t), 0.5 + r * std::sin(start + t)});
      }
      strokes = {s};
      break;
    }
    case 6: kind = "tick", strokes = {polyline({{0.05, u(0.45, 0.6)}, {u(0.3, 0.4), 0.95}, {0.95, 0.05}})}; break;
    default:
      kind = "face";
      strokes = {arc(0.5, 0.5, 0.45, 0.45, 0, 2 * pi, 64), polyline({{0.35, 0.33}, {0.35, 0.4}}), polyline({{0.65, 0.33}, {0.65, 0.4}}), arc(0.5, 0.55, 0.22, 0.18, 0.15 * pi, 0.85 * pi, 24)};
  }
  jitter(strokes, rng);
  return strokes;
}

// Ink blobs: 1–3 filled shapes, each a radius r(θ) = r₀·(1 + Σₖ aₖ cos(kθ + φₖ)) for k = 2…5,
// anti-aliased along the edge; `size` pixels across.
Coverage blobs(Rng& rng, double size) {
  const int n = 1 + static_cast<int>(rng.below(3)), side = static_cast<int>(std::ceil(size)) + 4;
  Coverage glyph(side, side);
  for (int b = 0; b < n; ++b) {
    const double r0 = uniform(rng, 0.1, n == 1 ? 0.45 : 0.25) * size;
    const double cx = uniform(rng, r0 * 1.3, side - r0 * 1.3), cy = uniform(rng, r0 * 1.3, side - r0 * 1.3);
    double a[6] = {}, phase[6] = {};
    for (int k = 2; k <= 5; ++k) a[k] = uniform(rng, -0.35, 0.35) / (k - 1), phase[k] = uniform(rng, 0, 2 * pi);
    for (int y = 0; y < side; ++y) {
      for (int x = 0; x < side; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy, theta = std::atan2(dy, dx);
        double r = 1;
        for (int k = 2; k <= 5; ++k) r += a[k] * std::cos(k * theta + phase[k]);
        glyph.at(x, y) = std::max(glyph.at(x, y), static_cast<float>(std::clamp(r0 * r - std::hypot(dx, dy) + 0.5, 0.0, 1.0)));
      }
    }
  }
  return glyph;
}

// Nearly nothing: paper with sensor noise (σ 1–10), maybe a light gradient, and 2–60 specks of dust
// or stray marks 0.5–3 px across. Many have too little ink to be read at all, which the app says.
GrayImage noise_image(Rng& rng, const Look& look) {
  GrayImage image = blank(look.canvas_width, look.canvas_height, look.paper);
  const double sigma = uniform(rng, 1, 10), gradient = rng.below(2) ? uniform(rng, 0, 30) : 0, direction = uniform(rng, 0, 2 * pi);
  Coverage specks(look.canvas_width, look.canvas_height);
  const int count = 2 + static_cast<int>(rng.below(59));
  for (int k = 0; k < count; ++k) {
    const double r = uniform(rng, 0.25, 1.5), cx = uniform(rng, 0, look.canvas_width), cy = uniform(rng, 0, look.canvas_height);
    const double strength = uniform(rng, 0.3, 1.0);
    for (int y = std::max(0, static_cast<int>(cy - r - 2)); y < std::min(look.canvas_height, static_cast<int>(cy + r + 2)); ++y) {
      for (int x = std::max(0, static_cast<int>(cx - r - 2)); x < std::min(look.canvas_width, static_cast<int>(cx + r + 2)); ++x)
        specks.at(x, y) = std::max(specks.at(x, y), static_cast<float>(strength * std::clamp(r + 0.5 - std::hypot(x + 0.5 - cx, y + 0.5 - cy), 0.0, 1.0)));
    }
  }
  const double towards = look.paper > 128 ? -1 : 1;  // the gradient darkens light paper, lightens dark
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double along = (x * std::cos(direction) + y * std::sin(direction)) / std::hypot(image.width, image.height);
      float& p = image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x)];
      p = static_cast<float>(std::clamp(look.paper + towards * gradient * (along + 0.5) + (look.ink - look.paper) * specks.at(x, y) + sigma * rng.normal(), 0.0, 255.0));
    }
  }
  return image;
}

struct Negative {
  int id;
  const char* name;
  bool held_out;
  const char* what;
};
constexpr Negative kNegatives[] = {
    {20, "neg_letters", false, "letters that are not digit-like, from the fonts dkg, breip, humorsans, comicneue, klee, bwht"},
    {21, "neg_signs", false, "signs (+ = # % @ * < > ~ ^ × ÷ ± € £) from the same fonts"},
    {22, "neg_scribbles", false, "scribbles: a pen wandering with momentum"},
    {23, "neg_crossouts", false, "crossings-out: zigzags, zigzags with a cross, pen-stroke digits scratched over"},
    {24, "neg_pieces", false, "single strokes cut from pen-stroke digits (20–50% of one stroke, bent by at least 30% of its length)"},
    {25, "neg_blobs", false, "ink blobs: 1–3 filled irregular shapes"},
    {26, "neg_noise", false, "nearly empty paper: noise, a gradient, specks of dust"},
    {27, "neg_pairs", false, "two pen-stroke digits fused: side by side, touching or overlapping by up to a third of a digit"},
    {28, "neg_doodles", false, "doodles: houses, suns, clouds, flowers, stick figures, trees, fish, waves, grids, ships, cars, hatched patches"},
    {29, "neg_cuts", false, "pieces of one digit cut the way the number reader cuts (MNIST training digits and pen strokes): 20–80% of its width"},
    {30, "heldout_letters", true, "letters and signs from other fonts: kristi, dancingscript, ecolier"},
    {31, "heldout_shapes", true, "shapes, another generator: triangles, squares, stars, arrows, hearts, spirals, ticks, faces"},
    {32, "heldout_fashion", true, "Fashion-MNIST test images (clothes and shoes), placed like the digits"},
};

struct NegativeSources {
  std::vector<Font> train_fonts, held_out_fonts;
  digits::Dataset fashion;  // Fashion-MNIST's test set; empty if not installed
  digits::Dataset mnist_train;  // for neg_cuts: MNIST's training digits less the 5,000 validation ones
  std::vector<std::vector<std::size_t>> mnist_by_digit;  // its indices of each digit
};

// neg_cuts: a piece of one digit, cut the way the number reader cuts a group (segment.hpp's
// candidate_cuts and cut_pieces): the reader scores each piece by the network's reading, and a
// network that never saw half a digit reads it as surely as a digit (a 9 cut into 57, a 6 into
// 15: docs/numbers.md, "Splits"), as LeCun et al. 1998 (§VI) found, who trained their recogniser on
// wrongly cut pieces as a "none of the above" class. The digit, drawn like the other negatives
// (random_look), is an MNIST training digit (even image numbers; never a validation or test digit)
// or the pen strokes (odd ones); the candidate cuts are the reader's whatever the digit's width
// (a narrow digit is cut too when the reader reads it unsurely), and the piece is one the reader
// reads (kNarrowestPiece, kLeastInk), not the whole digit, 20–80% of the digit's ink width, drawn
// where it was on the canvas with the rest of the digit erased to paper. A digit with no such piece
// is drawn again. kind: cut<digit><left|middle|right>_<source>.
// Whether an ink image (white on black) is one straight stroke, a 1 to anyone: the centre of each
// row's ink (kInkThreshold and above) lies within kStraight of the piece's ink height of the
// least-squares line through those centres.
bool straight(const GrayImage& ink) {
  constexpr double kStraight = 0.1;
  std::vector<double> ys, xs;
  for (int y = 0; y < ink.height; ++y) {
    double sum = 0, moment = 0;
    for (int x = 0; x < ink.width; ++x) {
      if (ink.at(x, y) < digits::kInkThreshold) continue;
      sum += ink.at(x, y), moment += x * ink.at(x, y);
    }
    if (sum > 0) ys.push_back(y), xs.push_back(moment / sum);
  }
  if (ys.size() < 2) return true;
  const double n = static_cast<double>(ys.size());
  const double my = std::accumulate(ys.begin(), ys.end(), 0.0) / n, mx = std::accumulate(xs.begin(), xs.end(), 0.0) / n;
  double syy = 0, sxy = 0;
  for (std::size_t i = 0; i < ys.size(); ++i) syy += (ys[i] - my) * (ys[i] - my), sxy += (ys[i] - my) * (xs[i] - mx);
  const double slope = syy > 0 ? sxy / syy : 0;
  double worst = 0;
  for (std::size_t i = 0; i < ys.size(); ++i) worst = std::max(worst, std::abs(xs[i] - (mx + slope * (ys[i] - my))));
  return worst < kStraight * (ys.back() - ys.front() + 1);
}

GrayImage digit_cut(const NegativeSources& sources, int number, Rng& rng, Look& look, std::string& kind) {
  constexpr double kNarrowest = 0.2, kWidest = 0.8;  // of the digit's ink width
  constexpr double kMostInk = 0.6;  // of the digit's ink: a piece that lacks only a tail is still the digit
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (attempt > 0) look = random_look(rng);
    // Never a 1 (every piece of it is a stroke: a 1 to anyone) nor a 7 (a piece of it keeps some of
    // its bar and its stem: a 7 still).
    constexpr int kCut[] = {0, 2, 3, 4, 5, 6, 8, 9};
    const int digit = kCut[rng.below(std::size(kCut))];
    std::string source;
    std::optional<Coverage> glyph;
    if (number % 2 == 0) {
      const auto& indices = sources.mnist_by_digit[static_cast<std::size_t>(digit)];
      const std::size_t index = indices[rng.below(indices.size())];
      glyph = placed_mnist_glyph(sources.mnist_train.image(index), look);
      source = "mnist" + std::to_string(index);
    } else {
      std::vector<Stroke> strokes = digit_strokes(digit, rng);
      jitter(strokes, rng);
      glyph = placed_stroke_glyph(strokes, uniform(rng, 0.6, 1.0), look);
      source = "strokes";
    }
    const GrayImage image = place(*glyph, look);
    const digits::Segmentation seg = digits::segment(image);
    if (seg.groups.empty()) continue;
    // The digit: its largest group (an MNIST digit may carry a stray stroke beside it).
    std::size_t g = 0;
    for (std::size_t k = 1; k < seg.groups.size(); ++k) {
      const digits::Box& a = seg.groups[k].box;
      const digits::Box& b = seg.groups[g].box;
      if (a.width * a.height > b.width * b.height) g = k;
    }
    const digits::InkGroup& group = seg.groups[g];
    const std::vector<digits::Cut> cuts = digits::candidate_cuts(seg, static_cast<int>(g));
    const std::vector<digits::CutPiece> pieces = digits::cut_pieces(seg, static_cast<int>(g), cuts);
    const auto ink_of = [](const digits::CutPiece& p) { return std::accumulate(p.ink.pixels.begin(), p.ink.pixels.end(), 0.0); };
    double digit_ink = 0;
    for (const digits::CutPiece& p : pieces) {
      if (p.from == 0 && p.to == static_cast<int>(cuts.size()) + 1) digit_ink = ink_of(p);
    }
    std::vector<const digits::CutPiece*> fit;
    for (const digits::CutPiece& p : pieces) {
      const bool whole = p.from == 0 && p.to == static_cast<int>(cuts.size()) + 1;
      if (!p.read || whole || p.box.width < kNarrowest * group.box.width || p.box.width > kWidest * group.box.width) continue;
      if (ink_of(p) > kMostInk * digit_ink || straight(p.ink)) continue;
      // A right piece of a 2 or a 3 is still a 2 or a 3 (their strokes lie mostly on the right: the
      // cut takes the tips), of a 5 a 5 written as a bar over a bowl, of a 6 its loop under a
      // curve, a 5, of an 8 a 3, of a 9 a 3 or a 7 with a curled top, to anyone; a middle piece of
      // them is such a piece less a sliver on its right (a 9's is a 7), and of a 4 its bar's right
      // half and stem, a 7. Their left pieces are kept: a split needs both pieces read as digits,
      // so one piece refused breaks it. So: any piece of a 0, a 4's left and right ones, a 6's left
      // and middle ones, the others' left ones.
      const bool left_piece = p.from == 0, right_piece = p.to == static_cast<int>(cuts.size()) + 1;
      const bool kept = digit == 0 || left_piece || (digit == 4 && right_piece) || (digit == 6 && !right_piece);
      if (!kept) continue;
      fit.push_back(&p);
    }
    if (fit.empty()) continue;
    const digits::CutPiece& piece = *fit[rng.below(fit.size())];
    // The canvas with the piece's pixels as drawn (their anti-aliased edge too) and paper elsewhere.
    GrayImage out = blank(image.width, image.height, look.paper);
    for (int y = 0; y < piece.ink.height; ++y) {
      for (int x = 0; x < piece.ink.width; ++x) {
        const int cx = piece.ink_x + x, cy = piece.ink_y + y;
        if (piece.ink.at(x, y) <= 0 || cx < 0 || cy < 0 || cx >= image.width || cy >= image.height) continue;
        out.pixels[static_cast<std::size_t>(cy) * static_cast<std::size_t>(out.width) + static_cast<std::size_t>(cx)] = image.at(cx, cy);
      }
    }
    const char* side = piece.from == 0 ? "left" : piece.to == static_cast<int>(cuts.size()) + 1 ? "right" : "middle";
    kind = "cut" + std::to_string(digit) + side + "_" + source;
    return out;
  }
  throw Error("neg_cuts: 100 digits drawn and none had a piece the reader reads");
}

// Writes one negative into dir: none_<kind>_<number>.png, "none" where a digit file has its label.
void negative_image(const Negative& negative, const NegativeSources& sources, int number, std::uint64_t seed, const fs::path& dir) {
  Rng rng(image_seed(seed, negative.id, 0, number));
  Look look = random_look(rng);
  const std::string name = negative.name;
  std::string kind;
  std::optional<Coverage> glyph;
  if (name == "neg_letters" || name == "neg_signs" || name == "heldout_letters") {
    const std::vector<Font>& fonts = negative.held_out ? sources.held_out_fonts : sources.train_fonts;
    const bool letter = name == "neg_letters" || (name == "heldout_letters" && rng.below(3) != 0);
    for (int attempt = 0; !glyph && attempt < 100; ++attempt) {
      const Font& font = fonts[rng.below(fonts.size())];
      const std::uint32_t codepoint = letter ? static_cast<std::uint32_t>(kLetters[rng.below(std::strlen(kLetters))]) : kSigns[rng.below(std::size(kSigns))];
      if (!has_glyph(font, codepoint)) continue;
      // A capital is about 0.7 of the line's height (ascent − descent): a line 1.4 × look.height
      // high gives capitals the digits' sizes; shrunk if the character would not fit.
      int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
      stbtt_GetCodepointBox(&font.info, static_cast<int>(codepoint), &x0, &y0, &x1, &y1);
      const double unit = stbtt_ScaleForPixelHeight(&font.info, 1.0f);  // pixels per font unit at a line 1 px high
      const double w = std::max(1, x1 - x0) * unit, h = std::max(1, y1 - y0) * unit;
      Look unbounded = look;
      unbounded.height = 1e9;
      const double em = std::min(1.4 * look.height, fit_size(unbounded, w / h) / std::max(w, h));
      glyph = character_glyph(font, codepoint, em);
      if (glyph) {
        const double pen = std::max(1.5, look.stroke * 0.7 * em);  // as a digit's pen is to its height
        glyph = set_stroke_width(*glyph, pen);
        kind = font.family + "_" + codepoint_name(codepoint);
      }
    }
    if (!glyph) throw Error("no font of the " + std::string(negative.held_out ? "held-out" : "training") + " families has the characters wanted");
  } else if (name == "neg_blobs") {
    kind = "blob";
    const double size = fit_size(look, 1);
    glyph = blobs(rng, size);
  } else if (name == "neg_noise") {
    char file[64];
    std::snprintf(file, sizeof file, "none_noise_%04d.png", number);
    digits::write_png(dir / file, noise_image(rng, look));
    return;
  } else if (name == "neg_cuts") {
    const GrayImage image = digit_cut(sources, number, rng, look, kind);
    char file[128];
    std::snprintf(file, sizeof file, "none_%s_%s_%04d.png", kind.c_str(), look.weight, number);
    digits::write_png(dir / file, image);
    return;
  } else if (name == "heldout_fashion") {
    const std::size_t index = rng.below(sources.fashion.size());
    kind = "fashion" + std::to_string(index) + "class" + std::to_string(sources.fashion.labels[index]);
    fit_height(look, mnist_aspect(sources.fashion.image(index)));
    glyph = mnist_glyph(sources.fashion.image(index), look.height);
  } else {
    std::vector<Stroke> strokes;
    if (name == "neg_scribbles") kind = "scribble", strokes = scribble(rng);
    if (name == "neg_crossouts") strokes = crossout(rng, kind);
    if (name == "neg_pieces") {
      int digit = 0;
      strokes = {digit_piece(rng, digit)};
      kind = "piece" + std::to_string(digit);
    }
    if (name == "neg_pairs") strokes = fused_pair(rng, kind);
    if (name == "neg_doodles") {
      strokes = doodle(rng, kind);
      // A marker's pen (12–18% of the size) fills a picture's details into a blob, which neg_blobs
      // has: a thick pen draws doodles 6–10% of their size instead.
      if (look.stroke > 0.1) look.stroke = 0.06 + (look.stroke - 0.12) * (0.04 / 0.06), look.weight = "medium";
    }
    if (name == "heldout_shapes") strokes = shape(rng, kind);
    const Extent e = extent(strokes);
    const double size = fit_size(look, e.width() / std::max(e.height(), 1e-6));
    glyph = path_glyph(strokes, size, std::max(1.5, look.stroke * size));
  }
  char file[128];
  std::snprintf(file, sizeof file, "none_%s_%s_%04d.png", kind.c_str(), look.weight, number);
  digits::write_png(dir / file, place(*glyph, look));
}

// ---- the folders ----

enum Folder { kFonts = 1, kStrokes = 2, kMnistPlaced = 3 };

fs::path prepare(const fs::path& out, const char* name) {
  const fs::path dir = out / name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create: " + ec.message());
  if (!fs::is_empty(dir, ec)) throw Error(dir.string() + ": not empty; give an empty --out (this tool never deletes files)");
  return dir;
}

double seconds_since(std::chrono::steady_clock::time_point start) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }

// <label>_<source>_<weight>_<number>.png, e.g. 7_kristi_thin_0042.png
std::string file_name(int digit, const std::string& source, const Look& look, int number) {
  char text[96];
  std::snprintf(text, sizeof text, "%d_%s_%s_%04d.png", digit, source.c_str(), look.weight, number);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes folders of labelled digit images (<label>_anything.png) that are not MNIST's, for `digits evaluate --images`, "
               "and folders of things that are not digits (none_anything.png)"};
  std::string out, only = "all", data, fonts_root = "/usr/share/fonts", fashion = "/usr/share/datasets/fashion-mnist";
  int per_digit = 400, negatives = 500;
  bool training_set = false;
  std::uint64_t seed = 1;
  std::string names = "fonts, strokes, mnist_placed";
  for (const Variation& v : kVariations) names += std::string(", ") + v.name;
  for (const Negative& n : kNegatives) names += std::string(", ") + n.name;
  app.add_option("--out", out, "Directory to write the folders into (each must be new or empty)")->required();
  app.add_option("--per-digit", per_digit, "Images of each digit in each digit folder (fonts: spread over the families)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--negatives", negatives, "Images in each folder of things that are not digits")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--only", only,
                 "Folders to write, comma-separated: " + names + "; or a group: robustness (the first three), variations, negatives (held-out ones included), all")
      ->capture_default_str();
  app.add_option("--seed", seed, "Seed: the same seed gives the same images")->capture_default_str();
  app.add_option("--data", data, "MNIST-layout directory for mnist_placed, the variations and neg_cuts (default: $DIGITS_DATA, else data/mnist of the source tree)");
  app.add_option("--fonts-root", fonts_root, "Where Debian installs fonts")->capture_default_str();
  app.add_flag("--training-set", training_set,
               "Make the variation folders a training set: their MNIST digits from the training set less its 5,000 validation digits, "
               "and no fonts (the fonts and MNIST test are for measuring); only the strokes and the variations may be asked for. "
               "File names then give the digit's index among those 55,000, not in MNIST's file");
  app.add_option("--fashion", fashion, "Fashion-MNIST directory, for heldout_fashion (Debian's dataset-fashion-mnist)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::set<std::string> want;
  std::stringstream list(only);
  for (std::string name; std::getline(list, name, ',');) {
    const bool all = name == "all";
    bool known = false;
    if (all || name == "robustness") want.insert({"fonts", "strokes", "mnist_placed"}), known = true;
    for (const Variation& v : kVariations) {
      if (all || name == "variations" || name == v.name) want.insert(v.name), known = true;
    }
    for (const Negative& n : kNegatives) {
      if (all || name == "negatives" || name == n.name) want.insert(n.name), known = true;
    }
    if (name == "fonts" || name == "strokes" || name == "mnist_placed") want.insert(name), known = true;
    if (!known) {
      std::fprintf(stderr, "make_digit_folders: --only '%s': expected one of %s, or robustness, variations, negatives, all\n", name.c_str(), names.c_str());
      return 2;
    }
  }
  auto wanted = [&](const std::string& name) { return want.count(name) > 0; };
  if (training_set) {
    for (const std::string& name : want) {
      bool allowed = name == "strokes";
      for (const Variation& v : kVariations) allowed = allowed || name == v.name;
      if (!allowed) {
        std::fprintf(stderr, "make_digit_folders: --training-set makes only strokes and the variation folders, not %s\n", name.c_str());
        return 2;
      }
    }
  }
  bool any_variation = false, any_negative = false;
  for (const Variation& v : kVariations) any_variation = any_variation || wanted(v.name);
  for (const Negative& n : kNegatives) any_negative = any_negative || wanted(n.name);

  try {
    // The fonts, when a folder needs them: every family, then split for the negatives.
    std::vector<std::vector<Font>> families;
    std::string family_names;
    if (wanted("fonts") || any_variation || any_negative) {
      for (const FontFamily& family : kFontFamilies) {
        std::vector<Font> fonts = load_family(family, fonts_root);
        if (fonts.empty()) {
          std::fprintf(stderr, "make_digit_folders: no fonts of %s (install the Debian package %s: scripts/setup does)\n", family.name, family.package);
          continue;
        }
        family_names += (family_names.empty() ? "" : ", ") + std::string(family.name) + " (" + std::to_string(fonts.size()) + ")";
        families.push_back(std::move(fonts));
      }
    }
    // The MNIST test set, when a folder needs it.
    digits::Dataset test;
    fs::path data_dir = data;
    if (wanted("mnist_placed") || any_variation) {
      if (data_dir.empty()) {
        const char* env = std::getenv("DIGITS_DATA");
        data_dir = env && *env ? fs::path(env) : fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
      }
      digits::TrainTestData mnist = digits::load_train_test(data_dir);  // (neg_cuts loads it again below: MNIST is read in a second)
      // For a training set, the training digits the presets train on: never the validation ones.
      test = training_set ? digits::split_validation(mnist.train, 5000, digits::kValidationSplitSeed).second : std::move(mnist.test);
    }

    if (wanted("fonts")) {
      if (families.empty()) throw Error("no handwriting fonts found under " + fonts_root + ": run scripts/setup, or leave fonts out of --only");
      const fs::path dir = prepare(out, "fonts");
      int count = 0;
      for (int digit = 0; digit < 10; ++digit) {
        for (int number = 0; number < per_digit; ++number) {
          Rng rng(image_seed(seed, kFonts, digit, number));
          const std::vector<Font>& family = families[static_cast<std::size_t>(number) % families.size()];  // round robin
          const Font& font = family[rng.below(family.size())];
          Look look = random_look(rng);
          fit_height(look, font_aspect(font, digit));
          const Coverage glyph = set_stroke_width(font_glyph(font, digit, look.height), stroke_pixels(look));
          digits::write_png(dir / file_name(digit, font.family, look, number), place(glyph, look));
          ++count;
        }
      }
      std::printf("fonts: %d images from %zu families: %s\n", count, families.size(), family_names.c_str());
    }

    if (wanted("strokes")) {
      const fs::path dir = prepare(out, "strokes");
      int count = 0;
      for (int digit = 0; digit < 10; ++digit) {
        for (int number = 0; number < per_digit; ++number) {
          Rng rng(image_seed(seed, kStrokes, digit, number));
          std::vector<Stroke> strokes = digit_strokes(digit, rng);
          jitter(strokes, rng);
          const double narrowing = uniform(rng, 0.6, 1.0);
          Look look = random_look(rng);
          const Coverage glyph = placed_stroke_glyph(strokes, narrowing, look);
          digits::write_png(dir / file_name(digit, "strokes", look, number), place(glyph, look));
          ++count;
        }
      }
      std::printf("strokes: %d images\n", count);
    }

    if (wanted("mnist_placed")) {
      const fs::path dir = prepare(out, "mnist_placed");
      int count = 0;
      for (int digit = 0; digit < 10; ++digit) {
        std::vector<std::size_t> indices;
        for (std::size_t i = 0; i < test.size(); ++i) {
          if (test.labels[i] == digit) indices.push_back(i);
        }
        Rng chooser(image_seed(seed, kMnistPlaced, digit, -1));
        chooser.shuffle(indices);
        for (int number = 0; number < per_digit; ++number) {
          const std::size_t index = indices[static_cast<std::size_t>(number) % indices.size()];
          Rng rng(image_seed(seed, kMnistPlaced, digit, number));
          Look look = random_look(rng);
          const Coverage glyph = placed_mnist_glyph(test.image(index), look);
          digits::write_png(dir / file_name(digit, "mnist" + std::to_string(index), look, number), place(glyph, look));
          ++count;
        }
      }
      std::printf("mnist_placed: %d images (MNIST test digits, from %s)\n", count, data_dir.c_str());
    }

    if (any_variation) {
      Sources sources;
      if (!training_set) sources.families = families;
      sources.mnist = &test;
      sources.mnist_by_digit.resize(10);
      for (std::size_t i = 0; i < test.size(); ++i) sources.mnist_by_digit[test.labels[i]].push_back(i);
      for (const auto& indices : sources.mnist_by_digit) {
        if (indices.empty()) throw Error(data_dir.string() + ": the MNIST digits lack a digit");
      }
      for (const Variation& variation : kVariations) {
        if (!wanted(variation.name)) continue;
        const fs::path dir = prepare(out, variation.name);
        const auto start = std::chrono::steady_clock::now();
        for (int digit = 0; digit < 10; ++digit) {
          for (int number = 0; number < per_digit; ++number) variation_image(variation, sources, digit, number, seed, dir);
        }
        std::printf("%s: %d images in %.0f s: %s\n", variation.name, 10 * per_digit, seconds_since(start), variation.what);
      }
    }

    if (any_negative) {
      NegativeSources sources;
      for (const auto& family : families) {
        const std::string& name = family.front().family;
        for (const char* train : kTrainFamilies) {
          if (name == train) sources.train_fonts.insert(sources.train_fonts.end(), family.begin(), family.end());
        }
        for (const char* held_out : kHeldOutFamilies) {
          if (name == held_out) sources.held_out_fonts.insert(sources.held_out_fonts.end(), family.begin(), family.end());
        }
      }
      for (const Negative& negative : kNegatives) {
        if (!wanted(negative.name)) continue;
        const std::string name = negative.name;
        if ((name == "neg_letters" || name == "neg_signs") && sources.train_fonts.empty()) {
          std::fprintf(stderr, "make_digit_folders: %s left out: none of its fonts is installed (scripts/setup installs them)\n", negative.name);
          continue;
        }
        if (name == "heldout_letters" && sources.held_out_fonts.empty()) {
          std::fprintf(stderr, "make_digit_folders: %s left out: none of its fonts is installed (scripts/setup installs them)\n", negative.name);
          continue;
        }
        if (name == "neg_cuts") {
          if (data_dir.empty()) {
            const char* env = std::getenv("DIGITS_DATA");
            data_dir = env && *env ? fs::path(env) : fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
          }
          // The training digits the presets train on, never the validation or test ones.
          sources.mnist_train = digits::split_validation(digits::load_train_test(data_dir).train, 5000, digits::kValidationSplitSeed).second;
          sources.mnist_by_digit.assign(10, {});
          for (std::size_t i = 0; i < sources.mnist_train.size(); ++i) sources.mnist_by_digit[sources.mnist_train.labels[i]].push_back(i);
          for (const auto& indices : sources.mnist_by_digit) {
            if (indices.empty()) throw Error(data_dir.string() + ": the MNIST training digits lack a digit");
          }
        }
        if (name == "heldout_fashion") {
          std::error_code ec;
          if (!fs::is_directory(fashion, ec)) {
            std::fprintf(stderr, "make_digit_folders: %s left out: no %s (install the Debian package dataset-fashion-mnist: scripts/setup does)\n", negative.name, fashion.c_str());
            continue;
          }
          sources.fashion = digits::load_train_test(fashion).test;
        }
        const fs::path dir = prepare(out, negative.name);
        const auto start = std::chrono::steady_clock::now();
        for (int number = 0; number < negatives; ++number) negative_image(negative, sources, number, seed, dir);
        std::printf("%s: %d images%s in %.0f s: %s\n", negative.name, negatives, negative.held_out ? " (held out)" : "", seconds_since(start), negative.what);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_digit_folders: %s\n", e.what());
    return 1;
  }
  return 0;
}
