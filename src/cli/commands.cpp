#include "commands.hpp"

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <sstream>

#include "digits/builtin_model.hpp"
#include "digits/checkpoint.hpp"
#include "digits/error.hpp"
#include "digits/fine_tune.hpp"
#include "digits/image.hpp"
#include "digits/classes.hpp"
#include "digits/image_folder.hpp"
#include "digits/json_depth.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"
#include "digits/presets.hpp"
#include "digits/segment.hpp"
#include "digits/trainer.hpp"
#include "feedback/model_versions.hpp"
#include "feedback/store.hpp"
#include "progress.hpp"
#include "report/report.hpp"
#include "server/api.hpp"

namespace digits::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A mistake in how the command was called, as opposed to a failure while running it: exit 2.
struct UsageError : Error {
  using Error::Error;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "digits: %s\n", message.c_str());
  return kUsage;
}

Model load_model_or_builtin(const std::string& path) {
  if (!path.empty()) return load_model(path);
  return parse_model(builtin_model_bytes(), "built-in model");
}

// The files of a folder that were not read, and why: the first few in full, then a count, so that a
// folder of a thousand unreadable images does not bury the training's own report.
void report_skipped(const ImageFolder& folder, const std::string& path) {
  constexpr std::size_t kShown = 5;
  for (std::size_t i = 0; i < folder.errors.size() && i < kShown; ++i)
    std::fprintf(stderr, "digits: skipped %s\n", folder.errors[i].c_str());
  if (folder.errors.size() > kShown)
    std::fprintf(stderr, "digits: skipped %zu more in %s (%zu in all)\n", folder.errors.size() - kShown, path.c_str(),
                 folder.errors.size());
}

// A file's or folder's own name without the folders above it ("my_digits/" → "my_digits"): what
// model metadata records of the paths it was made from, since the file leaves this machine.
std::string last_part(const std::string& path) {
  const fs::path normal = fs::path(path).lexically_normal();
  return (normal.has_filename() ? normal.filename() : normal.parent_path().filename()).string();
}

std::string model_label(const std::string& path) { return path.empty() ? "built-in model" : last_part(path); }

std::string describe(const Network& network) {
  std::string text;
  if (network.dense_only()) {
    for (int size : network.sizes()) text += (text.empty() ? "" : "-") + std::to_string(size);
  } else {
    text = shape_text(network.input_shape()) + " → " + network.architecture();
  }
  return text + " " + std::string(activation_name(network.hidden_activation()));
}

bool only_numbers(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789,") == std::string::npos;
}

// --layers in its first form, dense sizes from the input's 784 to the 10 digits.
std::vector<int> parse_layers(const std::string& text) {
  std::vector<int> sizes;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) {
    char* end = nullptr;
    const long value = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || !std::isdigit(static_cast<unsigned char>(part.front())) || *end != '\0' || value <= 0 ||
        value > 65536)
      throw UsageError("--layers '" + text + "': expected positive sizes separated by commas, like 784,50,20,10");
    sizes.push_back(static_cast<int>(value));
  }
  if (!text.empty() && text.back() == ',')  // getline drops the empty part after a trailing comma
    throw UsageError("--layers '" + text + "': expected positive sizes separated by commas, like 784,50,20,10");
  if (sizes.size() < 2) throw UsageError("--layers '" + text + "': needs at least an input and an output size");
  if (sizes.front() != 784) throw UsageError("--layers '" + text + "': the first size must be 784 (28×28 pixels)");
  if (sizes.back() != kDigitClasses && !has_not_a_digit(sizes.back()))
    throw UsageError("--layers '" + text + "': the last size must be 10 (the digits) or 11 (the digits and \"not a digit\")");
  return sizes;
}

std::string percent(double fraction) {
  char text[16];
  std::snprintf(text, sizeof text, "%.2f", 100 * fraction);
  return text;
}

void write_metrics(const std::string& path, const std::vector<EpochReport>& reports) {
  if (path.empty()) return;
  std::ofstream out(path);
  if (!out) throw Error(path + ": cannot write the metrics file");
  out << "epoch,loss,train_accuracy,test_accuracy,seconds,samples_per_second,validation_accuracy,learning_rate\n";
  for (const EpochReport& r : reports) {
    auto optional = [](double v) { return v >= 0 ? std::to_string(v) : std::string(); };
    out << r.epoch << ',' << r.loss << ',' << optional(r.train_accuracy) << ',' << optional(r.test_accuracy) << ',' << r.seconds << ','
        << r.samples_per_second << ',' << optional(r.validation_accuracy) << ',' << r.learning_rate << '\n';
  }
  if (!out) throw Error(path + ": write failed");
}

