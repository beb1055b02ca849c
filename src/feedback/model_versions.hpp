// Numbered model versions in the state directory, so that learning never overwrites the only copy
// and any version can be brought back:
//
//   STATE_DIR/models/v0001.safetensors, v0002.safetensors, …   each written atomically
//   STATE_DIR/models/current                                   the live version's number, written atomically
//
// Version 0 is the model the server started from (built-in or --model) and is never a file here.
// Each version's model file records, in its metadata, the version it was made from, the validation
// accuracy, and how many corrections it has learned from.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "digits/model_file.hpp"

namespace digits::feedback {

struct VersionInfo {
  int version = 0;
  std::string created;              // ISO 8601, from the file's metadata
  int parent = 0;                   // the version it was fine-tuned from
  double validation_accuracy = -1;  // −1 when unknown
  long corrections_learned = 0;     // total corrections this version has been trained on
  bool current = false;
};

class ModelVersions {
 public:
  explicit ModelVersions(std::filesystem::path state_dir);

  // Saves a new version (the next free number) atomically and makes it current; returns its number.
  int add(const Network& network, Metadata metadata);
  // Every saved version, oldest first.
  std::vector<VersionInfo> list() const;
  // The live version's number: 0 when none is saved or current says 0.
  int current() const;
  // Loads a saved version (≥ 1). Throws Error naming the file when missing or corrupt.
  Model load(int version) const;
  // Makes an earlier version live (0 = the starting model); without a version, the one before
  // current. Throws Error when that version does not exist. Returns the version now current.
  int rollback(std::optional<int> version = std::nullopt);

 private:
  std::filesystem::path dir_;
};

}  // namespace digits::feedback
