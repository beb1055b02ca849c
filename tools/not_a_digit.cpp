// not_a_digit: how well today's models read the robustness folders, and how well three scores
// that need no retraining tell a digit from something that is not one (issue 20, items 3 and 5).
// See docs/robustness.md, "Not a digit".
//
//   not_a_digit --folders DIR [--model FILE]... [--data DIR] [--train-negatives DIR] [--leave-out NAME]... [--max-gap POINTS]
//
// DIR is what tools/make_digit_folders wrote: digit folders (<label>_anything.png) and folders of
// things that are not digits (none_anything.png). Every image goes through the app's preprocessing.
//
// The scores, from the logits z of one image (K = 10 classes), with the softmax pᵢ = e^{zᵢ} / Σⱼ e^{zⱼ}:
//   msp     the maximum softmax probability, maxᵢ pᵢ (Hendrycks & Gimpel, "A Baseline for Detecting
//           Misclassified and Out-of-Distribution Examples", 2017): what the app shows today.
//   ts      the same after temperature scaling, maxᵢ softmax(z/T)ᵢ, with the one scalar T > 0 that
//           minimises the negative log-likelihood on MNIST validation (Guo et al., "On Calibration
//           of Modern Neural Networks", 2017). It changes no answer, only how sure each one is.
//   energy  the negative free energy logsumexp(z) = log Σⱼ e^{zⱼ}, i.e. −E(x) for E = −T·logsumexp(z/T)
//           at T = 1 (Liu et al., "Energy-based Out-of-distribution Detection", 2020): higher for
//           inputs like the training data. It is no probability; the app would still show p.
// A rule answers a digit when its score reaches a threshold τ and the probability it shows is at
// least 70% (the measure); otherwise it says "not a digit". The goals: on things
// that are not digits, a digit answered in ≤ 10% of cases; on hand-drawn digits, the right digit
// answered in ≥ 95%.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "digits/builtin_model.hpp"
#include "digits/calibration.hpp"
#include "digits/classes.hpp"
#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/image_folder.hpp"
#include "digits/layer.hpp"
#include "digits/model_file.hpp"
#include "digits/network.hpp"
#include "digits/preprocess.hpp"
#include "digits/trainer.hpp"

namespace fs = std::filesystem;
using digits::Dataset;
using digits::Error;
using digits::Matrix;
using digits::Network;

namespace {

constexpr double kShown = 0.7;           // "answered with ≥ 70% probability"
constexpr double kDigitGoal = 0.95;      // hand-drawn digits answered right, at least
constexpr double kNegativeGoal = 0.10;   // things that are not digits answered, at most

// A folder of images, preprocessed: digits with their labels, or negatives (label −1).
struct ImageSet {
  std::string name;
  bool negative = false, held_out = false;
  Dataset data;
  std::size_t refused = 0;  // negatives the preprocessing refused (no ink): the app answers no digit
};

// A folder of none_*.png: every image file, through the same preprocessing as load_image_folder.
ImageSet load_negatives(const fs::path& dir) {
  ImageSet set;
  set.name = dir.filename().string();
  set.negative = true;
  set.held_out = set.name.starts_with("heldout_");
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string extension = entry.path().extension().string();
    if (entry.is_regular_file() && (extension == ".png" || extension == ".jpg")) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const fs::path& path : paths) {
    try {
      const digits::Preprocessed input = digits::preprocess(digits::read_image(path));
      for (float v : input.pixels) set.data.pixels.push_back(static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f))));
      set.data.labels.push_back(0);  // unused
    } catch (const Error&) {
      ++set.refused;  // an empty image: the app says so and answers nothing
    }
  }
  return set;
}

