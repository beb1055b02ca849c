#include "digits/augment.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <vector>

#include "digits/error.hpp"

namespace digits {

AugmentSettings AugmentSettings::none() {
  AugmentSettings s;
  s.max_shift = s.max_rotation_degrees = s.max_scale = s.max_shear = 0.0f;
  s.elastic_alpha = 0.0f;
  s.elastic_probability = 0.0f;
  s.thickness_probability = 0.0f;
  return s;
}

bool AugmentSettings::is_none() const {
  return max_shift == 0 && max_rotation_degrees == 0 && max_scale == 0 && max_shear == 0 &&
         (max_aspect == 0 || aspect_probability == 0) &&
         (elastic_alpha == 0 || elastic_probability == 0) && thickness_probability == 0;
}

// ---- settings: checking, reading, writing ----

namespace {

// Empty if the settings are usable, else what is wrong, in the flag's words.
std::string problem(const AugmentSettings& s) {
  auto outside = [](float value, float low, float high) { return !std::isfinite(value) || value < low || value > high; };
  auto say = [](const char* what, float value) {
    std::ostringstream out;
    out << what << value;
    return out.str();
  };
  if (outside(s.max_shift, 0, 8)) return say("shift must be 0 to 8 pixels, not ", s.max_shift);
  if (outside(s.max_rotation_degrees, 0, 180)) return say("rotate must be 0 to 180 degrees, not ", s.max_rotation_degrees);
  if (outside(s.max_scale, 0, 0.9f)) return say("scale must be 0 to 0.9 (a fraction of the size), not ", s.max_scale);
  if (outside(s.max_shear, 0, 1)) return say("shear must be 0 to 1, not ", s.max_shear);
  if (outside(s.max_aspect, 0, 3)) return say("aspect must be 0 to 3 (width times 1/(1 + it) to 1 + it), not ", s.max_aspect);
  if (outside(s.aspect_probability, 0, 1)) return say("aspect probability must be 0 to 1, not ", s.aspect_probability);
  if (outside(s.elastic_alpha, 0, 100)) return say("elastic alpha must be 0 to 100 pixels, not ", s.elastic_alpha);
  if (s.elastic_alpha > 0 && (!std::isfinite(s.elastic_sigma) || s.elastic_sigma <= 0 || s.elastic_sigma > 10))
    return say("elastic sigma must be above 0 and at most 10 pixels, not ", s.elastic_sigma);
  if (outside(s.elastic_probability, 0, 1)) return say("elastic probability must be 0 to 1, not ", s.elastic_probability);
  if (outside(s.thickness_probability, 0, 1)) return say("thickness must be a probability, 0 to 1, not ", s.thickness_probability);
  return {};
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(trimmed(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start)));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

void validate(const AugmentSettings& settings) {
  if (const std::string message = problem(settings); !message.empty()) throw Error("augment: " + message);
}

AugmentSettings parse_augment(std::string_view spec_view) {
  const std::string spec = trimmed(spec_view);
  const std::string usage =
      " (expected none, default, or a list such as shift=2,rotate=10,scale=0.1,shear=0.1,elastic=34:4,thickness=0.3)";
  if (spec == "none") return AugmentSettings::none();
  if (spec == "default") return AugmentSettings{};
  if (spec.empty()) throw Error("augment: empty setting" + usage);

  const std::vector<std::string> items = split(spec, ',');
  AugmentSettings settings = items.front() == "default" ? AugmentSettings{} : AugmentSettings::none();
  auto fail = [&](const std::string& what) -> Error { return Error("augment '" + spec + "': " + what); };
  auto number = [&](const std::string& text, const std::string& item) {
    try {
      std::size_t used = 0;
      const float value = std::stof(text, &used);
      if (used == text.size() && std::isfinite(value)) return value;
    } catch (const std::exception&) {
    }
    throw fail("'" + text + "' in '" + item + "' is not a number");
  };

  std::vector<std::string> seen;
  for (std::size_t i = items.front() == "default" ? 1 : 0; i < items.size(); ++i) {
    const std::string& item = items[i];
    const std::size_t equals = item.find('=');
    if (equals == std::string::npos) throw fail("cannot read '" + item + "'" + usage);
    const std::string key = trimmed(std::string_view(item).substr(0, equals));
    const std::string value = trimmed(std::string_view(item).substr(equals + 1));
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) throw fail("'" + key + "' is given twice");
    seen.push_back(key);
    if (key == "shift") {
      settings.max_shift = number(value, item);
    } else if (key == "rotate") {
      settings.max_rotation_degrees = number(value, item);
    } else if (key == "scale") {
      settings.max_scale = number(value, item);
    } else if (key == "shear") {
      settings.max_shear = number(value, item);
    } else if (key == "aspect") {
      const std::vector<std::string> fields = split(value, ':');
      if (fields.size() > 2) throw fail("cannot read '" + item + "' (expected aspect=FRACTION or aspect=FRACTION:PROBABILITY)");
      settings.max_aspect = number(fields[0], item);
      settings.aspect_probability = fields.size() == 2 ? number(fields[1], item) : 1.0f;
    } else if (key == "thickness") {
      settings.thickness_probability = number(value, item);
    } else if (key == "elastic") {
      const std::vector<std::string> fields = split(value, ':');
      if (fields.size() == 1 && number(fields[0], item) == 0) {
        settings.elastic_alpha = 0;
        settings.elastic_probability = 0;
      } else if (fields.size() == 2 || fields.size() == 3) {
        settings.elastic_alpha = number(fields[0], item);
        settings.elastic_sigma = number(fields[1], item);
        settings.elastic_probability = fields.size() == 3 ? number(fields[2], item) : AugmentSettings{}.elastic_probability;
      } else {
        throw fail("cannot read '" + item + "' (expected elastic=ALPHA:SIGMA, elastic=ALPHA:SIGMA:PROBABILITY or elastic=0)");
      }
    } else {
      throw fail("unknown transform '" + key + "' in '" + item + "' (expected shift, rotate, scale, shear, aspect, elastic or thickness)");
    }
  }
  if (const std::string message = problem(settings); !message.empty()) throw fail(message);
  return settings;
}

std::string describe(const AugmentSettings& s) {
  if (s.is_none()) return "none";
  std::ostringstream out;
  const char* separator = "";
  auto item = [&](const char* key, float value) {
    if (value != 0) out << separator << key << '=' << value, separator = ",";
  };
  item("shift", s.max_shift);
  item("rotate", s.max_rotation_degrees);
  item("scale", s.max_scale);
  item("shear", s.max_shear);
  if (s.max_aspect != 0 && s.aspect_probability != 0) {
    out << separator << "aspect=" << s.max_aspect;
    if (s.aspect_probability != 1) out << ':' << s.aspect_probability;
    separator = ",";
  }
  if (s.elastic_alpha != 0 && s.elastic_probability != 0) {
    out << separator << "elastic=" << s.elastic_alpha << ':' << s.elastic_sigma << ':' << s.elastic_probability;
    separator = ",";
  }
  item("thickness", s.thickness_probability);
  return out.str();
}

// ---- the transform ----

namespace {

// splitmix64's finaliser (Steele, Lea & Flood, 2014): consecutive positions give unrelated seeds.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Working memory, one per thread, sized on first use: augmenting allocates nothing afterwards.
// The elastic field's rows are `stride` floats, cols rounded up to 16, so the smoothing loops run
// whole SIMD vectors (the columns past cols are computed and never read).
struct Scratch {
  int rows = 0, cols = 0, stride = 0;
  float sigma = 0;
  int radius = 0;
  std::vector<float> kernel;                // 2·radius + 1 Gaussian weights summing to 1
  std::vector<float> source;                // (rows + 4) × (cols + 4): the image inside a 2-pixel frame of zeros
  std::vector<float> noise_x, noise_y;      // rows × (stride + 2·radius): noise in columns radius … radius + cols − 1, zeros around
  std::vector<float> smooth_x, smooth_y;    // (rows + 2·radius) × stride: after the horizontal pass, zero rows above and below
  std::vector<float> dx, dy;                // rows × stride: the elastic displacement field, pixels
  std::vector<float> moved_x, moved_y;      // rows × stride: the field moved with the digit
  std::vector<float> zeros;                 // rows × stride: no displacement
  std::vector<float> warped, thick;         // rows × cols: the warped image, and with its strokes changed

