#include "digits/preprocess.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "digits/error.hpp"
#include "digits/tensor.hpp"

namespace digits {

namespace {

// ---- Drawings: one paper level (steps 1–2 for an image whose paper the gate below finds exactly flat) ----

// The median of the pixels within `frame` of the edge: whole rows at the top and bottom, the two
// ends of the rows between (the interior is never looked at).
float border_median(const GrayImage& image) {
  const int frame = std::max(1, std::min(image.width, image.height) / 20);
  std::vector<float> border;
  for (int y = 0; y < image.height; ++y) {
    const float* row = &image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width)];
    const bool edge_row = y < frame || y >= image.height - frame;
    const int left_end = edge_row ? image.width : std::min(frame, image.width);  // x < frame, or the whole row
    const int right_start = std::max(left_end, image.width - frame);             // x ≥ width − frame, not counted twice
    border.insert(border.end(), row, row + left_end);
    border.insert(border.end(), row + right_start, row + image.width);
  }
  std::nth_element(border.begin(), border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2), border.end());
  return border[border.size() / 2];
}

// 1–2. Polarity and paper level: ink becomes bright, paper 0.
Ink drawing_ink(const GrayImage& image, float paper) {
  Ink result;
  result.inverted = paper > 127.5f;
  if (result.inverted) paper = 255.0f - paper;
  const float gain = 255.0f / std::max(255.0f - paper, 1.0f);
  const Eigen::Map<const Matrix> gray(image.pixels.data(), image.height, image.width);
  if (result.inverted) result.values = ((255.0f - gray.array() - paper) * gain).cwiseMax(0.0f);
  else result.values = ((gray.array() - paper) * gain).cwiseMax(0.0f);
  return result;
}

