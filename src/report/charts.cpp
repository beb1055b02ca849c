#include "report/charts.hpp"

#include <algorithm>
#include <cmath>

#include "report/html.hpp"

namespace digits::report {

namespace {

// Tick marks at 1, 2 or 5 times a power of ten, about `wanted` of them over [low, high], and the
// range widened to whole ticks (Heckbert, "Nice numbers for graph labels", Graphics Gems, 1990).
struct Ticks {
  double low, high, step;
};

double nice_step(double span, int wanted) {
  const double rough = span / wanted;
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  const double fraction = rough / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

Ticks nice_ticks(double low, double high, int wanted) {
  if (high - low < 1e-12) {  // one value: give it some room
    const double room = std::max(std::abs(low) * 0.1, 1e-3);
    low -= room, high += room;
  }
  const double step = nice_step(high - low, wanted);
  return {std::floor(low / step + 1e-9) * step, std::ceil(high / step - 1e-9) * step, step};
}

// A tick's label with as many decimals as the step needs: 0.5 → "0.5", 2 → "2", 0.02 → "0.02".
std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  return format("%.*f", decimals, std::abs(value) < step * 1e-6 ? 0.0 : value);
}

// Geometry of a chart, in SVG user units.
constexpr double kWidth = 600, kHeight = 320;
constexpr double kLeft = 64, kRight = 18, kTop = 40, kBottom = 50;

}  // namespace

std::string line_chart_svg(const LineChart& chart) {
  const double scale = chart.percent ? 100.0 : 1.0;
  std::size_t epochs = 0;
  double low = INFINITY, high = -INFINITY;
  for (const Series& s : chart.series) {
    epochs = std::max(epochs, s.values.size());
    for (double v : s.values)
      if (v >= 0 && std::isfinite(v)) low = std::min(low, v * scale), high = std::max(high, v * scale);
  }
  if (!(low <= high)) low = 0, high = 1;  // nothing to draw
  if (chart.from_zero) low = std::min(low, 0.0);
  if (chart.percent) high = std::min(high, 100.0);
  Ticks y = nice_ticks(low, high, 5);
  if (chart.percent) y.high = std::min(y.high, 100.0), y.low = std::max(y.low, 0.0);
  // x: epoch 1 at the left edge and the last at the right; a single epoch sits in the middle.
  const double x_low = epochs >= 2 ? 1 : 0, x_high = epochs >= 2 ? static_cast<double>(epochs) : 2;
  const double x_step = std::max(1.0, nice_step(x_high - x_low, 8));

  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double epoch) { return kLeft + (epoch - x_low) / (x_high - x_low) * plot_w; };
  auto py = [&](double value) { return kTop + (y.high - value) / (y.high - y.low) * plot_h; };

  std::string svg = format(R"(<svg class="chart" data-chart="%s" viewBox="0 0 %g %g" role="img" aria-label="%s">)", escape_html(chart.id).c_str(),
                           kWidth, kHeight, escape_html(chart.title).c_str());
  svg += "<title>" + escape_html(chart.title) + "</title>";
  // Horizontal grid lines and the y labels.
  for (double v = y.low; v <= y.high + y.step * 1e-6; v += y.step) {
    svg += format(R"(<line class="grid" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>)", kLeft, kWidth - kRight, py(v), py(v));
    svg += format(R"(<text class="tick" x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>)", kLeft - 8, py(v),
                  tick_label(v, y.step).c_str());
  }
  // The x axis with its epochs.
  svg += format(R"(<line class="axis" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>)", kLeft, kWidth - kRight, kTop + plot_h, kTop + plot_h);
  // Ticks at the first epoch and at multiples of the step: 1, 20, 40, … rather than 1, 21, 41, …
  std::vector<double> x_ticks{1};
  for (double e = std::ceil(1.5 / x_step) * x_step; e <= static_cast<double>(epochs) + 1e-9; e += x_step) x_ticks.push_back(e);
  for (double e : x_ticks) {
    svg += format(R"(<line class="axis" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>)", px(e), px(e), kTop + plot_h, kTop + plot_h + 5);
    svg += format(R"(<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%g</text>)", px(e), kTop + plot_h + 19, e);
  }
  svg += format(R"(<text class="axis-label" x="%.1f" y="%.1f" text-anchor="middle">epoch (one pass over the training images)</text>)",
                kLeft + plot_w / 2, kHeight - 8);
  svg += format(R"~(<text class="axis-label" transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>)~", kTop + plot_h / 2,
                escape_html(chart.y_label).c_str());
  // The series, then the legend above the plot.
  double legend_x = kLeft;
  for (const Series& s : chart.series) {
    std::string points, dots, last;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      if (!(s.values[i] >= 0 && std::isfinite(s.values[i]))) continue;  // not measured, or a diverged loss
      const double epoch = static_cast<double>(i + 1), value = s.values[i] * scale;
      points += format("%s%.1f,%.1f", points.empty() ? "" : " ", px(epoch), py(value));
      last = chart.percent ? format("%.2f%%", value) : format("%.4f", value);
      dots += format(R"(<circle cx="%.1f" cy="%.1f" r="%g" fill="%s"><title>epoch %zu, %s: %s</title></circle>)", px(epoch), py(value),
                     epochs > 40 ? 1.8 : 3.0, s.colour.c_str(), i + 1, escape_html(s.name).c_str(), last.c_str());
    }
    svg += format(R"(<polyline class="line" data-series="%s" fill="none" stroke="%s" stroke-width="2.2" points="%s"/>)", escape_html(s.name).c_str(),
                  s.colour.c_str(), points.c_str());
    if (s.values.size() <= 200) svg += dots;  // beyond that the dots would only blur the line
    svg += format(R"(<line x1="%.1f" x2="%.1f" y1="16" y2="16" stroke="%s" stroke-width="3"/>)", legend_x, legend_x + 22, s.colour.c_str());
    const std::string label = s.name + (last.empty() ? "" : ", last " + last);
    svg += format(R"(<text class="legend" x="%.1f" y="16" dominant-baseline="middle">%s</text>)", legend_x + 28, escape_html(label).c_str());
    legend_x += 44 + 7.0 * static_cast<double>(label.size());
  }
  return svg + "</svg>";
}