// The data set is identified by its files' SHA-256s alone: a model file is handed out, and the
// folder it was trained in would tell others about this machine (a path, a user name).
void record_results(Metadata& metadata, const TrainTestData& data, const std::vector<EpochReport>& reports) {
  metadata["created"] = utc_timestamp();
  for (const auto& [file, digest] : data.sha256) metadata["dataset.sha256." + file] = digest;
  if (!reports.empty()) {
    if (reports.back().test_accuracy >= 0) metadata["accuracy.test"] = percent(reports.back().test_accuracy);
    if (reports.back().train_accuracy >= 0) metadata["accuracy.train"] = percent(reports.back().train_accuracy);
    double seconds = 0;
    for (const EpochReport& r : reports) seconds += r.seconds;
    metadata["training.seconds"] = std::to_string(static_cast<int>(std::lround(seconds)));
  }
}

// Whether the data held any image of `label`. A class it has none of (MNIST has no "not a digit")
// has no accuracy: "–" in the text, null in the JSON.
bool has_examples(const Evaluation& result, int label) {
  const auto& row = result.confusion[static_cast<std::size_t>(label)];
  return std::any_of(row.begin(), row.end(), [](std::size_t count) { return count > 0; });
}

void print_evaluation(const Evaluation& result) {
  std::printf("accuracy: %s%% (%zu/%zu)\n", percent(result.accuracy()).c_str(), result.correct, result.total);
  std::printf("per class:");
  // The eleventh class, "not a digit", is written "none".
  auto name = [](int label) { return label == kNotADigit ? std::string("none") : std::to_string(label); };
  for (int label = 0; label < result.classes; ++label) {
    if (!has_examples(result, label)) std::printf("  %s: –", name(label).c_str());
    else std::printf("  %s: %s%%", name(label).c_str(), percent(result.class_accuracy(label)).c_str());
  }
  std::printf("\nconfusion matrix (rows: true digit, columns: predicted digit)\n      ");
  for (int p = 0; p < result.classes; ++p) std::printf("%6s", name(p).c_str());
  std::printf("\n");
  for (int t = 0; t < result.classes; ++t) {
    std::printf("%6s", name(t).c_str());
    for (int p = 0; p < result.classes; ++p) std::printf("%6zu", result.confusion[static_cast<std::size_t>(t)][static_cast<std::size_t>(p)]);
    std::printf("\n");
  }
}

json evaluation_json(const Evaluation& result) {
  json per_class = json::array();
  json confusion = json::array();
  for (int label = 0; label < result.classes; ++label) {
    const auto& row = result.confusion[static_cast<std::size_t>(label)];
    per_class.push_back(has_examples(result, label) ? json(result.class_accuracy(label)) : json(nullptr));
    confusion.push_back(std::vector<std::size_t>(row.begin(), row.begin() + result.classes));
  }
  // With an eleventh class, the last row and column are "not a digit" (label 10).
  return {{"accuracy", result.accuracy()}, {"correct", result.correct}, {"total", result.total},
          {"per_class_accuracy", per_class}, {"confusion", confusion}};
}

// The report shows this many of the surest mistakes: four rows on a wide screen.
constexpr std::size_t kMistakesShown = 24;

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

// The whole recipe, so a model file says how it was made.
void record_recipe(Metadata& metadata, const Preset& preset, const TrainingRecipe& recipe) {
  metadata["training.preset"] = preset.name;
  metadata["training.init"] = std::string(init_name(preset.init));
  metadata["training.optimizer"] = std::string(optimizer_name(recipe.optimizer.kind));
  metadata["training.learning_rate"] = number_text(recipe.optimizer.learning_rate);
  metadata["training.momentum"] = number_text(recipe.optimizer.momentum);
  metadata["training.weight_decay"] = number_text(recipe.optimizer.weight_decay);
  metadata["training.schedule"] = describe(recipe.schedule);
  metadata["training.augment"] = describe(recipe.augment);
  metadata["training.dropout"] = number_text(recipe.dropout);
  if (recipe.label_smoothing > 0) metadata["training.label_smoothing"] = number_text(recipe.label_smoothing);
  if (recipe.weight_averaging > 0) metadata["training.ema"] = number_text(recipe.weight_averaging);
  if (recipe.calibrate) metadata["training.calibrate"] = "temperature";
  metadata["training.validation"] = std::to_string(recipe.validation);
  metadata["training.batch"] = std::to_string(recipe.batch);
  metadata["training.epochs"] = std::to_string(recipe.epochs);
  metadata["training.seed"] = std::to_string(recipe.seed);
}