// ---- Photographs: the paper's level region by region ----
//
// A photograph of paper is lit unevenly: the light falls off across the page and towards the
// corners, and a hand or a phone casts a soft shadow. Ink and paper both reflect that light, so
// the camera sees I(x, y) = L(x, y)·R(x, y) + noise, where L is the light (smooth, but with the
// soft edge of a shadow) and R the reflectance (paper's, or the darker ink's). One paper level for
// the whole image takes the darker half of such a page for ink, and noise beyond the 10% threshold
// for ink all over it. So the paper's level is estimated per region, and the ink is what stands
// out from its own region's paper by more than the noise (a–f below).
//
// The gate comes first: a drawing (the page's canvas, a PNG, every generated folder but photo)
// has paper of exactly one level, while a photograph's paper is never one level twice in
// a row: noise and the light see to it. So an image where at least kFlatPaperShare of the pixels
// (sampled) have exactly the border's median level is a drawing, and takes the drawings' path,
// unchanged bit for bit: the built-in model was trained on what it makes. On the generated
// folders (seed 1, 2,000 images each) that share is 0.30–1.00 for drawings (the least: a small
// bitmap scaled up bilinearly, all ramps; then a marker or a digit touching its box) and at most
// 0.16 for photographs (median 0.02). An image with less paper than that, a thick stroke cropped
// tight, is a drawing too when as large a share of it sits at any one exact level (its ink).
// Anything else is a photograph:
//
//  a. The image is cut into a grid of cells (kCellsAcross along the shorter side, each at least
//     kSmallestCell pixels), and each cell's paper level is its median: paper is most of a cell
//     unless a stroke covers more than half of it.
//  b. The noise σ comes from differences of pixels three apart along a row (beyond the reach of a
//     3×3 blur or of anti-aliasing, so the two are independent): for Gaussian noise the difference
//     is N(0, 2σ²), whose median absolute value is 0.6745·√2·σ; strokes' edges are a minority and
//     the median ignores them, and the light moves by a fraction of a level over three pixels
//     (the MAD estimator: Hampel 1974; Donoho & Johnstone 1994 use it on wavelet details). JPEG
//     smooths faint noise away block by block, so σ can read 0 on a photograph: the seeds' share
//     of the paper in f does not depend on it.
//  c. Polarity: the ink is on the side of the paper the image strays to: the sum of the residuals
//     I − paper beyond 3σ + 5% of full scale is negative for dark ink, positive for light ink.
//  d. In the ink-bright domain (dark ink inverted), the cells a stroke fills are removed by a
//     morphological opening of the cell grid (a minimum over each cell's 3×3 neighbourhood, then a
//     maximum over the same): a plane or a step is kept as it is, a ridge narrower than three cells
//     becomes its surroundings (Serra, "Image Analysis and Mathematical Morphology", 1982; on a
//     pixel grid this is the "rolling ball" background of Sternberg, 1983). Then the level is
//     capped at the most ink-like level of the border cells: light falls off towards the edges of
//     a page (a gradient, darker corners, a shadow across it), so the border holds the extremes of
//     the paper, while no cell of the interior may be more ink-like than they (a blob of ink wider
//     than three cells would otherwise become paper).
//  e. The cell levels are interpolated bilinearly between the cells' centres, and each pixel's ink
//     is its excess over its own paper b, less the noise floor kNoiseFloor·σ (soft thresholding:
//     Donoho 1995, "De-noising by soft-thresholding"), stretched so that the paper's distance to
//     full scale maps to 255: ink = 255·max(0, v − b − 3σ)/(255 − b). For dark ink on light paper
//     255 − b is the paper's own brightness P, and ink = 255·(P − I − 3σ)/P: the image divided by
//     the light (flat-field correction), the ink's contrast against its own paper.
//  f. Specks: noise and JPEG's blocks still pass the threshold here and there, a pixel or a few,
//     and one speck far from the digit makes the ink's box the whole page. A component of ink
//     (8-connected pixels over kInkThreshold) is kept only when its strongest pixel stands out by
//     kSeedNoise·σ + kSeedContrast of the paper (hysteresis, as Canny's edge detector keeps a weak
//     edge only when it joins a strong one: Canny 1986), and when it spans kLeastExtent of the
//     shorter side across or down: dust is a pixel or three, a pen's stroke is longer than it is
//     wide. (A decimal point smaller than that is lost on a photograph of a number.)
constexpr int kCellsAcross = 16, kSmallestCell = 8;
constexpr int kMostCellsAlong = 4 * kCellsAcross;  // a long strip of an image gets longer cells, not more
// A cell's median from at most about this many pixels, on a lattice: a median of 256 noisy
// samples is within 0.08σ of the cell's, and the cost is bounded whatever the image's size.
constexpr int kSamplesPerCell = 256;
constexpr int kMostNoiseSamples = 1 << 14;
constexpr float kNoiseFloor = 3.0f;        // a Gaussian passes 3σ once in 740 pixels; f does the rest
constexpr float kPolarityMargin = 12.75f;  // 5% of full scale
constexpr float kSeedNoise = 6.0f;         // a Gaussian passes 6σ once in 10⁹ pixels
constexpr float kSeedContrast = 0.2f;      // of the paper's distance to full scale
// Dust and specks of a pixel or three, beside a stroke as long as the pen is wide: a component is
// ink only when it spans at least 1.5% of the shorter side one way (on 400–800-pixel photographs,
// 6–12 pixels).
constexpr double kLeastExtent = 0.015;
constexpr int kMostGateSamples = 1 << 14;
constexpr double kFlatPaperShare = 0.25;

// Cell boundaries along one axis of n pixels cut into cells: edge[i] to edge[i + 1].
std::vector<int> cell_edges(int n, int cells) {
  std::vector<int> edges(static_cast<std::size_t>(cells) + 1);
  for (int i = 0; i <= cells; ++i) edges[static_cast<std::size_t>(i)] = static_cast<int>(static_cast<long long>(n) * i / cells);
  return edges;
}

// Bilinear interpolation between cell centres along one axis: pixel p lies between centres
// first[p] and first[p] + 1 with weight[p] on the second; beyond the outer centres, the outer cell.
struct Axis {
  std::vector<int> first;
  std::vector<float> weight;
};

Axis axis_weights(const std::vector<int>& edges) {
  const int cells = static_cast<int>(edges.size()) - 1, n = edges.back();
  Axis axis{std::vector<int>(static_cast<std::size_t>(n)), std::vector<float>(static_cast<std::size_t>(n))};
  auto centre = [&](int c) { return (edges[static_cast<std::size_t>(c)] + edges[static_cast<std::size_t>(c) + 1]) / 2.0; };
  int i = 0;
  for (int p = 0; p < n; ++p) {
    const double at = p + 0.5;
    while (i + 1 < cells && centre(i + 1) <= at) ++i;
    int first = 0;
    float weight = 0;
    if (cells == 1 || at <= centre(0)) {
      first = 0, weight = 0;
    } else if (i + 1 >= cells) {
      first = cells - 2, weight = 1;
    } else {
      first = i, weight = static_cast<float>((at - centre(i)) / (centre(i + 1) - centre(i)));
    }
    axis.first[static_cast<std::size_t>(p)] = first, axis.weight[static_cast<std::size_t>(p)] = weight;
  }
  return axis;
}