  void fit(int new_rows, int new_cols, float new_sigma) {
    const auto area = static_cast<std::size_t>(new_rows) * static_cast<std::size_t>(new_cols);
    if (new_rows != rows || new_cols != cols) {
      rows = new_rows, cols = new_cols, stride = (cols + 15) / 16 * 16;
      source.assign(static_cast<std::size_t>(rows + 4) * static_cast<std::size_t>(cols + 4), 0.0f);
      dx.assign(static_cast<std::size_t>(rows) * static_cast<std::size_t>(stride), 0.0f), dy.assign(dx.size(), 0.0f);
      moved_x.assign(dx.size(), 0.0f), moved_y.assign(dx.size(), 0.0f), zeros.assign(dx.size(), 0.0f);
      warped.assign(area, 0.0f), thick.assign(area, 0.0f);
      sigma = 0;  // the noise buffers depend on the size too
    }
    if (new_sigma > 0 && new_sigma != sigma) {
      sigma = new_sigma;
      // Truncated at 3σ (99.7% of the weight), renormalised; scipy's gaussian_filter, which the
      // usual Python versions of Simard's distortion call, truncates at 4σ: the difference is <0.3%.
      radius = static_cast<int>(std::ceil(3 * sigma));
      kernel.resize(static_cast<std::size_t>(2 * radius + 1));
      float sum = 0;
      for (int i = -radius; i <= radius; ++i) sum += kernel[static_cast<std::size_t>(i + radius)] = std::exp(-0.5f * static_cast<float>(i * i) / (sigma * sigma));
      for (float& g : kernel) g /= sum;
      noise_x.assign(static_cast<std::size_t>(rows) * static_cast<std::size_t>(stride + 2 * radius), 0.0f);
      noise_y.assign(noise_x.size(), 0.0f);
      smooth_x.assign(static_cast<std::size_t>(rows + 2 * radius) * static_cast<std::size_t>(stride), 0.0f);
      smooth_y.assign(smooth_x.size(), 0.0f);
    }
  }
};

thread_local Scratch scratch;

// Gaussian smoothing of both noise fields with zero outside the image (scipy's mode="constant"),
// separably, then times α:
//   horizontal:  H(y, x) = Σ_k g(k) · noise(y, x + k − r)
//   vertical:    Δ(y, x) = α · Σ_k g(k) · H(y + k − r, x)
// The vertical pass runs over the whole field at once: row y + k − r is k·stride floats further on.
void smooth(Scratch& s, float alpha) {
  const int r = s.radius, taps = 2 * r + 1, stride = s.stride, width = stride + 2 * r;
  const float* g = s.kernel.data();
  for (int y = 0; y < s.rows; ++y) {
    const float* __restrict in_x = s.noise_x.data() + static_cast<std::ptrdiff_t>(y) * width;
    const float* __restrict in_y = s.noise_y.data() + static_cast<std::ptrdiff_t>(y) * width;
    float* __restrict out_x = s.smooth_x.data() + static_cast<std::ptrdiff_t>(y + r) * stride;
    float* __restrict out_y = s.smooth_y.data() + static_cast<std::ptrdiff_t>(y + r) * stride;
    for (int x = 0; x < stride; ++x) out_x[x] = g[0] * in_x[x], out_y[x] = g[0] * in_y[x];
    for (int k = 1; k < taps; ++k)
      for (int x = 0; x < stride; ++x) out_x[x] += g[k] * in_x[x + k], out_y[x] += g[k] * in_y[x + k];
  }
  const int n = s.rows * stride;
  float* __restrict dx = s.dx.data();
  float* __restrict dy = s.dy.data();
  const float* __restrict h_x = s.smooth_x.data();
  const float* __restrict h_y = s.smooth_y.data();
  for (int i = 0; i < n; ++i) dx[i] = alpha * g[0] * h_x[i], dy[i] = alpha * g[0] * h_y[i];
  for (int k = 1; k < taps; ++k) {
    const float w = alpha * g[k];
    const int offset = k * stride;
    for (int i = 0; i < n; ++i) dx[i] += w * h_x[i + offset], dy[i] += w * h_y[i + offset];
  }
}

// Grayscale morphology, zero outside, with the 3×3 cross (a pixel and its four neighbours):
// dilation takes the neighbourhood's max (strokes about a pixel thicker), erosion its min (thinner).
// The cross rather than the full 3×3 square: the square swells MNIST's 2–3-pixel strokes into
// blobs and fills small loops (a 6's or a 9's), which the picture in docs/augmentation.md showed.
void morph(const Scratch& s, const float* in, float* out, bool dilate) {
  const int rows = s.rows, cols = s.cols;
  auto pick = [dilate](float a, float b) { return dilate ? std::max(a, b) : std::min(a, b); };
  auto at = [&](int y, int x) { return y >= 0 && y < rows && x >= 0 && x < cols ? in[y * cols + x] : 0.0f; };
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      out[y * cols + x] = pick(pick(pick(at(y, x - 1), at(y, x)), pick(at(y, x + 1), at(y - 1, x))), at(y + 1, x));
}

// The first and last index along each axis holding ink (value ≥ 0.5, what rounds to 1 or more);
// first > last if there is none.
struct Extent {
  int first, last;
  bool empty() const { return first > last; }
};
// From each row's and each column's largest value (loops without branches, which vectorise).
template <class Pixel>
void extents(const Pixel* pixels, int rows, int cols, Extent& along_x, Extent& along_y) {
  thread_local std::vector<float> column_max;
  column_max.assign(static_cast<std::size_t>(cols), 0.0f);
  along_x = {cols, -1}, along_y = {rows, -1};
  for (int y = 0; y < rows; ++y) {
    const Pixel* line = pixels + static_cast<std::ptrdiff_t>(y) * cols;
    float row_max = 0;
    for (int x = 0; x < cols; ++x) {
      const auto v = static_cast<float>(line[x]);
      row_max = std::max(row_max, v);
      column_max[static_cast<std::size_t>(x)] = std::max(column_max[static_cast<std::size_t>(x)], v);
    }
    if (row_max >= 0.5f) along_y.first = std::min(along_y.first, y), along_y.last = y;
  }
  for (int x = 0; x < cols; ++x)
    if (column_max[static_cast<std::size_t>(x)] >= 0.5f) along_x.first = std::min(along_x.first, x), along_x.last = x;
}

// Where the ink may go along one axis: not on the outer pixel, and no nearer the edge than the
// original's ink was (so an image that already touches the edge is not moved, and none() stays exact).
Extent frame(Extent original, int size) {
  if (original.empty()) return {1, size - 2};
  return {std::min(1, original.first), std::max(size - 2, original.last)};
}

// The whole-pixel move that brings `ink` inside `allowed`, as small as it can be; centred if
// it cannot fit.
int move_inside(Extent ink, Extent allowed) {
  if (ink.empty()) return 0;
  const int low = allowed.first - ink.first, high = allowed.last - ink.last;
  if (low > high) return (low + high) / 2;
  return std::clamp(0, low, high);
}

struct Result {
  const float* pixels;   // rows × cols in scratch
  int shift_x, shift_y;  // whole pixels still to move it by (0 unless the last resort was needed)
};

// One inverse mapping per image. For output pixel p (pixel centres at integers, image centre c),
// the source point is
//   u = A⁻¹ · (p − c − t − n) + c + Δ(p − n)
// with A = R(θ) · H(k) · s · diag(a, 1) the forward affine map (rotation θ, horizontal shear k,
// scale s, width factor a) about
// the centre, t the drawn shift, Δ the elastic displacement field and n a whole-pixel move (0 for
// most images, below); the output is the image at u by bilinear interpolation, zero outside
// (Simard et al. 2003, §2). Then the strokes may be dilated or eroded.
//
// Keeping the digit in the frame: the ink may not touch the outer pixel, nor come nearer the edge
// than the original's ink did. A forecast from the affine part narrows t (and s if need be)
// before the first rendering; if the result still breaks the rule (the elastic field and the
// interpolation's spill are not forecast), it is rendered again with n moved by what it lacked,
// or with s reduced if the ink is wider than the frame. n moves the field with the digit, so a
// move is an exact translation. At most kAttempts renderings, then the best whole-pixel move is
// applied as a copy. On MNIST's training set with the defaults, 78% of the images need one
// rendering, 20% two, 1.3% three, none more (3 × 60,000 images).
constexpr int kAttempts = 5;

Result warp(std::span<const std::uint8_t> image, int rows, int cols, const AugmentSettings& settings, Rng& rng) {
  const std::string message = problem(settings);
  if (!message.empty()) throw Error("augment: " + message);
  if (rows <= 0 || cols <= 0 || image.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols))
    throw Error("augment: an image of " + std::to_string(image.size()) + " pixels is not " + std::to_string(rows) + "×" + std::to_string(cols));

