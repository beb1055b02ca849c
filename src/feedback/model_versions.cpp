#include "feedback/model_versions.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <span>
#include <sstream>

#include "digits/error.hpp"
#include "digits/file_util.hpp"
#include "feedback/storage_error.hpp"

namespace digits::feedback {

namespace fs = std::filesystem;

namespace {

// A whole non-negative decimal number, or nothing: "0012" and "7\n" parse, "7a", "-1" and "" do not.
std::optional<long long> parse_count(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (text.empty() || text.size() > 12 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return std::stoll(text);
}

// "v0007.safetensors" → 7; anything else (temporary files, "current", v0.safetensors) → nothing.
std::optional<int> version_of(const fs::path& file) {
  const std::string name = file.filename().string();
  constexpr std::string_view suffix = ".safetensors";
  if (name.size() <= 1 + suffix.size() || name[0] != 'v' || !name.ends_with(suffix)) return std::nullopt;
  const auto number = parse_count(name.substr(1, name.size() - 1 - suffix.size()));
  if (!number || *number < 1 || *number > 999'999'999) return std::nullopt;
  return static_cast<int>(*number);
}

// The saved version numbers, ascending.
std::vector<int> saved_versions(const fs::path& dir) {
  std::vector<int> versions;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return versions;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (const auto version = version_of(entry.path()); version && entry.is_regular_file(ec)) versions.push_back(*version);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

VersionInfo describe(int version, const Metadata& metadata, const std::string& source) {
  VersionInfo info;
  info.version = version;
  auto value = [&](const char* key) -> std::string {
    const auto it = metadata.find(key);
    return it == metadata.end() ? std::string() : it->second;
  };
  info.created = value("created");
  auto number = [&](const char* key, auto& field) {
    const std::string text = value(key);
    if (text.empty()) return;
    const auto parsed = parse_count(text);
    if (!parsed) throw Error(source + ": metadata " + key + " '" + text + "' is not a whole number");
    field = static_cast<std::remove_reference_t<decltype(field)>>(*parsed);
  };
  number(kParentKey, info.parent);
  number(kCorrectionsLearnedKey, info.corrections_learned);
  number(kLastJudgementKey, info.last_judgement_id);
  if (const std::string text = value(kValidationAccuracyKey); !text.empty()) {
    try {
      std::size_t used = 0;
      const double percent = std::stod(text, &used);
      if (used != text.size() || !(percent >= 0 && percent <= 100)) throw std::invalid_argument(text);
      info.validation_accuracy = percent / 100;
    } catch (const std::logic_error&) {
      throw Error(source + ": metadata " + std::string(kValidationAccuracyKey) + " '" + text + "' is not a percentage");
    }
  }
  return info;
}

}  // namespace

std::int64_t metadata_integer(const Metadata& metadata, const char* key) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return 0;
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return 0;
  }
}

void record_learning(Metadata& metadata, double validation_accuracy, long corrections_learned, std::int64_t last_judgement_id) {
  char percent[32];
  std::snprintf(percent, sizeof percent, "%.2f", 100 * validation_accuracy);
  metadata[kValidationAccuracyKey] = percent;
  metadata[kCorrectionsLearnedKey] = std::to_string(corrections_learned);
  metadata[kLastJudgementKey] = std::to_string(last_judgement_id);
}

ModelVersions::ModelVersions(fs::path state_dir) : dir_(std::move(state_dir) / "models") {}

fs::path ModelVersions::file(int version) const {
  char name[32];
  std::snprintf(name, sizeof name, "v%04d.safetensors", version);
  return dir_ / name;
}

int ModelVersions::add(const Network& network, Metadata metadata) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw StorageError(fault_of_errno(ec.value()), dir_.string() + ": cannot create the model versions folder: " + ec.message());
  const std::vector<int> saved = saved_versions(dir_);
  int version = saved.empty() ? 1 : saved.back() + 1;
  while (fs::exists(file(version), ec)) ++version;  // a file list() could not parse the name of is never overwritten
  metadata[kVersionKey] = std::to_string(version);
  if (!metadata.contains(kParentKey)) metadata[kParentKey] = std::to_string(current());
  if (!metadata.contains("created")) metadata["created"] = utc_timestamp();
  // The model first, then the pointer to it: a crash between the two leaves the old version live
  // and the new one on disk, never a pointer to a half-written file. A write that fails (a full
  // disk) leaves nothing behind: write_file_atomically removes its temporary file, and a version
  // whose pointer could not be written is removed too, so a retry saves it under the same number.
  try {
    save_model(file(version), network, metadata);
  } catch (const FileWriteError& e) {
    throw StorageError(fault_of_errno(e.error_number), e.what());
  }
  try {
    write_file_atomically(dir_ / "current", std::to_string(version) + "\n");
  } catch (const FileWriteError& e) {
    fs::remove(file(version), ec);
    throw StorageError(fault_of_errno(e.error_number), e.what());
  }
  return version;
}

