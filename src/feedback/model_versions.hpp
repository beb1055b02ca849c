// Numbered model versions, so that learning never overwrites the only copy and any version can be
// brought back. VersionStore is what the server and the CLI need; it has two implementations:
// ModelVersions (below), files in the state directory, and PostgresStore's versions
// (postgres_store.hpp), rows in one PostgreSQL shared by replicas. In the state directory:
//
//   STATE_DIR/models/v0001.safetensors, v0002.safetensors, …   each written atomically
//   STATE_DIR/models/current                                   the live version's number, written atomically
//
// Version 0 is the model the server started from (built-in or --model) and is never a file here.
// Each version's model file records, in its metadata, the version it was made from, the validation
// accuracy, and how many corrections it has learned from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "digits/error.hpp"
#include "digits/model_file.hpp"

namespace digits::feedback {

// The metadata keys a version's model file carries (docs/model-format.md). add() writes the first
// two; the caller gives the others, with record_learning().
inline constexpr const char* kVersionKey = "version.number";
inline constexpr const char* kParentKey = "version.parent";                             // the version it was fine-tuned from
inline constexpr const char* kValidationAccuracyKey = "version.validation_accuracy";   // percent, two decimals, like accuracy.*
inline constexpr const char* kCorrectionsLearnedKey = "version.corrections_learned";   // how many corrections, in all
inline constexpr const char* kLastJudgementKey = "version.last_judgement_id";          // the newest judgement it has seen

// Writes what list() reports into a model's metadata, before add(). validation_accuracy is a
// fraction (0.9912); last_judgement_id the id of the newest judgement learned from (0: none).
void record_learning(Metadata& metadata, double validation_accuracy, long corrections_learned, std::int64_t last_judgement_id = 0);

// One of those keys read back as an integer: 0 when the metadata lacks it or it is not a number
// (a version written before the key existed).
std::int64_t metadata_integer(const Metadata& metadata, const char* key);

struct VersionInfo {
  int version = 0;
  std::string created;              // ISO 8601, from the file's metadata
  int parent = 0;                   // the version it was fine-tuned from
  double validation_accuracy = -1;  // −1 when unknown
  long corrections_learned = 0;     // total corrections this version has been trained on
  std::int64_t last_judgement_id = 0;  // the newest judgement it has learned from (0: unknown)
  bool current = false;
  std::string status;   // PostgreSQL's: "promoted" or "rolled_back"; empty for files
  std::string problem;  // empty, or why its file could not be read (list() still lists it)
};

// A promotion the store refused because the world moved under it: another replica leads the
// learning now (PostgreSQL's fencing epoch), or the live version is no longer the candidate's parent
// (a rollback came first). The candidate is dropped; nothing is stored.
class PromotionRefused : public Error {
 public:
  using Error::Error;
};

class VersionStore {
 public:
  virtual ~VersionStore() = default;
  // Saves a new version (the next free number) and makes it live, returning its number; see
  // ModelVersions::add. Throws StorageError when the storage refuses, PromotionRefused (above).
  virtual int add(const Network& network, Metadata metadata) = 0;
  // Removes what saves that never finished left behind; returns how many.
  virtual int remove_unfinished() const = 0;
  virtual std::vector<VersionInfo> list() const = 0;
  // The live version's number: 0 for the starting model.
  virtual int current() const = 0;
  // Loads a saved version (≥ 1). Throws Error when missing or corrupt.
  virtual Model load(int version) const = 0;
  // Only its metadata (cheap). Throws Error when missing or unreadable.
  virtual Metadata metadata(int version) const = 0;
  // The version's model file, byte for byte (`digits store copy`).
  virtual std::string model_file(int version) const = 0;
  // Stores a model file under its own number without making it live (`digits store copy`): Error
  // when that number is taken or the bytes are no model.
  virtual void restore(int version, const std::string& model_file) = 0;
  // See ModelVersions::rollback.
  virtual int rollback(std::optional<int> version = std::nullopt) = 0;
  // Where a version is, for logs: a file's path, or "version 7 in postgresql://host/db".
  virtual std::string where(int version) const = 0;
};

class ModelVersions final : public VersionStore {
 public:
  explicit ModelVersions(std::filesystem::path state_dir);

  // Saves a new version (the next free number, one past the highest saved, even after a
  // rollback) atomically and makes it current; returns its number. Writes version.number, and
  // version.parent (the current version, unless metadata already names one) and created (now,
  // unless given). One process at a time should add: two adding at once could pick one number.
  // Throws StorageError when the disk refuses (fault disk_full for a full one); then no new file is
  // left behind and current is unchanged.
  int add(const Network& network, Metadata metadata) override;
  // Removes the temporary files of saves that never finished (a kill -9 while writing a version):
  // only the one process that adds versions should call it, before it adds. Returns how many.
  int remove_unfinished() const override;
  // Every saved version, oldest first (none marked current when the current file is garbled).
  std::vector<VersionInfo> list() const override;
  // The live version's number: 0 when none is saved or current says 0.
  int current() const override;
  // Loads a saved version (≥ 1). Throws Error naming the file when missing or corrupt.
  Model load(int version) const override;
  Metadata metadata(int version) const override;
  std::string model_file(int version) const override;
  void restore(int version, const std::string& model_file) override;
  // Makes an earlier version live (0 = the starting model); without a version, the one before
  // current: the version current was fine-tuned from (its parent), so that rolling back undoes the
  // last accepted learning even after earlier rollbacks. Throws Error when that version does not
  // exist, or when current is already 0 and no version is given; StorageError when the target's
  // file (or, without a version, current or its file) cannot be read, or current cannot be
  // written. A garbled current does not stop a rollback to a named version. Returns the version now current.
  int rollback(std::optional<int> version = std::nullopt) override;
  std::string where(int version) const override { return file(version).string(); }

  // STATE_DIR/models/v0007.safetensors for 7.
  std::filesystem::path file(int version) const;
  const std::filesystem::path& directory() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace digits::feedback