  // Every image makes the same eight draws, then the noise if it is distorted elastically.
  auto symmetric = [&rng](float limit) { return (2.0f * rng.uniform() - 1.0f) * limit; };
  const float theta = symmetric(settings.max_rotation_degrees) * std::numbers::pi_v<float> / 180.0f;
  float scale = 1.0f + symmetric(settings.max_scale);
  const float shear = symmetric(settings.max_shear);
  float shift_x = symmetric(settings.max_shift), shift_y = symmetric(settings.max_shift);
  const bool elastic = rng.uniform() < settings.elastic_probability && settings.elastic_alpha > 0;
  const bool thicken = rng.uniform() < settings.thickness_probability;
  const bool dilate = rng.uniform() < 0.5f;
  // The width factor a (1 when off, with no draw): log-uniform, so narrowing by 2 is as likely as
  // widening by 2; only on a share of the images when aspect_probability < 1 (one more draw).
  const bool reshape = settings.max_aspect > 0 && (settings.aspect_probability >= 1 || rng.uniform() < settings.aspect_probability);
  const float aspect = reshape ? std::exp(symmetric(std::log1p(settings.max_aspect))) : 1.0f;

  Scratch& s = scratch;
  s.fit(rows, cols, elastic ? settings.elastic_sigma : 0.0f);