int run_train_impl(const TrainOptions& options) {
  Preset preset;
  try {
    preset = find_preset(options.preset);
    if (options.activation) preset.hidden = parse_activation(*options.activation);
    if (options.init) preset.init = parse_init(*options.init);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (options.layers && only_numbers(*options.layers)) {
    preset.sizes = parse_layers(*options.layers);
    preset.layers.clear();
  } else if (options.layers) {
    preset.layers = *options.layers;  // layers of any kind: checked as the network is built, next
  }
  // Built before any data is read, so a layer list that cannot work is a usage error at once.
  std::optional<Network> built;
  try {
    built.emplace(build_network(preset));
  } catch (const Error& e) {
    throw UsageError("--layers '" + preset.layers + "': " + e.what());
  }
  Network& network = *built;
  if (network.inputs() != 784) throw UsageError("--layers: the network must take the 784 pixels of a 28×28 image");
  if (network.classes() != kDigitClasses && !has_not_a_digit(network.classes()))
    throw UsageError("--layers '" + preset.layers + "': the last layer must have 10 outputs (the digits) or 11 (and \"not a digit\")");
  if (preset.hidden == Activation::identity) throw UsageError("--activation identity would make the network linear");
  TrainingRecipe& recipe = preset.recipe;
  try {
    if (options.optimizer) recipe.optimizer.kind = parse_optimizer(*options.optimizer);
    if (options.schedule) recipe.schedule = parse_schedule(*options.schedule);
    if (options.augment) recipe.augment = parse_augment(*options.augment);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (options.epochs) recipe.epochs = *options.epochs;
  if (options.batch) recipe.batch = *options.batch;
  if (options.learning_rate) recipe.optimizer.learning_rate = *options.learning_rate;
  if (options.momentum) recipe.optimizer.momentum = *options.momentum;
  if (options.weight_decay) recipe.optimizer.weight_decay = *options.weight_decay;
  if (options.dropout) recipe.dropout = *options.dropout;
  if (options.label_smoothing) recipe.label_smoothing = *options.label_smoothing;
  if (options.ema) recipe.weight_averaging = *options.ema;
  if (recipe.weight_averaging > 0 && (!options.checkpoint.empty() || !options.resume.empty()))
    throw UsageError("--ema cannot be combined with --checkpoint or --resume: a checkpoint does not hold the averaged weights");
  if (options.validation) recipe.validation = *options.validation;
  if (options.test_each_epoch) recipe.measure_test_each_epoch = true;
  if (options.patience) recipe.patience = *options.patience;
  if (recipe.patience > 0 && recipe.validation == 0) throw UsageError("--patience needs a validation set (--validation N)");
  if (options.calibrate && options.no_calibrate) throw UsageError("--calibrate and --no-calibrate contradict each other");
  if (options.calibrate) recipe.calibrate = true;
  if (options.no_calibrate) recipe.calibrate = false;
  if (recipe.calibrate && recipe.validation == 0)
    throw UsageError("--calibrate needs a validation set (--validation N) to fit the temperature on" +
                     std::string(options.calibrate ? "" : "; the preset calibrates: add --no-calibrate to train without one"));
  if (options.seed) recipe.seed = *options.seed;
  recipe.threads = options.threads;
  if (options.report) report::check_report_path(*options.report);  // before the training, not after

  const fs::path data_dir = resolve_data_dir(options.data);
  const TrainTestData data = load_train_test(data_dir);
  Dataset extra;
  for (const std::string& images : options.images) {
    const ImageFolder folder = load_image_folder(images, has_not_a_digit(network.classes()));
    report_skipped(folder, images);
    extra.append(folder.data);
    extra.name += (extra.name.empty() ? "" : " + ") + images;
  }
  network.initialize(preset.init, recipe.seed);
  TrainingState state{Optimizer(recipe.optimizer), 0};
  if (!options.resume.empty()) {
    Model checkpoint = load_model(options.resume);
    if (checkpoint.network.sizes() != network.sizes() || checkpoint.network.architecture() != network.architecture() ||
        checkpoint.network.hidden_activation() != network.hidden_activation())
      throw Error(options.resume + ": its network (" + describe(checkpoint.network) + ") is not the recipe's (" + describe(network) + ")");
    state = restore_training_state(checkpoint, recipe.optimizer);
    network = std::move(checkpoint.network);
  }

  std::printf("training %s (%zu parameters), preset %s\n", describe(network).c_str(), network.parameter_count(), preset.name.c_str());
  std::printf("  init %s, input scale %g, %s lr %g", std::string(init_name(preset.init)).c_str(), static_cast<double>(network.input_scale),
              std::string(optimizer_name(recipe.optimizer.kind)).c_str(), static_cast<double>(recipe.optimizer.learning_rate));
  if (recipe.optimizer.kind == OptimizerKind::momentum || recipe.optimizer.kind == OptimizerKind::nesterov)
    std::printf(" (momentum %g)", static_cast<double>(recipe.optimizer.momentum));
  std::printf(", schedule %s", describe(recipe.schedule).c_str());
  if (recipe.optimizer.weight_decay > 0) std::printf(", weight decay %g", static_cast<double>(recipe.optimizer.weight_decay));
  if (recipe.dropout > 0) std::printf(", dropout %g", static_cast<double>(recipe.dropout));
  if (recipe.label_smoothing > 0) std::printf(", label smoothing %g", static_cast<double>(recipe.label_smoothing));
  if (recipe.weight_averaging > 0) std::printf(", weight average (EMA) %g", static_cast<double>(recipe.weight_averaging));
  if (recipe.calibrate) std::printf(", calibrated");
  std::printf("\n  batch %d, %d epochs, seed %llu, %d threads, augment %s", recipe.batch, recipe.epochs,
              static_cast<unsigned long long>(recipe.seed), resolve_threads(recipe.threads), describe(recipe.augment).c_str());
  if (recipe.validation > 0) std::printf(", %zu validation images", recipe.validation);
  if (state.epochs_done > 0) std::printf(", resuming after epoch %d", state.epochs_done);
  std::printf("\n  data %s: %zu training and %zu test images\n", data_dir.c_str(), data.train.size(), data.test.size());
  const auto not_digits = static_cast<std::size_t>(std::count(extra.labels.begin(), extra.labels.end(), kNotADigit));
  if (extra.size() > 0) {
    std::printf("  and %zu extra training images", extra.size());
    if (not_digits > 0) std::printf(" (%zu of them not digits)", not_digits);
    std::printf(" from %s\n", extra.name.c_str());
  }
  std::fflush(stdout);

  Metadata metadata;
  record_recipe(metadata, preset, recipe);
  if (extra.size() > 0) {
    std::string folders;
    for (const std::string& images : options.images) folders += (folders.empty() ? "" : ", ") + last_part(images);
    metadata["training.extra_images"] = std::to_string(extra.size()) + " from " + folders;
    if (not_digits > 0) metadata["training.not_a_digit_images"] = std::to_string(not_digits);
  }
  TrainingDisplay display = TrainingDisplay::for_terminal();
  TrainingObserver observer = display.observer();
  if (!options.checkpoint.empty())
    observer.on_checkpoint = [&](const Network& current, const TrainingState& now) { save_checkpoint(options.checkpoint, current, now, metadata); };
  const auto start = std::chrono::steady_clock::now();
  const std::vector<EpochReport> reports = fit(network, data.train, &data.test, recipe, state, observer, extra.size() > 0 ? &extra : nullptr);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  record_results(metadata, data, reports);
  if (recipe.validation > 0 && !reports.empty()) {
    const auto best = std::max_element(reports.begin(), reports.end(), [](const EpochReport& a, const EpochReport& b) { return a.validation_accuracy < b.validation_accuracy; });
    metadata["training.best_epoch"] = std::to_string(best->epoch);
    metadata["accuracy.validation"] = percent(best->validation_accuracy);
    std::printf("kept the weights of epoch %d (validation %s%%)\n", best->epoch, percent(best->validation_accuracy).c_str());
  }
  // The final figure, of the weights kept, unless the last epoch's reading of the test set is it.
  if (!reports.empty() && (recipe.validation > 0 || reports.back().test_accuracy < 0))
    metadata["accuracy.test"] = percent(evaluate(network, data.test, recipe.threads).accuracy());
  if (recipe.calibrate) {
    metadata["training.temperature"] = number_text(state.temperature);
    std::printf("calibrated: the logits divided by T = %.4g, the temperature of least loss on the validation images\n", state.temperature);
  }
  save_model(options.out, network, metadata);
  write_metrics(options.metrics, reports);
  if (options.report) {
    report::ReportContents contents;
    contents.trained = true;
    contents.model = "saved as " + options.out;
    contents.network = &network;
    contents.metadata = metadata;
    contents.epochs = reports;
    contents.dataset = "MNIST-layout test set in " + data_dir.string();
    contents.images = &data.test;
    contents.evaluation = evaluate(network, data.test, recipe.threads);
    contents.mistakes = report::most_confident_mistakes(network, data.test, kMistakesShown);
    contents.created = utc_timestamp();
    report::write_report(*options.report, contents);
  }
  if (!reports.empty())
    std::printf("test accuracy %s%%, %.1f s in all; saved %s\n", metadata["accuracy.test"].c_str(), wall, options.out.c_str());
  else
    std::printf("no epochs run; saved the weights to %s\n", options.out.c_str());
  if (options.report) std::printf("report: %s\n", options.report->c_str());
  return kSuccess;
}

// The file the page without a server downloads (web/wasm-mode.js; docs/feedback.md, "The page's
// export"): JSON, {"format": "digits-feedback", "version": 1, "judgements": [{"label": 7,
// "drawing": "data:image/png;base64,…", …}, …]}. Each drawing is decoded and preprocessed here, by
// the same functions as a judgement sent to the server; the other fields are for people.
Dataset read_page_export(const fs::path& path) {
  constexpr std::uintmax_t kMaxExportBytes = std::uintmax_t{1} << 30;  // about 50,000 drawings
  std::error_code ec;
  if (fs::file_size(path, ec) > kMaxExportBytes) throw Error(path.string() + ": larger than 1 GiB; not an export of the page's judgements");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path.string() + ": read error");
  nlohmann::json file;
  try {
    file = parse_json_bounded(text);
  } catch (const std::exception& e) {
    throw Error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!file.is_object() || file.value("format", "") != "digits-feedback")
    throw Error(path.string() + ": JSON, but not the page's export (its \"format\" is not \"digits-feedback\")");
  if (file.value("version", 0) != 1) throw Error(path.string() + ": export version " + file["version"].dump() + "; this program reads version 1");
  if (!file.contains("judgements") || !file["judgements"].is_array()) throw Error(path.string() + ": no \"judgements\" array");
  Dataset data;
  data.name = path.string();
  for (std::size_t i = 0; i < file["judgements"].size(); ++i) {
    const nlohmann::json& j = file["judgements"][i];
    const std::string where = path.string() + ": judgement " + std::to_string(i + 1);
    if (!j.is_object() || !j.contains("label") || !j["label"].is_number_integer() || j["label"].get<long long>() < 0 || j["label"].get<long long>() > kNotADigit)
      throw Error(where + ": \"label\" must be a digit 0–9, or 10 for \"not a digit\"");
    if (!j.contains("drawing") || !j["drawing"].is_string()) throw Error(where + ": \"drawing\" must be a data URL of a PNG");
    std::string bytes;
    try {
      bytes = server::decode_data_url(j["drawing"].get<std::string>());
    } catch (const server::RequestError& e) {
      throw Error(where + ": " + e.what());
    }
    const Preprocessed input = preprocess(decode_image({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()}, where));
    for (float v : input.pixels) data.pixels.push_back(static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L)));
    data.labels.push_back(static_cast<std::uint8_t>(j["label"].get<int>()));
  }
  if (data.size() == 0) throw Error(path.string() + ": holds no judgements");
  return data;
}

