// Guarded fine-tuning on a small synthetic problem in MNIST's shape: the live network is never
// touched, the same seed gives the same candidate, a new consistent "style" is learned and
// accepted while validation holds, and a flood of wrong labels is refused by the guard.
// (tests/slow/test_mnist.cpp does the same with the built-in model and real MNIST.)
#include <gtest/gtest.h>

#include <cmath>

#include <algorithm>
#include <map>

#include "digits/error.hpp"
#include "digits/fine_tune.hpp"
#include "digits/optimizer.hpp"
#include "digits/random.hpp"
#include "digits/trainer.hpp"

using namespace digits;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

// 28×28 images, ten classes: class c is a horizontal bar across rows 2 + 2c and 3 + 2c, of random
// length and start, with noise. Easy, but a network has to learn it.
void add_bar_image(Dataset& data, int label, Rng& rng) {
  const int row = 2 + 2 * label;
  const int start = 2 + static_cast<int>(rng.below(6)), end = 20 + static_cast<int>(rng.below(6));
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) {
      const bool ink = (y == row || y == row + 1) && x >= start && x < end;
      const float noise = rng.uniform() * 40.0f;
      data.pixels.push_back(static_cast<std::uint8_t>(std::min(255.0f, (ink ? 200.0f : 0.0f) + noise)));
    }
  }
  data.labels.push_back(static_cast<std::uint8_t>(label));
}

Dataset bars(std::size_t count, std::uint64_t seed, std::string name = "bars") {
  Dataset data;
  data.name = std::move(name);
  Rng rng(seed);
  for (std::size_t n = 0; n < count; ++n) add_bar_image(data, static_cast<int>(n % 10), rng);
  return data;
}

// The new style: a vertical stroke near the middle (which no class has), labelled `label`.
Dataset vertical_strokes(std::size_t count, std::uint64_t seed, int label) {
  Dataset data;
  data.name = "vertical strokes";
  Rng rng(seed);
  for (std::size_t n = 0; n < count; ++n) {
    const int column = 11 + static_cast<int>(rng.below(6));
    const int top = 3 + static_cast<int>(rng.below(5)), bottom = 21 + static_cast<int>(rng.below(5));
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        const bool ink = (x == column || x == column + 1) && y >= top && y < bottom;
        const float noise = rng.uniform() * 40.0f;
        data.pixels.push_back(static_cast<std::uint8_t>(std::min(255.0f, (ink ? 200.0f : 0.0f) + noise)));
      }
    }
    data.labels.push_back(static_cast<std::uint8_t>(label));
  }
  return data;
}

// The same images with every label replaced.
Dataset relabelled(Dataset data, int label) {
  std::fill(data.labels.begin(), data.labels.end(), static_cast<std::uint8_t>(label));
  data.name += " (relabelled " + std::to_string(label) + ")";
  return data;
}

Dataset only_label(const Dataset& data, int label, std::size_t count) {
  Dataset some;
  some.name = data.name + " (" + std::to_string(label) + "s)";
  for (std::size_t i = 0; i < data.size() && some.size() < count; ++i) {
    if (data.labels[i] != label) continue;
    const auto image = data.image(i);
    some.pixels.insert(some.pixels.end(), image.begin(), image.end());
    some.labels.push_back(data.labels[i]);
  }
  return some;
}

// Whether layer i of a and b holds the same numbers: W and b (γ and β), and a batch norm's running
// statistics.
bool same_layer(const Network& a, const Network& b, std::size_t i) {
  const ConstParameters p = parameters(a.layers[i]), q = parameters(b.layers[i]);
  if (p.W && (*p.W != *q.W || *p.b != *q.b)) return false;
  if (const auto* bn = std::get_if<BatchNormLayer>(&a.layers[i])) {
    const auto& other = std::get<BatchNormLayer>(b.layers[i]);
    return bn->running_mean == other.running_mean && bn->running_var == other.running_var;
  }
  return true;
}

bool same_weights(const Network& a, const Network& b) {
  for (std::size_t i = 0; i < a.layers.size(); ++i)
    if (!same_layer(a, b, i)) return false;
  return true;
}

