#include "report/report.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <numeric>

#include "digits/error.hpp"
#include "digits/file_util.hpp"
#include "report/charts.hpp"
#include "report/html.hpp"
#include "report/pictures.hpp"

namespace digits::report {

namespace fs = std::filesystem;

std::vector<Misread> most_confident_mistakes(const Network& network, const Dataset& data, std::size_t count) {
  if (data.features() != network.inputs())
    throw Error(data.name + ": images of " + std::to_string(data.features()) + " pixels, but the network takes " + std::to_string(network.inputs()));
  std::vector<Misread> mistakes;
  constexpr std::size_t kChunk = 1000;  // images per predict_proba call: bounded memory
  Matrix X;
  std::vector<std::uint8_t> labels;
  std::vector<std::size_t> indices;
  for (std::size_t begin = 0; begin < data.size(); begin += kChunk) {
    indices.resize(std::min(kChunk, data.size() - begin));
    std::iota(indices.begin(), indices.end(), begin);
    gather_batch(data, indices, 1.0f, X, labels);  // raw pixels: predict_proba applies the model's scale
    const Matrix P = network.predict_proba(X);
    for (Eigen::Index i = 0; i < P.rows(); ++i) {
      Misread m;
      m.index = begin + static_cast<std::size_t>(i);
      m.label = labels[static_cast<std::size_t>(i)];
      m.confidence = P.row(i).maxCoeff(&m.predicted);
      if (m.predicted == m.label) continue;
      m.runner_up_probability = -1;
      for (int c = 0; c < P.cols(); ++c)
        if (c != m.predicted && P(i, c) > m.runner_up_probability) m.runner_up = c, m.runner_up_probability = P(i, c);
      mistakes.push_back(m);
    }
  }
  const std::size_t kept = std::min(count, mistakes.size());
  std::partial_sort(mistakes.begin(), mistakes.begin() + static_cast<std::ptrdiff_t>(kept), mistakes.end(),
                    [](const Misread& a, const Misread& b) { return a.confidence != b.confidence ? a.confidence > b.confidence : a.index < b.index; });
  mistakes.resize(kept);
  return mistakes;
}

namespace {

// 10000 → "10,000"
std::string with_commas(std::size_t n) {
  std::string digits = std::to_string(n);
  for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) digits.insert(static_cast<std::size_t>(at), ",");
  return digits;
}

std::string percent(double fraction) { return format("%.2f%%", 100 * fraction); }

std::string lookup(const Metadata& metadata, const std::string& key) {
  const auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

// "0.020000" → "0.02": the metadata's numbers as a person would write them. Other text is kept.
std::string tidy(const std::string& value) {
  char* end = nullptr;
  const double number = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') return value;
  return format("%g", number);
}

std::string architecture(const Network& network) {
  if (!network.dense_only()) return escape_html(shape_text(network.input_shape()) + " → " + network.architecture());
  std::string text;
  for (int size : network.sizes()) text += (text.empty() ? "" : " → ") + std::to_string(size);
  return text;
}

// How many of the parameters are batch norm's γ and β (two per channel), when it has any.
std::string batch_norm_note(const Network& network) {
  std::size_t count = 0;
  for (const Layer& layer : network.layers)
    if (const auto* bn = std::get_if<BatchNormLayer>(&layer)) count += 2 * static_cast<std::size_t>(bn->channels());
  return count ? ", " + with_commas(count) + " of them batch norm's scales γ and shifts β" : "";
}

// The training recipe in one line, from what the model file records; empty if it records none.
std::string recipe_line(const Metadata& m) {
  std::vector<std::string> parts;
  if (auto preset = lookup(m, "training.preset"); !preset.empty()) parts.push_back("preset <b>" + escape_html(preset) + "</b>");
  if (auto optimizer = lookup(m, "training.optimizer"); !optimizer.empty()) {
    std::string text = escape_html(optimizer);
    if ((optimizer == "momentum" || optimizer == "nesterov") && !lookup(m, "training.momentum").empty())
      text += " (momentum " + escape_html(tidy(lookup(m, "training.momentum"))) + ")";
    if (auto lr = lookup(m, "training.learning_rate"); !lr.empty()) text += ", learning rate " + escape_html(tidy(lr));
    parts.push_back(text);
  }
  if (auto schedule = lookup(m, "training.schedule"); !schedule.empty() && schedule != "constant") parts.push_back(escape_html(schedule) + " schedule");
  if (auto batch = lookup(m, "training.batch"); !batch.empty()) parts.push_back("batches of " + escape_html(batch));
  if (auto epochs = lookup(m, "training.epochs"); !epochs.empty()) parts.push_back(escape_html(epochs) + " epochs");
  if (auto init = lookup(m, "training.init"); !init.empty()) parts.push_back(escape_html(init) + " initialisation");
  if (auto decay = tidy(lookup(m, "training.weight_decay")); !decay.empty() && decay != "0") parts.push_back("weight decay " + escape_html(decay));
  if (auto dropout = tidy(lookup(m, "training.dropout")); !dropout.empty() && dropout != "0") parts.push_back("dropout " + escape_html(dropout));
  if (auto augment = lookup(m, "training.augment"); !augment.empty() && augment != "none") parts.push_back("augmented: " + escape_html(augment));
  if (auto seed = lookup(m, "training.seed"); !seed.empty()) parts.push_back("seed " + escape_html(seed));
  std::string line;
  for (const std::string& part : parts) line += (line.empty() ? "" : " · ") + part;
  return line;
}

constexpr const char* kStyle = R"(
:root { --ink: #1d2330; --muted: #5d6678; --line: #dde1e8; --paper: #ffffff; --back: #f3f4f7; --accent: #2f6fdb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--back); color: var(--ink);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, Cantarell, "Noto Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 20px 40px; }
header h1 { margin: 0; font-size: 1.9rem; letter-spacing: -0.01em; }
.lead { margin: 4px 0 20px; color: var(--muted); font-size: 1.05rem; }
.summary { display: grid; grid-template-columns: minmax(200px, 260px) 1fr; gap: 20px; align-items: stretch; }
.score { background: var(--paper); border: 1px solid var(--line); border-radius: 14px; padding: 18px 20px; }
.score .value { display: block; font-size: 2.8rem; font-weight: 800; line-height: 1.1; color: #1a7f4b; font-variant-numeric: tabular-nums; }
.score .label { color: var(--muted); }
dl.facts { margin: 0; background: var(--paper); border: 1px solid var(--line); border-radius: 14px; padding: 14px 20px;
  display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
nav { margin: 18px 0 0; color: var(--muted); font-size: 0.95rem; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 14px; padding: 20px 24px 24px; margin-top: 22px; }
section h2 { margin: 0 0 6px; font-size: 1.35rem; }
section > p { max-width: 78ch; margin: 6px 0 12px; }
.note { color: var(--muted); font-size: 0.93rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px 28px; margin-top: 10px; }
.charts figure { margin: 0; }
.charts figcaption { font-size: 0.93rem; color: var(--muted); margin-top: 4px; }
.charts figcaption b { color: var(--ink); }
svg { display: block; width: 100%; height: auto; font-family: inherit; }
svg .grid { stroke: #e6e9ee; }
svg .axis { stroke: #8b93a3; }
svg .tick { fill: #5d6678; font-size: 12px; }
svg .axis-label { fill: #39404d; font-size: 13px; }
svg .legend { fill: #2b3140; font-size: 13px; }
.confusion-layout { display: grid; grid-template-columns: minmax(0, 620px) minmax(240px, 1fr); gap: 24px; align-items: start; }
svg.confusion .digit-label { fill: var(--ink); font-size: 16px; font-weight: 700; }
svg.confusion .count { fill: #2b3140; font-size: 13px; font-variant-numeric: tabular-nums; }
svg.confusion .count.on-dark { fill: #ffffff; font-weight: 600; }
svg.confusion .count.zero { fill: #c3c8d1; }
svg.confusion .share { fill: var(--ink); font-size: 13px; font-variant-numeric: tabular-nums; }
.key { display: flex; gap: 16px; flex-wrap: wrap; font-size: 0.9rem; color: var(--muted); margin: 8px 0; }
.key span::before { content: ""; display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px; margin-right: 6px; background: var(--swatch); }
ol.top-mistakes { margin: 6px 0 0; padding-left: 1.3em; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 14px; margin-top: 12px; }
.mistake { margin: 0; text-align: center; font-size: 0.88rem; line-height: 1.35; }
.mistake img { display: block; width: 98px; height: 98px; margin: 0 auto 6px; image-rendering: pixelated; border-radius: 6px; }
.mistake .answer { font-size: 1.02rem; }
.mistake .answer b { color: #c0392b; font-size: 1.2rem; }
.mistake .sure { color: var(--muted); }
.mistake .truth b { color: #1a7f4b; font-size: 1.05rem; }
.mistake .where { color: var(--muted); font-size: 0.8rem; overflow-wrap: anywhere; }
.units { display: grid; grid-template-columns: repeat(auto-fill, minmax(66px, 1fr)); gap: 6px; margin-top: 12px; }
.unit { margin: 0; }
.unit img { display: block; width: 100%; height: auto; aspect-ratio: 1; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 3px; }
.unit figcaption { font-size: 0.68rem; color: var(--muted); text-align: center; }
.scale { display: flex; align-items: center; gap: 10px; font-size: 0.9rem; color: var(--muted); margin: 8px 0; flex-wrap: wrap; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px; margin-right: 4px; }
.scale .bar { width: 220px; height: 14px; border-radius: 3px; border: 1px solid var(--line); }
table.recipe { border-collapse: collapse; margin-top: 8px; font-size: 0.95rem; }
table.recipe td { padding: 4px 16px 4px 0; border-bottom: 1px solid #eef0f4; vertical-align: top; overflow-wrap: anywhere; }
table.recipe td:first-child { color: var(--muted); white-space: nowrap; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; background: #f0f2f6; padding: 1px 5px; border-radius: 4px; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 26px; }
@media (max-width: 760px) {
  .summary, .confusion-layout { grid-template-columns: minmax(0, 1fr); }
  .charts { grid-template-columns: minmax(0, 1fr); }
}
)";

std::string header(const ReportContents& c) {
  const Network& network = *c.network;
  const Evaluation& e = c.evaluation;
  std::string html = "<header>";
  html += c.trained ? "<h1>Training report</h1>" : "<h1>Evaluation report</h1>";
  html += "<p class=\"lead\">A neural network that reads handwritten digits: what it learned, how well it reads, and where it goes wrong.</p>";
  const bool from_folder = !c.image_names.empty();
  html += "<div class=\"summary\"><div class=\"score\"><span class=\"value\" id=\"accuracy\">" + percent(e.accuracy()) + "</span><span class=\"label\">of the " +
          with_commas(e.total) + (from_folder ? " images" : " test images") + " read right (" + with_commas(e.correct) + "); " +
          with_commas(e.total - e.correct) + " mistakes." + (from_folder ? "" : " The network never trained on these images.") + "</span></div>";
  html += "<dl class=\"facts\">";
  html += "<dt>Network</dt><dd>" + architecture(network) + (network.dense_only() ? " neurons: " : ": ") + std::to_string(network.inputs()) + " pixels in, " +
          std::to_string(network.layers.size() - 1) + " hidden layer" + (network.layers.size() == 2 ? "" : "s") + " (" +
          escape_html(activation_name(network.hidden_activation())) + "), " + std::to_string(network.classes()) + " digits out (softmax); " +
          with_commas(network.parameter_count()) + " weights and biases" + batch_norm_note(network) + "</dd>";
  html += "<dt>Model</dt><dd>" + escape_html(c.model) + "</dd>";
  const std::string recipe = recipe_line(c.metadata);
  html += "<dt>Recipe</dt><dd>" + (recipe.empty() ? std::string("not recorded in the model file") : recipe) + "</dd>";
  html += "<dt>Test images</dt><dd>" + escape_html(c.dataset) + ", " + with_commas(e.total) + " images</dd>";
  if (c.trained) {
    html += "<dt>Trained on</dt><dd>the training images of the same folder</dd>";
  } else if (auto recorded = lookup(c.metadata, "accuracy.test"); !recorded.empty()) {
    html += "<dt>Recorded</dt><dd>" + escape_html(recorded) + "% on MNIST's test set when it was made" +
            (lookup(c.metadata, "accuracy.train").empty() ? "" : ", " + escape_html(lookup(c.metadata, "accuracy.train")) + "% on its training set") + "</dd>";
  }
  html += "<dt>Report made</dt><dd>" + escape_html(c.created) + "</dd>";
  html += "</dl></div>";
  html += "<nav>On this page: <a href=\"#training\">";
  html += c.trained ? "Learning, epoch by epoch" : "How it was trained";
  html += "</a><a href=\"#confusion\">Which digits it confuses</a><a href=\"#mistakes\">Its surest mistakes</a><a href=\"#weights\">What the first layer looks for</a></nav>";
  return html + "</header>";
}

std::string training_section(const ReportContents& c) {
  std::string html = "<section id=\"training\">";
  if (!c.trained) {
    html += "<h2>How this model was trained</h2>";
    html += "<p><code>digits evaluate</code> measures a finished model, so there is no epoch-by-epoch history to chart here "
            "(<code>digits train --report</code> draws it). This is what the model file records about how it was made:</p>";
    html += "<table class=\"recipe\">";
    int rows = 0;
    for (const auto& [key, value] : c.metadata) {
      if (!key.starts_with("training.") && !key.starts_with("improved.") && !key.starts_with("accuracy.") && key != "created")
        continue;
      html += "<tr><td>" + escape_html(key) + "</td><td>" + escape_html(tidy(value)) + "</td></tr>";
      ++rows;
    }
    if (rows == 0) html += "<tr><td>nothing</td><td>the file records no recipe</td></tr>";
    return html + "</table></section>";
  }

  html += "<h2>Learning, epoch by epoch</h2>";
  if (c.epochs.empty()) return html + "<p>No epochs were run, so there is nothing to chart.</p></section>";
  double seconds = 0;
  for (const EpochReport& r : c.epochs) seconds += r.seconds;
  html += format("<p>Training showed the network every training image once per <b>epoch</b>, a few at a time (a mini-batch), and after each "
                 "batch nudged every weight a little in the direction that makes its answers less wrong. %zu epoch%s took %.1f s of computing.</p>",
                 c.epochs.size(), c.epochs.size() == 1 ? "" : "s", seconds);
  std::vector<double> loss, train, validation, test;
  for (const EpochReport& r : c.epochs) {
    loss.push_back(r.loss);
    train.push_back(r.train_accuracy);
    validation.push_back(r.validation_accuracy);
    test.push_back(r.test_accuracy);
  }
  LineChart loss_chart{"loss", "Training loss per epoch", "loss (cross-entropy)", {{"training loss", "#d9480f", loss}}, false, true};
  LineChart accuracy_chart{"accuracy", "Accuracy per epoch", "images read right (%)", {}, true};
  auto measured = [](const std::vector<double>& v) { return std::any_of(v.begin(), v.end(), [](double x) { return x >= 0; }); };
  if (measured(train)) accuracy_chart.series.push_back({"training images", "#1f6fd1", train});
  if (measured(validation)) accuracy_chart.series.push_back({"validation images", "#8e44ad", validation});
  if (measured(test)) accuracy_chart.series.push_back({"test images", "#1a9850", test});

  html += "<div class=\"charts\"><figure>" + line_chart_svg(loss_chart) +
          "<figcaption><b>How wrong the network is, on average.</b> The loss is −log of the probability the network gave the right digit, "
          "averaged over the epoch's training images. A blind guess among ten digits scores 2.30 (−log 0.1); a network sure and right "
          "about every image scores 0. Training is the work of pushing this line down.</figcaption></figure>";
  html += "<figure>" + line_chart_svg(accuracy_chart) +
          "<figcaption><b>How many images it reads right</b>, measured after each epoch";
  std::vector<std::string> sets;
  if (measured(train)) sets.push_back("the training images it learns from");
  if (measured(validation)) sets.push_back("validation images set aside from them to choose the best epoch");
  if (measured(test)) sets.push_back("the test images it never learns from");
  for (std::size_t i = 0; i < sets.size(); ++i) html += (i == 0 ? ": on " : i + 1 == sets.size() ? " and on " : ", on ") + sets[i];
  if (!measured(test)) html += " (the test images, which it never learns from, were read once, at the end, for the final figure)";
  html += ". A widening gap between the images it learns from and those it does not means the network is memorising its "
          "training images rather than learning what digits look like (overfitting). The axis is zoomed to the values.</figcaption></figure></div>";
  return html + "</section>";
}

std::string confusion_section(const ReportContents& c) {
  const auto& confusion = c.evaluation.confusion;
  std::string html = "<section id=\"confusion\"><h2>Which digits it confuses</h2>";
  html += "<p>The <b>confusion matrix</b>: every test image lands in one cell, in the <b>row of its true digit</b> and the <b>column of the "
          "network's answer</b>. Right answers fall on the green diagonal; every other cell is one kind of mistake. For example, the cell in row 4, "
          "column 9 counts the fours the network read as nines. Hover over a cell for its sentence.</p>";
  html += "<div class=\"confusion-layout\"><div>" + confusion_svg(confusion, c.evaluation.classes) + "</div><div>";
  html += "<div class=\"key\"><span style=\"--swatch:#1a884a\">read right</span><span style=\"--swatch:#d3403a\">a mistake: deeper red, more often</span></div>";
  struct Pair {
    std::size_t count, truth, answer;
  };
  std::vector<Pair> pairs;
  const auto classes = static_cast<std::size_t>(c.evaluation.classes);
  for (std::size_t t = 0; t < classes; ++t)
    for (std::size_t p = 0; p < classes; ++p)
      if (t != p && confusion[t][p] > 0) pairs.push_back({confusion[t][p], t, p});
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.count != b.count ? a.count > b.count : a.truth * 10 + a.answer < b.truth * 10 + b.answer; });
  if (pairs.empty()) {
    html += "<p>No mistakes at all on these images.</p>";
  } else {
    html += "<p><b>Its most frequent mistakes</b></p><ol class=\"top-mistakes\">";
    for (std::size_t i = 0; i < std::min<std::size_t>(5, pairs.size()); ++i)
      html += format("<li>%s read as %s: %zu time%s</li>", pairs[i].truth == kNotADigit ? "not a digit" : ("a " + std::to_string(pairs[i].truth)).c_str(),
                     pairs[i].answer == kNotADigit ? "not a digit" : std::to_string(pairs[i].answer).c_str(), pairs[i].count, pairs[i].count == 1 ? "" : "s");
    html += "</ol>";
  }
  html += "<p class=\"note\">The column on the right is the share of each digit read right. Mistakes are rarely spread evenly: they "
          "gather between digits whose strokes overlap, such as 4 and 9, 3 and 5, or 7 and 2.</p>";
  return html + "</div></div></section>";
}

std::string mistakes_section(const ReportContents& c) {
  const std::size_t total = c.evaluation.total - c.evaluation.correct;
  std::string html = "<section id=\"mistakes\"><h2>The mistakes it was surest of</h2>";
  if (c.mistakes.empty()) return html + "<p>The network read every one of these images right, so there is no mistake to show.</p></section>";
  const std::string which = c.mistakes.size() == total ? format("These are all %zu of its mistakes, the ones where the network was <b>most confident "
                                                                 "in its wrong answer</b> first.", total)
                                                        : format("Of its %s mistakes, these %zu are the ones where the network was <b>most confident "
                                                                 "in a wrong answer</b>.", with_commas(total).c_str(), c.mistakes.size());
  html += "<p>" + which + " Each picture is the 28&times;28 image the network saw, enlarged. Some are digits a person would misread too, or "
          "whose label looks wrong; the others show shapes the network has not learned.</p>";
  html += "<div class=\"gallery\">";
  for (const Misread& m : c.mistakes) {
    const std::string where = m.index < c.image_names.size() ? fs::path(c.image_names[m.index]).filename().string() : "test image #" + std::to_string(m.index);
    html += format("<figure class=\"mistake\" data-true=\"%d\" data-predicted=\"%d\" data-confidence=\"%.4f\">", m.label, m.predicted,
                   static_cast<double>(m.confidence));
    html += "<img src=\"" + gray_png_data_url(c.images->image(m.index), c.images->cols, c.images->rows) + "\" width=\"" +
            std::to_string(c.images->cols) + "\" height=\"" + std::to_string(c.images->rows) +
            format("\" alt=\"a %d that the network read as %d\">", m.label, m.predicted);
    const double sure = 100.0 * m.confidence;
    html += format("<figcaption><div class=\"answer\">read as <b>%d</b></div><div class=\"sure\">%s sure</div><div class=\"truth\">truly a <b>%d</b></div>",
                   m.predicted, sure >= 99.95 ? "&gt;99.9%" : format("%.1f%%", sure).c_str(), m.label);
    const double second = 100.0 * m.runner_up_probability;
    html += format("<div class=\"where\">2nd choice %d (%s)<br>", m.runner_up, second < 0.05 ? "&lt;0.1%" : format("%.1f%%", second).c_str()) +
            escape_html(where) + "</div></figcaption></figure>";
  }
  return html + "</div></section>";
}

// The legend of the red-white-blue pictures of weights.
std::string weights_scale() {
  return "<div class=\"scale\"><span>pushes the sum down</span><span class=\"bar\" style=\"background:linear-gradient(to right," + diverging_colour(-1) + "," +
         diverging_colour(-0.5f) + "," + diverging_colour(0) + "," + diverging_colour(0.5f) + "," + diverging_colour(1) +
         ")\"></span><span>pushes it up</span><span class=\"note\">(each square scaled to its own largest weight)</span></div>";
}

// A first layer that is a convolution: its kernels, each k×k weights (its input channels side by
// side), and the maps they make of the first evaluated image.
std::string kernels_html(const ReportContents& c, const Conv2dLayer& conv) {
  constexpr int kMaxShown = 512;
  const int count = static_cast<int>(conv.W.cols()), shown = std::min(count, kMaxShown);
  const int k = conv.kernel(), channels = conv.input_shape().channels;
  std::string html = format(
      "<p>The first layer is a <b>convolution of %d kernels</b>, each %d&times;%d weights. A kernel slides over the image: at every position it adds up "
      "the %d pixels under it, each times its own weight, so its sum is high where that patch of the image looks like the kernel. Below, each square is "
      "one kernel's weights. <b>Red</b>: ink there raises the sum; <b>blue</b>: ink there lowers it; <b>white</b>: the kernel ignores that pixel. "
      "A red stripe beside a blue one finds an edge at that angle; a red blob, a stroke. Before training every kernel is random noise.</p>",
      count, k, k, k * k * channels);
  html += weights_scale();
  if (shown < count) html += format("<p class=\"note\">The first %d of the %d kernels.</p>", shown, count);
  html += "<div class=\"units kernels\">";
  for (int o = 0; o < shown; ++o) {
    // Column o of W (C·k·k × C′, stored column by column) is kernel o, [c][ky][kx]: each channel's
    // k×k block is drawn beside the one before.
    std::vector<float> picture(static_cast<std::size_t>(k * k * channels));
    float largest = 0;
    for (int ch = 0; ch < channels; ++ch)
      for (int y = 0; y < k; ++y)
        for (int x = 0; x < k; ++x) {
          const float w = conv.W((ch * k + y) * k + x, o);
          picture[static_cast<std::size_t>(y * k * channels + ch * k + x)] = w;
          largest = std::max(largest, std::abs(w));
        }
    html += format("<figure class=\"unit kernel\"><img src=\"%s\" width=\"%d\" height=\"%d\" alt=\"weights of kernel %d\" title=\"kernel %d: largest weight %.3g\">"
                   "<figcaption>%d</figcaption></figure>",
                   diverging_png_data_url(picture, k * channels, k, largest).c_str(), k * channels, k, o + 1, o + 1, static_cast<double>(largest), o + 1);
  }
  html += "</div>";

  // What they find in one image: the first layer's maps for the first evaluated one.
  if (c.images->size() == 0 || c.images->features() != c.network->inputs()) return html;
  const auto image = c.images->image(0);
  Matrix pixels(1, c.network->inputs());
  for (Eigen::Index i = 0; i < pixels.cols(); ++i) pixels(0, i) = image[static_cast<std::size_t>(i)];
  // (1 × C′·H′·W′), after the activation: a batch norm's output when one follows (the conv's own
  // sums are then not activated), so the maps read as those of a conv without one.
  const std::vector<Matrix> outputs = c.network->activations(pixels);
  const bool normalised = c.network->layers.size() > 1 && std::holds_alternative<BatchNormLayer>(c.network->layers[1]);
  const Matrix& maps = outputs[normalised ? 1 : 0];
  const Shape shape = conv.output_shape();
  const int side = shape.height * shape.width;
  html += format("<p>What the %d kernels find in the first image%s, a %d: one map each, %d&times;%d, white where its pattern is and black where "
                 "the sum was below zero (ReLU passes on 0)%s. Each map is scaled to its own largest value.</p>",
                 shown, c.image_names.empty() ? "" : (" (" + escape_html(c.image_names.front()) + ")").c_str(), c.images->labels.front(), shape.height, shape.width,
                 normalised ? ", after batch normalization has shifted and scaled each map's sums" : "");
  std::vector<std::uint8_t> grey(static_cast<std::size_t>(side));
  html += format("<div class=\"units maps\"><figure class=\"unit input\"><img src=\"%s\" width=\"28\" height=\"28\" alt=\"the image\"><figcaption>image</figcaption></figure>",
                 gray_png_data_url(image, c.images->cols, c.images->rows).c_str());
  for (int o = 0; o < shown; ++o) {
    const float* map = maps.data() + static_cast<std::ptrdiff_t>(o) * side;
    const float high = *std::max_element(map, map + side), low = std::min(0.0f, *std::min_element(map, map + side));
    for (int i = 0; i < side; ++i) grey[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(high > low ? std::lround(255 * (map[i] - low) / (high - low)) : 0);
    html += format("<figure class=\"unit map\"><img src=\"%s\" width=\"%d\" height=\"%d\" alt=\"map of kernel %d\" title=\"kernel %d: largest value %.3g\">"
                   "<figcaption>%d</figcaption></figure>",
                   gray_png_data_url(grey, shape.width, shape.height).c_str(), shape.width, shape.height, o + 1, o + 1, static_cast<double>(high), o + 1);
  }
  return html + "</div>";
}

std::string weights_section(const ReportContents& c) {
  constexpr int kMaxShown = 512;
  std::string html = "<section id=\"weights\"><h2>What the first layer looks for</h2>";
  if (const auto* conv = std::get_if<Conv2dLayer>(&c.network->layers.front())) return html + kernels_html(c, *conv) + "</section>";
  if (!std::holds_alternative<DenseLayer>(c.network->layers.front()))
    return html + "<p>This network does not start with a layer that has weights, so there are none to draw.</p></section>";
  const DenseLayer& first = std::get<DenseLayer>(c.network->layers.front());
  if (first.in() != 28 * 28) return html + "<p>This network's input is not a 28&times;28 image, so its weights cannot be drawn as one.</p></section>";
  const int units = first.out(), shown = std::min(units, kMaxShown);
  const bool hidden = c.network->layers.size() > 1;
  html += format("<p>The first %s has <b>%d neurons</b>. Each adds up all 784 pixels of the image, every pixel times its own weight. Below, each "
                 "square is one neuron's 784 weights laid out on the 28&times;28 grid, where their pixels are. <b>Red</b>: ink on that pixel raises "
                 "the neuron's sum; <b>blue</b>: ink there lowers it; <b>white</b>: the neuron ignores that pixel. So the red strokes are what a "
                 "neuron looks for, and the blue where it wants no ink. Before training every square is random noise; the strokes and blobs are what training "
                 "put there. Many neurons look for a piece of a digit rather than a whole one: the next layers combine them.</p>",
                 hidden ? "hidden layer" : "layer", units);
  html += weights_scale();
  // Pixels that are blank in every image (MNIST's outer border) never feed the sum, so training
  // never moves their weights off their random start: drawn gray, they do not pass for a pattern.
  // Only with enough images to know; a small folder would blank out real strokes.
  std::vector<std::uint8_t> inked;
  if (c.images->size() >= 1000 && c.images->features() == first.in()) {
    inked.assign(static_cast<std::size_t>(first.in()), 0);
    for (std::size_t n = 0; n < c.images->size(); ++n) {
      const auto image = c.images->image(n);
      for (std::size_t i = 0; i < image.size(); ++i) inked[i] |= image[i] > 0;
    }
    const auto blank = std::count(inked.begin(), inked.end(), 0);
    html += format("<p class=\"note\"><span class=\"swatch\" style=\"background:%s\"></span> gray: the %ld pixels with no ink in any of the %s test images. "
                   "Their weights never affect the answer, so training never changed them from their random start.</p>",
                   kNotShownColour, static_cast<long>(blank), with_commas(c.images->size()).c_str());
  }
  if (shown < units) html += format("<p class=\"note\">The first %d of the %d neurons.</p>", shown, units);
  html += "<div class=\"units\">";
  for (int j = 0; j < shown; ++j) {
    // Column j of W (in × out, stored column by column) is neuron j's 784 weights, pixel by pixel.
    const std::span<const float> weights(first.W.col(j).data(), static_cast<std::size_t>(first.in()));
    float largest = 0;
    for (std::size_t i = 0; i < weights.size(); ++i)
      if (inked.empty() || inked[i]) largest = std::max(largest, std::abs(weights[i]));
    html += format("<figure class=\"unit\"><img src=\"%s\" width=\"28\" height=\"28\" alt=\"weights of neuron %d\" title=\"neuron %d: largest weight %.3g\">"
                   "<figcaption>%d</figcaption></figure>",
                   diverging_png_data_url(weights, 28, 28, largest, inked).c_str(), j + 1, j + 1, static_cast<double>(largest), j + 1);
  }
  return html + "</div></section>";
}

}  // namespace

std::string render_report(const ReportContents& c) {
  if (!c.network || !c.images) throw Error("the report needs a network and the images it was evaluated on");
  const std::string title = std::string(c.trained ? "Training" : "Evaluation") + " report: " + architecture(*c.network) + ", " + percent(c.evaluation.accuracy());
  std::string html = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<meta name=\"generator\" content=\"digits\">\n<title>digits · " + escape_html(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  html += header(c) + "\n" + training_section(c) + "\n" + confusion_section(c) + "\n" + mistakes_section(c) + "\n" + weights_section(c) + "\n";
  html += "<footer>Made by <code>digits " + std::string(c.trained ? "train" : "evaluate") +
          " --report</code>. This page is one file: its charts are drawn in SVG and its pictures are embedded, so it opens anywhere, offline. "
          "How the network works, with its math: docs/how-it-works.md in the digits project.</footer>\n";
  return html + "</main>\n</body>\n</html>\n";
}

void write_report(const fs::path& path, const ReportContents& contents) { write_file_atomically(path, render_report(contents)); }

void check_report_path(const fs::path& path) {
  if (path.empty() || !path.has_filename()) throw Error("--report '" + path.string() + "': needs a file name, such as report.html");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a folder; --report needs a file name, such as " + (path / "report.html").string());
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    throw Error(path.string() + ": exists and is not a regular file (a device, a pipe…); --report needs a file name, such as report.html");
  const fs::path folder = path.has_parent_path() ? path.parent_path() : ".";
  if (!fs::exists(folder, ec)) throw Error(path.string() + ": cannot write the report: the folder " + folder.string() + " does not exist");
  if (!fs::is_directory(folder, ec)) throw Error(path.string() + ": cannot write the report: " + folder.string() + " is not a folder");
  // Do what write_file_atomically will do, create a file beside the report, and take it back.
  std::string probe = (folder / ("." + path.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) throw Error(path.string() + ": cannot write the report in " + folder.string() + ": " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace digits::report
