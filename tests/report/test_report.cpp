// The HTML report (src/report, docs/report.md): its pieces on their own, then `digits train
// --report` and `digits evaluate --report` run as processes, the page they write checked by its
// structure: the charts' points, the confusion matrix's cells and totals, the galleries' pictures
// (real 28×28 PNGs), nothing fetched from elsewhere, and clear failures for paths it cannot write.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "../support/strokes.hpp"
#include "digits/base64.hpp"
#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "digits/random.hpp"
#include "report/charts.hpp"
#include "report/html.hpp"
#include "report/pictures.hpp"

extern char** environ;

using namespace digits;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "expected to contain: " << (part)

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every match of `pattern` in `text`, as its capture groups (group 0 is the whole match).
std::vector<std::smatch> all_matches(const std::string& text, const std::regex& pattern) {
  return {std::sregex_iterator(text.begin(), text.end(), pattern), std::sregex_iterator()};
}

// The text of the first element that starts with `opening` up to its `closing` tag.
std::string element(const std::string& html, const std::string& opening, const std::string& closing) {
  const std::size_t begin = html.find(opening);
  if (begin == std::string::npos) return {};
  const std::size_t end = html.find(closing, begin);
  return html.substr(begin, end == std::string::npos ? std::string::npos : end + closing.size() - begin);
}

// A data URL's picture: checks it is base64 PNG and returns its width and height from the IHDR
// chunk, after decoding it fully with the library (so a broken PNG fails here).
std::pair<int, int> png_size(const std::string& data_url) {
  const std::string prefix = "data:image/png;base64,";
  if (!data_url.starts_with(prefix)) throw std::runtime_error("not a PNG data URL: " + data_url.substr(0, 40));
  const std::string png = decode_base64(data_url.substr(prefix.size()));
  const GrayImage image = decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "picture");
  return {image.width, image.height};
}

// ---- the pieces ----

TEST(Html, EscapesEveryCharacterThatCouldOpenMarkup) {
  EXPECT_EQ(report::escape_html(R"(<img src="x" onerror='a&b'>)"), "&lt;img src=&quot;x&quot; onerror=&#39;a&amp;b&#39;&gt;");
  EXPECT_EQ(report::escape_html("7_plain.png"), "7_plain.png");
}

TEST(Pictures, PngDataUrlsDecodeToTheirSize) {
  std::vector<std::uint8_t> gray(28 * 28, 0);
  gray[14 * 28 + 14] = 255;
  EXPECT_EQ(png_size(report::gray_png_data_url(gray, 28, 28)), std::make_pair(28, 28));
  std::vector<float> weights(28 * 28);
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i % 7) - 3.0f;
  EXPECT_EQ(png_size(report::diverging_png_data_url(weights, 28, 28, 3.0f)), std::make_pair(28, 28));
  EXPECT_THROW(report::gray_png_data_url(gray, 27, 28), Error);
}

TEST(Pictures, DivergingMapIsBlueWhiteRed) {
  EXPECT_EQ(report::diverging_colour(-1), "#2166ac");
  EXPECT_EQ(report::diverging_colour(0), "#f7f7f7");
  EXPECT_EQ(report::diverging_colour(1), "#b2182b");
  EXPECT_EQ(report::diverging_colour(7), "#b2182b");  // beyond the limit: the end colour
}

TEST(Charts, LineChartHasAPointPerMeasuredEpoch) {
  report::LineChart chart{"accuracy", "Accuracy", "%", {{"train", "#000", {0.5, 0.7, 0.9}}, {"validation", "#111", {-1, 0.6, INFINITY}}}, true};
  const std::string svg = report::line_chart_svg(chart);
  const std::regex polyline(R"re(<polyline class="line" data-series="([^"]*)"[^>]*points="([^"]*)")re");
  const auto lines = all_matches(svg, polyline);
  ASSERT_EQ(lines.size(), 2u);
  auto count_points = [](const std::string& points) { return std::count(points.begin(), points.end(), ',') ; };
  EXPECT_EQ(lines[0][1], "train");
  EXPECT_EQ(count_points(lines[0][2]), 3);
  EXPECT_EQ(lines[1][1], "validation");
  EXPECT_EQ(count_points(lines[1][2]), 1) << "a missing value (−1) or a diverged one (∞) is no point";
  EXPECT_FALSE(std::regex_search(svg, std::regex(R"(\b(nan|inf)\b)"))) << "a coordinate that is not a number";
  EXPECT_CONTAINS(svg, "train, last 90.00%");
}