std::vector<VersionInfo> ModelVersions::list() const {
  int live = -1;  // a garbled current marks none: the versions are still listed, and current() says what is wrong
  try {
    live = current();
  } catch (const Error&) {
  }
  std::vector<VersionInfo> infos;
  for (int version : saved_versions(dir_)) {
    VersionInfo info;
    try {
      info = describe(version, load_model_metadata(file(version)), file(version).string());
    } catch (const Error& e) {
      info = VersionInfo{};
      info.version = version;
      info.problem = e.what();
    }
    info.current = version == live;
    infos.push_back(std::move(info));
  }
  return infos;
}

int ModelVersions::remove_unfinished() const {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return 0;
  std::vector<fs::path> unfinished;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_, ec)) {
    // write_file_atomically's temporary names: ".v0003.safetensors.Ab12Cd" (never a name list() reads).
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".v") && name.find(".safetensors.") != std::string::npos && entry.is_regular_file(ec)) unfinished.push_back(entry.path());
  }
  int removed = 0;
  for (const fs::path& path : unfinished) removed += fs::remove(path, ec) ? 1 : 0;
  return removed;
}

int ModelVersions::current() const {
  const fs::path pointer = dir_ / "current";
  std::error_code ec;
  if (!fs::exists(pointer, ec)) return 0;
  std::ifstream in(pointer);
  if (!in) throw Error(pointer.string() + ": cannot read");
  std::stringstream text;
  text << in.rdbuf();
  const auto version = parse_count(text.str());
  if (!version || *version > 999'999'999) throw Error(pointer.string() + ": expected a version number, found '" + text.str().substr(0, 40) + "'");
  return static_cast<int>(*version);
}

Model ModelVersions::load(int version) const {
  if (version < 1) throw Error("model version " + std::to_string(version) + " is not a saved version (they count from 1; 0 is the starting model)");
  std::error_code ec;
  if (!fs::exists(file(version), ec)) throw Error(file(version).string() + ": model version " + std::to_string(version) + " does not exist");
  return load_model(file(version));
}

Metadata ModelVersions::metadata(int version) const { return load_model_metadata(file(version)); }

std::string ModelVersions::model_file(int version) const {
  std::ifstream in(file(version), std::ios::binary);
  if (!in) throw Error(file(version).string() + ": model version " + std::to_string(version) + " cannot be read");
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void ModelVersions::restore(int version, const std::string& model_file) {
  if (version < 1) throw Error("model version " + std::to_string(version) + " cannot be stored (they count from 1)");
  const std::string source = "model version " + std::to_string(version);
  parse_model(std::span(reinterpret_cast<const unsigned char*>(model_file.data()), model_file.size()), source);  // no bytes that are not a model
  std::error_code ec;
  if (fs::exists(file(version), ec)) throw Error(file(version).string() + ": " + source + " is already there");
  fs::create_directories(dir_, ec);
  if (ec) throw StorageError(fault_of_errno(ec.value()), dir_.string() + ": cannot create the model versions folder: " + ec.message());
  try {
    write_file_atomically(file(version), model_file);
  } catch (const FileWriteError& e) {
    throw StorageError(fault_of_errno(e.error_number), e.what());
  }
}

int ModelVersions::rollback(std::optional<int> version) {
  const std::vector<int> saved = saved_versions(dir_);
  auto saved_list = [&] {
    if (saved.empty()) return std::string("no versions are saved in ") + dir_.string();
    std::string text = "saved: ";
    for (std::size_t i = 0; i < saved.size(); ++i) text += (i ? ", " : "") + std::to_string(saved[i]);
    return text;
  };
  int target = 0;
  if (version) {
    target = *version;  // a garbled current is no obstacle: naming a version is how to repair it
  } else {
    int live = 0;
    try {
      live = current();
    } catch (const Error& e) {
      throw StorageError(StorageFault::corrupt, std::string(e.what()) + "; name the version to roll back to");
    }
    if (live == 0) throw Error("the starting model (version 0) is already current; there is nothing before it to roll back to");
    try {
      target = describe(live, load_model_metadata(file(live)), file(live).string()).parent;
    } catch (const Error& e) {
      throw StorageError(StorageFault::corrupt,
                         std::string("cannot find the version before ") + std::to_string(live) + " (" + e.what() + "); name the version to roll back to");
    }
  }
  if (target < 0) throw Error("model version " + std::to_string(target) + " does not exist (versions count from 0, the starting model)");
  if (target > 0 && !std::binary_search(saved.begin(), saved.end(), target))
    throw Error("model version " + std::to_string(target) + " does not exist (" + saved_list() + ")");
  if (target > 0) {
    try {
      load(target);  // refuse to make a corrupt file live
    } catch (const Error& e) {
      throw StorageError(StorageFault::corrupt, e.what());
    }
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw StorageError(fault_of_errno(ec.value()), dir_.string() + ": cannot create the model versions folder: " + ec.message());
  try {
    write_file_atomically(dir_ / "current", std::to_string(target) + "\n");
  } catch (const FileWriteError& e) {
    throw StorageError(fault_of_errno(e.error_number), e.what());
  }
  return target;
}

}  // namespace digits::feedback
