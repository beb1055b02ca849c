// `digits`: train, evaluate and use the handwritten-digit network from the command line.
// Flags are parsed here; the work happens in commands.cpp through the library.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "commands.hpp"
#include "feedback/postgres_store.hpp"
#include "serve.hpp"

using namespace digits::cli;

namespace {

// A PostgreSQL connection string given on the command line may hold a password, and ps (or
// /proc/PID/cmdline) shows every process's arguments to every user. Once parsed (CLI11 keeps its
// own copies), the argument's bytes are overwritten with stars: a long-running server shows
// "--store ****". The moment before parsing remains, which --store-file and $DIGITS_STORE avoid.
void hide_connection_strings(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    for (const std::string_view flag : {"--store", "--from", "--to"}) {
      char* value = nullptr;
      if (arg == flag && i + 1 < argc)
        value = argv[i + 1];
      else if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=')
        value = argv[i] + flag.size() + 1;
      if (value && digits::feedback::is_postgres_connection(value)) std::memset(value, '*', std::strlen(value));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"digits: a handwritten-digit classifier whose neural network is written from scratch"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show the help of every command");

  const std::string data_help = "MNIST-layout directory (default: $DIGITS_DATA, else data/mnist)";
  const std::string model_help = "Model file (default: the built-in pretrained model)";

  TrainOptions train;
  CLI::App* train_cmd = app.add_subcommand("train", "Train a network on MNIST and save it");
  train_cmd->add_option("--preset", train.preset, "Recipe to start from: seed (the NumPy ancestor), fast, best, cnn-fast, cnn, app (the built-in model's: a CNN with batch norm and \"not a digit\") or cnn-best (the best on MNIST)")->capture_default_str();
  train_cmd->add_option("--layers", train.layers,
                        "Dense sizes, e.g. 784,50,20,10, or layers of any kind over the 1x28x28 image, e.g. "
                        "conv5x5x32,pool2,conv3x3x64s2same,fc256,10 (convKxKxN[s2][same], pool2, flatten, bn (batch norm after a conv or dense layer), fcN; the last is the classes)");
  train_cmd->add_option("--activation", train.activation, "Hidden activation: relu, sigmoid or tanh");
  train_cmd->add_option("--init", train.init, "Weight initialisation: ancestor (randn×0.01), he or xavier");
  train_cmd->add_option("--optimizer", train.optimizer, "sgd, momentum, nesterov or adam");
  train_cmd->add_option("--epochs", train.epochs, "Passes over the training set")->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--batch", train.batch, "Mini-batch size")->check(CLI::PositiveNumber);
  train_cmd->add_option("--lr", train.learning_rate, "Learning rate")->check(CLI::PositiveNumber);
  train_cmd->add_option("--momentum", train.momentum, "Momentum for momentum and nesterov")->check(CLI::Range(0.0f, 0.9999f));
  train_cmd->add_option("--seed", train.seed, "Seed for the weights and the shuffles");
  train_cmd->add_option("--data", train.data, data_help);
  train_cmd->add_option("--out", train.out, "Where to save the model")->capture_default_str();
  train_cmd->add_option("--metrics", train.metrics, "Write one CSV row per epoch to this file");
  train_cmd->add_option("--schedule", train.schedule, "Learning-rate schedule: constant, step:EVERY:FACTOR or cosine[:FINAL], then optionally ,warmup:EPOCHS");
  train_cmd->add_option("--weight-decay", train.weight_decay, "L2 weight decay λ")->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--dropout", train.dropout, "Dropout rate on the hidden layers while training")->check(CLI::Range(0.0f, 0.95f));
  train_cmd->add_option("--label-smoothing", train.label_smoothing, "Train toward (1 − ε)·one-hot + ε/classes instead of one-hot, e.g. 0.1")->check(CLI::Range(0.0f, 0.5f));
  train_cmd->add_option("--ema", train.ema, "Keep a moving average of the weights with this decay per step, e.g. 0.999; measure, keep and save the average")->check(CLI::Range(0.0f, 0.9999f));
  train_cmd->add_flag("--calibrate", train.calibrate, "After training, fit a temperature on the validation set and fold it into the last layer, so the probabilities shown are calibrated (needs --validation)");
  train_cmd->add_flag("--no-calibrate", train.no_calibrate, "Do not calibrate, though the preset does");
  train_cmd->add_option("--augment", train.augment, "Distort training images: none, default, or e.g. shift=2,rotate=10,scale=0.1,shear=0.1,elastic=34:4,thickness=0.3");
  train_cmd->add_option("--images", train.images, "Also train on these folders of labelled images (<label>_anything.png, and none_anything.png as \"not a digit\" when the last layer has 11 outputs), preprocessed like the app's drawings; never in the validation set (repeat the flag or list several)");
  train_cmd->add_option("--validation", train.validation, "Set aside this many training images; keep the weights of the best validation epoch");
  train_cmd->add_flag("--test-each-epoch", train.test_each_epoch, "Read the test set after every epoch, for its learning curve (the presets that keep their best validation epoch read it once, at the end)");
  train_cmd->add_option("--patience", train.patience, "Stop after this many epochs without a better validation accuracy")->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--checkpoint", train.checkpoint, "Save weights and optimizer state here after every epoch");
  train_cmd->add_option("--resume", train.resume, "Continue from a checkpoint, up to --epochs");
  train_cmd->add_option("--report", train.report, "Write an HTML report here: learning curves, confusion matrix, worst mistakes, first-layer weights");
  train_cmd->add_option("--threads", train.threads, "Threads (0: one per core; 1: evaluation does not overlap training)")->capture_default_str()->check(CLI::NonNegativeNumber);

  EvaluateOptions evaluate;
  CLI::App* evaluate_cmd = app.add_subcommand("evaluate", "Accuracy, per-class accuracy and confusion matrix on the MNIST test set");
  evaluate_cmd->add_option("--model", evaluate.model, model_help);
  evaluate_cmd->add_option("--data", evaluate.data, data_help);
  evaluate_cmd->add_option("--images", evaluate.images, "Evaluate a folder of labelled images named <label>_anything.png instead (any size, either polarity)")->excludes("--data");
  evaluate_cmd->add_flag("--json", evaluate.json, "Print JSON");
  evaluate_cmd->add_option("--report", evaluate.report, "Write an HTML report here: confusion matrix, worst mistakes, first-layer weights, the recorded recipe");
  evaluate_cmd->add_option("--threads", evaluate.threads, "Threads (0: one per core)")->capture_default_str()->check(CLI::NonNegativeNumber);

  PredictOptions predict;
  CLI::App* predict_cmd = app.add_subcommand("predict", "Read the digit in each image (PNG, JPEG, BMP, PGM; any size, either polarity)");
  predict_cmd->add_option("files", predict.files, "Image files")->required();
  predict_cmd->add_option("--model", predict.model, model_help);
  predict_cmd->add_flag("--json", predict.json, "Print one JSON object per file, with all ten probabilities (and \"not_a_digit\", for a model with that eleventh output)");

  PredictOptions read;
  CLI::App* read_cmd = app.add_subcommand("read", "Read every digit in each image, left to right, and print the number (same images as predict)");
  read_cmd->add_option("files", read.files, "Image files")->required();
  read_cmd->add_option("--model", read.model, model_help);
  read_cmd->add_flag("--json", read.json, "Print one JSON object per file: the text, each digit with its ten probabilities and box, the parts that are not digits");

  ConvertOptions convert;
  CLI::App* convert_cmd = app.add_subcommand("convert", "Write a model again with its weights stored as F16 (half the bytes, for the page without a server) or F32");
  convert_cmd->add_option("--model", convert.model, model_help);
  convert_cmd->add_option("--dtype", convert.dtype, "f16 or f32")->capture_default_str()->check(CLI::IsMember({"f16", "f32"}));
  convert_cmd->add_option("--out", convert.out, "Where to write it")->required();

  ImproveOptions improve;
  CLI::App* improve_cmd = app.add_subcommand("improve", "Continue training a model, on MNIST and/or extra labelled images, or (--feedback) fine-tune it on the app's judgements behind a guard");
  improve_cmd->add_option("--model", improve.model, "Model to start from (default: the built-in one)");
  improve_cmd->add_option("--out", improve.out, "Where to save the improved model")->required();
  improve_cmd->add_option("--data", improve.data, data_help);
  improve_cmd->add_option("--images", improve.images_dir, "Folder of extra images named <label>_anything.png");
  improve_cmd->add_option("--idx", improve.idx, "Extra images as an IDX pair: IMAGES LABELS")->expected(2);
  improve_cmd->add_flag("--no-mnist", improve.no_mnist, "Train on the extra images only");
  improve_cmd->add_option("--epochs", improve.epochs, "Passes over the training set")->capture_default_str()->check(CLI::NonNegativeNumber);
  improve_cmd->add_option("--batch", improve.batch, "Mini-batch size")->capture_default_str()->check(CLI::PositiveNumber);
  improve_cmd->add_option("--lr", improve.learning_rate, "Learning rate (default: the model's recorded one)")->check(CLI::PositiveNumber);
  improve_cmd->add_option("--seed", improve.seed, "Seed for the shuffles")->capture_default_str();
  CLI::Option* metrics_opt = improve_cmd->add_option("--metrics", improve.metrics, "Write one CSV row per epoch to this file");
  CLI::Option* feedback_opt = improve_cmd->add_option("--feedback", improve.feedback,
      "Instead: a guarded fine-tune on stored judgements (STATE_DIR/feedback.db, the page's digits-feedback.json, or an exported feedback-images-idx3-ubyte); writes --out only if the guard accepts it");
  feedback_opt->excludes("--images")->excludes("--idx")->excludes("--no-mnist")->excludes("--epochs")->excludes(metrics_opt);
  improve_cmd->add_option("--steps", improve.steps, "With --feedback: fine-tuning steps (default 150)")->check(CLI::PositiveNumber)->needs(feedback_opt);

  const std::string state_dir_help = "State directory of the app (default: $XDG_DATA_HOME/digits, else ~/.local/share/digits)";
  // --store and --store-file (docs/scaling.md), either of which excludes --state-dir.
  auto add_store_flags = [](CLI::App* command, StoreFlags& flags, CLI::Option* state_dir, const std::string& what) {
    CLI::Option* store = command->add_option("--store", flags.store,
                                             what + " in this PostgreSQL (postgresql://user@host/db?sslmode=…) instead of --state-dir (docs/scaling.md); "
                                                    "also from --store-file or $DIGITS_STORE");
    CLI::Option* file = command->add_option("--store-file", flags.store_file, "Read the PostgreSQL connection string from this file's first line instead");
    file->excludes(store);
    store->excludes(state_dir);
    file->excludes(state_dir);
  };
  FeedbackExportOptions feedback_export;
  CLI::App* feedback_cmd = app.add_subcommand("feedback", "The judgements people made in the app");
  feedback_cmd->require_subcommand(1);
  CLI::App* export_cmd = feedback_cmd->add_subcommand("export", "Write the stored judgements as an IDX pair (and with --png, as <label>_<id>.png files)");
  add_store_flags(export_cmd, feedback_export.store, export_cmd->add_option("--state-dir", feedback_export.state_dir, state_dir_help), "The judgements");
  export_cmd->add_option("--out", feedback_export.out, "Folder to write feedback-images-idx3-ubyte and feedback-labels-idx1-ubyte into")->required();
  export_cmd->add_flag("--png", feedback_export.png, "Also write each judgement's 28×28 input as <label>_<id>.png");

  ModelVersionsOptions versions;
  CLI::App* model_cmd = app.add_subcommand("model", "The model versions the app has learned from corrections");
  model_cmd->require_subcommand(1);
  CLI::App* list_cmd = model_cmd->add_subcommand("list", "List the saved versions: created, parent, validation accuracy, corrections learned, which is current");
  add_store_flags(list_cmd, versions.store, list_cmd->add_option("--state-dir", versions.state_dir, state_dir_help), "The versions");
  CLI::App* rollback_cmd = model_cmd->add_subcommand("rollback", "Make an earlier version current (default: the one the current version was learned from)");
  rollback_cmd->add_option("version", versions.version_text, "The version to make current; 0 is the starting model");
  add_store_flags(rollback_cmd, versions.store, rollback_cmd->add_option("--state-dir", versions.state_dir, state_dir_help),
                  "The versions (every replica then serves the one made current)");

  StoreCopyOptions store_copy;
  CLI::App* store_cmd = app.add_subcommand("store", "Where the app keeps judgements and model versions: a state directory, or a PostgreSQL replicas share");
  store_cmd->require_subcommand(1);
  CLI::App* copy_cmd = store_cmd->add_subcommand(
      "copy", "Copy every judgement (ids kept), model version (numbers kept), the live pointer and the learner's progress into an empty store (docs/scaling.md)");
  copy_cmd->add_option("--from", store_copy.from, "A state directory, or postgresql://…; default: $DIGITS_STORE");
  copy_cmd->add_option("--to", store_copy.to, "An empty (or new) state directory, or an empty PostgreSQL database; default: $DIGITS_STORE");

  ServeOptions serve;
  auto add_serve_options = [&](CLI::App* command) {
    command->add_option("--host", serve.host, "Address to listen on (0.0.0.0 for every interface)")->capture_default_str();
    command->add_option("--port", serve.port, "Port to listen on; 0 picks a free one and prints it")->capture_default_str()->check(CLI::Range(0, 65535));
    command->add_option("--model", serve.model, model_help);
    CLI::Option* state_dir = command->add_option("--state-dir", serve.state_dir, state_dir_help + "; judgements and learned model versions go here");
    command->add_option("--data", serve.data, "MNIST-layout directory for learning from corrections (default: $DIGITS_DATA, else data/mnist; without it learning is off)");
    add_store_flags(command, serve.store, state_dir, "Share judgements and model versions with other replicas");
    command->add_option("--store-connections", serve.store_connections, "Connections to PostgreSQL for judgements and reads, at most (two more: the learner's lock, the listener)")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    command->add_flag("--no-learning", serve.no_learning, "Store judgements but never learn from them");
    command->add_option("--feedback-rate", serve.feedback_rate, "Judgements a minute from one client_id; 0: unlimited")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    command->add_option("--max-image-pixels", serve.max_image_pixels,
                        "The most pixels an image sent to the server may have, read from its header before it is decoded (413 image_too_large beyond); "
                        "at most 12582912, the CLI's own cap")
        ->capture_default_str()
        ->check(CLI::Range(std::int64_t{1}, digits::kMaxImagePixels));
    command->add_option("--max-image-bytes", serve.max_image_bytes,
                        "The most bytes an image file sent to the server may have, checked before it is decoded (413 image_too_large beyond)")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
    command->add_option("--feedback-rate-address", serve.feedback_rate_address, "Judgements a minute from one remote address, whatever its client_ids; 0: unlimited")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    command->add_option("--feedback-quota-client", serve.quota_client, "Judgements one client_id may store in all; beyond, 429 quota_exceeded; 0: no quota")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    command->add_option("--feedback-quota-address", serve.quota_address, "Judgements one remote address may store in all; beyond, 429 quota_exceeded; 0: no quota")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    command->add_option("--feedback-quota-mib", serve.quota_mib, "The feedback database's largest size in MiB; beyond, 507 quota_exceeded; 0: no quota")
        ->capture_default_str()
        ->check(CLI::Range(0LL, 1LL << 40));
    CLI::Option* token = command->add_option("--admin-token", serve.admin_token, "Bearer token for POST /api/model/rollback and /api/model/learn");
    command->add_option("--admin-token-file", serve.admin_token_file, "Read the admin token from this file's first line instead")->excludes(token);
    command->add_option("--memory-budget", serve.memory_budget_mib, "MiB for request bodies being received, queued and worked on; beyond it new bodies get 503")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 20));
    command->add_option("--client-share", serve.client_share_percent, "Percent of the connections and of the memory budget one client (address) may hold; 0: no share")
        ->capture_default_str()
        ->check(CLI::Range(0, 100));
    command->add_option("--trusted-proxy", serve.trusted_proxies,
                        "Address of a reverse proxy whose X-Forwarded-For names the client (repeatable); without it, a proxy's clients count as one");
  };
  CLI::App* serve_cmd = app.add_subcommand("serve", "Serve the drawing page and the JSON API over HTTP until Ctrl+C");
  add_serve_options(serve_cmd);
  CLI::App* app_cmd = app.add_subcommand("app", "Serve the drawing page and open it in your browser");
  add_serve_options(app_cmd);

