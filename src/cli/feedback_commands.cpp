// `digits feedback export` and `digits model list|rollback`: the state the app keeps (the judgements
// people made, the model versions learned from them), read and managed from the command line.
// docs/feedback.md describes the state directory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "digits/classes.hpp"
#include "digits/error.hpp"
#include "digits/file_util.hpp"
#include "digits/image.hpp"
#include "feedback/model_versions.hpp"
#include "feedback/postgres_store.hpp"
#include "feedback/store.hpp"

namespace digits::cli {

namespace fs = std::filesystem;

namespace {

// The state directory as given, or the default; it must exist: a mistyped --state-dir is an
// error, never an empty listing or a new folder.
fs::path existing_state_dir(const std::string& flag) {
  const fs::path dir = flag.empty() ? feedback::default_state_dir() : fs::path(flag);
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir.string() + ": no such state directory (the server makes it when it first runs; or give --state-dir)");
  return dir;
}

std::string percent_text(double fraction) {
  if (fraction < 0) return "-";
  char text[16];
  std::snprintf(text, sizeof text, "%.2f%%", 100 * fraction);
  return text;
}

}  // namespace

std::string store_connection(const StoreFlags& flags, const std::string& state_dir) {
  std::string text = flags.store, from = "--store";
  if (text.empty() && flags.store_file.empty() && !state_dir.empty()) return "";
  if (text.empty() && !flags.store_file.empty()) {
    std::ifstream in(flags.store_file);
    if (!in) throw Error(flags.store_file + ": cannot read the store's connection file");
    std::getline(in, text);
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) text.pop_back();
    if (text.empty()) throw Error(flags.store_file + ": the store's connection file's first line is empty");
    from = flags.store_file;
  }
  if (text.empty()) {
    const char* environment = std::getenv("DIGITS_STORE");
    if (!environment || !*environment) return "";
    text = environment, from = "$DIGITS_STORE";
  }
  // Never the string itself in the message: it may hold a password.
  if (!feedback::is_postgres_connection(text))
    throw Error(from + " is not a PostgreSQL connection string (postgresql://user@host/db, or host=… dbname=…); for SQLite in a folder, use --state-dir");
  return text;
}

namespace {

// The PostgreSQL the flags name, or null for the state directory. One connection: a command's
// reads are one after the other.
std::unique_ptr<feedback::PostgresStore> open_shared(const StoreFlags& flags, const std::string& state_dir, const std::string& command) {
  const std::string connection = store_connection(flags, state_dir);
  if (connection.empty()) return nullptr;
  return std::make_unique<feedback::PostgresStore>(feedback::PostgresOptions{connection, 1, std::chrono::milliseconds(5000), "digits " + command});
}

}  // namespace

int run_feedback_export(const FeedbackExportOptions& options) {
  const std::unique_ptr<feedback::PostgresStore> shared = open_shared(options.store, options.state_dir, "feedback export");
  std::unique_ptr<feedback::JudgementStore> store;
  if (shared)
    store = shared->judgements();
  else
    store = std::make_unique<feedback::Store>(feedback::feedback_database(existing_state_dir(options.state_dir)), /*create_if_missing=*/false);
  const std::string where = shared ? "PostgreSQL (" + shared->where() + ")" : store->where();
  const std::vector<feedback::Example> judgements = feedback::all_examples(*store);  // without drawings: they are not exported
  if (judgements.empty()) {
    std::fprintf(stderr, "digits: %s holds no judgements yet; nothing exported\n", where.c_str());
    return kFailure;
  }
  const fs::path out = options.out;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (!fs::is_directory(out, ec)) throw Error(out.string() + ": cannot make this folder" + (ec ? ": " + ec.message() : ""));

  // The names `digits improve --feedback` looks for, in LeCun's naming style.
  const fs::path images = out / "feedback-images-idx3-ubyte", labels = out / "feedback-labels-idx1-ubyte";
  write_idx(feedback::to_dataset(judgements), images, labels);
  std::size_t corrections = 0;
  for (const feedback::Example& j : judgements) corrections += !j.correct;
  std::printf("exported %zu judgements (%zu corrections, %zu confirmed right) from %s\n", judgements.size(), corrections,
              judgements.size() - corrections, where.c_str());
  std::printf("  %s\n  %s\n", images.c_str(), labels.c_str());

  if (options.png) {
    // The 28×28 input the network saw, named <label>_<id>.png (none_<id>.png for "not a digit"):
    // `digits evaluate --images` and `digits improve --images` read the label from the name.
    for (const feedback::Example& j : judgements) {
      GrayImage image{28, 28, std::vector<float>(j.input.begin(), j.input.end())};
      const std::string label = j.label == kNotADigit ? "none" : std::to_string(j.label);
      write_png(out / (label + "_" + std::to_string(j.id) + ".png"), image);
    }
    std::printf("  and %zu PNG files named <label>_<id>.png in %s\n", judgements.size(), out.c_str());
  }
  return kSuccess;
}