struct Grid {
  std::vector<int> x_edges, y_edges;
  Matrix level;  // (rows × columns) of cells: each cell's median

  explicit Grid(const GrayImage& image) {
    const int shorter = std::min(image.width, image.height);
    const int across = std::clamp(shorter / kSmallestCell, 1, kCellsAcross);
    const double side = static_cast<double>(shorter) / across;
    const int columns = std::clamp(static_cast<int>(std::lround(image.width / side)), 1, kMostCellsAlong);
    const int rows = std::clamp(static_cast<int>(std::lround(image.height / side)), 1, kMostCellsAlong);
    x_edges = cell_edges(image.width, columns), y_edges = cell_edges(image.height, rows);
    level.resize(rows, columns);
    std::vector<float> samples;
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < columns; ++c) {
        const int x0 = x_edges[static_cast<std::size_t>(c)], x1 = x_edges[static_cast<std::size_t>(c) + 1];
        const int y0 = y_edges[static_cast<std::size_t>(r)], y1 = y_edges[static_cast<std::size_t>(r) + 1];
        const int stride = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(x1 - x0) * (y1 - y0) / kSamplesPerCell))));
        samples.clear();
        for (int y = y0 + (y1 - y0 - 1) % stride / 2; y < y1; y += stride) {
          for (int x = x0 + (x1 - x0 - 1) % stride / 2; x < x1; x += stride) samples.push_back(image.at(x, y));
        }
        std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2), samples.end());
        level(r, c) = samples[samples.size() / 2];
      }
    }
  }

  // The cell levels interpolated to every pixel: (height × width).
  Matrix at_pixels(const Matrix& cells) const {
    const Axis across = axis_weights(x_edges), down = axis_weights(y_edges);
    const int width = x_edges.back(), height = y_edges.back();
    Matrix result(height, width);
    std::vector<float> row(static_cast<std::size_t>(cells.cols()));
    for (int y = 0; y < height; ++y) {
      const int r = down.first[static_cast<std::size_t>(y)];
      const float wy = down.weight[static_cast<std::size_t>(y)];
      for (int c = 0; c < cells.cols(); ++c) row[static_cast<std::size_t>(c)] = cells.rows() == 1 ? cells(0, c) : (1 - wy) * cells(r, c) + wy * cells(r + 1, c);
      for (int x = 0; x < width; ++x) {
        const int c = across.first[static_cast<std::size_t>(x)];
        const float wx = across.weight[static_cast<std::size_t>(x)];
        result(y, x) = cells.cols() == 1 ? row[0] : (1 - wx) * row[static_cast<std::size_t>(c)] + wx * row[static_cast<std::size_t>(c) + 1];
      }
    }
    return result;
  }
};

// σ of the image's noise (b above), from at most kMostNoiseSamples differences on a lattice.
float noise_sigma(const GrayImage& image) {
  constexpr int kApart = 3;
  if (image.width <= kApart) return 0;
  const double pairs = static_cast<double>(image.width - kApart) * image.height;
  const int stride = std::max(1, static_cast<int>(std::ceil(std::sqrt(pairs / kMostNoiseSamples))));
  std::vector<float> differences;
  for (int y = stride / 2; y < image.height; y += stride) {
    for (int x = 0; x + kApart < image.width; x += stride) differences.push_back(std::abs(image.at(x + kApart, y) - image.at(x, y)));
  }
  std::nth_element(differences.begin(), differences.begin() + static_cast<std::ptrdiff_t>(differences.size() / 2), differences.end());
  return differences[differences.size() / 2] / (0.6745f * std::sqrt(2.0f));
}

