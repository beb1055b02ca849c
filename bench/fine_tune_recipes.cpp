// fine_tune_recipes: the measurements behind the fine-tune's recipe (issue 20, item 6;
// docs/feedback.md, "Choosing the recipe").
//
//   bench_fine_tune_recipes styles  [--model FILE] [--data DIR]
//       how the model reads each style of tests/support/styles.hpp: 200 drawings each
//   bench_fine_tune_recipes recipes [--model FILE] [--data DIR] [--styles N,N,…] [--recipes NAME,…]
//       for each recipe and each style: 20 corrections learned in one guarded round; the style's
//       200 held-out drawings read right before and after, the guard's validation before and
//       after, the verdict, and the round's CPU seconds (this process's, getrusage); --poison:
//       also 300 MNIST 1s labelled 7, which the guard must refuse
//
// MNIST from --data, $DIGITS_DATA or data/mnist. The model from --model, else the built-in one.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "../tests/support/styles.hpp"
#include "digits/builtin_model.hpp"
#include "digits/error.hpp"
#include "digits/classes.hpp"
#include "digits/fine_tune.hpp"
#include "digits/image_folder.hpp"
#include "digits/model_file.hpp"
#include "digits/trainer.hpp"

using namespace digits;
namespace fs = std::filesystem;

