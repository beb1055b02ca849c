// The report's charts, drawn as inline SVG text: a line chart per training metric and the
// confusion matrix as a heat map. No script and no library: the browser draws them as they are.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "digits/classes.hpp"
#include "digits/trainer.hpp"

namespace digits::report {

struct Series {
  std::string name;            // "test accuracy": shown in the legend and as data-series
  std::string colour;          // "#1f77b4"
  std::vector<double> values;  // values[i] belongs to epoch i + 1; a negative or non-finite value is no point
};

struct LineChart {
  std::string id;       // data-chart="loss"
  std::string title;    // read by screen readers
  std::string y_label;  // "loss", "accuracy (%)"
  std::vector<Series> series;
  bool percent = false;    // values are fractions shown as percentages
  bool from_zero = false;  // the y axis starts at 0 rather than just below the smallest value
};

// Epochs along x, the values along y on "nice" ticks (1, 2 or 5 times a power of ten). Each series
// is a <polyline class="line" data-series="…"> through one point per epoch it has a value for,
// with a <circle> per point whose tooltip gives the exact number; the legend gives the last value.
std::string line_chart_svg(const LineChart& chart);

// confusion[true label][predicted]: a 10×10 grid of <rect class="cell" data-true data-predicted
// data-count>, the count written in each. Right answers (the diagonal) in green, deeper the larger
// the share of that digit read right; mistakes in red, deeper the more there are (square-root
// scale, so a handful still shows beside hundreds). The per-digit accuracy runs down the right.
// With classes 11, the last row and column are "not a digit", labelled "none".
std::string confusion_svg(const Confusion& confusion, int classes = kDigitClasses);

}  // namespace digits::report