  // The elastic field: uniform(−1, 1) noise at every pixel, Gaussian-smoothed with σ, times α.
  // Each 64-bit draw gives both fields' noise at one pixel, 24 bits each.
  if (elastic) {
    const int width = s.stride + 2 * s.radius;
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x) {
        const std::uint64_t bits = rng.engine()();
        const auto at = static_cast<std::size_t>(y * width + x + s.radius);
        s.noise_x[at] = static_cast<float>(bits >> 40) * 0x1.0p-23f - 1.0f;
        s.noise_y[at] = static_cast<float>((bits >> 8) & 0xFFFFFF) * 0x1.0p-23f - 1.0f;
      }
    smooth(s, settings.elastic_alpha);
  }

  const int padded = cols + 4;
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      s.source[static_cast<std::size_t>((y + 2) * padded + x + 2)] = image[static_cast<std::size_t>(y * cols + x)];

  const float cos_t = std::cos(theta), sin_t = std::sin(theta);
  const float cx = 0.5f * static_cast<float>(cols - 1), cy = 0.5f * static_cast<float>(rows - 1);
  int move_x = 0, move_y = 0;  // whole pixels added to the shift to keep the ink inside
  auto render = [&]() -> const float* {
    // A = R · H · s · diag(a, 1) = s · [a cos θ, k cos θ − sin θ; a sin θ, k sin θ + cos θ], det A = a s².
    const float a00 = scale * aspect * cos_t, a01 = scale * (shear * cos_t - sin_t);
    const float a10 = scale * aspect * sin_t, a11 = scale * (shear * sin_t + cos_t);
    const float det = a00 * a11 - a01 * a10;
    const float m00 = a11 / det, m01 = -a01 / det, m10 = -a10 / det, m11 = a00 / det;  // M = A⁻¹
    // u = M·p + b with b = c − M·(c + t).
    const float tx = shift_x + static_cast<float>(move_x), ty = shift_y + static_cast<float>(move_y);
    const float bx = cx - (m00 * (cx + tx) + m01 * (cy + ty));
    const float by = cy - (m10 * (cx + tx) + m11 * (cy + ty));
    // The field moves with the digit: Δ(p − n), zero beyond its edge; copied so the loop below
    // reads it straight. Zeros without elastic.
    const float* field_x = s.dx.data();
    const float* field_y = s.dy.data();
    if (!elastic) {
      field_x = field_y = s.zeros.data();
    } else if (move_x != 0 || move_y != 0) {
      for (int y = 0; y < rows; ++y)
        for (int x = 0; x < cols; ++x) {
          const int ex = x - move_x, ey = y - move_y;
          const bool inside = ex >= 0 && ex < cols && ey >= 0 && ey < rows;
          const auto from = static_cast<std::size_t>(ey * s.stride + ex), to = static_cast<std::size_t>(y * s.stride + x);
          s.moved_x[to] = inside ? s.dx[from] : 0.0f;
          s.moved_y[to] = inside ? s.dy[from] : 0.0f;
        }
      field_x = s.moved_x.data(), field_y = s.moved_y.data();
    }
    // Bilinear interpolation without branches: u clamped to [−2, size], where both neighbours
    // of anything outside (−1, size) fall in `source`'s 2-pixel frame of zeros.
    const float last_x = static_cast<float>(cols), last_y = static_cast<float>(rows);
    for (int y = 0; y < rows; ++y) {
      const float* __restrict shift_row_x = field_x + static_cast<std::ptrdiff_t>(y) * s.stride;
      const float* __restrict shift_row_y = field_y + static_cast<std::ptrdiff_t>(y) * s.stride;
      float* __restrict out = s.warped.data() + static_cast<std::ptrdiff_t>(y) * cols;
      const float row_x = m01 * static_cast<float>(y) + bx, row_y = m11 * static_cast<float>(y) + by;
      for (int x = 0; x < cols; ++x) {
        const float ux = std::clamp(m00 * static_cast<float>(x) + row_x + shift_row_x[x], -2.0f, last_x);
        const float uy = std::clamp(m10 * static_cast<float>(x) + row_y + shift_row_y[x], -2.0f, last_y);
        const float x0 = std::floor(ux), y0 = std::floor(uy);
        const float wx = ux - x0, wy = uy - y0;
        const float* p = s.source.data() + (static_cast<int>(y0) + 2) * padded + static_cast<int>(x0) + 2;
        out[x] = (1 - wy) * ((1 - wx) * p[0] + wx * p[1]) + wy * ((1 - wx) * p[padded] + wx * p[padded + 1]);
      }
    }
    if (!thicken) return s.warped.data();
    morph(s, s.warped.data(), s.thick.data(), dilate);
    // Erosion can wipe out a thin digit: keep it only if at least 40% of the ink survives.
    double before = 0, after = 0;
    for (std::size_t i = 0; i < s.warped.size(); ++i) before += s.warped[i], after += s.thick[i];
    return dilate || after >= 0.4 * before ? s.thick.data() : s.warped.data();
  };