// The judgements behind `improve --feedback PATH`: a feedback database, the page's export (JSON),
// an exported IDX images file (its labels file beside it, named with labels-idx1 for images-idx3),
// or a folder holding a database or IDX files.
Dataset read_feedback(const fs::path& given) {
  std::error_code ec;
  fs::path path = given;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(feedback::feedback_database(path), ec))
      path = feedback::feedback_database(path);
    else if (fs::exists(path / "feedback-images-idx3-ubyte", ec))
      path = path / "feedback-images-idx3-ubyte";
    else
      throw Error(given.string() + ": a folder with neither feedback.db nor feedback-images-idx3-ubyte in it");
  }
  if (!fs::is_regular_file(path, ec)) throw Error(path.string() + ": no such feedback file");
  std::ifstream in(path, std::ios::binary);
  char magic[16] = {};
  in.read(magic, sizeof magic);
  if (in.gcount() == sizeof magic && std::string(magic, sizeof magic) == std::string("SQLite format 3\0", 16)) {
    const feedback::Store store(path, /*create_if_missing=*/false);
    Dataset data = feedback::to_dataset(feedback::all_examples(store), path.string());
    if (data.size() == 0) throw Error(path.string() + ": holds no judgements yet");
    return data;
  }
  in.clear();
  in.seekg(0);
  char first = ' ';
  while (in.get(first) && std::isspace(static_cast<unsigned char>(first))) {
  }
  if (first == '{') return read_page_export(path);
  std::string labels_name = path.filename().string();
  const std::size_t at = labels_name.find("images-idx3");
  if (at == std::string::npos)
    throw Error(path.string() + ": neither a feedback database, nor the page's export (JSON), nor an IDX images file named like feedback-images-idx3-ubyte");
  labels_name.replace(at, std::string("images-idx3").size(), "labels-idx1");
  const fs::path labels = path.parent_path() / labels_name;
  if (!fs::exists(labels, ec)) throw Error(path.string() + ": its labels file " + labels.string() + " is missing");
  Dataset data = read_idx(path, labels, path.string(), kNotADigit);
  if (data.size() == 0) throw Error(path.string() + ": holds no images");
  return data;
}