namespace {

// The versions the flags name: a PostgreSQL's (`shared` keeps it open), else the state directory's.
std::unique_ptr<feedback::VersionStore> open_versions(const ModelVersionsOptions& options, std::unique_ptr<feedback::PostgresStore>& shared,
                                                      const std::string& command, std::string& where) {
  shared = open_shared(options.store, options.state_dir, command);
  if (shared) {
    where = "PostgreSQL (" + shared->where() + ")";
    return shared->versions();
  }
  auto files = std::make_unique<feedback::ModelVersions>(existing_state_dir(options.state_dir));
  where = files->directory().string();
  return files;
}

}  // namespace

int run_model_list(const ModelVersionsOptions& options) {
  std::unique_ptr<feedback::PostgresStore> shared;
  std::string where;
  const std::unique_ptr<feedback::VersionStore> store = open_versions(options, shared, "model list", where);
  const feedback::VersionStore& versions = *store;
  const std::vector<feedback::VersionInfo> list = versions.list();
  const int current = versions.current();
  std::printf("model versions in %s\n", where.c_str());
  std::printf("  %7s  %-20s  %6s  %10s  %11s\n", "version", "created", "parent", "validation", "corrections");
  std::printf("%s %7d  %-20s  %6s  %10s  %11s\n", current == 0 ? "*" : " ", 0, "(the starting model)", "", "", "");
  for (const feedback::VersionInfo& v : list) {
    if (!v.problem.empty()) {
      std::printf("%s %7d  unreadable: %s\n", v.current ? "*" : " ", v.version, v.problem.c_str());
      continue;
    }
    std::printf("%s %7d  %-20s  %6d  %10s  %11ld%s\n", v.current ? "*" : " ", v.version, v.created.empty() ? "-" : v.created.c_str(), v.parent,
                percent_text(v.validation_accuracy).c_str(), v.corrections_learned, v.status == "rolled_back" ? "  (rolled back)" : "");
  }
  std::printf("* current. Version 0 is the model the server starts from (built-in or --model); validation: on the guard's 5,000 held-out MNIST training images\n");
  if (current != 0 && std::none_of(list.begin(), list.end(), [&](const feedback::VersionInfo& v) { return v.version == current; }))
    std::fprintf(stderr, "digits: the live pointer in %s names version %d, which is not saved there\n", where.c_str(), current);
  return kSuccess;
}

int run_model_rollback(const ModelVersionsOptions& options) {
  std::optional<int> version;
  if (!options.version_text.empty()) {
    const std::string& text = options.version_text;
    if (text.size() > 9 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      std::fprintf(stderr, "digits: '%s' is not a version number (0 is the starting model, then 1, 2, …; see 'digits model list')\n", text.c_str());
      return kUsage;
    }
    version = std::stoi(text);
  }
  std::unique_ptr<feedback::PostgresStore> shared;
  std::string where;
  const std::unique_ptr<feedback::VersionStore> versions = open_versions(options, shared, "model rollback", where);
  const int before = versions->current();
  const int now = versions->rollback(version);
  if (now == before)
    std::printf("version %d was already current in %s\n", now, where.c_str());
  else
    std::printf("rolled back from version %d to version %d%s in %s%s\n", before, now, now == 0 ? " (the starting model)" : "", where.c_str(),
                shared ? "; every replica serves it within seconds" : "");
  return kSuccess;
}

namespace {

// One side of `digits store copy`: a state directory (SQLite and files) or a PostgreSQL.
struct StoreSide {
  std::string name;  // for messages: the folder, or the connection string without its password
  fs::path dir;      // the state directory; empty for PostgreSQL
  std::unique_ptr<feedback::PostgresStore> postgres;
  std::unique_ptr<feedback::JudgementStore> judgements;
  std::unique_ptr<feedback::VersionStore> versions;