// Every folder of dir: digit folders in the order below, then the others by name, negatives last.
std::vector<ImageSet> load_folders(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": no such directory (make it with tools/make_digit_folders)");
  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) folders.push_back(entry.path());
  }
  const std::vector<std::string> first = {"mnist_placed", "fonts", "strokes"};
  std::sort(folders.begin(), folders.end(), [&](const fs::path& a, const fs::path& b) {
    auto rank = [&](const fs::path& p) {
      const std::string name = p.filename().string();
      const auto at = std::find(first.begin(), first.end(), name);
      if (at != first.end()) return static_cast<int>(at - first.begin());
      return name.starts_with("neg_") ? 20 : name.starts_with("heldout_") ? 30 : 10;
    };
    return rank(a) != rank(b) ? rank(a) < rank(b) : a.filename() < b.filename();
  });
  std::vector<ImageSet> sets;
  for (const fs::path& folder : folders) {
    bool negative = false, any = false;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (!entry.is_regular_file()) continue;
      any = true;
      negative = entry.path().filename().string().starts_with("none_");
      break;
    }
    if (!any) continue;
    if (negative) {
      sets.push_back(load_negatives(folder));
    } else {
      digits::ImageFolder images = digits::load_image_folder(folder);
      for (const std::string& error : images.errors) std::fprintf(stderr, "not_a_digit: skipped %s\n", error.c_str());
      ImageSet set;
      set.name = folder.filename().string();
      set.data = std::move(images.data);
      sets.push_back(std::move(set));
    }
    std::fprintf(stderr, "not_a_digit: %s: %zu images\n", sets.back().name.c_str(), sets.back().data.size() + sets.back().refused);
  }
  return sets;
}

// What the network computes for a set: the logits Z (n × classes), every layer as
// Network::activations runs them but the softmax, and H (n × hidden), the last layer's input.
struct Outputs {
  Matrix Z, H;
};
Outputs forward(const Network& network, const Dataset& data) {
  Outputs out;
  out.Z = digits::logits_of(network, data, &out.H);
  return out;
}

// Per image: the answer, whether it is right, the probability shown (plain and temperature-scaled)
// and the three scores.
struct Scored {
  std::vector<int> answer;
  std::vector<bool> right;
  std::vector<double> msp, ts, energy;
  std::size_t refused = 0;
  std::size_t size() const { return answer.size() + refused; }  // refusals count in every share
};

Scored score(const Matrix& Z, const Dataset& data, bool negative, double T, std::size_t refused) {
  Scored s;
  s.refused = refused;
  for (Eigen::Index i = 0; i < Z.rows(); ++i) {
    Eigen::Index best = 0;
    Z.row(i).maxCoeff(&best);
    s.answer.push_back(static_cast<int>(best));
    s.right.push_back(!negative && best == data.labels[static_cast<std::size_t>(i)]);
    // A model with the eleventh class says "not a digit" itself when that class is the most
    // probable: no digit is answered, whatever the score.
    if (digits::has_not_a_digit(static_cast<int>(Z.cols())) && best == digits::kNotADigit) {
      s.msp.push_back(0), s.ts.push_back(0), s.energy.push_back(-1e30);
      continue;
    }
    const double lse = digits::logsumexp(Z, i, 1), lse_T = digits::logsumexp(Z, i, T);
    s.msp.push_back(std::exp(Z(i, best) - lse));
    s.ts.push_back(std::exp(Z(i, best) / T - lse_T));
    s.energy.push_back(lse);
  }
  return s;
}

enum class Rule { msp, ts, energy };
const char* rule_name(Rule r) { return r == Rule::msp ? "msp" : r == Rule::ts ? "ts" : "energy"; }

double score_of(const Scored& s, Rule r, std::size_t i) { return r == Rule::msp ? s.msp[i] : r == Rule::ts ? s.ts[i] : s.energy[i]; }
double shown(const Scored& s, Rule r, std::size_t i) { return r == Rule::ts ? s.ts[i] : s.msp[i]; }