namespace {

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + 1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// The images of `data` as the rows of a matrix, raw 0–255, for predict and predict_proba.
Matrix pixels_of(const Dataset& data) {
  Matrix X(static_cast<Eigen::Index>(data.size()), data.features());
  for (std::size_t i = 0; i < data.size(); ++i)
    for (int j = 0; j < data.features(); ++j) X(static_cast<Eigen::Index>(i), j) = data.image(i)[static_cast<std::size_t>(j)];
  return X;
}

// What the network answers most often on `data`, and how often.
std::pair<int, double> most_common_answer(const Network& network, const Dataset& data) {
  std::map<int, int> counts;
  for (int answer : network.predict(pixels_of(data))) ++counts[answer];
  const auto most = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return {most->first, static_cast<double>(most->second) / static_cast<double>(data.size())};
}

struct Recipe {
  std::string name;
  FineTuneSettings settings;
};

// The candidates of issue 20, item 6, each one change from the old recipe (150 steps of 32, a
// quarter new, momentum SGD at 0.005, every layer, batch norm as in training) but the combinations
// at the end.
std::vector<Recipe> recipes() {
  using BatchNorm = FineTuneSettings::BatchNorm;
  std::vector<Recipe> list;
  auto add = [&](std::string name, auto change) {
    FineTuneSettings settings;  // the old recipe, which each candidate changes
    settings.trained_layers = 0;
    settings.distillation = 0;
    settings.batch_norm = BatchNorm::batch;
    change(settings);
    list.push_back({std::move(name), settings});
  };
  add("old", [](FineTuneSettings&) {});
  add("bn-frozen", [&](FineTuneSettings& s) { s.batch_norm = BatchNorm::frozen; });
  add("bn-fixed", [&](FineTuneSettings& s) { s.batch_norm = BatchNorm::fixed; });
  add("head", [&](FineTuneSettings& s) { s.trained_layers = 1, s.batch_norm = BatchNorm::frozen; });
  add("last2", [&](FineTuneSettings& s) { s.trained_layers = 2, s.batch_norm = BatchNorm::frozen; });
  add("last3", [&](FineTuneSettings& s) { s.trained_layers = 3, s.batch_norm = BatchNorm::frozen; });
  add("decay0.3", [&](FineTuneSettings& s) { s.layer_rate_decay = 0.3f, s.batch_norm = BatchNorm::frozen; });
  add("l2sp0.1", [&](FineTuneSettings& s) { s.pull_to_start = 0.1f, s.batch_norm = BatchNorm::frozen; });
  add("l2sp1", [&](FineTuneSettings& s) { s.pull_to_start = 1.0f, s.batch_norm = BatchNorm::frozen; });
  add("distill0.5", [&](FineTuneSettings& s) { s.distillation = 0.5f, s.batch_norm = BatchNorm::frozen; });
  add("distill1", [&](FineTuneSettings& s) { s.distillation = 1.0f, s.batch_norm = BatchNorm::frozen; });
  add("replay7/8", [&](FineTuneSettings& s) { s.new_share = 0.125, s.batch_norm = BatchNorm::frozen; });
  add("lr0.01", [&](FineTuneSettings& s) { s.learning_rate = 0.01f, s.batch_norm = BatchNorm::frozen; });
  add("lr0.002", [&](FineTuneSettings& s) { s.learning_rate = 0.002f, s.batch_norm = BatchNorm::frozen; });
  add("last2+distill", [&](FineTuneSettings& s) { s.trained_layers = 2, s.distillation = 1.0f, s.batch_norm = BatchNorm::frozen; });
  add("last2+distill0.5", [&](FineTuneSettings& s) { s.trained_layers = 2, s.distillation = 0.5f, s.batch_norm = BatchNorm::frozen; });
  add("last3+distill", [&](FineTuneSettings& s) { s.trained_layers = 3, s.distillation = 1.0f, s.batch_norm = BatchNorm::frozen; });
  add("decay0.3+distill", [&](FineTuneSettings& s) { s.layer_rate_decay = 0.3f, s.distillation = 1.0f, s.batch_norm = BatchNorm::frozen; });
  return list;
}

// The share of `data` (things that are not digits) the network answers as a digit with at least
// 70% probability: the measure of issue 20's "not a digit" (tools/not_a_digit.cpp, kShown), to see
// whether a round of fine-tuning on digits alone unteaches it.
double negatives_answered(const Network& network, const Dataset& data) {
  const Matrix probabilities = network.predict_proba(pixels_of(data));
  std::size_t answered = 0;
  for (Eigen::Index i = 0; i < probabilities.rows(); ++i) {
    const Eigen::VectorXf row = probabilities.row(i).transpose();
    const ClassReading reading = read_classes(std::span<const float>(row.data(), static_cast<std::size_t>(row.size())));
    answered += !reading.not_a_digit && reading.probability >= 0.7f;
  }
  return static_cast<double>(answered) / static_cast<double>(std::max<std::size_t>(1, data.size()));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The measurements behind the fine-tune's recipe"};
  std::string model_path, data_dir, style_list, recipe_list;
  app.require_subcommand(1);
  auto* styles_command = app.add_subcommand("styles", "how the model reads each style");
  auto* recipes_command = app.add_subcommand("recipes", "each recipe on each style: learned, validation, CPU seconds");
  for (CLI::App* command : {styles_command, recipes_command}) {
    command->add_option("--model", model_path, "model file (default: the built-in model)");
    command->add_option("--data", data_dir, "MNIST folder (default: $DIGITS_DATA or data/mnist)");
  }
  recipes_command->add_option("--styles", style_list, "style numbers, comma-separated (as `styles` lists them)");
  recipes_command->add_option("--recipes", recipe_list, "recipe names, comma-separated");
  std::vector<std::string> negative_folders;
  recipes_command->add_option("--negatives", negative_folders, "folders of none_ images: the share answered as a digit (≥70%) before and after each round");
  bool poison = false;
  recipes_command->add_flag("--poison", poison, "also teach each recipe 300 MNIST 1s labelled 7");
  CLI11_PARSE(app, argc, argv);
  try {
    const Model model = model_path.empty() ? parse_model(builtin_model_bytes(), "built-in model") : load_model(model_path);
    const std::vector<testing::Style> styles = testing::all_styles();
    if (styles_command->parsed()) {
      std::printf("| # | style | label | read right | most common answer |\n|---:|---|---:|---:|---|\n");
      for (std::size_t s = 0; s < styles.size(); ++s) {
        const Dataset held_out = testing::style_dataset(styles[s], 200, 1000 + s);
        const auto [answer, share] = most_common_answer(model.network, held_out);
        std::printf("| %zu | %s | %d | %.1f%% | %d (%.0f%%) |\n", s, styles[s].name.c_str(), styles[s].label,
                    100 * evaluate(model.network, held_out, 1).accuracy(), answer, 100 * share);
        std::fflush(stdout);
      }
      return 0;
    }

    if (data_dir.empty()) data_dir = std::getenv("DIGITS_DATA") && *std::getenv("DIGITS_DATA") ? std::getenv("DIGITS_DATA") : "data/mnist";
    const auto [replay, validation] = guard_split(load_train_test(data_dir).train);
    std::vector<std::size_t> chosen;
    if (style_list.empty()) {
      for (std::size_t s = 0; s < styles.size(); ++s) chosen.push_back(s);
    } else {
      std::stringstream list(style_list);
      for (std::string word; std::getline(list, word, ',');) {
        const std::size_t s = std::stoul(word);
        if (s >= styles.size()) throw Error("--styles: there is no style " + word + " (0–" + std::to_string(styles.size() - 1) + ")");
        chosen.push_back(s);
      }
    }
    Dataset negatives;
    for (const std::string& folder : negative_folders) {
      const Dataset more = load_image_folder(folder, true).data;
      negatives.pixels.insert(negatives.pixels.end(), more.pixels.begin(), more.pixels.end());
      negatives.labels.insert(negatives.labels.end(), more.labels.begin(), more.labels.end());
    }
    if (!negatives.labels.empty()) std::printf("negatives: %zu images, the live model answers %.1f%% of them\n", negatives.size(), 100 * negatives_answered(model.network, negatives));
    const long long live_correct = static_cast<long long>(evaluate(model.network, validation, 1).correct);
    std::printf("live model: validation %lld/%zu\n", live_correct, validation.size());
    std::printf("| recipe | style | corrections | held-out before → after | validation before → after | verdict | CPU s |\n|---|---|---|---|---|---|---:|\n");
    std::vector<Recipe> chosen_recipes;  // in the order --recipes names them
    if (recipe_list.empty()) chosen_recipes = recipes();
    std::stringstream names(recipe_list);
    for (std::string name; std::getline(names, name, ',');) {
      const std::vector<Recipe> all = recipes();
      const auto it = std::find_if(all.begin(), all.end(), [&](const Recipe& r) { return r.name == name; });
      if (it == all.end()) throw Error("--recipes: there is no recipe " + name);
      chosen_recipes.push_back(*it);
    }
    for (const Recipe& recipe : chosen_recipes) {
      for (std::size_t s : chosen) {
        const Dataset corrections = testing::style_dataset(styles[s], 20, 1);
        const Dataset held_out = testing::style_dataset(styles[s], 200, 1000 + s);
        FineTuneSettings settings = recipe.settings;
        settings.live_validation_correct = live_correct;
        const double start = cpu_seconds();
        const FineTuneResult result = fine_tune_guarded(model.network, corrections, {}, replay, validation, settings);
        const double seconds = cpu_seconds() - start;
        std::printf("| %s | %s | %.0f%% → %.0f%% | %.1f%% → %.1f%% | %.2f%% → %.2f%% | %s | %.2f |", recipe.name.c_str(), styles[s].name.c_str(),
                    100 * result.verdict.corrections_before, 100 * result.verdict.corrections_after, 100 * evaluate(model.network, held_out, 1).accuracy(),
                    100 * evaluate(result.candidate, held_out, 1).accuracy(), 100 * result.verdict.validation_before, 100 * result.verdict.validation_after,
                    result.verdict.accepted ? "accepted" : "rejected", seconds);
        if (!negatives.labels.empty()) std::printf(" negatives answered %.1f%% |", 100 * negatives_answered(result.candidate, negatives));
        std::printf("\n");
        std::fflush(stdout);
      }
      if (poison) {  // 300 MNIST 1s from the replay, labelled 7: the guard must refuse them
        Dataset ones;
        ones.name = "300 ones labelled 7";
        for (std::size_t i = 0; i < replay.size() && ones.size() < 300; ++i) {
          if (replay.labels[i] != 1) continue;
          const auto image = replay.image(i);
          ones.pixels.insert(ones.pixels.end(), image.begin(), image.end());
          ones.labels.push_back(7);
        }
        FineTuneSettings settings = recipe.settings;
        settings.live_validation_correct = live_correct;
        const double start = cpu_seconds();
        const FineTuneResult result = fine_tune_guarded(model.network, ones, {}, replay, validation, settings);
        const double seconds = cpu_seconds() - start;
        std::printf("| %s | %s | %.0f%% → %.0f%% | | %.2f%% → %.2f%% | %s | %.2f |\n", recipe.name.c_str(), ones.name.c_str(), 100 * result.verdict.corrections_before,
                    100 * result.verdict.corrections_after, 100 * result.verdict.validation_before, 100 * result.verdict.validation_after,
                    result.verdict.accepted ? "accepted" : "rejected", seconds);
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fine_tune_recipes: %s\n", e.what());
    return 1;
  }
  return 0;
}