  Extent original_x, original_y, ink_x, ink_y;
  extents(image.data(), rows, cols, original_x, original_y);
  const Extent allowed_x = frame(original_x, cols), allowed_y = frame(original_y, rows);
  auto span = [](Extent e) { return static_cast<float>(e.last - e.first + 1); };

  // A forecast that saves most re-renderings: where the affine map alone puts the original's ink
  // pixels, v = A·(q − c), widened by a pixel if the strokes will be dilated. If that is wider than
  // the frame, s shrinks to fit; the shift is then narrowed to keep it inside. (Not widened for
  // the interpolation's spill or the elastic field: the renderings below catch those, and the
  // identity must stay exact on an image that fills its frame.)
  if (!original_x.empty()) {
    float low_x = 1e30f, high_x = -1e30f, low_y = 1e30f, high_y = -1e30f;
    const float a00 = aspect * cos_t, a01 = shear * cos_t - sin_t, a10 = aspect * sin_t, a11 = shear * sin_t + cos_t;  // A / s
    for (int y = original_y.first; y <= original_y.last; ++y)
      for (int x = original_x.first; x <= original_x.last; ++x)
        if (image[static_cast<std::size_t>(y * cols + x)] > 0) {
          const float qx = static_cast<float>(x) - cx, qy = static_cast<float>(y) - cy;
          const float vx = a00 * qx + a01 * qy, vy = a10 * qx + a11 * qy;
          low_x = std::min(low_x, vx), high_x = std::max(high_x, vx), low_y = std::min(low_y, vy), high_y = std::max(high_y, vy);
        }
    const float margin = thicken && dilate ? 1.0f : 0.0f;
    const float room_x = static_cast<float>(allowed_x.last - allowed_x.first) - 2 * margin;
    const float room_y = static_cast<float>(allowed_y.last - allowed_y.first) - 2 * margin;
    scale = std::min({scale, room_x / std::max(high_x - low_x, 1e-3f), room_y / std::max(high_y - low_y, 1e-3f)});
    auto narrow = [&](float shift, float low, float high, Extent allowed, float centre) {
      const float least = static_cast<float>(allowed.first) + margin - (centre + scale * low);
      const float most = static_cast<float>(allowed.last) - margin - (centre + scale * high);
      return least <= most ? std::clamp(shift, least, most) : 0.5f * (least + most);
    };
    shift_x = narrow(shift_x, low_x, high_x, allowed_x, cx);
    shift_y = narrow(shift_y, low_y, high_y, allowed_y, cy);
  }
  const float* result = nullptr;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    result = render();
    extents(result, rows, cols, ink_x, ink_y);
    const bool inside = (ink_x.empty() || (ink_x.first >= allowed_x.first && ink_x.last <= allowed_x.last)) &&
                        (ink_y.empty() || (ink_y.first >= allowed_y.first && ink_y.last <= allowed_y.last));
    if (inside) return {result, 0, 0};
    // Wider than the frame: shrink by what it lacks (spans counted in pixels, a pixel to spare).
    const float fit = std::min(span(ink_x) > span(allowed_x) ? (span(allowed_x) - 1) / span(ink_x) : 1.0f,
                               span(ink_y) > span(allowed_y) ? (span(allowed_y) - 1) / span(ink_y) : 1.0f);
    if (fit < 1.0f) {
      scale *= fit;
    } else {
      move_x += move_inside(ink_x, allowed_x), move_y += move_inside(ink_y, allowed_y);
    }
  }
  return {result, move_inside(ink_x, allowed_x), move_inside(ink_y, allowed_y)};
}