// The share of a set that is answered (score ≥ τ and the shown probability ≥ 70%), and of those,
// right; for negatives "answered" is the failure.
struct Shares {
  double answered = 0, right_answered = 0;
};
Shares shares(const Scored& s, Rule r, double tau) {
  std::size_t answered = 0, right = 0;
  for (std::size_t i = 0; i < s.answer.size(); ++i) {
    if (score_of(s, r, i) >= tau && shown(s, r, i) >= kShown) ++answered, right += s.right[i];
  }
  const double n = static_cast<double>(std::max<std::size_t>(1, s.size()));
  return {answered / n, right / n};
}

// Area under the ROC curve of the score separating digits read right from negatives (ties count a
// half): the chance that a random right digit scores above a random negative. Refused negatives
// score below everything.
double auroc(const std::vector<const Scored*>& digit_sets, const std::vector<const Scored*>& negative_sets, Rule r) {
  std::vector<std::pair<double, int>> all;  // (score, 1 digit / 0 negative)
  std::size_t refused = 0;
  for (const Scored* s : digit_sets) {
    for (std::size_t i = 0; i < s->answer.size(); ++i) {
      if (s->right[i]) all.emplace_back(score_of(*s, r, i), 1);
    }
  }
  for (const Scored* s : negative_sets) {
    for (std::size_t i = 0; i < s->answer.size(); ++i) all.emplace_back(score_of(*s, r, i), 0);
    refused += s->refused;
  }
  std::sort(all.begin(), all.end());
  // Sweep the scores upwards; `below` counts the negatives under the current score.
  double area = 0, positives = 0, negatives = static_cast<double>(refused), below = static_cast<double>(refused);
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    double pos = 0, neg = 0;
    while (j < all.size() && all[j].first == all[i].first) (all[j].second ? pos : neg) += 1, ++j;
    area += pos * (below + neg / 2);
    positives += pos, negatives += neg, below += neg;
    i = j;
  }
  return positives > 0 && negatives > 0 ? area / (positives * negatives) : 0;
}

double percent(double share) { return 100 * share; }

// ---- a prototype of the eleventh class, "not a digit", with the network frozen ----
//
// One more output unit on the last layer: z₁₀ = h·w + b for h the last layer's input, beside the
// ten digit logits left as they are, and a softmax over the eleven. Only w and b are trained, by
// cross-entropy on MNIST training digits (labels 0–9, never the validation digits) and generated
// negatives of another seed (label 10): the loss's gradient at z₁₀ is p₁₀ − [y = 10], so
// dw = Hᵀ·(p₁₀ − y₁₀) / n (hidden) and db = mean(p₁₀ − y₁₀). The full model would learn its features
// for it too; this measures what the present features already allow.
struct EleventhClass {
  Eigen::VectorXf w;
  float b = 0;
  // p: (n × 11) probabilities from the ten logits and the new one.
  Matrix probabilities(const Outputs& out) const {
    Matrix P(out.Z.rows(), out.Z.cols() + 1);
    P.leftCols(out.Z.cols()) = out.Z;
    P.col(out.Z.cols()) = (out.H * w).array() + b;
    for (Eigen::Index i = 0; i < P.rows(); ++i) {
      const float top = P.row(i).maxCoeff();
      P.row(i) = (P.row(i).array() - top).exp();
      P.row(i) /= P.row(i).sum();
    }
    return P;
  }
};