// A network trained on the bars: the "live" model of these tests, trained once.
struct World {
  Dataset replay = bars(2000, 1, "bars replay");
  Dataset validation = bars(1000, 2, "bars validation");
  Network live{{784, 32, 10}, Activation::relu, 1.0f / 255.0f};
  World() {
    live.initialize(Init::he, 3);
    TrainingRecipe recipe;
    recipe.epochs = 3;
    recipe.batch = 20;
    recipe.optimizer = {.kind = OptimizerKind::momentum, .learning_rate = 0.02f};
    recipe.threads = 1;
    fit(live, replay, nullptr, recipe);
  }
};

const World& world() {
  static const World w;
  return w;
}

// The same problem for a small CNN with batch norm after its conv and its hidden dense layer, the
// kinds of layer the built-in model has: conv, bn, pool2, fc16, bn, 10 (layers 0–6 with the flatten).
struct CnnWorld {
  Network live{parse_layer_specs("conv5x5x4,bn,pool2,fc16,bn,10"), Shape{1, 28, 28}, Activation::relu, 1.0f / 255.0f};
  CnnWorld() {
    live.initialize(Init::he, 3);
    TrainingRecipe recipe;
    recipe.epochs = 2;
    recipe.batch = 20;
    recipe.optimizer = {.kind = OptimizerKind::momentum, .learning_rate = 0.02f};
    recipe.threads = 1;
    fit(live, world().replay, nullptr, recipe);
  }
};

const CnnWorld& cnn_world() {
  static const CnnWorld w;
  return w;
}

// ‖θ − θ₀‖ over every layer's W and b.
double distance(const Network& a, const Network& b) {
  double squares = 0;
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    const ConstParameters p = parameters(a.layers[i]), q = parameters(b.layers[i]);
    if (!p.W) continue;
    squares += (*p.W - *q.W).squaredNorm() + (*p.b - *q.b).squaredNorm();
  }
  return std::sqrt(squares);
}

}  // namespace

TEST(FineTune, TheLiveNetworkIsLearnedWellEnoughToTestWith) {
  EXPECT_GE(evaluate(world().live, world().validation, 1).accuracy(), 0.99);
}

TEST(FineTune, TheLiveNetworkIsNeverTouched) {
  const Network before = world().live;
  const FineTuneResult result = fine_tune_guarded(world().live, vertical_strokes(20, 4, 3), {}, world().replay, world().validation, {});
  EXPECT_TRUE(same_weights(world().live, before));
  EXPECT_FALSE(same_weights(result.candidate, before)) << "the fine-tune changed nothing";
}

TEST(FineTune, TheSameSeedGivesTheSameCandidateAndAnotherSeedAnother) {
  const Dataset corrections = vertical_strokes(20, 4, 3);
  const Dataset earlier = vertical_strokes(5, 5, 3);
  FineTuneSettings settings;
  settings.steps = 30;
  const FineTuneResult a = fine_tune_guarded(world().live, corrections, earlier, world().replay, world().validation, settings);
  const FineTuneResult b = fine_tune_guarded(world().live, corrections, earlier, world().replay, world().validation, settings);
  EXPECT_TRUE(same_weights(a.candidate, b.candidate));
  EXPECT_EQ(a.verdict.reason, b.verdict.reason);
  settings.seed = 2;
  const FineTuneResult c = fine_tune_guarded(world().live, corrections, earlier, world().replay, world().validation, settings);
  EXPECT_FALSE(same_weights(a.candidate, c.candidate));
}