// `improve --feedback`: the server's guarded fine-tune, run once on every stored judgement.
int run_improve_feedback(const ImproveOptions& options) {
  Model model = load_model_or_builtin(options.model);
  Dataset corrections = read_feedback(options.feedback);
  if (!has_not_a_digit(model.network.classes())) {
    // "Not a digit" needs the eleventh output: such judgements are passed over, as the server's
    // learner does (a store may hold them from a model that had it), and said so.
    Dataset digits_only;
    digits_only.name = corrections.name;
    digits_only.rows = corrections.rows, digits_only.cols = corrections.cols;
    for (std::size_t i = 0; i < corrections.size(); ++i) {
      if (corrections.labels[i] == kNotADigit) continue;
      const std::span<const std::uint8_t> image = corrections.image(i);
      digits_only.pixels.insert(digits_only.pixels.end(), image.begin(), image.end());
      digits_only.labels.push_back(corrections.labels[i]);
    }
    if (const std::size_t passed = corrections.size() - digits_only.size(); passed > 0) {
      std::fprintf(stderr, "digits: passed over %zu judgement%s of \"not a digit\": %s has %d outputs, none of them \"not a digit\"\n", passed,
                   passed == 1 ? "" : "s", model_label(options.model).c_str(), model.network.classes());
      if (digits_only.size() == 0)
        throw Error(options.feedback + ": every judgement says \"not a digit\", which " + model_label(options.model) +
                    " cannot learn; use a model with 11 outputs (digits train --preset app)");
    }
    corrections = std::move(digits_only);
  }
  const fs::path data_dir = resolve_data_dir(options.data);
  const TrainTestData mnist = load_train_test(data_dir);
  const auto [replay, validation] = guard_split(mnist.train);

  FineTuneSettings settings;
  if (options.steps) settings.steps = *options.steps;
  if (options.batch_given) settings.batch = options.batch;
  if (options.learning_rate) settings.learning_rate = *options.learning_rate;
  settings.seed = options.seed;
  settings.threads = 0;  // nobody is waiting on predictions here
  std::printf("fine-tuning %s (%s) on %zu judgements from %s\n", model_label(options.model).c_str(), describe(model.network).c_str(), corrections.size(),
              options.feedback.c_str());
  std::printf("  %d steps of %d (%.0f%% judgements, the rest %zu MNIST training images), momentum SGD lr %g, seed %llu\n", settings.steps,
              settings.batch, 100 * settings.new_share, replay.size(), static_cast<double>(settings.learning_rate),
              static_cast<unsigned long long>(settings.seed));
  std::printf("  learning: %s, batch norm %s, the MNIST replay distilled from the live model at %g\n",
              settings.trained_layers == 0 ? std::string("every layer").c_str() : ("the last " + std::to_string(settings.trained_layers) + " conv or dense layers").c_str(),
              settings.batch_norm == FineTuneSettings::BatchNorm::batch ? "as in training" : settings.batch_norm == FineTuneSettings::BatchNorm::frozen ? "frozen" : "fixed",
              static_cast<double>(settings.distillation));
  std::printf("  guard: %zu held-out MNIST training images may lose at most %.2f points; the judgements must be read right more often\n",
              validation.size(), 100 * settings.max_validation_drop);
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  const FineTuneResult result = fine_tune_guarded(model.network, corrections, {}, replay, validation, settings);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const GuardVerdict& v = result.verdict;
  std::printf("  validation accuracy %s%% -> %s%%, judgements read right %s%% -> %s%%, %.2f s\n", percent(v.validation_before).c_str(),
              percent(v.validation_after).c_str(), percent(v.corrections_before).c_str(), percent(v.corrections_after).c_str(), seconds);
  std::printf("%s\n", v.reason.c_str());
  if (!v.accepted) {
    std::fprintf(stderr, "digits: the guard rejected the fine-tuned model, so %s was not written: %s\n", options.out.c_str(), v.reason.substr(std::string("rejected: ").size()).c_str());
    return kFailure;
  }

  Metadata metadata = model.metadata;
  std::erase_if(metadata, [](const auto& entry) {
    return entry.first.starts_with("checkpoint.") || entry.first.starts_with("optimizer.") || entry.first.starts_with("improved.") ||
           entry.first.starts_with("version.") || entry.first == "accuracy.train" || entry.first == "accuracy.validation" ||
           entry.first == "dataset.directory";  // an older model's training folder: nothing of this machine goes out
  });
  long learned_before = 0;
  if (auto it = model.metadata.find(feedback::kCorrectionsLearnedKey); it != model.metadata.end()) learned_before = std::atol(it->second.c_str());
  feedback::record_learning(metadata, v.validation_after, learned_before + static_cast<long>(corrections.size()));
  metadata["improved.from"] = model_label(options.model);
  metadata["improved.feedback"] = last_part(options.feedback);
  metadata["improved.extra_images"] = std::to_string(corrections.size());
  metadata["improved.steps"] = std::to_string(settings.steps);
  metadata["created"] = utc_timestamp();
  // The test set plays no part in the decision; it is measured only to report.
  metadata["accuracy.test"] = percent(evaluate(result.candidate, mnist.test).accuracy());
  save_model(options.out, result.candidate, metadata);
  std::printf("test accuracy %s%% -> %s%%; saved %s\n", percent(evaluate(model.network, mnist.test).accuracy()).c_str(), metadata["accuracy.test"].c_str(),
              options.out.c_str());
  return kSuccess;
}

}  // namespace