// Full-batch Adam (Kingma & Ba 2015: lr 0.01, β 0.9 and 0.999) for 400 steps; w starts at 0 and
// b at −5, so the new class starts improbable.
EleventhClass train_eleventh(const Outputs& digits_out, const Outputs& negatives_out) {
  Outputs all;
  all.Z.resize(digits_out.Z.rows() + negatives_out.Z.rows(), digits_out.Z.cols());
  all.Z << digits_out.Z, negatives_out.Z;
  all.H.resize(all.Z.rows(), digits_out.H.cols());
  all.H << digits_out.H, negatives_out.H;
  Eigen::VectorXf target = Eigen::VectorXf::Zero(all.Z.rows());
  target.tail(negatives_out.Z.rows()).setOnes();
  EleventhClass unit{Eigen::VectorXf::Zero(all.H.cols()), -5.0f};
  Eigen::VectorXf m = Eigen::VectorXf::Zero(unit.w.size()), v = m;
  float mb = 0, vb = 0;
  const float lr = 0.01f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, n = static_cast<float>(all.Z.rows());
  for (int step = 1; step <= 400; ++step) {
    const Matrix P = unit.probabilities(all);
    const Eigen::VectorXf g = P.col(P.cols() - 1) - target;  // ∂loss/∂z₁₀ per image
    const Eigen::VectorXf dw = all.H.transpose() * g / n;
    const float db = g.sum() / n;
    m = beta1 * m + (1 - beta1) * dw, v = beta2 * v + (1 - beta2) * dw.cwiseProduct(dw);
    mb = beta1 * mb + (1 - beta1) * db, vb = beta2 * vb + (1 - beta2) * db * db;
    const float c1 = 1 - std::pow(beta1, static_cast<float>(step)), c2 = 1 - std::pow(beta2, static_cast<float>(step));
    unit.w -= (lr * (m / c1).array() / ((v / c2).array().sqrt() + eps)).matrix();
    unit.b -= lr * (mb / c1) / (std::sqrt(vb / c2) + eps);
  }
  return unit;
}