TEST(FineTune, ANewConsistentStyleIsLearnedAndAcceptedWhileValidationHolds) {
  // Twenty corrections of a style the live network has never seen; afterwards, new drawings of that
  // style (another seed: other columns and lengths) are read as the digit they were labelled.
  const Dataset corrections = vertical_strokes(20, 4, 3);
  const Dataset unseen = vertical_strokes(200, 99, 3);
  const double unseen_before = evaluate(world().live, unseen, 1).accuracy();
  ASSERT_LT(unseen_before, 0.5) << "the live network already reads the new style; the test would prove nothing";

  const FineTuneSettings settings;
  const FineTuneResult result = fine_tune_guarded(world().live, corrections, {}, world().replay, world().validation, settings);
  EXPECT_TRUE(result.verdict.accepted) << result.verdict.reason;
  EXPECT_CONTAINS(result.verdict.reason, "accepted");
  EXPECT_GT(result.verdict.corrections_after, result.verdict.corrections_before);
  EXPECT_EQ(result.verdict.corrections_after, 1.0);
  EXPECT_GE(result.verdict.validation_after, result.verdict.validation_before - settings.max_validation_drop);
  EXPECT_GE(evaluate(result.candidate, unseen, 1).accuracy(), 0.95);
  // The verdict's numbers are the networks' own.
  EXPECT_DOUBLE_EQ(result.verdict.validation_before, evaluate(world().live, world().validation, 1).accuracy());
  EXPECT_DOUBLE_EQ(result.verdict.validation_after, evaluate(result.candidate, world().validation, 1).accuracy());
  EXPECT_DOUBLE_EQ(result.verdict.corrections_before, evaluate(world().live, corrections, 1).accuracy());
}

TEST(FineTune, AFloodOfWrongLabelsIsRejectedByTheGuard) {
  // Three hundred ordinary 1s, all labelled 7: learning them would unlearn the 1s of the
  // validation set, a tenth of it.
  const Dataset poison = relabelled(only_label(bars(4000, 7), 1, 300), 7);
  ASSERT_EQ(poison.size(), 300u);
  const FineTuneSettings settings;
  const FineTuneResult result = fine_tune_guarded(world().live, poison, {}, world().replay, world().validation, settings);
  EXPECT_FALSE(result.verdict.accepted) << result.verdict.reason;
  EXPECT_CONTAINS(result.verdict.reason, "rejected: validation accuracy fell");
  EXPECT_LT(result.verdict.validation_after, result.verdict.validation_before - settings.max_validation_drop);
}

TEST(FineTune, NoStepsIsNoImprovementAndIsRejected) {
  FineTuneSettings settings;
  settings.steps = 0;
  const FineTuneResult result = fine_tune_guarded(world().live, vertical_strokes(10, 4, 3), {}, world().replay, world().validation, settings);
  EXPECT_TRUE(same_weights(result.candidate, world().live));
  EXPECT_FALSE(result.verdict.accepted);
  EXPECT_CONTAINS(result.verdict.reason, "not read right more often");
  EXPECT_EQ(result.verdict.validation_before, result.verdict.validation_after);
}

TEST(FineTune, JudgementsTheLiveNetworkAlreadyGetsRightAreAcceptedIfStillRightAndValidationHolds) {
  // Nothing to improve: the guard asks that the candidate still read them all, and validation hold.
  const Dataset right = bars(30, 11, "already right");
  ASSERT_EQ(evaluate(world().live, right, 1).correct, right.size());
  const FineTuneResult result = fine_tune_guarded(world().live, right, {}, world().replay, world().validation, {});
  EXPECT_TRUE(result.verdict.accepted) << result.verdict.reason;
  EXPECT_EQ(result.verdict.corrections_before, 1.0);
  EXPECT_EQ(result.verdict.corrections_after, 1.0);
}

TEST(FineTune, ItIsTheMarginThatRefusesTheFlood) {
  // The same flood with the margin opened all the way is accepted: the poison is learned (the 1s
  // become 7s), and only the validation check stood in its way.
  FineTuneSettings settings;
  settings.max_validation_drop = 1;
  const Dataset poison = relabelled(only_label(bars(4000, 7), 1, 300), 7);
  const FineTuneResult result = fine_tune_guarded(world().live, poison, {}, world().replay, world().validation, settings);
  EXPECT_TRUE(result.verdict.accepted) << result.verdict.reason;
  EXPECT_GT(result.verdict.corrections_after, 0.5);
}