std::string confusion_svg(const Confusion& confusion, int classes) {
  const auto n = static_cast<std::size_t>(std::clamp(classes, 1, kDigitClasses + 1));
  auto name = [](std::size_t label) { return label == kNotADigit ? std::string("none") : std::to_string(label); };
  constexpr double kCell = 46, kLeftSide = 74, kTopSide = 64, kRightSide = 84;
  const double side = static_cast<double>(n) * kCell;
  std::size_t most_mistakes = 0;
  std::array<std::size_t, kDigitClasses + 1> row_total{};
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t p = 0; p < n; ++p) {
      row_total[t] += confusion[t][p];
      if (t != p) most_mistakes = std::max(most_mistakes, confusion[t][p]);
    }

  std::string svg = format(R"(<svg class="confusion" viewBox="0 0 %g %g" role="img" aria-label="Confusion matrix: rows are the true digits, columns the network's answers">)",
                           kLeftSide + side + kRightSide, kTopSide + side + 8);
  svg += format(R"(<text class="axis-label" x="%.1f" y="16" text-anchor="middle">the network's answer (predicted digit) →</text>)", kLeftSide + side / 2);
  svg += format(R"~(<text class="axis-label" transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">← the true digit</text>)~", kTopSide + side / 2);
  svg += format(R"(<text class="axis-label" x="%.1f" y="%.1f" text-anchor="middle">read right</text>)", kLeftSide + side + kRightSide / 2, kTopSide - 12);
  for (std::size_t d = 0; d < n; ++d) {
    const double at = static_cast<double>(d) * kCell + kCell / 2;
    svg += format(R"(<text class="digit-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>)", kLeftSide + at, kTopSide - 12, name(d).c_str());
    svg += format(R"(<text class="digit-label" x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="middle">%s</text>)", kLeftSide - 16,
                  kTopSide + at, name(d).c_str());
  }
  for (std::size_t t = 0; t < n; ++t) {
    for (std::size_t p = 0; p < n; ++p) {
      const std::size_t count = confusion[t][p];
      // Green for right answers, red for mistakes; the depth of colour says how many.
      double depth = 0;
      std::string fill = "#f4f5f7";
      if (t == p && row_total[t] > 0) {
        depth = 0.25 + 0.75 * static_cast<double>(count) / static_cast<double>(row_total[t]);
        fill = format("rgb(%ld,%ld,%ld)", std::lround(244 - depth * (244 - 26)), std::lround(245 - depth * (245 - 136)), std::lround(247 - depth * (247 - 74)));
      } else if (count > 0) {
        depth = 0.12 + 0.88 * std::sqrt(static_cast<double>(count) / static_cast<double>(most_mistakes));
        fill = format("rgb(%ld,%ld,%ld)", std::lround(253 - depth * (253 - 200)), std::lround(236 - depth * (236 - 30)), std::lround(234 - depth * (234 - 40)));
      }
      const double x = kLeftSide + static_cast<double>(p) * kCell, y = kTopSide + static_cast<double>(t) * kCell;
      const std::string tip = t == p ? format("%zu of the %zu images of a %s read right", count, row_total[t], name(t).c_str())
                                     : format("%zu images of a %s read as %s", count, name(t).c_str(), name(p).c_str());
      svg += format(R"(<rect class="cell" data-true="%zu" data-predicted="%zu" data-count="%zu" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>)",
                    t, p, count, x + 1, y + 1, kCell - 2, kCell - 2, fill.c_str(), tip.c_str());
      svg += format(R"(<text class="count%s" x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="middle">%zu</text>)",
                    count == 0 ? " zero" : depth > 0.55 ? " on-dark" : "", x + kCell / 2, y + kCell / 2, count);
    }
    const double share = row_total[t] ? 100.0 * static_cast<double>(confusion[t][t]) / static_cast<double>(row_total[t]) : 0.0;
    svg += format(R"(<text class="share" x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="middle">%s</text>)", kLeftSide + side + kRightSide / 2,
                  kTopSide + static_cast<double>(t) * kCell + kCell / 2, row_total[t] ? format("%.1f%%", share).c_str() : "–");
  }
  return svg + "</svg>";
}

}  // namespace digits::report