// Shares as for the scores: a digit answered when the most probable of the eleven is a digit at ≥ 70%.
Shares eleventh_shares(const EleventhClass& unit, const Outputs& out, const Dataset& data, bool negative, std::size_t refused) {
  const Matrix P = unit.probabilities(out);
  std::size_t answered = 0, right = 0;
  for (Eigen::Index i = 0; i < P.rows(); ++i) {
    Eigen::Index best = 0;
    const float p = P.row(i).maxCoeff(&best);
    if (best < P.cols() - 1 && p >= kShown) ++answered, right += !negative && best == data.labels[static_cast<std::size_t>(i)];
  }
  const double n = static_cast<double>(std::max<std::size_t>(1, static_cast<std::size_t>(P.rows()) + refused));
  return {answered / n, right / n};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"How well models read the robustness folders and tell digits from things that are not digits (docs/robustness.md)"};
  std::string folders, data;
  std::vector<std::string> models;
  double max_gap = -1;
  std::string train_negatives;
  std::vector<std::string> leave_out;
  app.add_option("--folders", folders, "What tools/make_digit_folders wrote: digit folders and none_ folders")->required();
  app.add_option("--model", models, "A model file (repeat for several); default: the built-in model");
  app.add_option("--data", data, "MNIST-layout directory: the test set, and the validation digits the temperature is fit on (default: $DIGITS_DATA, else data/mnist)");
  app.add_option("--train-negatives", train_negatives,
                 "Also try an eleventh class on the frozen network, trained on the neg_ folders of this directory (make_digit_folders --only negatives with another --seed) and MNIST training digits");
  app.add_option("--leave-out", leave_out, "A digit folder to show but leave out of the pooled figures (repeat for several), e.g. photo while the preprocessing cannot read photographs");
  app.add_option("--max-gap", max_gap, "Exit 1 if a digit folder trails mnist_placed by more than this many points (any model)");
  CLI11_PARSE(app, argc, argv);

  try {
    std::error_code ec;
    if (!fs::is_directory(folders, ec)) throw Error(folders + ": no such directory (make it with tools/make_digit_folders)");
    fs::path data_dir = data;
    if (data_dir.empty()) {
      const char* env = std::getenv("DIGITS_DATA");
      data_dir = env && *env ? fs::path(env) : fs::path("data") / "mnist";
    }
    const digits::TrainTestData mnist = digits::load_train_test(data_dir);
    // The 5,000 validation digits every preset sets aside (trainer.hpp) and the feedback guard
    // validates on: never trained on by the built-in model.
    const Dataset validation = digits::split_validation(mnist.train, 5000, digits::kValidationSplitSeed).first;
    std::vector<ImageSet> sets = load_folders(folders);
    if (sets.empty()) throw Error(folders + ": no folders of images in it (make them with tools/make_digit_folders)");
    std::vector<ImageSet> training_negatives;
    Dataset training_digits;  // 20,000 MNIST training digits, none of the validation ones
    if (!train_negatives.empty()) {
      const Dataset rest = digits::split_validation(mnist.train, 5000, digits::kValidationSplitSeed).second;
      training_digits = digits::split_validation(rest, 20000, 1).first;
      for (ImageSet& set : load_folders(train_negatives)) {
        if (set.negative && set.name.starts_with("neg_")) training_negatives.push_back(std::move(set));
        if (!set.negative) training_digits.append(set.data);  // drawn digits of the training side, e.g. strokes of another seed
      }
      if (training_negatives.empty()) throw Error(train_negatives + ": no neg_ folders (make them with make_digit_folders --only negatives)");
    }
    ImageSet test_set;
    test_set.name = "MNIST test";
    test_set.data = mnist.test;

    bool too_far = false;
    if (models.empty()) models.push_back("");
    for (const std::string& model_path : models) {
      const digits::Model model = model_path.empty() ? digits::parse_model(digits::builtin_model_bytes(), "the built-in model") : digits::load_model(model_path);
      const Network& network = model.network;
      const Matrix Zv = forward(network, validation).Z;
      const double T = digits::fit_temperature(Zv, validation.labels);
      std::printf("\nmodel: %s (%s)\n", model_path.empty() ? "built-in" : model_path.c_str(), network.architecture().c_str());
      std::printf("temperature fit on MNIST validation (5,000 digits): T = %.3f, NLL %.4f at T = 1, %.4f at T\n", T, digits::mean_negative_log_likelihood(Zv, validation.labels, 1), digits::mean_negative_log_likelihood(Zv, validation.labels, T));

      std::vector<Scored> scored;
      std::vector<Outputs> outputs;
      std::vector<const ImageSet*> order = {&test_set};
      for (const ImageSet& set : sets) order.push_back(&set);
      for (const ImageSet* set : order) {
        outputs.push_back(forward(network, set->data));
        scored.push_back(score(outputs.back().Z, set->data, set->negative, T, set->refused));
      }
      std::vector<const Scored*> digit_folders, own_negatives, held_out;
      for (std::size_t k = 1; k < order.size(); ++k) {
        if (std::find(leave_out.begin(), leave_out.end(), order[k]->name) != leave_out.end()) continue;
        (order[k]->negative ? (order[k]->held_out ? held_out : own_negatives) : digit_folders).push_back(&scored[k]);
      }

      // Accuracy, and the two measures at the shown probability ≥ 70%, plain and scaled.
      double placed = -1;
      for (std::size_t k = 0; k < order.size(); ++k) {
        if (order[k]->name == "mnist_placed") {
          placed = static_cast<double>(std::count(scored[k].right.begin(), scored[k].right.end(), true)) / static_cast<double>(scored[k].size());
        }
      }
      std::printf("\n%-16s %7s %9s %7s   %-27s\n", "folder", "images", "accuracy", "gap", "answered with p >= 70%");
      std::printf("%-16s %7s %9s %7s   %13s %13s\n", "", "", "", "", "msp", "ts");
      for (std::size_t k = 0; k < order.size(); ++k) {
        const Scored& s = scored[k];
        const Shares plain = shares(s, Rule::msp, 0), scaled = shares(s, Rule::ts, 0);
        if (order[k]->negative) {
          std::printf("%-16s %7zu %9s %7s   %12.1f%% %12.1f%%   (a digit answered%s)\n", order[k]->name.c_str(), s.size(), "", "", percent(plain.answered), percent(scaled.answered),
                      s.refused ? (", " + std::to_string(s.refused) + " refused as empty").c_str() : "");
          continue;
        }
        const double accuracy = static_cast<double>(std::count(s.right.begin(), s.right.end(), true)) / static_cast<double>(s.size());
        std::string gap;
        if (placed >= 0 && k > 0 && order[k]->name != "mnist_placed") {
          char text[16];
          std::snprintf(text, sizeof text, "%+.2f", percent(placed - accuracy));
          gap = text;
          if (max_gap >= 0 && percent(placed - accuracy) > max_gap) too_far = true;
        }
        std::printf("%-16s %7zu %8.2f%% %7s   %12.1f%% %12.1f%%   (right)\n", order[k]->name.c_str(), s.size(), percent(accuracy), gap.c_str(), percent(plain.right_answered),
                    percent(scaled.right_answered));
      }

      // Pooled: every digit folder alike (their images, not MNIST test), own and held-out negatives.
      auto pooled = [](const std::vector<const Scored*>& parts) {
        Scored all;
        for (const Scored* s : parts) {
          all.answer.insert(all.answer.end(), s->answer.begin(), s->answer.end());
          all.right.insert(all.right.end(), s->right.begin(), s->right.end());
          all.msp.insert(all.msp.end(), s->msp.begin(), s->msp.end());
          all.ts.insert(all.ts.end(), s->ts.begin(), s->ts.end());
          all.energy.insert(all.energy.end(), s->energy.begin(), s->energy.end());
          all.refused += s->refused;
        }
        return all;
      };
      const Scored digits_all = pooled(digit_folders), own_all = pooled(own_negatives), held_all = pooled(held_out);
      const Scored& mnist_test = scored[0];

      // Thresholds of each score, each the highest that still answers a share of some digits right:
      // 95% of MNIST test; the pooled digit folders' best share (τ = −∞) less 2 and less 5 points;
      // 95% of the pooled digit folders, the goal, when any threshold reaches it. They are chosen on
      // the measured digits themselves, an optimistic bound: if a score fails the negatives' goal
      // even so, no threshold of it meets both goals.
      std::printf("\nthresholds (a digit answered when score >= tau and the shown probability >= 70%%):\n");
      std::printf("%-7s %-33s %8s %8s %8s %9s %9s %7s %7s\n", "score", "tau, chosen to keep", "digit", "worst", "MNIST", "own neg", "held-out", "AUROC", "AUROC");
      std::printf("%-7s %-33s %8s %8s %8s %9s %9s %7s %7s\n", "", "", "folders", "folder", "test", "answered", "answered", "own", "held");
      auto tau_for = [](const Scored& s, Rule r, double share) {  // the highest τ answering `share` of s right; NaN if none does
        std::vector<double> candidates;
        for (std::size_t i = 0; i < s.answer.size(); ++i) {
          if (s.right[i] && shown(s, r, i) >= kShown) candidates.push_back(score_of(s, r, i));
        }
        std::sort(candidates.rbegin(), candidates.rend());
        const auto needed = static_cast<std::size_t>(std::ceil(share * static_cast<double>(s.size())));
        return needed > 0 && candidates.size() >= needed ? candidates[needed - 1] : std::nan("");
      };
      for (Rule r : {Rule::msp, Rule::ts, Rule::energy}) {
        const double best = shares(digits_all, r, -1e30).right_answered;
        std::vector<std::pair<std::string, double>> taus;
        if (r != Rule::energy) taus.emplace_back("p >= 0.70 only", -1e30);  // the energy's is msp's row
        taus.emplace_back("95% of MNIST test", tau_for(mnist_test, r, kDigitGoal));
        taus.emplace_back("digit folders' best - 2", tau_for(digits_all, r, best - 0.02));
        taus.emplace_back("digit folders' best - 5", tau_for(digits_all, r, best - 0.05));
        taus.emplace_back("95% of digit folders", tau_for(digits_all, r, kDigitGoal));
        for (const auto& [label, tau] : taus) {
          char tau_text[64];
          if (std::isnan(tau)) {
            std::printf("%-7s %-33s (no threshold: the folders' best is %.1f%%)\n", rule_name(r), label.c_str(), percent(best));
            continue;
          }
          if (tau < -1e29) std::snprintf(tau_text, sizeof tau_text, "%s", label.c_str());
          else std::snprintf(tau_text, sizeof tau_text, "%s: %.4g", label.c_str(), tau);
          double worst = 1;
          for (const Scored* s : digit_folders) worst = std::min(worst, shares(*s, r, tau).right_answered);
          std::printf("%-7s %-33s %7.1f%% %7.1f%% %7.1f%% %8.1f%% %8.1f%% %7.3f %7.3f\n", rule_name(r), tau_text, percent(shares(digits_all, r, tau).right_answered), percent(worst),
                      percent(shares(mnist_test, r, tau).right_answered), percent(shares(own_all, r, tau).answered), percent(shares(held_all, r, tau).answered),
                      auroc(digit_folders, own_negatives, r), auroc(digit_folders, held_out, r));
        }
      }
      std::printf("goals: hand-drawn digits right >= %.0f%%, things that are not digits answered <= %.0f%%", percent(kDigitGoal), percent(kNegativeGoal));
      for (const std::string& name : leave_out) std::printf("%s %s", &name == &leave_out.front() ? "; left out of the pools:" : ",", name.c_str());
      std::printf("\n");

      if (!training_negatives.empty() && digits::has_not_a_digit(network.classes())) {
        std::printf("\n(no frozen-network eleventh class: this model has its own, trained with it)\n");
      } else if (!training_negatives.empty()) {
        Dataset negatives_data;
        for (const ImageSet& set : training_negatives) negatives_data.append(set.data);
        const EleventhClass unit = train_eleventh(forward(network, training_digits), forward(network, negatives_data));
        std::printf("\nan eleventh class on the frozen network (one unit on the last layer's input, trained on %zu digits (MNIST training, and %s's digit folders) and %zu negatives of it):\n",
                    training_digits.size(), train_negatives.c_str(), negatives_data.size());
        double digits_right = 0, digits_count = 0, worst = 1, own = 0, own_count = 0, held = 0, held_count = 0;
        for (std::size_t k = 0; k < order.size(); ++k) {
          const Shares s = eleventh_shares(unit, outputs[k], order[k]->data, order[k]->negative, order[k]->refused);
          const double n = static_cast<double>(order[k]->data.size() + order[k]->refused);
          if (order[k]->negative) {
            std::printf("  %-16s a digit answered %5.1f%%\n", order[k]->name.c_str(), percent(s.answered));
            (order[k]->held_out ? held : own) += s.answered * n, (order[k]->held_out ? held_count : own_count) += n;
          } else {
            std::printf("  %-16s right %5.1f%%\n", order[k]->name.c_str(), percent(s.right_answered));
            if (k > 0 && std::find(leave_out.begin(), leave_out.end(), order[k]->name) == leave_out.end())
              digits_right += s.right_answered * n, digits_count += n, worst = std::min(worst, s.right_answered);
          }
        }
        std::printf("  pooled: digit folders right %.1f%% (worst %.1f%%), own negatives answered %.1f%%, held-out negatives answered %.1f%%\n", percent(digits_right / digits_count),
                    percent(worst), percent(own / own_count), percent(held / held_count));
      }
    }
    if (too_far) {
      std::fprintf(stderr, "not_a_digit: a digit folder trails mnist_placed by more than --max-gap %.2f points\n", max_gap);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not_a_digit: %s\n", e.what());
    return 1;
  }
  return 0;
}