TEST(FineTune, TheStartingModelIsASecondReferenceAgainstSlowDrift) {
  // A candidate the live network's margin accepts is refused when it falls more than the margin
  // below the model the chain started from: here a starting model that read a few more validation
  // images right than the candidate. Ten validation images carry a wrong label, so the candidate
  // cannot read them all and such a starting model could exist.
  const Dataset corrections = vertical_strokes(20, 4, 3);
  Dataset validation = world().validation;
  for (std::size_t i = 0; i < 10; ++i) validation.labels[i] = static_cast<std::uint8_t>((validation.labels[i] + 1) % 10);
  const std::size_t all = validation.size();
  FineTuneSettings settings;
  const FineTuneResult free = fine_tune_guarded(world().live, corrections, {}, world().replay, validation, settings);
  ASSERT_TRUE(free.verdict.accepted) << free.verdict.reason;
  const auto candidate_correct = static_cast<long long>(std::llround(free.verdict.validation_after * static_cast<double>(all)));
  const auto allowed = static_cast<long long>(std::floor(settings.max_validation_drop * static_cast<double>(all) + 1e-9));

  settings.origin_validation_correct = candidate_correct + allowed + 1;  // just out of reach
  ASSERT_LE(settings.origin_validation_correct, static_cast<long long>(all));
  const FineTuneResult drifted = fine_tune_guarded(world().live, corrections, {}, world().replay, validation, settings);
  EXPECT_FALSE(drifted.verdict.accepted);
  EXPECT_CONTAINS(drifted.verdict.reason, "rejected: validation accuracy");
  EXPECT_CONTAINS(drifted.verdict.reason, "below the starting model's");

  settings.origin_validation_correct = candidate_correct + allowed;  // just within
  EXPECT_TRUE(fine_tune_guarded(world().live, corrections, {}, world().replay, validation, settings).verdict.accepted);
}

TEST(FineTune, ALiveCountTheCallerKnowsIsUsedInsteadOfMeasuringItAgain) {
  const Dataset corrections = vertical_strokes(20, 4, 3);
  const FineTuneResult measured = fine_tune_guarded(world().live, corrections, {}, world().replay, world().validation, {});
  ASSERT_TRUE(measured.verdict.accepted) << measured.verdict.reason;
  EXPECT_EQ(measured.verdict.validation_correct_before, static_cast<long long>(evaluate(world().live, world().validation, 1).correct));
  EXPECT_EQ(measured.verdict.validation_correct_after, static_cast<long long>(evaluate(measured.candidate, world().validation, 1).correct));

  // Told the count it just measured: the same verdict, word for word.
  FineTuneSettings told;
  told.live_validation_correct = measured.verdict.validation_correct_before;
  const FineTuneResult same = fine_tune_guarded(world().live, corrections, {}, world().replay, world().validation, told);
  EXPECT_EQ(same.verdict.reason, measured.verdict.reason);
  EXPECT_EQ(same.verdict.validation_correct_before, measured.verdict.validation_correct_before);
  EXPECT_DOUBLE_EQ(same.verdict.validation_before, measured.verdict.validation_before);

  // Told another count, the guard believes it: it was not measured again.
  told.live_validation_correct = measured.verdict.validation_correct_before - 7;
  const FineTuneResult believed = fine_tune_guarded(world().live, corrections, {}, world().replay, world().validation, told);
  EXPECT_EQ(believed.verdict.validation_correct_before, told.live_validation_correct);
  EXPECT_DOUBLE_EQ(believed.verdict.validation_before, static_cast<double>(told.live_validation_correct) / static_cast<double>(world().validation.size()));

  told.live_validation_correct = static_cast<long long>(world().validation.size()) + 1;
  EXPECT_THROW(fine_tune_guarded(world().live, corrections, {}, world().replay, world().validation, told), Error);
}

