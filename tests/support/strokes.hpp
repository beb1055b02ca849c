// Synthetic handwriting for tests: digits drawn as pen strokes (polylines with a round pen) on a
// canvas of any size, anywhere on it, thin or thick, either polarity. Tests use it to make
// drawings that are not MNIST without committing any image.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "digits/image.hpp"

namespace digits::testing {

struct Point {
  double x, y;  // in a unit box: (0, 0) top left, (1, 1) bottom right
};
using Stroke = std::vector<Point>;

// Simple stroke shapes for a few digits, in the unit box.
inline std::vector<Stroke> digit_strokes(int digit) {
  constexpr double pi = 3.14159265358979;
  auto arc = [&](double cx, double cy, double rx, double ry, double from, double to, int steps = 40) {
    Stroke s;
    for (int i = 0; i <= steps; ++i) {
      const double t = from + (to - from) * i / steps;
      s.push_back({cx + rx * std::cos(t), cy + ry * std::sin(t)});
    }
    return s;
  };
  switch (digit) {
    case 0: return {arc(0.5, 0.5, 0.3, 0.45, 0, 2 * pi)};
    case 1: return {{{0.38, 0.2}, {0.55, 0.05}, {0.55, 0.95}}};
    case 2: {
      Stroke s = arc(0.5, 0.3, 0.3, 0.25, pi, 2.2 * pi);
      s.push_back({0.2, 0.95});
      s.push_back({0.85, 0.95});
      return {s};
    }
    case 3: return {arc(0.5, 0.28, 0.3, 0.23, -0.8 * pi, 0.5 * pi), arc(0.5, 0.73, 0.32, 0.23, -0.5 * pi, 0.8 * pi)};
    case 4: return {{{0.65, 0.95}, {0.65, 0.05}, {0.15, 0.7}, {0.9, 0.7}}};
    case 7: return {{{0.15, 0.08}, {0.85, 0.08}, {0.4, 0.95}}};
    default: return {};
  }
}

struct Placement {
  int canvas_width = 280, canvas_height = 280;
  double left = 60, top = 40, width = 160, height = 200;  // where the unit box lands, in pixels
  double pen = 18;                                        // pen diameter in pixels
  bool dark_on_light = false;                             // paper white, ink black
};

// Draws strokes with an anti-aliased round pen.
inline GrayImage draw(const std::vector<Stroke>& strokes, const Placement& p) {
  GrayImage image{p.canvas_width, p.canvas_height, std::vector<float>(static_cast<std::size_t>(p.canvas_width) * static_cast<std::size_t>(p.canvas_height), 0.0f)};
  const double radius = p.pen / 2;
  for (const Stroke& stroke : strokes) {
    for (std::size_t k = 0; k + 1 < stroke.size(); ++k) {
      const double ax = p.left + stroke[k].x * p.width, ay = p.top + stroke[k].y * p.height;
      const double bx = p.left + stroke[k + 1].x * p.width, by = p.top + stroke[k + 1].y * p.height;
      const int x0 = std::max(0, static_cast<int>(std::min(ax, bx) - radius - 1)), x1 = std::min(p.canvas_width - 1, static_cast<int>(std::max(ax, bx) + radius + 1));
      const int y0 = std::max(0, static_cast<int>(std::min(ay, by) - radius - 1)), y1 = std::min(p.canvas_height - 1, static_cast<int>(std::max(ay, by) + radius + 1));
      const double dx = bx - ax, dy = by - ay, length2 = std::max(dx * dx + dy * dy, 1e-12);
      for (int y = y0; y <= y1; ++y) {
        for (int x = x0; x <= x1; ++x) {
          const double px = x + 0.5, py = y + 0.5;
          const double t = std::clamp(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0);
          const double distance = std::hypot(px - (ax + t * dx), py - (ay + t * dy));
          const float coverage = static_cast<float>(std::clamp(radius + 0.5 - distance, 0.0, 1.0));
          float& v = image.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(p.canvas_width) + static_cast<std::size_t>(x)];
          v = std::max(v, 255.0f * coverage);
        }
      }
    }
  }
  if (p.dark_on_light) {
    for (float& v : image.pixels) v = 255.0f - v;
  }
  return image;
}

}  // namespace digits::testing
