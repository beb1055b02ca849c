// `digits train --report FILE.html` and `digits evaluate --report FILE.html`: one self-contained
// HTML page that shows a newcomer what the network learned and how it does. Charts are inline SVG,
// pictures are inline PNG data URLs, the style is inline CSS: the file needs nothing else to open,
// no network, no script. docs/report.md describes what it shows.
//
// This is presentation, so it lives here rather than in the library (src/digits), which it only
// reads from.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/model_file.hpp"
#include "digits/network.hpp"
#include "digits/trainer.hpp"

namespace digits::report {

// One image the network read wrongly, and how sure it was.
struct Misread {
  std::size_t index = 0;  // in the dataset
  int label = 0;          // the true digit
  int predicted = 0;      // the network's answer
  float confidence = 0;   // the probability it gave its answer
  int runner_up = 0;      // its second choice, and the probability of that
  float runner_up_probability = 0;
};

// Reads every image of `data` and returns up to `count` of the wrong answers, the most confident
// first: the mistakes the network was surest of, which say the most about what it has not learned.
std::vector<Misread> most_confident_mistakes(const Network& network, const Dataset& data, std::size_t count);

struct ReportContents {
  bool trained = false;                   // from `digits train` (epoch charts) or `digits evaluate`
  std::string model;                      // "built-in model", or the model file's path
  const Network* network = nullptr;
  Metadata metadata;                      // the model file's: recipe, dataset, recorded accuracy
  std::vector<EpochReport> epochs;        // one per epoch trained; empty for evaluate
  std::string dataset;                    // what was evaluated, for people: "MNIST test set (data/mnist)"
  const Dataset* images = nullptr;        // the evaluated images, as the network saw them
  std::vector<std::string> image_names;   // the file behind each image, when they came from a folder
  Evaluation evaluation;                  // of `network` on `images`
  std::vector<Misread> mistakes;          // most_confident_mistakes(network, images, …)
  std::string created;                    // when, "2026-11-25T07:10:20Z"
};

// The page, as text.
std::string render_report(const ReportContents& contents);

// Writes the page atomically (a reader never sees half of it).
void write_report(const std::filesystem::path& path, const ReportContents& contents);

// Throws Error saying what is wrong if the report could not be written at `path`: a directory, a
// folder that does not exist, or one this process cannot create files in. Called before training
// or evaluating, so a typo costs nothing.
void check_report_path(const std::filesystem::path& path);

}  // namespace digits::report