// Calls visit(value) for each pixel of the gate's lattice, at most kMostGateSamples pixels evenly
// spread over the image; returns how many there were.
template <typename Visit>
long long visit_gate_lattice(const GrayImage& image, Visit visit) {
  const int stride = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(image.width) * image.height / kMostGateSamples))));
  long long samples = 0;
  for (int y = stride / 2; y < image.height; y += stride) {
    for (int x = stride / 2; x < image.width; x += stride) ++samples, visit(image.at(x, y));
  }
  return samples;
}

// The gate: the share of the lattice's pixels whose level is exactly the border's median.
double share_at_level(const GrayImage& image, float level) {
  long long same = 0;
  const long long samples = visit_gate_lattice(image, [&](float v) { same += v == level; });
  return static_cast<double>(same) / static_cast<double>(samples);
}

// The share of the same lattice's pixels at the most common exact whole level 0–255 (a level with
// a fraction never counts). A drawing mostly of ink, a thick stroke cropped tight, has little
// paper but its ink is one level too; a photograph's noise spreads every level over several.
double most_common_level_share(const GrayImage& image) {
  std::array<long long, 256> counts{};
  const long long samples = visit_gate_lattice(image, [&](float v) {
    if (v >= 0 && v <= 255 && v == std::floor(v)) ++counts[static_cast<std::size_t>(v)];
  });
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) / static_cast<double>(samples);
}

// A 3×3 minimum (erode) or maximum (dilate) over a grid, clipped at its edges.
Matrix neighbourhood(const Matrix& grid, bool maximum) {
  Matrix result = grid;
  for (int r = 0; r < grid.rows(); ++r) {
    for (int c = 0; c < grid.cols(); ++c) {
      const int r0 = std::max(0, r - 1), r1 = std::min<int>(static_cast<int>(grid.rows()) - 1, r + 1);
      const int c0 = std::max(0, c - 1), c1 = std::min<int>(static_cast<int>(grid.cols()) - 1, c + 1);
      const auto block = grid.block(r0, c0, r1 - r0 + 1, c1 - c0 + 1);
      result(r, c) = maximum ? block.maxCoeff() : block.minCoeff();
    }
  }
  return result;
}

Matrix opening(const Matrix& grid) { return neighbourhood(neighbourhood(grid, false), true); }

// Step c: true for dark ink on light paper.
bool dark_ink_on_light(const GrayImage& image, const Grid& grid, float sigma, float border) {
  const float margin = 3 * sigma + kPolarityMargin;
  const Matrix light_opened = opening(grid.level), dark_opened = opening(Matrix(255.0f - grid.level.array()));
  double light = 0, dark = 0;
  for (int r = 0; r < grid.level.rows(); ++r) {
    for (int c = 0; c < grid.level.cols(); ++c) {
      const float m = grid.level(r, c);
      if (m - light_opened(r, c) > margin || (255.0f - m) - dark_opened(r, c) > margin) continue;  // a cell a stroke fills
      for (int y = grid.y_edges[static_cast<std::size_t>(r)]; y < grid.y_edges[static_cast<std::size_t>(r) + 1]; ++y) {
        for (int x = grid.x_edges[static_cast<std::size_t>(c)]; x < grid.x_edges[static_cast<std::size_t>(c) + 1]; ++x) {
          const float residual = image.at(x, y) - m;
          light += std::max(0.0f, residual - margin), dark += std::max(0.0f, -residual - margin);
        }
      }
    }
  }
  if (light != dark) return dark > light;
  return border > 127.5f;  // no ink either way, or only in cells it fills: the drawings' rule
}

// Step d: the paper's level per cell in the ink-bright domain (dark ink inverted).
Matrix paper_cells(const Matrix& level, bool inverted) {
  const Matrix cells = inverted ? Matrix(255.0f - level.array()) : level;
  const Matrix opened = opening(cells);
  // The border's least ink-like level, and its most ink-like level once strokes are opened away.
  float least = cells(0, 0), most = opened(0, 0);
  for (int r = 0; r < cells.rows(); ++r) {
    for (int c = 0; c < cells.cols(); ++c) {
      if (r == 0 || c == 0 || r == cells.rows() - 1 || c == cells.cols() - 1) least = std::min(least, cells(r, c)), most = std::max(most, opened(r, c));
    }
  }
  return opened.cwiseMax(least).cwiseMin(std::max(least, most));
}

