// The feedback store: every judgement people make in the app ("right", or "wrong, it is a 7").
// JudgementStore is what the server and the CLI need of one; it has two implementations:
//  - Store (below): SQLite in the state directory, the embedded default. WAL mode with
//    synchronous=FULL: once add() returns, the judgement survives a kill -9 of the process (and a
//    power cut, as far as the disk keeps its word). One connection guarded by a mutex.
//  - PostgresStore's judgements (postgres_store.hpp): one PostgreSQL shared by replicas.
//
// Used by the server (writes) and by `digits feedback export` / `digits improve --feedback` (reads).
// Thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "feedback/storage_error.hpp"

namespace digits::feedback {

struct Judgement {
  std::int64_t id = 0;                    // assigned by add()
  std::vector<std::uint8_t> input;        // the 28×28 input the network saw (784 bytes, 0 = background)
  std::string drawing_png;                // the drawing, an 8-bit gray PNG (the server re-encodes and bounds it: stored_drawing())
  int label = 0;                          // the true digit: the prediction if judged right, else the one picked; 10: not a digit (kNotADigit)
  int predicted = 0;                      // what the model said: a digit, or 10 for "not a digit"
  std::array<float, 10> probabilities{};  // what the model gave each digit (of the eleven-way softmax, for a model with "not a digit")
  bool correct = false;                   // judged right (label == predicted)
  int model_version = 0;                  // the model version that made the prediction (0 = built-in)
  std::int64_t created_ms = 0;            // Unix time in milliseconds; add() fills it when 0
  std::string client_id;                  // an opaque id the page keeps in localStorage
  std::string client_address;             // the remote address it came from (for the per-address quota); "" if unknown
};

// What learning needs of a judgement, without its drawing: the rows a round or a start-up reads
// by the thousand, a few hundred bytes each however large the drawings are.
struct Example {
  std::int64_t id = 0;
  std::vector<std::uint8_t> input;  // 784 bytes, as Judgement::input
  int label = 0;
  bool correct = false;
};

// How much one client has stored, and the store as a whole: what the server's quotas compare.
struct Usage {
  std::int64_t by_client_id = 0;  // judgements with this client_id (0 when it is empty)
  std::int64_t by_address = 0;    // judgements from this remote address (0 when it is empty)
  std::int64_t bytes = 0;         // the database's pages in use, in bytes: what it holds on disk
};

// What the server and the CLI need of a feedback store, whichever it is. Every failure of the
// storage itself is a StorageError whose fault says which; invalid fields are a plain Error.
class JudgementStore {
 public:
  virtual ~JudgementStore() = default;
  // Stores a judgement durably (committed when this returns) and returns its new id. Throws Error
  // on invalid fields (validate_judgement), StorageError when the storage fails; nothing is stored then.
  virtual std::int64_t add(const Judgement& judgement) = 0;
  // Stores a judgement under its own id and created_ms, as `digits store copy` moves them: Error when
  // that id is taken or not positive. Later ids continue past it.
  virtual void restore(const Judgement& judgement) = 0;
  // At most `limit` judgements with id > after_id, oldest first, drawings included.
  virtual std::vector<Judgement> since(std::int64_t after_id = 0, std::size_t limit = SIZE_MAX) const = 0;
  // At most `limit` judgements with id > after_id, oldest first, without their drawings.
  virtual std::vector<Example> examples(std::int64_t after_id, std::size_t limit) const = 0;
  // Corrections (judged wrong) with id > after_id.
  virtual std::int64_t corrections_after(std::int64_t after_id) const = 0;
  virtual Usage usage(const std::string& client_id, const std::string& client_address) const = 0;
  virtual std::int64_t count() const = 0;
  virtual std::int64_t corrections() const = 0;  // judged wrong
  // The highest id ever given (never given again), 0 for none.
  virtual std::int64_t last_id() const = 0;
  // Makes every later id greater than `id`.
  virtual void continue_ids_after(std::int64_t id) = 0;
  // Where it is, for logs and messages: a file's path, or a connection string without its password.
  virtual std::string where() const = 0;
};

// Throws Error when a judgement breaks the rules every store holds it to (the fields' ranges, below).
void validate_judgement(const Judgement& judgement);

// The SQLite store of a state directory.
class Store final : public JudgementStore {
 public:
  // Opens (creating if needed) the database, its schema and WAL mode, and checks every page of an
  // existing one (PRAGMA quick_check). Throws StorageError naming the file when it cannot be
  // opened (fault read_only, io…), is damaged or not SQLite at all (corrupt), or is another
  // program's database or a newer schema's (foreign); a plain Error for a folder. With create_if_missing false, a
  // missing file is an error too (for readers such as `digits feedback export`, which must not
  // leave an empty database behind a mistyped --state-dir). The schema is in docs/feedback.md.
  explicit Store(const std::filesystem::path& path, bool create_if_missing = true);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Stores a judgement durably and returns its id. Throws Error on invalid fields
  // (input not 784 bytes, label or predicted outside 0–10, correct ≠ (label == predicted), a
  // probability outside 0–1, a negative model_version or created_ms, a client id or address over
  // 256 bytes),
  // and StorageError when the storage fails (a full disk: fault disk_full); nothing is stored then,
  // and what was stored before is untouched (a SQLite transaction).
  std::int64_t add(const Judgement& judgement) override;
  void restore(const Judgement& judgement) override;