TEST(FineTune, EarlierCorrectionsAreReplayed) {
  // With earlier corrections of the new style in the mix, the new ones (of another digit's label)
  // do not erase them: both styles are read after the fine-tune.
  const Dataset earlier = vertical_strokes(20, 4, 3);
  FineTuneSettings settings;
  const FineTuneResult first = fine_tune_guarded(world().live, earlier, {}, world().replay, world().validation, settings);
  ASSERT_TRUE(first.verdict.accepted) << first.verdict.reason;
  // New corrections: an empty frame with a dot in a corner, labelled 8.
  Dataset dots;
  dots.name = "dots";
  Rng rng(5);
  for (int n = 0; n < 20; ++n) {
    for (int i = 0; i < 784; ++i) dots.pixels.push_back(static_cast<std::uint8_t>(rng.uniform() * 40.0f));
    const int corner = 24 + static_cast<int>(rng.below(3));
    for (int y = corner; y < corner + 2; ++y)
      for (int x = corner; x < corner + 2; ++x) dots.pixels[dots.pixels.size() - 784 + static_cast<std::size_t>(y * 28 + x)] = 220;
    dots.labels.push_back(8);
  }
  const FineTuneResult second = fine_tune_guarded(first.candidate, dots, earlier, world().replay, world().validation, settings);
  EXPECT_TRUE(second.verdict.accepted) << second.verdict.reason;
  EXPECT_GE(evaluate(second.candidate, vertical_strokes(200, 99, 3), 1).accuracy(), 0.9);
}

TEST(FineTune, BadInputsAreErrorsNamingWhatIsWrong) {
  const Network& live = world().live;
  const Dataset corrections = vertical_strokes(5, 4, 3);
  auto expect_error = [](auto call, const std::string& message) {
    try {
      call();
      ADD_FAILURE() << "no error; expected one mentioning: " << message;
    } catch (const Error& e) {
      EXPECT_CONTAINS(e.what(), message);
    }
  };
  expect_error([&] { fine_tune_guarded(live, Dataset{}, {}, world().replay, world().validation, {}); }, "no new corrections");
  expect_error([&] { fine_tune_guarded(live, corrections, {}, Dataset{}, world().validation, {}); }, "replay set is empty");
  expect_error([&] { fine_tune_guarded(live, corrections, {}, world().replay, Dataset{}, {}); }, "validation set is empty");
  Dataset small;
  small.name = "small images";
  small.rows = small.cols = 8;
  small.pixels.assign(64, 0);
  small.labels = {1};
  expect_error([&] { fine_tune_guarded(live, small, {}, world().replay, world().validation, {}); }, "small images: images have 64 pixels");
  expect_error([&] { fine_tune_guarded(live, corrections, small, world().replay, world().validation, {}); }, "small images");
  for (auto [change, message] : std::vector<std::pair<void (*)(FineTuneSettings&), std::string>>{
           {[](FineTuneSettings& s) { s.steps = -1; }, "steps"},
           {[](FineTuneSettings& s) { s.batch = 0; }, "batch"},
           {[](FineTuneSettings& s) { s.learning_rate = 0; }, "learning rate"},
           {[](FineTuneSettings& s) { s.momentum = 1; }, "momentum"},
           {[](FineTuneSettings& s) { s.new_share = 0; }, "new_share"},
           {[](FineTuneSettings& s) { s.max_validation_drop = -0.1; }, "max_validation_drop"},
           {[](FineTuneSettings& s) { s.trained_layers = -1; }, "trained_layers"},
           {[](FineTuneSettings& s) { s.layer_rate_decay = 0; }, "layer_rate_decay"},
           {[](FineTuneSettings& s) { s.layer_rate_decay = 1.5f; }, "layer_rate_decay"},
           {[](FineTuneSettings& s) { s.pull_to_start = -1; }, "pull_to_start"},
           {[](FineTuneSettings& s) { s.distillation = 2; }, "distillation"}}) {
    FineTuneSettings settings;
    change(settings);
    expect_error([&] { fine_tune_guarded(live, corrections, {}, world().replay, world().validation, settings); }, message);
  }
}

// ---- the recipe: which weights move, how far, toward what ----

TEST(FineTuneRecipe, TheCnnIsLearnedWellEnoughToTestWith) {
  EXPECT_GE(evaluate(cnn_world().live, world().validation, 1).accuracy(), 0.97);
  EXPECT_LT(evaluate(cnn_world().live, vertical_strokes(200, 99, 3), 1).accuracy(), 0.5) << "it already reads the new style";
}