// Step f. ink: (height × width) as step e leaves it; seed: 1 for each of its pixels that stands
// out enough to seed a component (row-major, as ink). Zeroes every component without a seed, or
// smaller than kLeastExtent of the image's shorter side both across and down.
void drop_specks(Matrix& ink, const std::vector<unsigned char>& seed) {
  const int width = static_cast<int>(ink.cols()), height = static_cast<int>(ink.rows());
  const double least = kLeastExtent * std::min(width, height);
  std::vector<int> labels(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), -1), stack;
  std::vector<bool> kept;
  float* values = ink.data();
  for (int start = 0; start < width * height; ++start) {
    if (labels[static_cast<std::size_t>(start)] >= 0 || values[start] <= kInkThreshold) continue;
    const int label = static_cast<int>(kept.size());
    bool seeded = false;
    int left = width, right = -1, top = height, bottom = -1;
    labels[static_cast<std::size_t>(start)] = label;
    stack.push_back(start);
    while (!stack.empty()) {  // an explicit stack: a component of millions of pixels cannot overflow the call stack
      const int i = stack.back();
      stack.pop_back();
      const int x = i % width, y = i / width;
      seeded = seeded || seed[static_cast<std::size_t>(i)];
      left = std::min(left, x), right = std::max(right, x), top = std::min(top, y), bottom = std::max(bottom, y);
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int nx = x + dx, ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const int n = ny * width + nx;
          if (labels[static_cast<std::size_t>(n)] >= 0 || values[n] <= kInkThreshold) continue;
          labels[static_cast<std::size_t>(n)] = label;
          stack.push_back(n);
        }
      }
    }
    kept.push_back(seeded && std::max(right - left + 1, bottom - top + 1) >= least);
  }
  for (int i = 0; i < width * height; ++i) {
    const int label = labels[static_cast<std::size_t>(i)];
    if (label >= 0 && !kept[static_cast<std::size_t>(label)]) values[i] = 0;
  }
}

Ink photograph_ink(const GrayImage& image, float border) {
  // a–b. Each cell's paper level, and the noise.
  const Grid grid(image);
  const float sigma = noise_sigma(image);
  Ink result;
  result.inverted = dark_ink_on_light(image, grid, sigma, border);
  const Matrix cells = paper_cells(grid.level, result.inverted);
  // e. The excess over the pixel's own paper b, less the noise floor, stretched to full scale.
  result.values = grid.at_pixels(cells);
  std::vector<unsigned char> seed(static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height));
  const float floor = kNoiseFloor * sigma;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const float v = result.inverted ? 255.0f - image.at(x, y) : image.at(x, y);
      float& b = result.values(y, x);
      const float room = std::max(255.0f - b, 1.0f);
      seed[static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x)] = v - b >= kSeedNoise * sigma + kSeedContrast * room;
      b = std::max(0.0f, v - b - floor) * 255.0f / room;
    }
  }
  drop_specks(result.values, seed);
  return result;
}

// The (out × in) matrix that averages, for each output pixel k, the input interval it covers:
// [centre + (k − out/2)/scale, centre + (k + 1 − out/2)/scale), clipped to the input [0, in).
// Entry (k, i) is the overlap of that interval with input pixel [i, i+1), times scale, so a fully
// covered output pixel's weights sum to 1 and the mean ink is kept. Row k is zero outside the band
// first[k]…last[k] (empty when last[k] < first[k]: the interval misses the input), about 1/scale
// entries: the products below use only the band.
struct AreaWeights {
  Matrix weights;
  std::vector<int> first, last;
};

AreaWeights area_weights(int out, int in, double centre, double scale) {
  AreaWeights result{Matrix::Zero(out, in), std::vector<int>(static_cast<std::size_t>(out)), std::vector<int>(static_cast<std::size_t>(out))};
  for (int k = 0; k < out; ++k) {
    const double u0 = centre + (k - out / 2.0) / scale, u1 = centre + (k + 1 - out / 2.0) / scale;
    const int first = std::max(0, static_cast<int>(std::floor(u0))), last = std::min(in - 1, static_cast<int>(std::ceil(u1)) - 1);
    result.first[static_cast<std::size_t>(k)] = first, result.last[static_cast<std::size_t>(k)] = last;
    for (int i = first; i <= last; ++i) {
      const double overlap = std::min<double>(u1, i + 1) - std::max<double>(u0, i);
      if (overlap > 0) result.weights(k, i) = static_cast<float>(overlap * scale);
    }
  }
  return result;
}

}  // namespace