  // Judgements with id > after_id, oldest first (all of them with the default), drawings included:
  // for the CLI's export, `digits store copy` (a page at a time) and tests. The server reads
  // examples() instead, whose memory is bounded.
  std::vector<Judgement> since(std::int64_t after_id = 0, std::size_t limit = SIZE_MAX) const override;
  // At most `limit` judgements with id > after_id, oldest first, without their drawings (which
  // SQLite then never reads: they come after the input in each row). Page through a store with
  // after_id = the last id of the previous page. Throws StorageError (corrupt) for a malformed row.
  std::vector<Example> examples(std::int64_t after_id, std::size_t limit) const override;
  // Corrections (judged wrong) with id > after_id: by the index on `correct`, without reading rows.
  std::int64_t corrections_after(std::int64_t after_id) const override;
  // The judgements of one client_id and of one address (by their indexes), and the database's size.
  Usage usage(const std::string& client_id, const std::string& client_address) const override;
  std::int64_t count() const override;
  std::int64_t corrections() const override;  // judged wrong
  // The highest id ever given (AUTOINCREMENT never gives it again), 0 for none.
  std::int64_t last_id() const override;
  // Makes every later id greater than `id`: for a new database that replaces one whose ids other
  // files (model versions, learning.json) still refer to, so that no id ever means two judgements.
  void continue_ids_after(std::int64_t id) override;
  std::string where() const override { return path().string(); }
  const std::filesystem::path& path() const;
  std::string journal_mode() const;  // "wal" once opened: for tests and diagnostics

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Judgements as a labelled dataset (28×28 images, their labels), for training and export.
Dataset to_dataset(const std::vector<Judgement>& judgements, std::string name = "feedback");
Dataset to_dataset(const std::vector<Example>& examples, std::string name = "feedback");

// Every judgement without its drawing, oldest first, read a page at a time: 800 bytes each
// however large the drawings (`digits feedback export`, `digits improve --feedback`).
std::vector<Example> all_examples(const JudgementStore& store);

// The default state directory: $XDG_DATA_HOME/digits, else ~/.local/share/digits. Throws Error
// when neither XDG_DATA_HOME nor HOME is set.
std::filesystem::path default_state_dir();

// Where a state directory keeps its judgements: STATE_DIR/feedback.db.
std::filesystem::path feedback_database(const std::filesystem::path& state_dir);

}  // namespace digits::feedback