  try {
    app.parse(argc, argv);
    hide_connection_strings(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports a missing subcommand before an unknown word; name the word instead.
    std::string commands;
    bool known = argc < 2 || argv[1][0] == '-';
    for (const CLI::App* command : app.get_subcommands({})) {
      commands += (commands.empty() ? "" : ", ") + command->get_name();
      known = known || command->get_name() == argv[1];
    }
    const CLI::App* named = nullptr;
    for (const CLI::App* command : app.get_subcommands({})) {
      if (argc >= 2 && command->get_name() == argv[1]) named = command;
    }
    if (!known) {
      std::fprintf(stderr, "digits: unknown command '%s' (expected %s)\n", argv[1], commands.c_str());
    } else if (named && named->get_require_subcommand_min() > 0 && named->get_subcommands().empty()) {
      // `digits model` alone: say which subcommands there are.
      std::string names;
      for (const CLI::App* sub : named->get_subcommands({})) names += (names.empty() ? "" : " or ") + sub->get_name();
      std::fprintf(stderr, "digits: '%s' needs a subcommand: %s\n", argv[1], names.c_str());
    } else {
      std::fprintf(stderr, "digits: %s\n", e.what());
    }
    std::fprintf(stderr, "Run 'digits --help' or 'digits <command> --help' for usage.\n");
    return kUsage;
  }

  improve.batch_given = improve_cmd->count("--batch") > 0;

  try {
    if (*train_cmd) return run_train(train);
    if (*evaluate_cmd) return run_evaluate(evaluate);
    if (*predict_cmd) return run_predict(predict);
    if (*read_cmd) return run_read(read);
    if (*improve_cmd) return run_improve(improve);
    if (*convert_cmd) return run_convert(convert);
    if (*export_cmd) return run_feedback_export(feedback_export);
    if (*list_cmd) return run_model_list(versions);
    if (*rollback_cmd) return run_model_rollback(versions);
    if (*copy_cmd) return run_store_copy(store_copy);
    if (*serve_cmd) return run_serve(serve);
    if (*app_cmd) return run_app(serve);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "digits: %s\n", e.what());
    return kFailure;
  }
  return kUsage;
}