fs::path resolve_data_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("DIGITS_DATA"); env && *env) return env;
  std::error_code ec;
  if (fs::is_directory("data/mnist", ec)) return "data/mnist";
  const fs::path in_source = fs::path(DIGITS_SOURCE_DIR) / "data" / "mnist";
  if (fs::is_directory(in_source, ec)) return in_source;
  throw Error("no MNIST data found: run scripts/fetch-mnist, or point --data (or DIGITS_DATA) at a directory holding the four IDX files");
}

int run_train(const TrainOptions& options) {
  try {
    return run_train_impl(options);
  } catch (const UsageError& e) {
    return usage_error(e.what());
  }
}

int run_evaluate(const EvaluateOptions& options) {
  if (options.report) report::check_report_path(*options.report);
  const Model model = load_model_or_builtin(options.model);
  // The test set: MNIST's, or a folder of labelled images read through the app's preprocessing.
  std::optional<TrainTestData> mnist;
  ImageFolder folder;
  std::string source;
  if (!options.images.empty()) {
    folder = load_image_folder(options.images, has_not_a_digit(model.network.classes()));
    report_skipped(folder, options.images);
    if (folder.data.size() == 0) {
      std::fprintf(stderr, "digits: %s: no usable image (expected image files named <label>_anything.png, label 0-9)\n", options.images.c_str());
      return kFailure;
    }
    source = options.images;
  } else {
    const fs::path data_dir = resolve_data_dir(options.data);
    mnist = load_train_test(data_dir);
    source = data_dir.string();
  }
  const Dataset& test = mnist ? mnist->test : folder.data;
  const auto start = std::chrono::steady_clock::now();
  const Evaluation result = evaluate(model.network, test, options.threads);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.json) {
    json out = evaluation_json(result);
    out["model"] = model_label(options.model);
    out["architecture"] = model.metadata.at("architecture");
    out["data"] = source;
    if (!mnist) out["skipped"] = folder.errors;
    out["seconds"] = seconds;
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("model: %s (%s), %s: %s (%zu images", model_label(options.model).c_str(), describe(model.network).c_str(),
                mnist ? "test set" : "images", source.c_str(), test.size());
    if (!mnist) std::printf(", %zu skipped", folder.errors.size());
    std::printf("), %.1f ms\n", seconds * 1000);
    print_evaluation(result);
  }
  if (options.report) {
    report::ReportContents contents;
    contents.model = model_label(options.model);
    contents.network = &model.network;
    contents.metadata = model.metadata;
    contents.dataset = mnist ? "MNIST-layout test set in " + source : "the labelled images of " + source + ", through the app's preprocessing";
    contents.images = &test;
    if (!mnist) contents.image_names = folder.files;
    contents.evaluation = result;
    contents.mistakes = report::most_confident_mistakes(model.network, test, kMistakesShown);
    contents.created = utc_timestamp();
    report::write_report(*options.report, contents);
    // With --json, standard output is the JSON alone.
    if (!options.json) std::printf("report: %s\n", options.report->c_str());
  }
  return kSuccess;
}