  std::string progress() const {
    if (postgres) return postgres->progress();
    std::ifstream in(dir / "learning.json", std::ios::binary);
    if (!in) return "";
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void restore_progress(const std::string& json) {
    if (postgres)
      postgres->restore_progress(json);
    else
      write_file_atomically(dir / "learning.json", json);
  }
};

// A connection string, or a state directory: the source must exist, the destination is made.
StoreSide open_side(const std::string& text, bool destination) {
  StoreSide side;
  if (feedback::is_postgres_connection(text)) {
    side.postgres = std::make_unique<feedback::PostgresStore>(feedback::PostgresOptions{text, 2, std::chrono::milliseconds(5000), "digits store copy"});
    side.name = "PostgreSQL (" + side.postgres->where() + ")";
    side.judgements = side.postgres->judgements();
    side.versions = side.postgres->versions();
    return side;
  }
  side.dir = text;
  if (destination) {
    std::error_code ec;
    fs::create_directories(side.dir, ec);
    if (!fs::is_directory(side.dir, ec)) throw Error(side.dir.string() + ": cannot make this state directory" + (ec ? ": " + ec.message() : ""));
  } else {
    side.dir = existing_state_dir(text);
  }
  side.name = side.dir.string();
  side.judgements = std::make_unique<feedback::Store>(feedback::feedback_database(side.dir), /*create_if_missing=*/destination);
  side.versions = std::make_unique<feedback::ModelVersions>(side.dir);
  return side;
}

}  // namespace

int run_store_copy(const StoreCopyOptions& options) {
  // The side not given is $DIGITS_STORE, so that a password need not be on the command line.
  std::string from = options.from, to = options.to;
  if (from.empty() && to.empty()) throw Error("give --from, --to, or both (the one not given is $DIGITS_STORE)");
  for (std::string* side : {&from, &to}) {
    if (!side->empty()) continue;
    const char* environment = std::getenv("DIGITS_STORE");
    if (!environment || !*environment) throw Error(std::string(side == &from ? "--from" : "--to") + " is not given and $DIGITS_STORE is not set");
    *side = environment;
  }
  if (from == to) throw Error("--from and --to name the same store");
  StoreSide source = open_side(from, false);
  StoreSide destination = open_side(to, true);

  // Only into an empty store: ids and version numbers are kept, so nothing may be there to collide.
  const std::int64_t held = destination.judgements->count();
  const std::size_t versions_held = destination.versions->list().size();
  if (held > 0 || versions_held > 0)
    throw Error(destination.name + " already holds " + std::to_string(held) + " judgements and " + std::to_string(versions_held) +
                " model versions; copy into an empty store (a new database, or a new state directory)");

  // Judgements a page at a time, each under its own id and time; then ids continue past the
  // source's last ever given (a deleted row's id is not given again).
  constexpr std::size_t kPage = 500;
  std::int64_t copied = 0, after = 0;
  for (;;) {
    const std::vector<feedback::Judgement> page = source.judgements->since(after, kPage);
    for (const feedback::Judgement& j : page) destination.judgements->restore(j);
    copied += static_cast<std::int64_t>(page.size());
    if (page.size() < kPage) break;
    after = page.back().id;
  }
  destination.judgements->continue_ids_after(source.judgements->last_id());

  // Model versions byte for byte under their own numbers, then the live pointer.
  int versions = 0;
  for (const feedback::VersionInfo& info : source.versions->list()) {
    if (!info.problem.empty()) throw Error(source.versions->where(info.version) + " cannot be read (" + info.problem + "); nothing more is copied");
    destination.versions->restore(info.version, source.versions->model_file(info.version));
    ++versions;
  }
  const int live = source.versions->current();
  if (live != 0) destination.versions->rollback(live);

  // The learner's progress (what it considered and its last attempt), as it was written.
  if (const std::string progress = source.progress(); !progress.empty()) destination.restore_progress(progress);

  std::printf("copied %lld judgements, %d model versions (live: version %d) and the learner's progress\n  from %s\n  to   %s\n",
              static_cast<long long>(copied), versions, live, source.name.c_str(), destination.name.c_str());
  return kSuccess;
}

}  // namespace digits::cli
