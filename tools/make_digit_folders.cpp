// make_digit_folders: writes folders of labelled digit images that are not MNIST's, drawn the way
// people hand them to the app (large or small, anywhere on a big canvas, slanted, thin or thick,
// either polarity), for `digits evaluate --images`. See docs/robustness.md.
//
//   fonts/          digits from handwriting-style TrueType/OpenType fonts of Debian packages
//   strokes/        synthetic pen strokes, jittered
//   mnist_placed/   MNIST test digits placed exactly the same way: the control group
//
// Every image goes through one path: a coverage bitmap of the digit (0 paper, 1 ink) at its final
// height → its stroke width set (fonts, MNIST: by a signed distance field; strokes: by the pen) →
// sheared and put at a random place on the canvas → paper and ink levels. So the three folders
// differ only in where the digit's shape comes from, and the gap between them is the price of
// shapes the model did not train on. Images depend only on --seed, the folder, the digit and the
// image's number, so `--only` and `--per-digit` do not change the images they share.
#include <stb_truetype.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/random.hpp"

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
GrayImage place(const Coverage& glyph, const Look& look) {
  GrayImage canvas{look.canvas_width, look.canvas_height,
                   std::vector<float>(static_cast<std::size_t>(look.canvas_width) * static_cast<std::size_t>(look.canvas_height), static_cast<float>(look.paper))};
  const double reach = std::abs(look.shear) * glyph.height / 2;  // how far the shear moves the top and bottom rows
  const double margin = 0.02 * std::min(look.canvas_width, look.canvas_height);
  const double room_x = std::max(0.0, look.canvas_width - 2 * margin - (glyph.width + 2 * reach));
  const double room_y = std::max(0.0, look.canvas_height - 2 * margin - glyph.height);
  const double left = margin + reach + look.left_fraction * room_x, top = margin + look.top_fraction * room_y;
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
Coverage font_glyph(const Font& font, int digit, double height) {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  stbtt_GetCodepointBitmapBox(&font.info, '0' + digit, 1, 1, &x0, &y0, &x1, &y1);
  const float scale = static_cast<float>(height / (y1 - y0));
  int w = 0, h = 0;
  unsigned char* bitmap = stbtt_GetCodepointBitmap(&font.info, scale, scale, '0' + digit, &w, &h, nullptr, nullptr);
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

// The MNIST digit's ink box scaled by bilinear interpolation so it is `height` pixels tall.
Coverage mnist_glyph(std::span<const std::uint8_t> image, double height) {
  const InkBox box = mnist_box(image);
  const double k = height / (box.bottom - box.top + 1);
  const int w = static_cast<int>(std::ceil((box.right - box.left + 1) * k)), h = static_cast<int>(std::ceil(height));
  Coverage source(28, 28);
  for (std::size_t i = 0; i < source.values.size(); ++i) source.values[i] = image[i] / 255.0f;
  Coverage glyph(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) glyph.at(x, y) = source.sample(box.left - 0.5 + (x + 0.5) / k, box.top - 0.5 + (y + 0.5) / k);
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
      const double ax = pad + (stroke[i].x - left) * k * narrowing, ay = pad + (stroke[i].y - top) * k;
      const double bx = pad + (stroke[i + 1].x - left) * k * narrowing, by = pad + (stroke[i + 1].y - top) * k;
      const int x0 = std::max(0, static_cast<int>(std::min(ax, bx) - radius - 1)), x1 = std::min(glyph.width - 1, static_cast<int>(std::max(ax, bx) + radius + 1));
      const int y0 = std::max(0, static_cast<int>(std::min(ay, by) - radius - 1)), y1 = std::min(glyph.height - 1, static_cast<int>(std::max(ay, by) + radius + 1));
      const double dx = bx - ax, dy = by - ay, length2 = std::max(dx * dx + dy * dy, 1e-12);
      for (int y = y0; y <= y1; ++y) {
        for (int x = x0; x <= x1; ++x) {
          const double px = x + 0.5, py = y + 0.5;
          const double t = std::clamp(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0);
          const double distance = std::hypot(px - (ax + t * dx), py - (ay + t * dy));
          glyph.at(x, y) = std::max(glyph.at(x, y), static_cast<float>(std::clamp(radius + 0.5 - distance, 0.0, 1.0)));
        }
      }
    }
  }
  return glyph;
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

// <label>_<source>_<weight>_<number>.png, e.g. 7_kristi_thin_0042.png
std::string file_name(int digit, const std::string& source, const Look& look, int number) {
  char text[96];
  std::snprintf(text, sizeof text, "%d_%s_%s_%04d.png", digit, source.c_str(), look.weight, number);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes folders of labelled digit images (<label>_anything.png) that are not MNIST's, for `digits evaluate --images`"};
  std::string out, only = "fonts,strokes,mnist_placed", data, fonts_root = "/usr/share/fonts";
  int per_digit = 400;
  std::uint64_t seed = 1;
  app.add_option("--out", out, "Directory to write fonts/, strokes/ and mnist_placed/ into (each must be new or empty)")->required();
  app.add_option("--per-digit", per_digit, "Images of each digit in each folder (fonts: spread over the families)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--only", only, "Folders to write, comma-separated: fonts, strokes, mnist_placed")->capture_default_str();
  app.add_option("--seed", seed, "Seed: the same seed gives the same images")->capture_default_str();
  app.add_option("--data", data, "MNIST-layout directory for mnist_placed (default: $DIGITS_DATA, else data/mnist of the source tree)");
  app.add_option("--fonts-root", fonts_root, "Where Debian installs fonts")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  bool want[4] = {false, false, false, false};
  std::stringstream list(only);
  for (std::string name; std::getline(list, name, ',');) {
    if (name == "fonts") want[kFonts] = true;
    else if (name == "strokes") want[kStrokes] = true;
    else if (name == "mnist_placed") want[kMnistPlaced] = true;
    else {
      std::fprintf(stderr, "make_digit_folders: --only '%s': expected fonts, strokes or mnist_placed\n", name.c_str());
      return 2;
    }
  }

  try {
    if (want[kFonts]) {
      std::vector<std::vector<Font>> families;
      std::string names;
      for (const FontFamily& family : kFontFamilies) {
        std::vector<Font> fonts = load_family(family, fonts_root);
        if (fonts.empty()) {
          std::fprintf(stderr, "make_digit_folders: no fonts of %s (install the Debian package %s: scripts/setup does)\n", family.name, family.package);
          continue;
        }
        names += (names.empty() ? "" : ", ") + std::string(family.name) + " (" + std::to_string(fonts.size()) + ")";
        families.push_back(std::move(fonts));
      }
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
      std::printf("fonts: %d images from %zu families: %s\n", count, families.size(), names.c_str());
    }

    if (want[kStrokes]) {
      const fs::path dir = prepare(out, "strokes");
      int count = 0;
      for (int digit = 0; digit < 10; ++digit) {
        for (int number = 0; number < per_digit; ++number) {
          Rng rng(image_seed(seed, kStrokes, digit, number));
          std::vector<Stroke> strokes = digit_strokes(digit, rng);
          jitter(strokes, rng);
          const double narrowing = uniform(rng, 0.6, 1.0);
          double left = 1e9, right = -1e9, top = 1e9, bottom = -1e9;
          for (const Stroke& s : strokes) {
            for (const Point& p : s) left = std::min(left, p.x), right = std::max(right, p.x), top = std::min(top, p.y), bottom = std::max(bottom, p.y);
          }
          Look look = random_look(rng);
          fit_height(look, narrowing * (right - left) / (bottom - top));
          const Coverage glyph = stroke_glyph(strokes, narrowing, look.height, stroke_pixels(look));
          digits::write_png(dir / file_name(digit, "strokes", look, number), place(glyph, look));
          ++count;
        }
      }
      std::printf("strokes: %d images\n", count);
    }

    if (want[kMnistPlaced]) {
      fs::path data_dir = data;
      if (data_dir.empty()) {
        const char* env = std::getenv("DIGITS_DATA");
        data_dir = env && *env ? fs::path(env) : fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
      }
      const digits::Dataset test = digits::load_train_test(data_dir).test;
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
          const InkBox box = mnist_box(test.image(index));
          fit_height(look, static_cast<double>(box.right - box.left + 1) / (box.bottom - box.top + 1));
          const Coverage glyph = set_stroke_width(mnist_glyph(test.image(index), look.height), stroke_pixels(look));
          digits::write_png(dir / file_name(digit, "mnist" + std::to_string(index), look, number), place(glyph, look));
          ++count;
        }
      }
      std::printf("mnist_placed: %d images (MNIST test digits, from %s)\n", count, data_dir.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_digit_folders: %s\n", e.what());
    return 1;
  }
  return 0;
}