// Answers each file of `options` with `answer_one`: a file that fails is reported on stderr (and,
// with --json, as {"file", "error"} in its place) and the others go on. kFailure if any failed.
template <typename AnswerOne>
int answer_each_file(const PredictOptions& options, AnswerOne answer_one) {
  int failures = 0;
  for (const std::string& file : options.files) {
    try {
      answer_one(file);
    } catch (const Error& e) {
      ++failures;
      const std::string message = e.what();
      std::fprintf(stderr, "digits: %s\n", message.starts_with(file) ? message.c_str() : (file + ": " + message).c_str());
      if (options.json) std::printf("%s\n", json{{"file", file}, {"error", message}}.dump().c_str());
    }
    std::fflush(stdout);
  }
  return failures ? kFailure : kSuccess;
}

int run_predict(const PredictOptions& options) {
  const Model model = load_model_or_builtin(options.model);
  return answer_each_file(options, [&](const std::string& file) {
    const Preprocessed input = preprocess(read_image(file));
    const Matrix pixels = Eigen::Map<const Matrix>(input.pixels.data(), 1, static_cast<Eigen::Index>(input.pixels.size()));
    const Matrix probabilities = model.network.predict_proba(pixels);
    const std::span<const float> all(probabilities.data(), static_cast<std::size_t>(probabilities.size()));
    if (options.json) {
      // The fields of POST /api/predict's answer (answers.hpp), with the file's name.
      json out = answers::answer_fields(all);
      out["file"] = file;
      out["inverted"] = input.inverted;
      std::printf("%s\n", out.dump().c_str());
    } else if (const ClassReading classes = read_classes(all); classes.not_a_digit) {
      std::printf("%s: not a digit (%.1f%%)\n", file.c_str(), 100.0 * *classes.not_a_digit_probability);
    } else {
      std::printf("%s: %d (%.1f%%)\n", file.c_str(), classes.digit, 100.0 * classes.probability);
    }
  });
}

// `read`: every digit in each image (digits/segment.hpp), the same images and limits as predict.
int run_read(const PredictOptions& options) {
  const Model model = load_model_or_builtin(options.model);
  return answer_each_file(options, [&](const std::string& file) {
    const NumberReading reading = read_number(model.network, read_image(file));
    if (options.json) {
      json out = answers::number_answer(reading);
      out["file"] = file;
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("%s: %s", file.c_str(), reading.digits.empty() ? "no digits" : reading.text().c_str());
      if (!reading.not_digits.empty()) std::printf(" (and %zu %s not digits)", reading.not_digits.size(), reading.not_digits.size() == 1 ? "part" : "parts");
      std::printf("\n");
    }
  });
}