TEST(Charts, ConfusionHasAHundredCellsHoldingTheCounts) {
  digits::Confusion confusion{};
  for (std::size_t t = 0; t < 11; ++t)
    for (std::size_t p = 0; p < 11; ++p) confusion[t][p] = t == p ? 100 + t : (t * 3 + p) % 4;
  const std::string svg = report::confusion_svg(confusion);
  const auto cells = all_matches(svg, std::regex(R"re(<rect class="cell" data-true="(\d+)" data-predicted="(\d+)" data-count="(\d+)")re"));
  ASSERT_EQ(cells.size(), 100u);
  for (const auto& cell : cells) EXPECT_EQ(std::stoul(cell[3]), confusion[std::stoul(cell[1])][std::stoul(cell[2])]);
  EXPECT_EQ(svg.find(">none<"), std::string::npos);

  // A model with "not a digit" has an eleventh row and column, labelled none.
  const std::string eleven = report::confusion_svg(confusion, 11);
  const auto all = all_matches(eleven, std::regex(R"re(<rect class="cell" data-true="(\d+)" data-predicted="(\d+)" data-count="(\d+)")re"));
  ASSERT_EQ(all.size(), 121u);
  for (const auto& cell : all) EXPECT_EQ(std::stoul(cell[3]), confusion[std::stoul(cell[1])][std::stoul(cell[2])]);
  EXPECT_CONTAINS(eleven, ">none<");
}

// ---- the command ----

class Report : public ::testing::Test {
 protected:
  static constexpr int kHidden = 24;

  void SetUp() override {
    dir = fs::temp_directory_path() / ("digits-report-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
    for (const auto& entry : fs::recursive_directory_iterator(dir))
      if (entry.is_directory()) fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir);
  }

  struct Outcome {
    int status = -1;
    std::string out, err;
  };