// out(y, x) = store(result(y − shift_y, x − shift_x)), zero where that falls outside.
template <class Store>
void write_shifted(const Result& r, int rows, int cols, Store store) {
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x) {
      const int from_y = y - r.shift_y, from_x = x - r.shift_x;
      const bool inside = from_y >= 0 && from_y < rows && from_x >= 0 && from_x < cols;
      store(y * cols + x, inside ? r.pixels[from_y * cols + from_x] : 0.0f);
    }
}

void check_output(std::size_t size, int rows, int cols) {
  if (size != static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols))
    throw Error("augment: an output of " + std::to_string(size) + " pixels is not " + std::to_string(rows) + "×" + std::to_string(cols));
}

}  // namespace

void augment(std::span<const std::uint8_t> image, int rows, int cols, const AugmentSettings& settings, Rng& rng,
             std::span<float> out) {
  check_output(out.size(), rows, cols);
  const Result r = warp(image, rows, cols, settings, rng);
  write_shifted(r, rows, cols, [&](int at, float value) { out[static_cast<std::size_t>(at)] = value; });
}

void augment(std::span<const std::uint8_t> image, int rows, int cols, const AugmentSettings& settings, Rng& rng,
             std::span<std::uint8_t> out) {
  check_output(out.size(), rows, cols);
  const Result r = warp(image, rows, cols, settings, rng);
  write_shifted(r, rows, cols, [&](int at, float value) {
    out[static_cast<std::size_t>(at)] = static_cast<std::uint8_t>(std::clamp(value, 0.0f, 255.0f) + 0.5f);  // rounded
  });
}