int run_improve(const ImproveOptions& options) {
  if (!options.feedback.empty()) return run_improve_feedback(options);
  Model model = load_model_or_builtin(options.model);
  Dataset extra;
  extra.name = "extra images";
  if (!options.images_dir.empty()) {
    const ImageFolder folder = load_image_folder(options.images_dir, has_not_a_digit(model.network.classes()));
    report_skipped(folder, options.images_dir);
    extra.append(folder.data);
  }
  if (!options.idx.empty()) extra.append(read_idx(options.idx[0], options.idx[1], options.idx[0]));
  if (options.no_mnist && extra.size() == 0) return usage_error("--no-mnist needs extra images (--images or --idx)");

  TrainingRecipe recipe;
  recipe.epochs = options.epochs;
  recipe.batch = options.batch;
  recipe.seed = options.seed;
  recipe.optimizer.kind = OptimizerKind::sgd;
  if (auto it = model.metadata.find("training.learning_rate"); it != model.metadata.end()) recipe.optimizer.learning_rate = std::stof(it->second);
  if (auto it = model.metadata.find("training.optimizer"); it != model.metadata.end()) recipe.optimizer.kind = parse_optimizer(it->second);
  if (auto it = model.metadata.find("training.momentum"); it != model.metadata.end()) recipe.optimizer.momentum = std::stof(it->second);
  if (options.learning_rate) recipe.optimizer.learning_rate = *options.learning_rate;

  std::optional<TrainTestData> mnist;
  fs::path data_dir;
  if (!options.no_mnist) {
    data_dir = resolve_data_dir(options.data);
    mnist = load_train_test(data_dir);
  }
  const Dataset* test = mnist ? &mnist->test : nullptr;
  std::printf("improving %s (%s) for %d epochs on %s%zu extra images\n", model_label(options.model).c_str(), describe(model.network).c_str(),
              recipe.epochs, mnist ? "MNIST and " : "", extra.size());
  if (test) std::printf("  test accuracy before: %s%%\n", percent(evaluate(model.network, *test).accuracy()).c_str());
  std::fflush(stdout);

  // A checkpoint brings its optimizer's moments, so momentum and Adam carry on where they were;
  // epochs count on from the checkpoint's. (For an exact continuation of a recipe, with its
  // schedule, use `digits train --resume`.)
  TrainingState state{Optimizer(recipe.optimizer), 0};
  if (is_checkpoint(model)) {
    state = restore_training_state(model, recipe.optimizer);
    std::printf("  continuing the checkpoint's %s state after epoch %d\n", std::string(optimizer_name(recipe.optimizer.kind)).c_str(), state.epochs_done);
  }
  const int epochs_to_run = recipe.epochs;
  recipe.epochs += state.epochs_done;
  Dataset training = extra;
  if (mnist) {
    training = mnist->train;
    training.name = "MNIST train + extra images";
    training.append(extra);
  }
  TrainingDisplay display = TrainingDisplay::for_terminal();
  const std::vector<EpochReport> reports = fit(model.network, training, test, recipe, state, display.observer());

  Metadata metadata = model.metadata;
  std::erase_if(metadata, [](const auto& entry) {
    return entry.first.starts_with("checkpoint.") || entry.first.starts_with("optimizer.") || entry.first == "dataset.directory";
  });
  metadata["improved.from"] = model_label(options.model);
  metadata["improved.extra_images"] = std::to_string(extra.size());
  metadata["improved.epochs"] = std::to_string(epochs_to_run);
  if (mnist) {
    record_results(metadata, *mnist, reports);
  } else {
    metadata["created"] = utc_timestamp();
    metadata.erase("accuracy.test");
    metadata.erase("accuracy.train");
  }
  save_model(options.out, model.network, metadata);
  write_metrics(options.metrics, reports);
  std::printf("saved %s\n", options.out.c_str());
  return kSuccess;
}

// `convert`: the same model, its weights stored as F16 or F32 (model_file.hpp); metadata and a
// checkpoint's optimizer state (always F32) go along unchanged.
int run_convert(const ConvertOptions& options) {
  const Model model = load_model_or_builtin(options.model);
  const Storage storage = options.dtype == "f16" ? Storage::f16 : Storage::f32;
  save_model(options.out, model.network, model.metadata, model.extra, storage);
  std::error_code ec;
  std::printf("saved %s: %s, weights as %s, %ju bytes\n", options.out.c_str(), model_label(options.model).c_str(), storage == Storage::f16 ? "F16" : "F32",
              static_cast<std::uintmax_t>(fs::file_size(options.out, ec)));
  return kSuccess;
}

}  // namespace digits::cli