TEST(FineTuneRecipe, OnlyTheTrainedLayersChange) {
  // trained_layers = 1: the output layer alone; 2: fc16 and its batch norm too. Below them nothing
  // moves, batch norm's running statistics included.
  const Network& live = cnn_world().live;
  const std::size_t output = live.layers.size() - 1, hidden_bn = output - 1, hidden = output - 2;
  ASSERT_TRUE(std::holds_alternative<DenseLayer>(live.layers[hidden]));
  ASSERT_TRUE(std::holds_alternative<BatchNormLayer>(live.layers[hidden_bn]));
  for (int trained : {1, 2}) {
    FineTuneSettings settings;
    settings.trained_layers = trained;
    const FineTuneResult result = fine_tune_guarded(live, vertical_strokes(20, 4, 3), {}, world().replay, world().validation, settings);
    const std::size_t first = trained == 1 ? output : hidden;
    for (std::size_t i = 0; i < live.layers.size(); ++i) {
      const bool has_weights = parameters(live.layers[i]).W != nullptr;
      if (i < first || !has_weights) EXPECT_TRUE(same_layer(result.candidate, live, i)) << "trained " << trained << ": layer " << i << " changed";
      else EXPECT_FALSE(same_layer(result.candidate, live, i)) << "trained " << trained << ": layer " << i << " did not learn";
    }
    EXPECT_GT(evaluate(result.candidate, vertical_strokes(200, 99, 3), 1).accuracy(), 0.5) << "trained " << trained;
  }
}

TEST(FineTuneRecipe, BatchNormStatisticsMoveOnlyInBatchMode) {
  using BatchNorm = FineTuneSettings::BatchNorm;
  const Network& live = cnn_world().live;
  for (BatchNorm mode : {BatchNorm::batch, BatchNorm::frozen, BatchNorm::fixed}) {
    FineTuneSettings settings;
    settings.batch_norm = mode;
    const FineTuneResult result = fine_tune_guarded(live, vertical_strokes(20, 4, 3), {}, world().replay, world().validation, settings);
    for (std::size_t i = 0; i < live.layers.size(); ++i) {
      const auto* before = std::get_if<BatchNormLayer>(&live.layers[i]);
      if (!before) continue;
      const auto& after = std::get<BatchNormLayer>(result.candidate.layers[i]);
      const bool statistics_moved = after.running_mean != before->running_mean || after.running_var != before->running_var;
      const bool affine_moved = after.gamma != before->gamma || after.beta != before->beta;
      EXPECT_EQ(statistics_moved, mode == BatchNorm::batch) << "layer " << i;
      EXPECT_EQ(affine_moved, mode != BatchNorm::fixed) << "layer " << i;
    }
    EXPECT_TRUE(result.verdict.accepted) << result.verdict.reason;
  }
}

TEST(FineTuneRecipe, ThePullToTheStartKeepsTheWeightsNearTheLiveOnes) {
  // L2-SP: the harder the pull, the nearer the candidate stays to the live network.
  const Network& live = cnn_world().live;
  const Dataset corrections = vertical_strokes(20, 4, 3);
  std::vector<double> distances;
  for (float pull : {0.0f, 1.0f, 10.0f}) {
    FineTuneSettings settings;
    settings.pull_to_start = pull;
    distances.push_back(distance(fine_tune_guarded(live, corrections, {}, world().replay, world().validation, settings).candidate, live));
  }
  EXPECT_GT(distances[0], 0);
  EXPECT_LT(distances[1], distances[0]);
  EXPECT_LT(distances[2], distances[1]);
}

TEST(FineTuneRecipe, LowerRatesBelowMoveTheFirstLayerLess) {
  const Network& live = cnn_world().live;
  auto first_layer_change = [&](float decay) {
    FineTuneSettings settings;
    settings.layer_rate_decay = decay;
    const Network candidate = fine_tune_guarded(live, vertical_strokes(20, 4, 3), {}, world().replay, world().validation, settings).candidate;
    return (std::get<Conv2dLayer>(candidate.layers[0]).W - std::get<Conv2dLayer>(live.layers[0]).W).norm();
  };
  const double full = first_layer_change(1.0f), lowered = first_layer_change(0.1f);
  EXPECT_GT(lowered, 0);
  EXPECT_LT(lowered, 0.5 * full);
}