std::uint64_t augment_seed(std::uint64_t seed, std::size_t position) { return seed ^ splitmix64(position); }

void augment_batch(const Dataset& data, std::span<const std::size_t> indices, const AugmentSettings& settings,
                   std::uint64_t seed, float scale, Matrix& X, std::vector<std::uint8_t>& labels,
                   std::size_t first_position, WorkerPool* pool) {
  validate(settings);
  for (const std::size_t index : indices)
    if (index >= data.size())
      throw Error("augment_batch: index " + std::to_string(index) + " but " + data.name + " holds " + std::to_string(data.size()) + " images");
  const auto features = static_cast<Eigen::Index>(data.features());
  X.resize(static_cast<Eigen::Index>(indices.size()), features);
  labels.resize(indices.size());
  constexpr int kShares = 4;
  run_tasks(pool, kShares, [&](int share) {  // a share of the rows, each from its own seed
    const auto [first, count] = share_of(static_cast<std::ptrdiff_t>(indices.size()), kShares, share);
    for (auto r = static_cast<std::size_t>(first); r < static_cast<std::size_t>(first + count); ++r) {
      Rng rng(augment_seed(seed, first_position + r));
      const Result result = warp(data.image(indices[r]), data.rows, data.cols, settings, rng);
      float* row = X.data() + static_cast<Eigen::Index>(r) * features;
      write_shifted(result, data.rows, data.cols, [&](int at, float value) { row[at] = value * scale; });
      labels[r] = data.labels[indices[r]];
    }
  });
}

}  // namespace digits