  // Runs `digits args…` in the test's directory with its output captured in files.
  Outcome digits(const std::vector<std::string>& args) const {
    const fs::path out = dir / ".stdout", err = dir / ".stderr";
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&files, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addchdir_np(&files, dir.c_str());
    std::vector<std::string> all = {DIGITS_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : all) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    Outcome outcome;
    const int spawned = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (spawned != 0) {
      ADD_FAILURE() << "cannot run " << DIGITS_BINARY;
      return outcome;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    outcome.out = read_bytes(out);
    outcome.err = read_bytes(err);
    return outcome;
  }

  // An MNIST-layout folder (dir/data) of a learnable but imperfect problem: each digit lights its
  // own 6×6 block of the 28×28 field, with noise, and one label in eight is wrong on purpose, so
  // a short training run leaves mistakes to show.
  void write_blocks_data() const {
    auto make = [](std::size_t count, std::uint64_t seed) {
      Dataset data;
      data.name = "blocks";
      Rng rng(seed);
      for (std::size_t n = 0; n < count; ++n) {
        const int label = static_cast<int>(rng.below(10));
        const int bx = 2 + 5 * (label % 5), by = 4 + 12 * (label / 5);
        for (int y = 0; y < 28; ++y)
          for (int x = 0; x < 28; ++x) {
            const bool lit = x >= bx && x < bx + 6 && y >= by && y < by + 6;
            const bool border = x < 2 || y < 2;  // always blank, like MNIST's edges
            data.pixels.push_back(border ? 0 : static_cast<std::uint8_t>(std::min(255.0f, (lit ? 200.0f : 0.0f) + rng.uniform() * 90.0f)));
          }
        data.labels.push_back(static_cast<std::uint8_t>(rng.below(8) == 0 ? rng.below(10) : static_cast<std::uint64_t>(label)));
      }
      return data;
    };
    fs::create_directories(dir / "data");
    write_idx(make(2000, 1), dir / "data/train-images-idx3-ubyte", dir / "data/train-labels-idx1-ubyte");
    write_idx(make(1200, 2), dir / "data/t10k-images-idx3-ubyte", dir / "data/t10k-labels-idx1-ubyte");
  }

  // Trains for two epochs with a report; returns the page.
  std::string train_with_report(const std::string& report = "report.html") const {
    write_blocks_data();
    const Outcome run = digits({"train", "--preset", "seed", "--layers", "784," + std::to_string(kHidden) + ",10", "--epochs", "2", "--data", "data",
                                "--threads", "1", "--out", "model.safetensors", "--report", report});
    EXPECT_EQ(run.status, 0) << run.err;
    EXPECT_CONTAINS(run.out, "report: " + report);
    return read_bytes(dir / report);
  }

  // `digits evaluate --json` of the same model on the same data: the numbers the page must show.
  json evaluation_of(const std::string& model, const std::vector<std::string>& source) const {
    std::vector<std::string> args = {"evaluate", "--json", "--model", model};
    args.insert(args.end(), source.begin(), source.end());
    const Outcome run = digits(args);
    EXPECT_EQ(run.status, 0) << run.err;
    return json::parse(run.out);
  }

  fs::path dir;
};

// What every report must be: one page, nothing fetched from anywhere, every picture a real PNG.
void expect_self_contained(const std::string& html) {
  ASSERT_TRUE(html.starts_with("<!doctype html>"));
  EXPECT_TRUE(html.ends_with("</html>\n"));
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  // Every src and href stays on the page: a data URL or a #fragment.
  for (const auto& m : all_matches(html, std::regex(R"re((src|href)="([^"]*)")re"))) {
    const std::string target = m[2];
    EXPECT_TRUE(target.starts_with("data:image/png;base64,") || target.starts_with("#")) << m[1] << "=\"" << target.substr(0, 60) << "\"";
  }
}

// The 100 cells of the confusion matrix, [true][predicted], checked against the JSON's matrix.
void expect_confusion_matches(const std::string& html, const json& evaluation) {
  const auto cells = all_matches(html, std::regex(R"re(<rect class="cell" data-true="(\d)" data-predicted="(\d)" data-count="(\d+)")re"));
  ASSERT_EQ(cells.size(), 100u);
  std::size_t total = 0, diagonal = 0;
  for (const auto& cell : cells) {
    const std::size_t t = std::stoul(cell[1]), p = std::stoul(cell[2]), count = std::stoul(cell[3]);
    EXPECT_EQ(count, evaluation.at("confusion").at(t).at(p).get<std::size_t>()) << "cell " << t << "," << p;
    total += count;
    diagonal += t == p ? count : 0;
  }
  EXPECT_EQ(total, evaluation.at("total").get<std::size_t>());
  EXPECT_EQ(diagonal, evaluation.at("correct").get<std::size_t>());
}

// The gallery of mistakes: returns how many; each a 28×28 PNG, wrong, and the surest first.
std::size_t check_mistakes(const std::string& html) {
  const auto figures = all_matches(html, std::regex(R"re(<figure class="mistake" data-true="(\d)" data-predicted="(\d)" data-confidence="([0-9.]+)"><img src="([^"]+)")re"));
  double previous = 2;
  for (const auto& figure : figures) {
    EXPECT_NE(figure[1], figure[2]) << "a right answer in the gallery of mistakes";
    const double confidence = std::stod(figure[3]);
    EXPECT_LE(confidence, previous) << "not the surest first";
    previous = confidence;
    EXPECT_EQ(png_size(figure[4]), std::make_pair(28, 28));
  }
  return figures.size();
}

std::size_t check_units(const std::string& html) {
  const auto units = all_matches(html, std::regex(R"re(<figure class="unit"><img src="([^"]+)")re"));
  for (const auto& unit : units) EXPECT_EQ(png_size(unit[1]), std::make_pair(28, 28));
  return units.size();
}

TEST_F(Report, TrainWritesTheChartsMatrixAndGalleries) {
  const std::string html = train_with_report();
  expect_self_contained(html);
  EXPECT_CONTAINS(html, "<h1>Training report</h1>");
  EXPECT_CONTAINS(html, "784 → " + std::to_string(kHidden) + " → 10");
  EXPECT_CONTAINS(html, "preset <b>seed</b>");

  // Two charts, a point per epoch on every line.
  const std::string loss = element(html, "<svg class=\"chart\" data-chart=\"loss\"", "</svg>");
  const std::string accuracy = element(html, "<svg class=\"chart\" data-chart=\"accuracy\"", "</svg>");
  ASSERT_FALSE(loss.empty());
  ASSERT_FALSE(accuracy.empty());
  std::map<std::string, long> points;
  for (const std::string& chart : {loss, accuracy})
    for (const auto& line : all_matches(chart, std::regex(R"re(<polyline class="line" data-series="([^"]*)"[^>]*points="([^"]*)")re")))
      points[line[1]] = std::count(line[2].first, line[2].second, ',');
  EXPECT_EQ(points, (std::map<std::string, long>{{"training loss", 2}, {"training images", 2}, {"test images", 2}}));

  // The matrix and the accuracy are the trained model's on the test set.
  const json evaluation = evaluation_of("model.safetensors", {"--data", "data"});
  expect_confusion_matches(html, evaluation);
  char headline[32];
  std::snprintf(headline, sizeof headline, "%.2f%%", 100 * evaluation.at("accuracy").get<double>());
  EXPECT_CONTAINS(html, std::string("id=\"accuracy\">") + headline);

  const std::size_t wrong = evaluation.at("total").get<std::size_t>() - evaluation.at("correct").get<std::size_t>();
  ASSERT_GT(wrong, 0u) << "the data has wrong labels on purpose: there must be mistakes to show";
  EXPECT_EQ(check_mistakes(html), std::min<std::size_t>(24, wrong));
  EXPECT_EQ(check_units(html), static_cast<std::size_t>(kHidden));
  EXPECT_CONTAINS(html, "the 108 pixels with no ink");  // the blocks' blank border, two rows and two columns: 28² − 26²

  // Written atomically: nothing of the temporary file is left beside it.
  for (const auto& entry : fs::directory_iterator(dir)) EXPECT_FALSE(entry.path().filename().string().starts_with(".report.html")) << entry.path();
}

TEST_F(Report, AConvNetworkShowsItsFirstKernelsAndTheMapsTheyMake) {
  write_blocks_data();
  const Outcome run = digits({"train", "--preset", "cnn-fast", "--layers", "conv5x5x6,pool2,10", "--augment", "none", "--epochs", "1", "--data", "data",
                              "--threads", "1", "--out", "model.safetensors", "--report", "report.html"});
  ASSERT_EQ(run.status, 0) << run.err;
  const std::string html = read_bytes(dir / "report.html");
  expect_self_contained(html);
  EXPECT_CONTAINS(html, "convolution of 6 kernels</b>, each 5&times;5 weights");
  EXPECT_EQ(check_units(html), 0u) << "no 28×28 neuron weights: the first layer is no dense layer";

  // Each kernel is drawn from the saved weights, red-white-blue, scaled to its largest weight.
  const Model model = load_model(dir / "model.safetensors");
  const auto& W = std::get<Conv2dLayer>(model.network.layers.front()).W;
  const auto kernels = all_matches(html, std::regex(R"re(<figure class="unit kernel"><img src="([^"]+)")re"));
  ASSERT_EQ(kernels.size(), 6u);
  for (std::size_t o = 0; o < kernels.size(); ++o) {
    const std::vector<float> weights(W.col(static_cast<Eigen::Index>(o)).data(), W.col(static_cast<Eigen::Index>(o)).data() + 25);
    const float largest = W.col(static_cast<Eigen::Index>(o)).cwiseAbs().maxCoeff();
    EXPECT_EQ(kernels[o][1], report::diverging_png_data_url(weights, 5, 5, largest)) << "kernel " << o + 1;
  }
  // And what they make of the first test image: the image, then one 24×24 map per kernel, not all alike.
  const std::string input = element(html, "<figure class=\"unit input\">", "</figure>");
  ASSERT_FALSE(input.empty());
  const auto maps = all_matches(html, std::regex(R"re(<figure class="unit map"><img src="([^"]+)")re"));
  ASSERT_EQ(maps.size(), 6u);
  for (const auto& map : maps) EXPECT_EQ(png_size(map[1]), std::make_pair(24, 24));
  EXPECT_NE(maps[0][1], maps[1][1]);
}

TEST_F(Report, ABatchNormNetworkSaysSoAndShowsTheNormalisedMaps) {
  write_blocks_data();
  const Outcome run = digits({"train", "--preset", "cnn-fast", "--layers", "conv5x5x6,bn,pool2,10", "--augment", "none", "--epochs", "1", "--data", "data",
                              "--threads", "1", "--out", "model.safetensors", "--report", "report.html"});
  ASSERT_EQ(run.status, 0) << run.err;
  const std::string html = read_bytes(dir / "report.html");
  EXPECT_CONTAINS(html, "1×28×28 → conv5x5x6,bn,pool2,flatten,fc10");
  EXPECT_CONTAINS(html, "12 of them batch norm's scales γ and shifts β");  // 6 channels, 2 each
  EXPECT_CONTAINS(html, "after batch normalization has shifted and scaled each map's sums");
  const auto maps = all_matches(html, std::regex(R"re(<figure class="unit map"><img src="([^"]+)")re"));
  ASSERT_EQ(maps.size(), 6u);
  // The conv gives its sums to bn unactivated; the maps drawn are bn's, after ReLU.
  const Model model = load_model(dir / "model.safetensors");
  EXPECT_EQ(std::get<Conv2dLayer>(model.network.layers.front()).activation, Activation::identity);
}

TEST_F(Report, EvaluateShowsTheRecipeInsteadOfCharts) {
  train_with_report();
  const Outcome run = digits({"evaluate", "--model", "model.safetensors", "--data", "data", "--report", "evaluation.html"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_CONTAINS(run.out, "report: evaluation.html");
  const std::string html = read_bytes(dir / "evaluation.html");
  expect_self_contained(html);
  EXPECT_CONTAINS(html, "<h1>Evaluation report</h1>");
  EXPECT_EQ(html.find("data-chart="), std::string::npos) << "evaluate has no epochs to chart";
  EXPECT_CONTAINS(html, "How this model was trained");
  EXPECT_CONTAINS(html, "<td>training.epochs</td><td>2</td>");
  const json evaluation = evaluation_of("model.safetensors", {"--data", "data"});
  expect_confusion_matches(html, evaluation);
  EXPECT_EQ(check_mistakes(html), std::min<std::size_t>(24, evaluation.at("total").get<std::size_t>() - evaluation.at("correct").get<std::size_t>()));
  EXPECT_EQ(check_units(html), static_cast<std::size_t>(kHidden));
}

TEST_F(Report, EvaluateImagesShowsTheFilesThroughPreprocessingWithNamesEscaped) {
  namespace strokes = digits::testing;
  fs::create_directories(dir / "folder");
  std::size_t count = 0;
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    for (int variant = 0; variant < 2; ++variant) {
      strokes::Placement p;
      p.left += 40 * variant;
      p.dark_on_light = variant == 1;
      write_png(dir / "folder" / (std::to_string(digit) + "_drawn" + std::to_string(variant) + ".png"), strokes::draw(strokes::digit_strokes(digit), p));
      ++count;
    }
  }
  // A 0 labelled as 1: a certain mistake, so the gallery shows this file, whose name has markup in
  // it that must come out as text.
  write_png(dir / "folder/1_<i>&'x.png", strokes::draw(strokes::digit_strokes(0), {}));
  ++count;
  const Outcome run = digits({"evaluate", "--images", "folder", "--report", "folder.html"});
  ASSERT_EQ(run.status, 0) << run.err;
  const std::string html = read_bytes(dir / "folder.html");
  expect_self_contained(html);
  EXPECT_EQ(html.find("<i>&'x"), std::string::npos);
  EXPECT_CONTAINS(html, "&lt;i&gt;&amp;&#39;x");
  const json evaluation = evaluation_of("", {"--images", "folder"});
  ASSERT_EQ(evaluation.at("total").get<std::size_t>(), count);
  expect_confusion_matches(html, evaluation);
  const std::size_t wrong = count - evaluation.at("correct").get<std::size_t>();
  ASSERT_GE(wrong, 1u);
  EXPECT_EQ(check_mistakes(html), wrong);
  EXPECT_EQ(html.find("with no ink in any"), std::string::npos) << "too few images to tell which pixels are always blank";
}

TEST_F(Report, TrainRefusesAReportPathItCannotWriteBeforeTraining) {
  write_blocks_data();
  fs::create_directories(dir / "a_folder");
  const std::string unwritable = ::geteuid() == 0 ? "/proc/digits-report.html" : "locked/report.html";
  if (::geteuid() != 0) fs::create_directories(dir / "locked"), fs::permissions(dir / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a_folder", "a_folder: is a folder; --report needs a file name, such as a_folder/report.html"},
      {"no_such_folder/report.html", "the folder no_such_folder does not exist"},
      {"data/train-labels-idx1-ubyte/report.html", "data/train-labels-idx1-ubyte is not a folder"},
      {unwritable, "cannot write the report in"},
      {"", "needs a file name"},
      {"pipe", "pipe: exists and is not a regular file"},  // as /dev/null would be: never replaced
  };
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0600), 0);
  for (const auto& [path, message] : cases) {
    const Outcome run = digits({"train", "--preset", "seed", "--layers", "784,8,10", "--epochs", "1", "--data", "data", "--out", "model.safetensors", "--report", path});
    EXPECT_EQ(run.status, 1) << path;
    EXPECT_CONTAINS(run.err, message);
    EXPECT_FALSE(fs::exists(dir / "model.safetensors")) << path << ": trained before finding the report could not be written";
  }
  EXPECT_TRUE(fs::is_fifo(dir / "pipe"));
}

TEST_F(Report, EvaluateRefusesAReportPathItCannotWrite) {
  fs::create_directories(dir / "a_folder");
  const Outcome run = digits({"evaluate", "--images", "nowhere", "--report", "a_folder"});
  EXPECT_EQ(run.status, 1);
  EXPECT_CONTAINS(run.err, "a_folder: is a folder");
}

}  // namespace