Ink find_ink(const GrayImage& image) {
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height))
    throw Error("the image has no pixels");
  // The gate: a drawing keeps its one paper level; a photograph gets one per region.
  const float border = border_median(image);
  if (share_at_level(image, border) >= kFlatPaperShare || most_common_level_share(image) >= kFlatPaperShare)
    return drawing_ink(image, border);
  return photograph_ink(image, border);
}

Preprocessed fit_ink(const Ink& input) {
  const Matrix& ink = input.values;
  const int width = static_cast<int>(ink.cols()), height = static_cast<int>(ink.rows());
  Preprocessed result;
  result.inverted = input.inverted;

  // 3. The ink's bounding box and centre of mass, of the ink that counts: the rows that hold any
  // (their peaks, exact in float), then, row by row, each column's Σ v and Σ v·(y + ½) in double
  // (adding whole rows, which vectorises; Σ v·(x + ½) over the pixels is Σ (x + ½)·(Σ_y v)).
  const Matrix counted = (ink.array() > kInkThreshold).select(ink, 0.0f);
  const Eigen::VectorXf row_peak = counted.rowwise().maxCoeff();
  int top = 0, bottom = height - 1;
  while (top < height && !(row_peak(top) > 0)) ++top;
  if (top == height) throw Error("the image is empty: no ink brighter than 10% of full scale");
  while (!(row_peak(bottom) > 0)) --bottom;
  std::vector<double> column_mass(static_cast<std::size_t>(width)), column_moment_y(static_cast<std::size_t>(width));
  for (int y = top; y <= bottom; ++y) {
    const float* row = &counted(y, 0);
    const double centre_y = y + 0.5;  // pixel y covers [y, y+1)
    for (int x = 0; x < width; ++x) {
      column_mass[static_cast<std::size_t>(x)] += row[x];
      column_moment_y[static_cast<std::size_t>(x)] += centre_y * row[x];
    }
  }
  int left = 0, right = width - 1;
  while (column_mass[static_cast<std::size_t>(left)] == 0) ++left;
  while (column_mass[static_cast<std::size_t>(right)] == 0) --right;
  double mass = 0, moment_x = 0, moment_y = 0;
  for (int x = left; x <= right; ++x) {
    mass += column_mass[static_cast<std::size_t>(x)];
    moment_x += (x + 0.5) * column_mass[static_cast<std::size_t>(x)];
    moment_y += column_moment_y[static_cast<std::size_t>(x)];
  }

  // 4. One resampling: scale so the longer side of the box is 20, centre of mass to (14, 14):
  // field = rows · ink · colsᵀ, (28 × height)·(height × width)·(width × 28), each product taken
  // over the band of its weights alone (an output pixel covers about 1/scale input pixels a side:
  // the full products would multiply by zero 27 times in 28).
  const double scale = static_cast<double>(kDigitBox) / std::max(right - left + 1, bottom - top + 1);
  const AreaWeights rows = area_weights(kInputSide, height, moment_y / mass, scale);
  const AreaWeights cols = area_weights(kInputSide, width, moment_x / mass, scale);
  Matrix through_rows = Matrix::Zero(kInputSide, width);  // rows · ink, (28 × width)
  for (int k = 0; k < kInputSide; ++k) {
    const int first = rows.first[static_cast<std::size_t>(k)], n = rows.last[static_cast<std::size_t>(k)] - first + 1;
    if (n > 0) through_rows.row(k).noalias() = rows.weights.row(k).segment(first, n) * ink.middleRows(first, n);
  }
  Matrix field = Matrix::Zero(kInputSide, kInputSide);  // (rows · ink) · colsᵀ, (28 × 28)
  for (int k = 0; k < kInputSide; ++k) {
    const int first = cols.first[static_cast<std::size_t>(k)], n = cols.last[static_cast<std::size_t>(k)] - first + 1;
    if (n > 0) field.col(k).noalias() = through_rows.middleCols(first, n) * cols.weights.row(k).segment(first, n).transpose();
  }

  const float brightest = field.maxCoeff();
  if (brightest > 0) field *= 255.0f / brightest;
  result.pixels.assign(field.data(), field.data() + field.size());
  return result;
}

Preprocessed preprocess(const GrayImage& image) { return fit_ink(find_ink(image)); }

}  // namespace digits
