// frontier: what test-time augmentation and small ensembles add to trained models on MNIST
// (issue 20, item 2; docs/frontier.md). Training-time techniques (batch norm, label smoothing,
// weight averaging…) are options of `digits train`; these two act on models already trained, so
// they are measured here.
//
//   bench_frontier [--data DIR] MODEL…
//
// For each model, and for the ensemble of all of them (the mean of their probabilities):
// accuracy on the 5,000 validation digits that training sets aside (kValidationSplitSeed) and on
// the 10,000 test digits, plain and with test-time augmentation (the mean of the probabilities
// of the image and of its four one-pixel shifts). A Markdown table on stdout.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/model_file.hpp"
#include "digits/trainer.hpp"

using namespace digits;
namespace fs = std::filesystem;

namespace {

// The images of `data` as rows, raw 0–255, moved by (dx, dy) pixels with black coming in.
Matrix shifted_pixels(const Dataset& data, int dx, int dy) {
  Matrix X = Matrix::Zero(static_cast<Eigen::Index>(data.size()), data.features());
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto image = data.image(i);
    for (int y = 0; y < data.rows; ++y) {
      for (int x = 0; x < data.cols; ++x) {
        const int from_x = x - dx, from_y = y - dy;
        if (from_x < 0 || from_y < 0 || from_x >= data.cols || from_y >= data.rows) continue;
        X(static_cast<Eigen::Index>(i), y * data.cols + x) = image[static_cast<std::size_t>(from_y * data.cols + from_x)];
      }
    }
  }
  return X;
}

// Probabilities of every image of `data`: plain, or averaged over the image and its four
// one-pixel shifts (test-time augmentation).
Matrix probabilities(const Network& network, const Dataset& data, bool shifted_views) {
  if (!shifted_views) return network.predict_proba(shifted_pixels(data, 0, 0));
  Matrix sum = network.predict_proba(shifted_pixels(data, 0, 0));
  for (const auto& [dx, dy] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) sum += network.predict_proba(shifted_pixels(data, dx, dy));
  return sum / 5.0f;
}

double accuracy(const Matrix& P, const Dataset& data) {
  std::size_t right = 0;
  for (Eigen::Index i = 0; i < P.rows(); ++i) {
    Eigen::Index best = 0;
    P.row(i).maxCoeff(&best);
    right += best == data.labels[static_cast<std::size_t>(i)];
  }
  return 100.0 * static_cast<double>(right) / static_cast<double>(data.size());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Test-time augmentation and ensembles of trained models, on MNIST validation and test"};
  std::string data_dir;
  std::vector<std::string> model_paths;
  app.add_option("--data", data_dir, "MNIST-layout directory (default: $DIGITS_DATA, else data/mnist)");
  app.add_option("models", model_paths, "Model files (safetensors)")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    if (data_dir.empty()) data_dir = std::getenv("DIGITS_DATA") ? std::getenv("DIGITS_DATA") : "data/mnist";
    const TrainTestData data = load_train_test(data_dir);
    const Dataset validation = split_validation(data.train, 5000, kValidationSplitSeed).first;
    std::vector<Model> models;
    for (const std::string& path : model_paths) {
      models.push_back(load_model(path));
      if (models.back().network.classes() != models.front().network.classes())
        throw Error(path + ": " + std::to_string(models.back().network.classes()) + " classes, but " + model_paths.front() + " has " +
                    std::to_string(models.front().network.classes()) + ": an ensemble averages the same classes");
    }

    std::printf("| model | validation | validation, TTA | test | test, TTA |\n|---|---:|---:|---:|---:|\n");
    // Sums of every model's probabilities, for the ensemble: [set][plain or TTA].
    std::vector<std::vector<Matrix>> sums(2, std::vector<Matrix>(2));
    for (std::size_t m = 0; m < models.size(); ++m) {
      double figures[2][2];
      for (int set = 0; set < 2; ++set) {
        const Dataset& images = set == 0 ? validation : data.test;
        for (int tta = 0; tta < 2; ++tta) {
          const Matrix P = probabilities(models[m].network, images, tta == 1);
          figures[set][tta] = accuracy(P, images);
          if (m == 0) sums[set][tta] = P;
          else sums[set][tta] += P;
        }
      }
      std::printf("| %s | %.2f%% | %.2f%% | %.2f%% | %.2f%% |\n", fs::path(model_paths[m]).filename().c_str(), figures[0][0], figures[0][1],
                  figures[1][0], figures[1][1]);
    }
    if (models.size() > 1)
      std::printf("| ensemble of the %zu | %.2f%% | %.2f%% | %.2f%% | %.2f%% |\n", models.size(), accuracy(sums[0][0], validation),
                  accuracy(sums[0][1], validation), accuracy(sums[1][0], data.test), accuracy(sums[1][1], data.test));
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_frontier: %s\n", e.what());
    return 1;
  }
  return 0;
}