TEST(FineTuneRecipe, DistillationKeepsTheAnswersOnTheReplayCloserToTheLiveOnes) {
  // With the live network's probabilities as the replay's targets, the candidate's probabilities on
  // MNIST-like images move less than with the plain labels, while the new style is still learned.
  const Network& live = cnn_world().live;
  const Dataset& validation = world().validation;
  Matrix pixels(static_cast<Eigen::Index>(validation.size()), 784);
  for (std::size_t i = 0; i < validation.size(); ++i)
    for (int j = 0; j < 784; ++j) pixels(static_cast<Eigen::Index>(i), j) = validation.image(i)[static_cast<std::size_t>(j)];
  const Matrix before = live.predict_proba(pixels);
  auto moved = [&](float distillation) {
    FineTuneSettings settings;
    settings.distillation = distillation;
    const FineTuneResult result = fine_tune_guarded(live, vertical_strokes(20, 4, 3), {}, world().replay, validation, settings);
    EXPECT_GE(evaluate(result.candidate, vertical_strokes(200, 99, 3), 1).accuracy(), 0.9) << "distillation " << distillation;
    return (result.candidate.predict_proba(pixels) - before).cwiseAbs().sum();
  };
  EXPECT_LT(moved(1.0f), moved(0.0f));
}

TEST(FineTuneRecipe, ARecipeOfZeroChangesIsTheOldStepExactly) {
  // The recipe's defaults take the step Network::train_step takes with momentum SGD: the same
  // weights, bit for bit, on the dense network and on the CNN (its batch norms as in training).
  for (const Network* live : {&world().live, &cnn_world().live}) {
    const Dataset corrections = vertical_strokes(20, 4, 3);
    FineTuneSettings settings;
    settings.steps = 5;
    settings.new_share = 1;
    const FineTuneResult result = fine_tune_guarded(*live, corrections, {}, world().replay, world().validation, settings);
    // The same 5 batches by hand: new_share 1 draws every row from the corrections.
    Network by_hand = *live;
    Optimizer optimizer({.kind = OptimizerKind::momentum, .learning_rate = settings.learning_rate, .momentum = settings.momentum});
    Rng rng(settings.seed);
    Matrix X;
    std::vector<std::uint8_t> labels;
    for (int step = 0; step < settings.steps; ++step) {
      std::vector<std::size_t> indices(static_cast<std::size_t>(settings.batch));
      for (std::size_t& index : indices) index = rng.below(corrections.size());
      gather_batch(corrections, indices, by_hand.input_scale, X, labels);
      by_hand.train_step(X, labels, optimizer);
    }
    EXPECT_TRUE(same_weights(result.candidate, by_hand));
  }
}

TEST(GuardSplit, SetsAsideTheSameFiveThousandEveryTime) {
  const Dataset train = bars(6000, 12, "train");
  const auto [replay, validation] = guard_split(train);
  EXPECT_EQ(validation.size(), kGuardValidationImages);
  EXPECT_EQ(replay.size(), train.size() - kGuardValidationImages);
  const auto [replay_again, validation_again] = guard_split(train);
  EXPECT_EQ(validation.pixels, validation_again.pixels);
  EXPECT_EQ(validation.labels, validation_again.labels);
  EXPECT_EQ(replay.pixels, replay_again.pixels);
  // Together they are the training set: every image in exactly one of them.
  auto key = [](const Dataset& data, std::size_t i) { return std::string(data.image(i).begin(), data.image(i).end()); };
  std::map<std::string, int> seen;
  for (std::size_t i = 0; i < train.size(); ++i) ++seen[key(train, i)];
  for (const Dataset* part : {&replay, &validation})
    for (std::size_t i = 0; i < part->size(); ++i) --seen[key(*part, i)];
  for (const auto& [image, count] : seen) ASSERT_EQ(count, 0);
  EXPECT_THROW(guard_split(bars(5000, 1)), Error);
}
