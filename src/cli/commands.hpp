// The `digits` subcommands. main.cpp parses the flags into these structs; each run_* does the work
// through the library and returns the process's exit code.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace digits::cli {

enum ExitCode { kSuccess = 0, kFailure = 1, kUsage = 2 };

struct TrainOptions {
  std::string preset = "seed";
  std::optional<std::string> layers, activation, init, optimizer, schedule, augment;
  std::optional<int> epochs, batch, patience;
  std::optional<float> learning_rate, momentum, weight_decay, dropout, label_smoothing, ema;
  std::optional<std::size_t> validation;
  std::optional<std::uint64_t> seed;
  std::string data, out = "model.safetensors", metrics, checkpoint, resume;
  std::optional<std::string> report;  // write the HTML report here (src/report)
  std::vector<std::string> images;  // folders of <label>_anything.png (and none_… for an 11-class network) added to the training images
  bool calibrate = false, no_calibrate = false;  // temperature scaling after training on, or off (the preset's otherwise)
  bool test_each_epoch = false;  // read the test set after every epoch, though the preset reads it once
  int threads = 0;
};

struct EvaluateOptions {
  std::string model, data;
  std::string images;  // a folder of <label>_anything.png to evaluate instead of the MNIST test set
  std::optional<std::string> report;  // write the HTML report here (src/report)
  bool json = false;
  int threads = 0;
};

struct PredictOptions {
  std::string model;
  std::vector<std::string> files;
  bool json = false;
};

struct ImproveOptions {
  std::string model, out, data;
  std::string images_dir;                 // a folder of <label>_anything.png
  std::vector<std::string> idx;           // an IDX pair: images, labels
  bool no_mnist = false;                  // train on the extra images alone
  int epochs = 1, batch = 40;
  std::optional<float> learning_rate;
  std::uint64_t seed = 1;
  std::string metrics;
  // --feedback: a guarded fine-tune on stored judgements (a feedback.db, an exported IDX images
  // file, or a folder holding either) instead of epochs of training.
  std::string feedback;
  std::optional<int> steps;
  bool batch_given = false;  // --batch was given (the fine-tune's default batch differs from training's)
};

struct ConvertOptions {
  std::string model, out;
  std::string dtype = "f16";  // f16 or f32: how the weights are stored
};

// Where the shared store is (docs/scaling.md): --store, else the first line of --store-file, else
// $DIGITS_STORE (unless --state-dir was given), so that a password need not be on the command line
// (ps shows it to every user).
struct StoreFlags {
  std::string store, store_file;
};

struct FeedbackExportOptions {
  std::string state_dir;  // empty: feedback::default_state_dir()
  StoreFlags store;       // or the judgements in a PostgreSQL
  std::string out;
  bool png = false;
};

struct ModelVersionsOptions {
  std::string state_dir;
  StoreFlags store;          // or the versions in a PostgreSQL (a rollback there switches every replica)
  std::string version_text;  // rollback: the version to make current, as typed; empty = the current one's parent
};

// `digits store copy`: everything a store holds, into an empty one (docs/scaling.md). Each side is
// a state directory or a PostgreSQL connection string; the one not given is $DIGITS_STORE.
struct StoreCopyOptions {
  std::string from, to;
};

// The PostgreSQL connection string, or "" for the state directory (also when `state_dir` is given
// and neither flag is: an explicit folder wins over $DIGITS_STORE). Throws Error for a file that
// cannot be read, or a string that is no PostgreSQL connection (naming the flag, not the string).
std::string store_connection(const StoreFlags& flags, const std::string& state_dir = "");

int run_store_copy(const StoreCopyOptions& options);

// The MNIST directory: the flag, else $DIGITS_DATA, else data/mnist (here or in the source tree).
// Throws Error saying how to get MNIST when there is none.
std::filesystem::path resolve_data_dir(const std::string& flag);

int run_train(const TrainOptions& options);
int run_evaluate(const EvaluateOptions& options);
int run_predict(const PredictOptions& options);
int run_read(const PredictOptions& options);
int run_improve(const ImproveOptions& options);
int run_convert(const ConvertOptions& options);
int run_feedback_export(const FeedbackExportOptions& options);
int run_model_list(const ModelVersionsOptions& options);
int run_model_rollback(const ModelVersionsOptions& options);

}  // namespace digits::cli
